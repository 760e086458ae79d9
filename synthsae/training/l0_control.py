"""Closed-loop L0 control: steer coefficient-based SAEs to a target L0 while they train.

Standard (L1), gated and JumpReLU (step/tanh) SAEs set their sparsity through a loss
coefficient, and the L0 a coefficient gives depends on the data, the width, the learning
rate and the budget. :class:`L0Controller` is a trainer callback that measures each
controlled SAE's L0 on every training batch and multiplies its sparsity coefficient (the
one its config's ``sparsity_field`` names: ``l1_coefficient`` -> ``"l1"``,
``l0_coefficient`` -> ``"l0"``) by a factor ``m`` that it adjusts after every step:

* ``s``: the batch L0 averaged over a window of ``W`` steps (``s += (l0 - s) / W``), and
  ``r``: the change of ``s`` per step, averaged the same way;
* ``e = (s - t) / min(s, t)`` for the target ``t`` (+1 at twice the target, -1 at half);
  the controller acts on ``p = e + H r / min(s, t)``, the error expected ``H`` steps ahead;
* ``push = clamp(sharpness * p, -1, 1)``, times ``approach_damping`` while ``s`` already
  moves towards the target fast enough to get there within ``arrival_windows * W`` steps
  (the L0 lags the coefficient, and pushing on would overshoot);
* ``m *= ratio(g * push + v)`` with ``ratio(x) = 1 + x`` for ``x >= 0`` and ``1 / (1 - x)``
  below, clamped to ``[min_multiplier, max_multiplier]``; ``v`` (drift tracking) learns,
  from the pushes made near the target, the steady change of the coefficient that an SAE
  whose L0 drifts as it learns needs, so that no constant lag remains at the end.

The multiplier starts at 1 (the configured coefficient); before ``start_step`` the
controller only measures. Everything runs on the SAEs' device without a host sync: the
batch L0 comes from the trainer's firing statistics (those of the global batch under
``torchrun``, so every rank steers identically). The controller's state is part of
``Trainer.state_dict()`` (its ``state_key`` is ``"l0_controller"``), so a resumed run
continues bit-identically. The coefficient's warm-up still applies: the SAE sees
``schedule(step) * m``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from synthsae.training.callbacks import TrainerCallback

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.training.trainer import Trainer

__all__ = ["L0ControlConfig", "L0Controller", "controlled_coefficient", "supports_l0_control"]

_PENALTY_FIELDS = {"l1_coefficient": "l1", "l0_coefficient": "l0"}


def _number(name: str, value: Any, *, low: float = 0.0, low_inclusive: bool = False,
            high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"L0ControlConfig.{name} must be a finite number, got {value!r}")
    if value < low or (value == low and not low_inclusive) or (high is not None and value > high):
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"L0ControlConfig.{name} must be {bound}, got {value!r}")
    return float(value)


@dataclass
class L0ControlConfig:
    """How one SAE is steered to ``target_l0`` (see the module docstring for the update).

    The controller's speed follows the length of its controlled phase (the run's steps
    after ``start_step``), so one setting serves a 500-step CPU run and a 200,000-step GPU
    run: the per-step gain is ``gain_per_run / steps`` and the L0 average's window
    ``window_fraction * steps``, at most ``max_window`` steps.

    Args:
        target_l0: the L0 (mean active latents per row) to reach, > 0.
        start_step: the controller measures from the first step but moves the coefficient
            only from this step on (e.g. after an L1 warm-up).
        gain: the per-step gain ``g`` (``None``: ``gain_per_run / steps``); at full rate
            the multiplier changes by a factor ``1 + g`` per step.
        gain_per_run: see ``gain``.
        window: the L0 average's window ``W`` in steps (``None``: from ``window_fraction``).
        window_fraction, max_window: see ``window``.
        horizon_windows: the controller acts on the error expected this many windows ahead.
        drift_windows: the time constant, in windows, with which it learns a steady drift of
            the coefficient the SAE needs (``0`` turns drift tracking off).
        sharpness: relative errors beyond ``1 / sharpness`` move the multiplier at the full
            rate ``g``; smaller ones proportionally less.
        approach_damping: the rate's factor while the L0 already moves towards the target
            fast enough to reach it within ``arrival_windows`` windows.
        arrival_windows: see ``approach_damping``.
        min_multiplier, max_multiplier: bounds of the multiplier (the controller starts at 1).
    """

    target_l0: float
    start_step: int = 0
    gain: float | None = None
    gain_per_run: float = 8.0
    window: float | None = None
    window_fraction: float = 0.01
    max_window: float = 100.0
    horizon_windows: float = 2.0
    drift_windows: float = 8.0
    sharpness: float = 3.0
    approach_damping: float = 0.05
    arrival_windows: float = 10.0
    min_multiplier: float = 1e-3
    max_multiplier: float = 1e3

    def __post_init__(self) -> None:
        self.target_l0 = _number("target_l0", self.target_l0)
        if isinstance(self.start_step, bool) or not isinstance(self.start_step, int) or self.start_step < 0:
            raise ValueError(f"L0ControlConfig.start_step must be an integer >= 0, got {self.start_step!r}")
        if self.gain is not None:
            self.gain = _number("gain", self.gain)
        self.gain_per_run = _number("gain_per_run", self.gain_per_run)
        if self.window is not None:
            self.window = _number("window", self.window, low=1.0, low_inclusive=True)
        self.window_fraction = _number("window_fraction", self.window_fraction, high=1.0)
        self.max_window = _number("max_window", self.max_window, low=1.0, low_inclusive=True)
        self.horizon_windows = _number("horizon_windows", self.horizon_windows, low_inclusive=True)
        self.drift_windows = _number("drift_windows", self.drift_windows, low_inclusive=True)
        self.sharpness = _number("sharpness", self.sharpness)
        self.approach_damping = _number("approach_damping", self.approach_damping, high=1.0)
        self.arrival_windows = _number("arrival_windows", self.arrival_windows)
        self.min_multiplier = _number("min_multiplier", self.min_multiplier, high=1.0)
        self.max_multiplier = _number("max_multiplier", self.max_multiplier, low=1.0, low_inclusive=True)

    def controlled_steps(self, total_steps: int) -> int:
        """Steps of the controlled phase of a run of ``total_steps`` steps (>= 1)."""
        return max(1, total_steps - self.start_step)

    def step_gain(self, total_steps: int) -> float:
        """The per-step gain ``g``."""
        return self.gain if self.gain is not None else self.gain_per_run / self.controlled_steps(total_steps)

    def window_steps(self, total_steps: int) -> float:
        """The L0 average's window ``W`` in steps (>= 1)."""
        if self.window is not None:
            return self.window
        return min(self.max_window, max(1.0, self.window_fraction * self.controlled_steps(total_steps)))

    def drift_gain(self, total_steps: int) -> float:
        """The drift integrator's per-step gain: ``g / (drift_windows * W)`` (0 when off)."""
        if self.drift_windows == 0:
            return 0.0
        return self.step_gain(total_steps) / (self.drift_windows * self.window_steps(total_steps))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> L0ControlConfig:
        if not isinstance(data, Mapping):
            raise TypeError(f"an L0ControlConfig must be a mapping, got {type(data).__name__}")
        return cls(**dict(data))


