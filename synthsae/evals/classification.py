"""Each SAE latent as a detector of its best-matching ground-truth feature.

A latent fires when it is non-zero (so signed latents are judged correctly); a
ground-truth feature fires when its activation is positive. Ground truth may come
dense ``[B, F]``, as a sparse COO tensor, or as a :class:`SparseBatch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from synthsae.evals.feature_matching import best_matching_features
from synthsae.synthetic.sparse_batch import SparseBatch

__all__ = [
    "ClassificationMetrics",
    "ClassificationMetricsCalculator",
    "compute_classification_metrics",
]


@dataclass
class ClassificationMetrics:
    """Per-latent detection scores averaged (unweighted) over all SAE latents."""

    precision: float
    recall: float
    f1_score: float
    accuracy: float


def as_sparse_batch_or_dense(acts: torch.Tensor | SparseBatch) -> torch.Tensor | SparseBatch:
    """A sparse COO tensor becomes a :class:`SparseBatch`; anything else is returned as is."""
    if isinstance(acts, torch.Tensor) and acts.is_sparse:
        return SparseBatch.from_sparse_coo(acts)
    return acts


class ClassificationMetricsCalculator:
    """Treats latent ``j`` as a detector of its best-matching feature ``best_j``.

    Over all added samples it counts, per latent, true positives (latent non-zero
    and feature ``best_j`` positive), false positives and false negatives; true
    negatives follow from the sample count. Counters stay on the device of the
    latents and are only read in :meth:`compute`.

    Two ways of counting give identical results. ``"sparse"`` lists the non-zero
    latents (one pass over ``[B, S]``) and looks each one up in a ``[B, U + 1]``
    table of active matched features (``U <= S``); it is the fastest on a CPU but
    its sizes are data-dependent (a host sync on an accelerator). ``"dense"``
    gathers the ``[B, S]`` "matched feature active" mask and reduces it: fixed
    shapes, no host syncs. ``"auto"`` picks sparse on the CPU, dense elsewhere.
    With a :class:`SparseBatch` neither builds anything of size ``[B, F]``.

    Args:
        sae_decoder: ``[S, D]`` decoder rows.
        gt_features: ``[F, D]`` ground-truth feature vectors.
        strategy: ``"auto"``, ``"sparse"`` or ``"dense"``.
    """

    def __init__(
        self, sae_decoder: torch.Tensor, gt_features: torch.Tensor, *, strategy: str = "auto"
    ) -> None:
        best = best_matching_features(sae_decoder, gt_features)
        self._setup(best, gt_features.shape[0], strategy)

    @classmethod
    def from_best_match(
        cls, best_match: torch.Tensor, num_gt_features: int, *, strategy: str = "auto"
    ) -> ClassificationMetricsCalculator:
        """Build from a precomputed ``[S]`` best-match index (e.g. a :class:`FeatureMatch`)."""
        calc = cls.__new__(cls)
        calc._setup(best_match, num_gt_features, strategy)
        return calc

    def _setup(self, best_match: torch.Tensor, num_gt_features: int, strategy: str) -> None:
        if best_match.dim() != 1:
            raise ValueError(f"best_match must be 1-D [d_sae], got shape {tuple(best_match.shape)}")
        if strategy not in ("auto", "sparse", "dense"):
            raise ValueError(f"strategy must be 'auto', 'sparse' or 'dense', got {strategy!r}")
        self.strategy = strategy
        self.best_match = best_match.long()
        self.num_latents = best_match.numel()
        self.num_gt_features = int(num_gt_features)
        self._columns: dict[torch.device, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self._tp: torch.Tensor | None = None
        self._pred: torch.Tensor | None = None
        self._actual: torch.Tensor | None = None
        self._total = 0

    # ---------------------------------------------------------------- counting
    def _feature_counts(self, gt: torch.Tensor | SparseBatch) -> torch.Tensor:
        """``[F]`` number of rows in which each feature is positive."""
        if isinstance(gt, SparseBatch):
            counts = torch.zeros(self.num_gt_features, dtype=torch.long, device=gt.device)
            return counts.index_add_(0, gt.indices, (gt.values > 0).long())
        return (gt > 0).sum(0)

    def _matched_columns(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Compact columns for the ``U`` features that are some latent's best match.

        Returns ``(column of each feature [F], column of each latent [S], U)``; features
        that no latent matches map to the spare column ``U``. Cached per device.
        """
        cached = self._columns.get(device)
        if cached is None:
            unique, latent_col = torch.unique(self.best_match.to(device), return_inverse=True)
            n = unique.numel()
            col_of_feature = torch.full((self.num_gt_features,), n, dtype=torch.long, device=device)
            col_of_feature[unique] = torch.arange(n, device=device)
            cached = self._columns[device] = (col_of_feature, latent_col, n)
        return cached

    def _active_matched(self, gt: SparseBatch, device: torch.device) -> torch.Tensor:
        """``[B, U + 1]`` bool: which matched features are positive in each row
        (built from the stored entries, never ``[B, F]``)."""
        col_of_feature, _, n = self._matched_columns(device)
        active = torch.zeros(gt.batch_size, n + 1, dtype=torch.bool, device=device)
        cols = torch.where(gt.values > 0, col_of_feature[gt.indices], n)
        active[gt.row_ids(), cols] = True
        return active

    def _counts_sparse(
        self, z: torch.Tensor, gt: torch.Tensor | SparseBatch, best: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, lat = torch.nonzero(z, as_tuple=True)
        if isinstance(gt, SparseBatch):
            latent_col = self._matched_columns(z.device)[1]
            hit = self._active_matched(gt, z.device)[rows, latent_col[lat]]
        else:
            hit = gt[rows, best[lat]] > 0
        tp = torch.bincount(lat[hit], minlength=self.num_latents)
        pred = torch.bincount(lat, minlength=self.num_latents)
        return tp, pred, self._feature_counts(gt)[best]

    def _counts_dense(
        self, z: torch.Tensor, gt: torch.Tensor | SparseBatch, best: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fires = z != 0
        if isinstance(gt, SparseBatch):
            matched = self._active_matched(gt, z.device)[:, self._matched_columns(z.device)[1]]
        else:
            matched = gt[:, best] > 0
        return (fires & matched).sum(0), fires.sum(0), self._feature_counts(gt)[best]

    def add_batch(
        self, sae_latents: torch.Tensor, gt_feature_acts: torch.Tensor | SparseBatch
    ) -> None:
        """Add ``sae_latents`` ``[B, S]`` and the matching ground truth (dense ``[B, F]``,
        sparse COO or :class:`SparseBatch`)."""
        if sae_latents.shape[-1] != self.num_latents:
            raise ValueError(
                f"sae_latents has {sae_latents.shape[-1]} latents, expected {self.num_latents}"
            )
        z = sae_latents.detach().reshape(-1, self.num_latents)
        device = z.device
        gt = as_sparse_batch_or_dense(gt_feature_acts)
        if isinstance(gt, SparseBatch):
            if gt.num_features != self.num_gt_features:
                raise ValueError(
                    f"gt_feature_acts has {gt.num_features} features, expected {self.num_gt_features}"
                )
            gt, batch = gt.to(device), gt.batch_size
        else:
            if gt.shape[-1] != self.num_gt_features:
                raise ValueError(
                    f"gt_feature_acts has {gt.shape[-1]} features, expected {self.num_gt_features}"
                )
            gt = gt.detach().reshape(-1, self.num_gt_features).to(device)
            batch = gt.shape[0]
        if batch != z.shape[0]:
            raise ValueError(f"sae_latents has {z.shape[0]} rows but gt_feature_acts has {batch}")
        if self.best_match.device != device:
            self.best_match = self.best_match.to(device)
        sparse = self.strategy == "sparse" or (self.strategy == "auto" and device.type == "cpu")
        counter = self._counts_sparse if sparse else self._counts_dense
        tp, pred, actual = counter(z, gt, self.best_match)
        if self._tp is None or self._pred is None or self._actual is None:
            self._tp, self._pred, self._actual = tp, pred, actual
        else:
            self._tp += tp
            self._pred += pred
            self._actual += actual
        self._total += batch

    def counts(self) -> dict[str, torch.Tensor]:
        """Per-latent ``tp``, ``fp``, ``fn``, ``tn`` (int64 ``[S]``) accumulated so far."""
        if self._tp is None or self._pred is None or self._actual is None:
            zero = torch.zeros(self.num_latents, dtype=torch.long)
            return {"tp": zero, "fp": zero.clone(), "fn": zero.clone(), "tn": zero.clone()}
        tp = self._tp
        fp, fn = self._pred - tp, self._actual - tp
        return {"tp": tp, "fp": fp, "fn": fn, "tn": self._total - tp - fp - fn}

    @property
    def num_samples(self) -> int:
        """Rows added so far."""
        return self._total

    def firing_counts(self) -> torch.Tensor:
        """``[S]`` number of added rows in which each latent was non-zero."""
        if self._pred is None:
            return torch.zeros(self.num_latents, dtype=torch.long)
        return self._pred

    def compute(self) -> ClassificationMetrics:
        """Mean precision, recall, F1 and accuracy over all latents (0 where undefined)."""
        if self.num_latents == 0:
            return ClassificationMetrics(0.0, 0.0, 0.0, 0.0)
        c = {k: v.double().cpu() for k, v in self.counts().items()}
        tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
        zero = torch.zeros_like(tp)
        precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), zero)
        recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), zero)
        denom = precision + recall
        f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300), zero)
        accuracy = (tp + tn) / max(self._total, 1e-8)
        return ClassificationMetrics(
            precision=float(precision.mean()),
            recall=float(recall.mean()),
            f1_score=float(f1.mean()),
            accuracy=float(accuracy.mean()),
        )


def compute_classification_metrics(
    sae_latents: torch.Tensor,
    gt_feature_acts: torch.Tensor | SparseBatch,
    sae_decoder: torch.Tensor,
    gt_features: torch.Tensor,
) -> ClassificationMetrics:
    """:class:`ClassificationMetricsCalculator` applied to a single batch."""
    calc = ClassificationMetricsCalculator(sae_decoder, gt_features)
    calc.add_batch(sae_latents, gt_feature_acts)
    return calc.compute()
