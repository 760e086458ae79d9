"""Learning-rate and coefficient schedules as pure functions of the step.

Both schedules are stateless: the value at a step depends only on the step number
and the schedule's parameters, so a resumed run only needs the step counter to
continue exactly where it stopped.

LR schedule (steps are 0-based; ``factor(s)`` multiplies the base ``lr`` at step ``s``):

* warm-up, ``s < W``: linear from ``1/W`` (step 0) to ``1`` (step ``W - 1``);
* main phase, ``W <= s < T - D`` with ``t = s - W`` and ``M = T - W - D`` main steps:
  ``constant`` -> 1; ``cosineannealing`` -> cosine from 1 to ``lr_end / lr`` over ``M``
  steps; ``cosineannealingwarmrestarts`` -> the same cosine restarted every
  ``M // n_restart_cycles`` steps;
* decay, ``s >= T - D`` with ``t = s - (T - D)``: linear from ``lr_end / lr`` (t = 0)
  towards 0 (reached at ``t = D``).

For ``constant`` the decay starts from ``lr`` itself (``lr_end`` is forced to ``lr``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from synthsae.config_values import check_choice, check_float, check_int

LR_SCHEDULER_NAMES = ("constant", "cosineannealing", "cosineannealingwarmrestarts")


@dataclass(frozen=True)
class LRSchedule:
    """Warm-up, main phase and linear decay of the learning rate (see the module docstring).

    Args:
        lr: base learning rate (> 0).
        total_steps: number of training steps ``T`` the schedule spans.
        warm_up_steps: ``W``; 0 disables the warm-up.
        decay_steps: ``D``; 0 disables the final decay.
        scheduler_name: one of :data:`LR_SCHEDULER_NAMES` (case-insensitive).
        lr_end: floor of the cosine phases and start of the decay; ``None`` means ``lr / 10``.
            Ignored (set to ``lr``) for ``constant``.
        n_restart_cycles: number of cosine cycles for ``cosineannealingwarmrestarts``.
    """

    lr: float
    total_steps: int
    warm_up_steps: int = 0
    decay_steps: int = 0
    scheduler_name: str = "constant"
    lr_end: float | None = None
    n_restart_cycles: int = 1

    def __post_init__(self) -> None:
        checked = {
            "lr": check_float("lr", self.lr, above=0),
            "total_steps": check_int("total_steps", self.total_steps, at_least=0),
            "warm_up_steps": check_int("lr_warm_up_steps", self.warm_up_steps, at_least=0),
            "decay_steps": check_int("lr_decay_steps", self.decay_steps, at_least=0),
            "n_restart_cycles": check_int("n_restart_cycles", self.n_restart_cycles, at_least=1),
            "scheduler_name": check_choice("lr_scheduler_name", str(self.scheduler_name).lower(), LR_SCHEDULER_NAMES),
        }
        for key, value in checked.items():
            object.__setattr__(self, key, value)
        name = self.scheduler_name
        lr_end = self.lr / 10 if self.lr_end is None else self.lr_end
        if name == "constant":
            lr_end = self.lr
        object.__setattr__(self, "lr_end", check_float("lr_end", lr_end, at_least=0))
        if self.decay_steps > 0 and lr_end == 0:
            raise ValueError("lr_decay_steps > 0 needs lr_end > 0: decaying from lr_end=0 to 0 does nothing")
        if self.warm_up_steps + self.decay_steps > self.total_steps:
            raise ValueError(
                f"lr_warm_up_steps ({self.warm_up_steps}) + lr_decay_steps ({self.decay_steps}) "
                f"exceed the total number of training steps ({self.total_steps})"
            )
        if name == "cosineannealing" and self.main_steps < 1:
            raise ValueError("cosineannealing needs at least one main-phase step (total - warm-up - decay >= 1)")
        if name == "cosineannealingwarmrestarts" and self.main_steps // self.n_restart_cycles < 1:
            raise ValueError(
                f"cosineannealingwarmrestarts needs (total - warm-up - decay) // n_restart_cycles >= 1, "
                f"got {self.main_steps} main steps and {self.n_restart_cycles} cycles"
            )

    @property
    def main_steps(self) -> int:
        """Steps in the main phase, ``T - W - D``."""
        return self.total_steps - self.warm_up_steps - self.decay_steps

    def _cosine(self, t: int, period: int) -> float:
        floor = self.lr_end / self.lr  # type: ignore[operator]
        return floor + (1.0 - floor) * (1.0 + math.cos(math.pi * t / period)) / 2.0

    def factor(self, step: int) -> float:
        """Multiplier of ``lr`` used by the optimizer step with 0-based index ``step``."""
        w, d = self.warm_up_steps, self.decay_steps
        if step < w:
            return 1.0 / w + (1.0 - 1.0 / w) * step / (w - 1) if w > 1 else 1.0
        decay_start = self.total_steps - d
        if d > 0 and step >= decay_start:
            return (self.lr_end / self.lr) * (1.0 - min(step - decay_start, d) / d)  # type: ignore[operator]
        t = step - w
        if self.scheduler_name == "constant":
            return 1.0
        if self.scheduler_name == "cosineannealing":
            return self._cosine(t, self.main_steps)
        period = self.main_steps // self.n_restart_cycles
        return self._cosine(t % period, period)

    def lr_at(self, step: int) -> float:
        """Learning rate used by the optimizer step with 0-based index ``step``."""
        return self.lr * self.factor(step)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's parameters (it has no other state)."""
        return asdict(self)


@dataclass(frozen=True)
class CoefficientSchedule:
    """Linear warm-up of a loss coefficient from 0 to ``final_value``.

    The value used by step ``s`` is ``final_value * s / warm_up_steps`` while
    ``s < warm_up_steps`` (so the first step uses 0), then ``final_value``.
    """

    final_value: float
    warm_up_steps: int = 0

    def __post_init__(self) -> None:
        check_float("a coefficient's value", self.final_value)
        object.__setattr__(self, "warm_up_steps", check_int("warm_up_steps", self.warm_up_steps, at_least=0))

    def value_at(self, step: int) -> float:
        """Coefficient used by the step with 0-based index ``step``."""
        if step < self.warm_up_steps:
            return self.final_value * step / self.warm_up_steps
        return float(self.final_value)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's parameters (it has no other state)."""
        return asdict(self)