def _ratio(x: torch.Tensor) -> torch.Tensor:
    """``1 + x`` for ``x >= 0`` and ``1 / (1 - x)`` below: a factor symmetric in log space to first order."""
    return torch.where(x >= 0, 1.0 + x, 1.0 / (1.0 - x))


def controlled_coefficient(sae_or_cfg: Any) -> str | None:
    """The name of the loss coefficient (``"l1"`` / ``"l0"``) that sets ``sae_or_cfg``'s sparsity,
    or ``None`` when its sparsity is set some other way (``k``, ``max_iterations``, a target)."""
    cfg = getattr(sae_or_cfg, "cfg", sae_or_cfg)
    field = getattr(cfg, "sparsity_field", None)
    if field not in _PENALTY_FIELDS:
        return None
    if getattr(cfg, "jumprelu_sparsity_loss_mode", None) == "quadratic":
        return None  # the quadratic loss is built around its own target_l0
    return _PENALTY_FIELDS[field]


def supports_l0_control(sae_or_cfg: Any) -> bool:
    """True when :class:`L0Controller` can steer this SAE (its sparsity is a loss coefficient)."""
    return controlled_coefficient(sae_or_cfg) is not None


class L0Controller(TrainerCallback):
    """Steers the L0 of some of a trainer's SAEs to their targets (see the module docstring).

    Args:
        targets: ``{sae_index: target L0 or L0ControlConfig}`` for the SAEs to control (the
            index in the trainer's list of SAEs), or a single target / config for an only SAE.

    Pass it in the trainer's ``callbacks``; it binds to the trainer at ``on_fit_start``.
    Indices that name an SAE whose sparsity is not a coefficient raise ``ValueError`` then.
    """

    state_key = "l0_controller"

    def __init__(self, targets: Mapping[int, float | L0ControlConfig] | float | L0ControlConfig) -> None:
        if not isinstance(targets, Mapping):
            targets = {0: targets}
        if not targets:
            raise ValueError("L0Controller needs at least one target")
        self.configs: dict[int, L0ControlConfig] = {}
        for index, value in targets.items():
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"L0Controller: SAE indices must be integers >= 0, got {index!r}")
            self.configs[index] = value if isinstance(value, L0ControlConfig) else L0ControlConfig(target_l0=value)
        self.indices = sorted(self.configs)
        n = len(self.indices)
        self.updates = 0  # steps measured so far (host counter: the first one initialises the average)
        self.smoothed_l0 = torch.zeros(n, dtype=torch.float64)
        self.l0_rate = torch.zeros(n, dtype=torch.float64)
        self.drift = torch.zeros(n, dtype=torch.float64)
        self.multiplier = torch.ones(n, dtype=torch.float64)
        self._bound: Trainer | None = None

    _STATE = ("smoothed_l0", "l0_rate", "drift", "multiplier")

    # ------------------------------------------------------------------ binding
    def on_fit_start(self, trainer: Trainer) -> None:
        if self._bound is trainer:
            return
        names = [self._coefficient_name(trainer, index) for index in self.indices]
        device = trainer.device
        for attr in self._STATE:
            setattr(self, attr, getattr(self, attr).to(device))
        cfgs = [self.configs[i] for i in self.indices]
        total = trainer.cfg.total_training_samples // (trainer.cfg.batch_size * trainer.world_size)

        def column(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float64, device=device)

        self._target = column([c.target_l0 for c in cfgs])
        self._gain = column([c.step_gain(total) for c in cfgs])
        self._drift_gain = column([c.drift_gain(total) for c in cfgs])
        self._alpha = column([1.0 / c.window_steps(total) for c in cfgs])
        self._horizon = column([c.horizon_windows * c.window_steps(total) for c in cfgs])
        self._sharpness = column([c.sharpness for c in cfgs])
        self._damping = column([c.approach_damping for c in cfgs])
        self._arrival = column([c.arrival_windows * c.window_steps(total) for c in cfgs])
        self._start = column([float(c.start_step) for c in cfgs])
        self._low = column([c.min_multiplier for c in cfgs])
        self._high = column([c.max_multiplier for c in cfgs])
        self._scales = self.multiplier.float()
        self._slots = [trainer.slots[i] for i in self.indices]
        for k, (slot, name) in enumerate(zip(self._slots, names)):
            slot.coefficient_scales[name] = self._scales[k]  # a view, updated in place every step
        self._bound = trainer

    @staticmethod
    def _coefficient_name(trainer: Trainer, index: int) -> str:
        if index >= len(trainer.slots):
            raise ValueError(f"L0Controller: SAE index {index} is out of range for a trainer of "
                             f"{len(trainer.slots)} SAEs")
        slot = trainer.slots[index]
        name = controlled_coefficient(slot.sae)
        if name is None or name not in slot.coef_schedules:
            raise ValueError(f"L0Controller: SAE {index} ({slot.sae.cfg.architecture()}) has no sparsity "
                             "coefficient to steer; set its L0 through its own config (k, max_iterations, target_l0)")
        return name

    # ------------------------------------------------------------------ the update
    @torch.no_grad()
    def on_step_end(self, trainer: Trainer) -> None:
        """One controller step from the batch just trained on (no host sync).

        Only + - * / and comparisons: they round the same way in torch's vectorised and
        scalar loops, so an SAE's trajectory does not depend on which other SAEs share the
        controller (transcendental functions may differ in the last bit between the two).
        """
        l0 = torch.stack([slot.stats.last_counts.sum() for slot in self._slots]).double()
        l0 = l0 / self._slots[0].stats.last_rows
        if self.updates == 0:
            self.smoothed_l0.copy_(l0)
        else:
            previous = self.smoothed_l0.clone()
            self.smoothed_l0.add_((l0 - self.smoothed_l0) * self._alpha)
            self.l0_rate.add_(((self.smoothed_l0 - previous) - self.l0_rate) * self._alpha)
        self.updates += 1
        s = self.smoothed_l0.clamp_min(1e-6)  # 1e-6: no division by zero before anything fires
        error = (s - self._target) / torch.minimum(s, self._target)  # +1 at twice the target, -1 at half
        predicted = error + self._horizon * (self.l0_rate / torch.minimum(s, self._target))
        push = (predicted * self._sharpness).clamp(-1.0, 1.0)
        push = push * (trainer.step >= self._start)  # trainer.step: the 0-based index of the next step
        gap = s - self._target
        # approaching fast enough to arrive within the arrival horizon at the current rate
        approaching = (gap * self.l0_rate < 0) & (gap.abs() <= self._arrival * self.l0_rate.abs())
        integrate = push * torch.where(approaching, self._damping, 1.0)
        near = push.abs() < 1.0  # the linear range: far errors (start-up transients) do not teach the drift
        self.drift.add_(integrate * near * self._drift_gain)
        rate = integrate * self._gain + self.drift
        self.multiplier.mul_(_ratio(rate))
        torch.maximum(self.multiplier, self._low, out=self.multiplier)
        torch.minimum(self.multiplier, self._high, out=self.multiplier)
        self._scales.copy_(self.multiplier)

    # ------------------------------------------------------------------ reading it
    def multipliers(self) -> dict[int, float]:
        """``{sae_index: current multiplier}`` (one host sync)."""
        return dict(zip(self.indices, self.multiplier.tolist()))

    def smoothed(self) -> dict[int, float]:
        """``{sae_index: smoothed training L0}`` (one host sync)."""
        return dict(zip(self.indices, self.smoothed_l0.tolist()))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The controller's state (copies), stored in ``Trainer.state_dict()["callbacks"]``."""
        state: dict[str, Any] = {"indices": list(self.indices), "updates": self.updates,
                                 "configs": [self.configs[i].to_dict() for i in self.indices]}
        state.update({attr: getattr(self, attr).clone() for attr in self._STATE})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the controlled SAEs must be the same."""
        if list(state["indices"]) != self.indices:
            raise ValueError(f"the saved L0 controller steers SAEs {list(state['indices'])}, this one {self.indices}")
        self.updates = int(state["updates"])
        for attr in self._STATE:
            getattr(self, attr).copy_(torch.as_tensor(state[attr], dtype=torch.float64))
        if self._bound is not None:
            self._scales.copy_(self.multiplier)
