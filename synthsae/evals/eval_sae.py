"""Evaluate an SAE against the ground truth of a synthetic data source.

:func:`eval_sae_on_synthetic_data` streams fresh samples through the SAE in
fixed-size chunks, so its memory use does not grow with ``num_samples``, and
computes the decoder-only metrics from one cosine-similarity matrix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import torch

from synthsae._progress import progress_bar
from synthsae.config_values import check_int
from synthsae.evals.metrics import (
    ClassificationMetrics,
    ClassificationMetricsCalculator,
    ExplainedVarianceCalculator,
    L0Calculator,
    ShrinkageCalculator,
    match_decoder_to_features,
)
from synthsae.evals.sparse_decode import SparseDecodeShortcut
from synthsae.synthetic.sparse_batch import SparseBatch

_PROGRESS_DELAY_S = 2.0
"""Seconds an eval runs before its progress bar appears (so short evals stay silent)."""

EVAL_CHUNK_ELEMENTS = 1 << 24
"""With ``batch_size=None``, chunks hold about this many elements per ``[rows, width]``
tensor (4,096 rows at 4,096 latents), clamped to 1,024-65,536 rows."""


def default_eval_batch_size(
    d_sae: int, d_in: int, num_features: int, dense_ground_truth: bool
) -> int:
    """Rows per eval chunk when the caller gives none.

    The widest per-row tensor is the ``[B, d_sae]`` latents, the ``[B, d_in]``
    activations, or, for a generator without ``sample_sparse``, its dense
    ``[B, num_features]`` output. Small models get big chunks (little per-chunk
    overhead), large ones bounded memory.
    """
    width = max(d_sae, d_in, num_features if dense_ground_truth else 1, 1)
    return int(min(max(EVAL_CHUNK_ELEMENTS // width, 1024), 65536))


class ActivationScalerLike(Protocol):
    """Anything that maps activations into the SAE's input space and back."""

    def scale(self, acts: torch.Tensor) -> torch.Tensor: ...

    def unscale(self, acts: torch.Tensor) -> torch.Tensor: ...


