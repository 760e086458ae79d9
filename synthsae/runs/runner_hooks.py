"""Pieces of :class:`~synthsae.runs.runner.SyntheticSAERunner`'s training loop: the
periodic-eval and weight-histogram callbacks and the slow-autocast warning."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

import torch

from synthsae.training.logging import MetricsLogger
from synthsae.training.trainer import Trainer

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.runs.runner import SyntheticSAERunner
    from synthsae.runs.runner_config import SyntheticSAERunnerConfig

__all__ = ["PeriodicEval", "WandbHistograms", "warn_if_slow_autocast"]


def warn_if_slow_autocast(cfg: SyntheticSAERunnerConfig) -> None:
    """bf16 autocast on a CPU without native bf16 matrix units falls back to slow kernels."""
    if not (cfg.autocast_sae or cfg.autocast_data) or torch.device(cfg.device).type != "cpu":
        return
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch
        return
    if not native:
        warnings.warn("autocast_sae/autocast_data on this CPU: it has no native bf16 support, so bf16 matrix "
                      "products are much slower than float32; autocast is meant for GPUs", UserWarning, stacklevel=3)


class PeriodicEval:
    """Trainer callback: an eval every ``eval_frequency`` steps, logged as ``synthetic/*``.

    At the last step the final eval (if enabled) takes its place.
    """

    def __init__(self, runner: SyntheticSAERunner, logger: MetricsLogger) -> None:
        self.runner, self.logger = runner, logger
        cfg = runner.cfg
        self.every = cfg.eval_frequency if cfg.eval_samples > 0 else 0
        self.final_replaces_last = cfg.run_final_eval and cfg.eval_samples > 0

    def on_step_end(self, trainer: Trainer) -> None:
        if not self.every or trainer.step % self.every:
            return
        if self.final_replaces_last and trainer.samples_seen >= trainer.cfg.total_training_samples:
            return
        t0 = time.perf_counter()
        result = self.runner.evaluate(scaled=True)
        self.logger.log(result.to_log_dict(prefix="synthetic/"), trainer.step)
        self.runner.paused_seconds += time.perf_counter() - t0


class WandbHistograms:
    """Trainer callback: the SAE's weight histograms to wandb every
    :attr:`LoggingConfig.eval_frequency_steps` steps (``wandb_log_frequency *
    eval_every_n_wandb_logs``); nothing without wandb."""

    def __init__(self, runner: SyntheticSAERunner, logger: MetricsLogger) -> None:
        self.runner, self.logger = runner, logger
        self.every = logger.cfg.eval_frequency_steps

    def on_step_end(self, trainer: Trainer) -> None:
        if self.logger.wandb_run is not None and trainer.step % self.every == 0:
            self.logger.log_histograms(self.runner.histograms(), trainer.step)

