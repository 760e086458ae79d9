"""Trainer callbacks: the hook protocol and sample-count thresholds for checkpoints/snapshots."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.training.trainer import Trainer


class TrainerCallback:
    """Hooks the trainer calls; override the ones you need (duck typing works too).

    ``on_log`` receives each SAE's metrics every ``log_frequency`` steps (§6.4 key
    names) and the feature-sampling-window keys when a window completes.
    ``step`` is the number of steps completed.
    """

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_log(self, step: int, metrics: dict[str, float], sae_index: int) -> None: ...
    def on_step_end(self, trainer: Trainer) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


def checkpoint_thresholds(total_samples: int, n: int) -> list[int]:
    """Sample counts after which the ``n`` evenly spaced checkpoints/snapshots fire."""
    if n <= 0:
        return []
    return list(range(0, total_samples, math.ceil(total_samples / (n + 1))))[1:]


class SampleThresholdCallback(TrainerCallback):
    """Calls ``fn(trainer)`` after the first step whose ``samples_seen`` exceeds each threshold.

    At most one call per step; thresholds already passed when fitting (re)starts are skipped.
    """

    def __init__(self, thresholds: Sequence[int], fn: Callable[[Trainer], None]) -> None:
        self.pending = sorted(thresholds)
        self.fn = fn

    def on_fit_start(self, trainer: Trainer) -> None:
        self.pending = [t for t in self.pending if t >= trainer.samples_seen]

    def on_step_end(self, trainer: Trainer) -> None:
        if self.pending and trainer.samples_seen > self.pending[0]:
            self.pending.pop(0)
            self.fn(trainer)
