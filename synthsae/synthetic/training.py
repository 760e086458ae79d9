"""Training an SAE on synthetic activations: the batch iterator and ``train_toy_sae``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from synthsae.training.trainer import (
    SampleThresholdCallback,
    Trainer,
    TrainerConfig,
    checkpoint_thresholds,
)

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.saes.base import TrainingSAE
    from synthsae.synthetic.activation_generator import ActivationGenerator
    from synthsae.synthetic.feature_dictionary import FeatureDictionary

__all__ = ["SyntheticActivationIterator", "train_toy_sae"]


_CHUNK_ELEMENTS = 1 << 21  # hidden-activation floats drawn per generator call (8 MiB in fp32) ...
_MAX_CHUNK_BATCHES = 64  # ... at most this many batches at once


def _rows_independent(generator: Any) -> bool:
    """True when the generator's rows are i.i.d. (no modifier that could mix rows of a batch)."""
    from synthsae.synthetic.hierarchy.modifier import HierarchyModifier

    modifiers = getattr(generator, "modify_activations", None)
    return modifiers is not None and all(isinstance(m, HierarchyModifier) for m in modifiers)


class SyntheticActivationIterator(Iterator[torch.Tensor]):
    """Endless batches of hidden activations ``feature_dict(activations_generator(batch_size))``.

    Batches are made without gradients. When the generator has ``sample_sparse`` the
    feature activations stay sparse (a :class:`SparseBatch`) on their way through the
    dictionary; otherwise the generator is called for a dense batch. With
    ``autocast=True`` the dictionary product runs under bf16 autocast on the dictionary's
    device type and batches come out in bf16; the firing process stays in full precision.

    Small models: rows of a synthetic batch are independent draws, so when the
    generator has no modifier that could mix rows (only hierarchy modifiers), several
    batches are drawn in one call and handed out one by one (``chunk_batches``, by
    default as many as fit in about two million hidden floats, at most 64). The
    distribution is the same; the per-call overhead, which dominates for toy models, is
    paid once per chunk. ``chunk_batches=1`` draws each batch separately.

    ``state_dict()`` / ``load_state_dict()`` save and restore the generator's private
    ``torch.Generator`` (when it has one; a generator drawing from the global RNG leaves
    that RNG to the caller) and the rows of the current chunk not yet handed out.
    """

    def __init__(
        self,
        feature_dict: FeatureDictionary,
        activations_generator: ActivationGenerator,
        batch_size: int,
        autocast: bool = False,
        chunk_batches: int | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if chunk_batches is not None and (isinstance(chunk_batches, bool) or not isinstance(chunk_batches, int)
                                          or chunk_batches < 1):
            raise ValueError(f"chunk_batches must be an int >= 1 or None, got {chunk_batches!r}")
        self.feature_dict = feature_dict
        self.activations_generator = activations_generator
        self.batch_size = batch_size
        self.autocast = bool(autocast)
        self._sample_sparse = getattr(activations_generator, "sample_sparse", None)
        if chunk_batches is None:
            per_batch = batch_size * int(getattr(feature_dict, "hidden_dim", 1))
            chunk_batches = max(1, min(_MAX_CHUNK_BATCHES, _CHUNK_ELEMENTS // per_batch))
            if not _rows_independent(activations_generator):
                chunk_batches = 1
        self.chunk_batches = chunk_batches
        self._chunk: torch.Tensor | None = None  # rows drawn but not yet handed out
        self._pos = 0

    @torch.no_grad()
    def _draw(self, rows: int) -> torch.Tensor:
        # the firing process always runs in full precision; autocast covers only the
        # dictionary product (sampling hands integer indices and fp32 values to numpy/torch ops
        # that bf16 would break or bias)
        if self._sample_sparse is not None:
            features = self._sample_sparse(rows)
        else:
            features = self.activations_generator(rows)
        if not self.autocast:
            return self.feature_dict(features)
        device = self.feature_dict.feature_vectors.device.type
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            out = self.feature_dict(features)
        # the sparse product (embedding_bag) is not an autocast op; hand out the dtype autocast gives
        return out.to(torch.bfloat16)

    def next_batch(self) -> torch.Tensor:
        """One ``[batch_size, hidden_dim]`` batch."""
        if self.chunk_batches == 1:
            return self._draw(self.batch_size)
        b = self.batch_size
        if self._chunk is None or self._pos + b > self._chunk.shape[0]:
            self._chunk, self._pos = self._draw(b * self.chunk_batches), 0
        self._pos += b
        return self._chunk[self._pos - b:self._pos]

    def __iter__(self) -> SyntheticActivationIterator:
        return self

    def __next__(self) -> torch.Tensor:
        return self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        gen = getattr(self.activations_generator, "generator", None)
        pending = None
        if self._chunk is not None and self._pos < self._chunk.shape[0]:
            pending = self._chunk[self._pos:].clone()
        return {"generator_state": gen.get_state() if isinstance(gen, torch.Generator) else None,
                "pending_rows": pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        gen = getattr(self.activations_generator, "generator", None)
        if state.get("generator_state") is not None and isinstance(gen, torch.Generator):
            gen.set_state(state["generator_state"])
        pending = state.get("pending_rows")
        self._chunk = None if pending is None else pending.to(self.feature_dict.feature_vectors.device)
        self._pos = 0


def train_toy_sae(
    sae: TrainingSAE,
    feature_dict: FeatureDictionary,
    activations_generator: ActivationGenerator,
    training_samples: int = 10_000_000,
    batch_size: int = 1024,
    lr: float = 3e-4,
    lr_warm_up_steps: int = 0,
    lr_decay_steps: int = 0,
    device: str | torch.device = "cpu",
    n_snapshots: int = 0,
    snapshot_fn: Callable[[Trainer], None] | None = None,
    autocast_sae: bool = False,
    autocast_data: bool = False,
    show_progress: bool = True,
) -> None:
    """Train ``sae`` in place on ``training_samples`` synthetic activations.

    Adam (betas 0.9/0.999) at a constant ``lr`` (with optional linear warm-up and
    decay), gradient norm clipped to 1, dead window 1000 steps, sparsity window 2000
    steps, no logging to files or wandb.

    Args:
        sae: the training SAE; its ``d_in`` must equal ``feature_dict.hidden_dim``.
        feature_dict, activations_generator: the synthetic data source.
        training_samples: rows to train on (``>= batch_size``).
        batch_size: rows per step.
        lr, lr_warm_up_steps, lr_decay_steps: learning-rate schedule.
        device: where the SAE trains (batches are moved there).
        n_snapshots: number of evenly spaced calls of ``snapshot_fn(trainer)`` during
            training (needs ``snapshot_fn``).
        snapshot_fn: receives the :class:`~synthsae.training.trainer.Trainer` (``trainer.sae``,
            ``trainer.step``, ``trainer.samples_seen``, ...).
        autocast_sae / autocast_data: bf16 autocast for the SAE / for data generation.
        show_progress: show a tqdm progress bar.
    """
    d_in, hidden_dim = sae.cfg.d_in, feature_dict.hidden_dim
    if d_in != hidden_dim:
        raise ValueError(f"sae.cfg.d_in ({d_in}) must equal feature_dict.hidden_dim ({hidden_dim})")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int > 0, got {batch_size!r}")
    if isinstance(training_samples, bool) or not isinstance(training_samples, int) or training_samples < batch_size:
        raise ValueError(f"training_samples must be an int >= batch_size ({batch_size}), got {training_samples!r}")
    if isinstance(n_snapshots, bool) or not isinstance(n_snapshots, int) or n_snapshots < 0:
        raise ValueError(f"n_snapshots must be an int >= 0, got {n_snapshots!r}")
    if n_snapshots > 0 and snapshot_fn is None:
        raise ValueError(f"n_snapshots={n_snapshots} needs a snapshot_fn to call at each snapshot")

    cfg = TrainerConfig(
        total_training_samples=training_samples,
        batch_size=batch_size,
        lr=lr,
        lr_end=lr,
        lr_scheduler_name="constant",
        lr_warm_up_steps=lr_warm_up_steps,
        lr_decay_steps=lr_decay_steps,
        device=str(device),
        autocast=autocast_sae,
        log_frequency=100,
        show_progress=show_progress,
    )
    callbacks = []
    if n_snapshots > 0:
        callbacks.append(SampleThresholdCallback(checkpoint_thresholds(training_samples, n_snapshots), snapshot_fn))  # type: ignore[arg-type]
    feature_dict.eval()
    data = SyntheticActivationIterator(feature_dict, activations_generator, batch_size, autocast=autocast_data)
    Trainer(sae, data, cfg, callbacks).fit()
