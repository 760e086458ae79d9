"""The training loop: one stream of batches drives one or many SAEs.

Each SAE gets its own Adam optimizer, LR schedule, coefficient warm-ups, firing
statistics and activation scaler; all of them see the same batch at each step.
The hot path never reads a tensor back to the host: metrics, the progress bar and
the non-finite-loss check are evaluated only every ``log_frequency`` steps, with
one device synchronisation per SAE.

Data parallelism (``torchrun``): when a ``torch.distributed`` process group with more
than one rank is initialised before the trainer is built, every rank runs the same
loop on its own batches and the trainer keeps the SAEs identical across ranks (see
:class:`Trainer`). Whether training is distributed is decided once, at construction.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from synthsae._progress import progress_bar
from synthsae.config_values import check_choice, check_device, check_float, check_int
from synthsae.saes.base import TrainingSAE
from synthsae.training import distributed
from synthsae.training.activation_scaler import ActivationScaler
from synthsae.training.callbacks import (
    SampleThresholdCallback,
    TrainerCallback,
    checkpoint_thresholds,
)
from synthsae.training.schedules import LRSchedule
from synthsae.training.slot import NonFiniteLossError, SAESlot

__all__ = [
    "NonFiniteLossError",
    "SAESlot",
    "SampleThresholdCallback",
    "Trainer",
    "TrainerCallback",
    "TrainerConfig",
    "checkpoint_thresholds",
]

_SHARED_FIELDS = ("total_training_samples", "batch_size", "device", "log_frequency", "n_batches_for_norm_estimate")


@dataclass
class TrainerConfig:
    """Hyperparameters of the training loop (validated at construction).

    ``total_training_steps = total_training_samples // batch_size`` sets the LR
    schedule's length; training runs until ``total_training_samples`` rows are seen.
    Under data parallelism ``batch_size`` is per rank and ``total_training_samples``
    counts the rows of all ranks together, so a run takes
    ``total_training_samples // (batch_size * world_size)`` steps.
    ``lr_end=None`` means ``lr / 10``. ``autocast`` runs the SAE forward pass under
    ``autocast_dtype`` (bf16 needs no grad scaler; fp16 on CUDA uses one).
    ``max_grad_norm=None`` disables gradient clipping.
    """

    total_training_samples: int
    batch_size: int = 1024
    lr: float = 3e-4
    lr_end: float | None = None
    lr_scheduler_name: str = "constant"
    lr_warm_up_steps: int = 0
    lr_decay_steps: int = 0
    n_restart_cycles: int = 1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float | None = 1.0
    dead_feature_window: int = 1000
    feature_sampling_window: int = 2000
    device: str = "cpu"
    autocast: bool = False
    autocast_dtype: str = "bfloat16"
    log_frequency: int = 10
    n_batches_for_norm_estimate: int = 1000
    show_progress: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "total_training_samples", "dead_feature_window", "feature_sampling_window",
                     "log_frequency", "n_batches_for_norm_estimate"):
            setattr(self, name, check_int(f"TrainerConfig.{name}", getattr(self, name), at_least=1))
        if self.total_training_samples < self.batch_size:
            raise ValueError(f"total_training_samples ({self.total_training_samples}) must be >= batch_size ({self.batch_size})")
        for name in ("adam_beta1", "adam_beta2"):
            setattr(self, name, check_float(f"TrainerConfig.{name}", getattr(self, name), at_least=0.0, below=1.0))
        self.max_grad_norm = check_float("TrainerConfig.max_grad_norm", self.max_grad_norm, above=0, optional=True)
        check_choice("TrainerConfig.autocast_dtype", self.autocast_dtype, ("bfloat16", "float16"))
        self.device = check_device("TrainerConfig.device", self.device)
        if self.lr_end is None and isinstance(self.lr, (int, float)):
            self.lr_end = self.lr / 10
        self.lr_schedule()  # validates lr, warm-up/decay lengths, scheduler name, lr_end

    @property
    def total_training_steps(self) -> int:
        return self.total_training_samples // self.batch_size

    def lr_schedule(self, world_size: int = 1) -> LRSchedule:
        """The LR schedule over ``total_training_samples // (batch_size * world_size)`` steps."""
        steps = self.total_training_samples // (self.batch_size * world_size)
        return LRSchedule(self.lr, steps, self.lr_warm_up_steps, self.lr_decay_steps,
                          self.lr_scheduler_name, self.lr_end, self.n_restart_cycles)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _clone_tree(obj: Any) -> Any:
    """Deep copy with tensors detached and cloned (state dicts otherwise alias live tensors)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone_tree(v) for v in obj)
    return copy.deepcopy(obj)


class Trainer:
    """Trains one or many SAEs on one stream of batches.

    Args:
        saes: a ``TrainingSAE`` or a sequence of them (a sweep sharing the data).
        data: an iterator of ``[batch, d_in]`` activation tensors. If it has
            ``state_dict``/``load_state_dict`` they are included in the trainer's state.
        cfg: a :class:`TrainerConfig`, or one per SAE (LR, betas, schedules, windows and
            autocast may differ; sample counts, batch size, device and log frequency may not).
        callbacks: objects with any of ``on_fit_start``, ``on_log``, ``on_step_end``,
            ``on_fit_end`` (see :class:`TrainerCallback`).

    Data parallelism: if a ``torch.distributed`` process group with more than one rank
    is initialised when the trainer is built, each rank passes its own ``data`` (same
    batch size on every rank) and the trainer

    * broadcasts every SAE's parameters and buffers from rank 0 at construction;
    * averages gradients (and floating-point buffers) over the ranks after each backward
      pass, before clipping and Adam, and sums the per-latent fire counts, so the firing
      statistics and dead-latent masks are those of the global batch, identical on all
      ranks (one collective per SAE and step; a second one for SAEs with float64
      buffers, such as BatchTopK's threshold);
    * counts ``samples_seen`` over all ranks (``world_size * batch_size`` per step);
    * averages the logged metrics over the ranks on logging steps only, and calls
      ``on_log`` and the progress bar on rank 0 only; ``on_fit_start``, ``on_step_end``
      and ``on_fit_end`` run on every rank (they may hold collectives, e.g. checkpoints);
    * combines the activation scaler's norm estimates of all ranks.

    ``fit``, ``check_finite`` and these hooks must then be called on every rank.
    ``state_dict()`` is local (no collective); its ``data`` entry is this rank's.
    """

    def __init__(
        self,
        saes: TrainingSAE | Sequence[TrainingSAE],
        data: Iterator[torch.Tensor],
        cfg: TrainerConfig | Sequence[TrainerConfig],
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.saes: list[TrainingSAE] = [saes] if isinstance(saes, torch.nn.Module) else list(saes)
        if not self.saes:
            raise ValueError("Trainer needs at least one SAE")
        cfgs = [cfg] * len(self.saes) if isinstance(cfg, TrainerConfig) else list(cfg)
        if len(cfgs) != len(self.saes):
            raise ValueError(f"got {len(cfgs)} trainer configs for {len(self.saes)} SAEs")
        for name in _SHARED_FIELDS:
            if len({getattr(c, name) for c in cfgs}) > 1:
                raise ValueError(f"all trainer configs must share {name}, got {[getattr(c, name) for c in cfgs]}")
        self.cfg = cfgs[0]
        self.data = data
        self.callbacks = list(callbacks)
        self.world_size = distributed.world_size() if distributed.is_distributed() else 1
        self.is_main_process = distributed.rank() == 0
        global_batch = self.cfg.batch_size * self.world_size
        if self.world_size > 1 and self.cfg.total_training_samples < global_batch:
            raise ValueError(f"total_training_samples ({self.cfg.total_training_samples}) must be >= batch_size x "
                             f"world_size ({self.cfg.batch_size} x {self.world_size}): it counts all ranks' rows")
        self.slots = [SAESlot(sae, c, self.world_size) for sae, c in zip(self.saes, cfgs)]
        if self.world_size > 1:
            for sae in self.saes:
                distributed.broadcast_parameters(sae, src=0)
        self.device = torch.device(self.cfg.device)
        self.step = 0  # steps completed
        self.samples_seen = 0
        self.finished = False

    # ---------------------------------------------------------------- reference-style aliases
    @property
    def sae(self) -> TrainingSAE:
        """The first (or only) SAE."""
        return self.saes[0]

    @property
    def n_training_steps(self) -> int:
        return self.step

    @property
    def n_training_samples(self) -> int:
        return self.samples_seen

    @property
    def optimizer(self) -> Any:
        return self.slots[0].optimizer

    @property
    def activation_scaler(self) -> ActivationScaler:
        return self.slots[0].scaler

    # ---------------------------------------------------------------- the loop
    def _emit(self, hook: str, *args: Any) -> None:
        if hook == "on_log" and not self.is_main_process:
            return
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    def _estimate_scalers(self) -> None:
        todo = [s for s in self.slots if s.sae.cfg.normalize_activations == "expected_average_only_in"
                and s.scaler.scaling_factor is None]
        if todo and self.step == 0:
            d_in = todo[0].sae.cfg.d_in
            factor = ActivationScaler().estimate_scaling_factor(d_in, self.data, self.cfg.n_batches_for_norm_estimate)
            if self.world_size > 1:  # the mean row norm over every rank's batches (equal row counts)
                mean_norm = torch.tensor([math.sqrt(d_in) / factor], dtype=torch.float64, device=self.device)
                distributed.all_reduce_(mean=[mean_norm])
                factor = math.sqrt(d_in) / float(mean_norm)
            for slot in todo:
                slot.scaler.scaling_factor = factor

    def _log_windows(self, reset: bool) -> None:
        for i, slot in enumerate(self.slots):
            if slot.stats.window_full:
                self._emit("on_log", self.step, slot.stats.window_metrics(), i)
                if reset:
                    slot.stats.reset_window()

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` if any loss since the last check was NaN/inf (one sync per SAE)."""
        for i, slot in enumerate(self.slots):
            if self.step > slot.checked_step and not math.isfinite(float(slot.all_reduce_loss_sum())):
                losses = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                          for k, v in slot.last_losses.items()}
                raise NonFiniteLossError(self.step, slot.checked_step + 1, i, losses)

    def fit(self, num_steps: int | None = None) -> list[TrainingSAE]:
        """Train until ``total_training_samples`` rows are seen, or until ``self.step == num_steps``.

        ``num_steps`` counts steps from the start of training (a resumed trainer stops
        at the same step as an uninterrupted one). At the very end of training, the
        activation scaling factor (if any) is folded into the SAE. Returns the SAEs.
        """
        if self.finished:
            return self.saes
        total, freq = self.cfg.total_training_samples, self.cfg.log_frequency
        self._estimate_scalers()
        self._emit("on_fit_start", self)
        pbar = progress_bar(total=total, initial=self.samples_seen, unit="samples", unit_scale=True,
                            desc="Training SAE", show=self.cfg.show_progress and self.is_main_process)
        try:
            while self.samples_seen < total and (num_steps is None or self.step < num_steps):
                self._log_windows(reset=True)
                try:
                    batch = next(self.data).to(self.device, non_blocking=True)
                except StopIteration:
                    raise RuntimeError(f"the data iterator ran out after {self.step} training steps") from None
                is_log = (self.step + 1) % freq == 0
                done, seen = self.step + 1, self.samples_seen + batch.shape[0] * self.world_size
                logs = []
                for i, slot in enumerate(self.slots):
                    out = slot.train_step(batch, self.step, is_log)
                    if is_log:  # metrics now, so that only one SAE's outputs are alive at a time
                        logs.append(slot.log_metrics(out, done, seen, i))
                    del out
                self.step, self.samples_seen = done, seen
                for i, metrics in enumerate(logs):
                    self._emit("on_log", done, metrics, i)
                if logs:
                    pbar.set_postfix(loss=f"{logs[0]['losses/overall_loss']:.4g}",
                                     l0=f"{logs[0]['metrics/l0']:.2f}", refresh=False)
                    pbar.update(seen - pbar.n)
                self._emit("on_step_end", self)
            self.check_finite()
            if self.samples_seen >= total:
                self._finish()
        finally:
            pbar.update(self.samples_seen - pbar.n)
            pbar.close()
        return self.saes

    def _finish(self) -> None:
        self._log_windows(reset=False)  # the last window is kept for sparsity.safetensors
        for slot in self.slots:
            if slot.scaler.scaling_factor is not None:
                slot.sae.fold_activation_norm_scaling_factor(slot.scaler.scaling_factor)
                slot.scaler.scaling_factor = None
        self.finished = True
        self._emit("on_fit_end", self)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (tensors are copies)."""
        state = {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "finished": self.finished,
            "saes": [
                {
                    "model": slot.sae.state_dict(),
                    "optimizer": slot.optimizer.state_dict(),
                    "grad_scaler": slot.grad_scaler.state_dict() if slot.grad_scaler else None,
                    "firing_stats": slot.stats.state_dict(),
                    "activation_scaler": slot.scaler.state_dict(),
                    "lr_schedule": slot.lr_schedule.state_dict(),
                    "coefficient_schedules": {k: s.state_dict() for k, s in slot.coef_schedules.items()},
                    "loss_sum": slot.loss_sum,
                    "checked_step": slot.checked_step,
                }
                for slot in self.slots
            ],
            "data": self.data.state_dict() if hasattr(self.data, "state_dict") else None,
        }
        return _clone_tree(state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict` into a trainer built the same way."""
        if len(state["saes"]) != len(self.slots):
            raise ValueError(f"state holds {len(state['saes'])} SAEs, this trainer has {len(self.slots)}")
        for i, (slot, s) in enumerate(zip(self.slots, state["saes"])):
            slot.sae.load_state_dict(s["model"])
            slot.optimizer.load_state_dict(s["optimizer"])
            if slot.grad_scaler is not None and s.get("grad_scaler"):
                slot.grad_scaler.load_state_dict(s["grad_scaler"])
            slot.stats.load_state_dict(s["firing_stats"])
            slot.scaler.load_state_dict(s["activation_scaler"])
            slot.loss_sum.copy_(s["loss_sum"])
            slot.checked_step = int(s["checked_step"])
            if s["lr_schedule"] != slot.lr_schedule.state_dict():
                warnings.warn(f"SAE {i}: the LR schedule differs from the saved one; using the current config",
                              stacklevel=2)
        self.step = int(state["step"])
        self.samples_seen = int(state["samples_seen"])
        self.finished = bool(state["finished"])
        if state.get("data") is not None and hasattr(self.data, "load_state_dict"):
            self.data.load_state_dict(state["data"])
