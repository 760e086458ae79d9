"""``train_toy_sae``: train one SAE on a feature dictionary and activation generator, with
the reference's fixed recipe and no files written."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from synthsae.config_values import check_int
from synthsae.runs.activation_iterator import SyntheticActivationIterator
from synthsae.runs.prefetch import training_threads
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

__all__ = ["train_toy_sae"]

_PREFETCH_CHUNKS = 1  # chunks are up to 64 batches: one drawn ahead keeps the trainer fed


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
        feature_dict: the true feature directions of the synthetic data source.
        activations_generator: the firing process of the synthetic data source.
        training_samples: rows to train on (``>= batch_size``).
        batch_size: rows per step.
        lr: the Adam learning rate.
        lr_warm_up_steps: steps of linear warm-up up to ``lr`` (0: none).
        lr_decay_steps: final steps of linear decay towards 0 (0: none).
        device: where the SAE trains (batches are moved there).
        n_snapshots: number of evenly spaced calls of ``snapshot_fn(trainer)`` during
            training (needs ``snapshot_fn``).
        snapshot_fn: receives the :class:`~synthsae.training.trainer.Trainer` (``trainer.sae``,
            ``trainer.step``, ``trainer.samples_seen``, ...).
        autocast_sae: bf16 autocast of the SAE's training step.
        autocast_data: bf16 autocast of data generation.
        show_progress: show a tqdm progress bar.
    """
    d_in, hidden_dim = sae.cfg.d_in, feature_dict.hidden_dim
    if d_in != hidden_dim:
        raise ValueError(f"sae.cfg.d_in ({d_in}) must equal feature_dict.hidden_dim ({hidden_dim})")
    batch_size = check_int("batch_size", batch_size, at_least=1)
    training_samples = check_int("training_samples", training_samples, at_least=batch_size)
    n_snapshots = check_int("n_snapshots", n_snapshots, at_least=0)
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
    feature_dict.eval()
    # the next chunk of batches is drawn on a background thread while this one trains
    data = SyntheticActivationIterator(feature_dict, activations_generator, batch_size, autocast=autocast_data,
                                       prefetch=_PREFETCH_CHUNKS)
    callbacks = []
    if n_snapshots > 0:
        def snapshot(trainer: Trainer) -> None:
            data.close()  # the generator back where the training stream stands: snapshots may sample from it
            snapshot_fn(trainer)  # type: ignore[misc]

        callbacks.append(SampleThresholdCallback(checkpoint_thresholds(training_samples, n_snapshots), snapshot))
    try:
        with training_threads(device, prefetching=True):  # the producer thread has a core of its own
            Trainer(sae, data, cfg, callbacks).fit()
    finally:
        data.close()  # rewinds the (possibly global) RNG over the chunks drawn ahead