@dataclass
class SyntheticDataEvalResult:
    """Result of :func:`eval_sae_on_synthetic_data`.

    Attributes:
        true_l0: mean number of active ground-truth features per sample.
        sae_l0: mean number of non-zero SAE latents per sample.
        dead_latents: latents that were zero on every eval sample.
        shrinkage: mean ``||x_hat|| / ||x||`` (below 1 means the SAE shrinks its output).
        explained_variance: pooled R^2 of the reconstruction.
        mcc: mean |cos| of the one-to-one matching of decoder rows and true features.
        uniqueness: fraction of latents whose best-matching true feature is distinct.
        classification: mean precision / recall / F1 / accuracy of each latent as a
            detector of its best-matching true feature.
    """

    true_l0: float
    sae_l0: float
    dead_latents: int
    shrinkage: float
    explained_variance: float
    mcc: float
    uniqueness: float
    classification: ClassificationMetrics

    def to_log_dict(self, prefix: str = "") -> dict[str, float | int]:
        """Flat ``{prefix}{field}`` mapping; classification scores appear as
        ``{prefix}classification/{precision|recall|f1_score|accuracy}``."""
        out: dict[str, float | int] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ClassificationMetrics):
                for name, score in asdict(value).items():
                    out[f"{prefix}classification/{name}"] = score
            else:
                out[f"{prefix}{f.name}"] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """Nested plain-Python form (``classification`` is a sub-dictionary)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticDataEvalResult:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["classification"] = ClassificationMetrics(**values["classification"])
        return cls(**values)


def _hidden_dim(feature_dict: Any) -> int:
    if hasattr(feature_dict, "hidden_dim"):
        return int(feature_dict.hidden_dim)
    return int(feature_dict.feature_vectors.shape[1])


def _check_inputs(sae: Any, feature_dict: Any, num_samples: int, batch_size: int | None) -> None:
    missing = [name for name in ("W_dec", "encode", "decode") if not hasattr(sae, name)]
    if missing:
        raise TypeError(
            f"sae must have W_dec, encode and decode; {type(sae).__name__} lacks {', '.join(missing)}"
        )
    if sae.W_dec.dim() != 2:
        raise ValueError(f"sae.W_dec must be 2-D [d_sae, d_in], got shape {tuple(sae.W_dec.shape)}")
    d_in, hidden_dim = sae.W_dec.shape[1], _hidden_dim(feature_dict)
    if d_in != hidden_dim:
        raise ValueError(
            f"SAE d_in (W_dec.shape[1]) is {d_in} but feature_dict.hidden_dim is {hidden_dim}; they must be equal"
        )
    check_int("num_samples", num_samples, at_least=1)
    check_int("batch_size", batch_size, at_least=1, optional=True)


def _sample(
    feature_dict: Any, generator: Any, batch: int
) -> tuple[torch.Tensor | SparseBatch, torch.Tensor]:
    """Ground-truth activations and the hidden activations they produce."""
    sample_sparse = getattr(generator, "sample_sparse", None)
    if callable(sample_sparse):
        gt = sample_sparse(batch)
    else:
        gt = generator.sample(batch)
    hidden = feature_dict(gt)
    if isinstance(gt, torch.Tensor) and gt.is_sparse:
        gt = SparseBatch.from_sparse_coo(gt)
    return gt, hidden


def eval_sae_on_synthetic_data(
    sae: Any,
    feature_dict: Any,
    activations_generator: Any,
    num_samples: int = 100_000,
    batch_size: int | None = None,
    activation_scaler: ActivationScalerLike | None = None,
    *,
    show_progress: bool = False,
) -> SyntheticDataEvalResult:
    """Measure how well ``sae`` recovers the ground-truth features of a synthetic source.

    Each chunk draws ground-truth activations ``f`` from ``activations_generator``
    (``sample_sparse(b)`` when it has one, else ``sample(b)``), builds
    ``x = feature_dict(f)`` (bias included), encodes ``scale(x)`` and compares
    ``x_hat = unscale(decode(z))`` with ``x``. A latent fires when it is non-zero.

    Args:
        sae: any object with ``W_dec`` ``[d_sae, d_in]``, ``encode`` and ``decode``
            (SAEs from other libraries work too). Evaluated under ``torch.no_grad``
            in eval mode; its previous training mode is restored afterwards.
        feature_dict: maps ground-truth activations to hidden activations; has
            ``feature_vectors`` ``[F, d_in]`` and ``hidden_dim``.
        activations_generator: the ground-truth sampler.
        num_samples: number of fresh samples to evaluate on (> 0).
        batch_size: rows per chunk. ``None`` picks one from the sizes with
            :func:`default_eval_batch_size` (4,096 rows at 4,096 latents; up to
            65,536 for small models), so memory does not grow with ``num_samples``
            (the reference library ran a single batch of ``num_samples``).
            Encoders that pick top-k over the whole batch (BatchTopK, Matryoshka
            in training form) see batch-level top-k, so their metrics depend on
            the batch size: pass ``batch_size`` explicitly to compare such SAEs.
        activation_scaler: object with ``scale(x)`` / ``unscale(x)`` placed around
            the SAE; identity if ``None``. Metrics are taken in the unscaled space.
        show_progress: show a tqdm progress bar once the eval has run for 2 s.

    Raises:
        ValueError: if the SAE's ``d_in`` differs from ``feature_dict.hidden_dim``, or
            ``num_samples`` / ``batch_size`` is not a positive integer.
    """
    _check_inputs(sae, feature_dict, num_samples, batch_size)
    if batch_size is None:
        d_sae, d_in = sae.W_dec.shape
        num_features = feature_dict.feature_vectors.shape[0]
        dense_gt = not callable(getattr(activations_generator, "sample_sparse", None))
        chunk = default_eval_batch_size(d_sae, d_in, num_features, dense_gt)
    else:
        chunk = batch_size
    was_training = getattr(sae, "training", None)
    if callable(getattr(sae, "eval", None)):
        sae.eval()
    try:
        with torch.no_grad():
            return _run_eval(
                sae,
                feature_dict,
                activations_generator,
                num_samples,
                chunk,
                activation_scaler,
                show_progress,
            )
    finally:
        if was_training is not None and callable(getattr(sae, "train", None)):
            sae.train(was_training)


def _run_eval(
    sae: Any,
    feature_dict: Any,
    generator: Any,
    num_samples: int,
    chunk: int,
    scaler: ActivationScalerLike | None,
    show_progress: bool,
) -> SyntheticDataEvalResult:
    w_dec = sae.W_dec.detach()
    device, d_in = w_dec.device, w_dec.shape[1]
    gt_vectors = feature_dict.feature_vectors.detach()
    match = match_decoder_to_features(w_dec, gt_vectors)

    # The classification calculator also counts how often each latent fires, which
    # gives sae_l0 and dead_latents without another pass over the [B, d_sae] latents
    # (the same numbers as L0Calculator and DeadLatentsCalculator).
    true_l0 = L0Calculator(positive_only=True)
    shrinkage = ShrinkageCalculator()
    explained = ExplainedVarianceCalculator(d_in, device=device)
    classification = ClassificationMetricsCalculator.from_best_match(
        match.best_match, gt_vectors.shape[0]
    )

    decode = SparseDecodeShortcut(sae, -(-num_samples // chunk), chunk)  # sae.decode, minus the zeros
    done = 0
    # the bar appears only once the eval has run for a while: short evals print nothing
    with progress_bar(total=num_samples, show=show_progress, desc="eval", unit="sample", delay=_PROGRESS_DELAY_S,
                      leave=False) as bar:
        while done < num_samples:
            b = min(chunk, num_samples - done)
            gt, x = _sample(feature_dict, generator, b)
            x = x.to(device)
            sae_in = scaler.scale(x) if scaler is not None else x
            if sae_in.is_floating_point() and sae_in.dtype != w_dec.dtype:
                sae_in = sae_in.to(w_dec.dtype)
            z = sae.encode(sae_in)
            x_hat = decode(z)
            if scaler is not None:
                x_hat = scaler.unscale(x_hat)
            true_l0.add_batch(gt)
            shrinkage.add_batch(x_hat, x)
            explained.add_batch(x_hat, x)
            classification.add_batch(z, gt)
            done += b
            bar.update(b)

    firing = classification.firing_counts()
    return SyntheticDataEvalResult(
        true_l0=true_l0.compute(),
        sae_l0=float(firing.sum()) / num_samples,
        dead_latents=int((firing == 0).sum()),
        shrinkage=shrinkage.compute(),
        explained_variance=explained.compute(),
        mcc=match.mcc,
        uniqueness=match.uniqueness,
        classification=classification.compute(),
    )
