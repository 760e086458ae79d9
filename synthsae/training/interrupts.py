"""Stop training cleanly on SIGINT (Ctrl-C) or SIGTERM (a cluster's preemption notice).

:class:`InterruptGuard` is a context manager that, while active, turns the first SIGINT
or SIGTERM into a request (``guard.requested``) instead of an exception or an
immediate exit; a second one raises :class:`KeyboardInterrupt` at once. The previous
handlers are restored on exit. Python lets only the main thread install signal
handlers, so in any other thread the guard does nothing (signals keep their usual
effect).

:class:`StopOnInterrupt` is the trainer callback that acts on the request: after the
current step's other callbacks (logging, evals, checkpoints: put it last), it raises
:class:`TrainingInterrupted`; the caller then writes a checkpoint of that step and
reports how to resume.

Data parallelism (``torchrun``): every rank gets the signal (torchrun forwards it to
its workers), but possibly at different steps. The ranks therefore agree on the step
to stop at with one ``all_reduce`` (max of the flags) every ``sync_every`` steps, the
trainer's logging steps, which synchronise anyway; all ranks stop after the same step
and write the checkpoint together.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import torch

from synthsae.training import distributed

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.training.trainer import Trainer

__all__ = ["InterruptGuard", "StopOnInterrupt", "TrainingInterrupted", "exit_code_for", "signal_name"]

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``"SIGINT"`` for ``signal.SIGINT``, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code_for(signum: int) -> int:
    """The shell's convention for a process ended by signal ``signum``: 128 + signum (130 for SIGINT)."""
    return 128 + int(signum)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped after a step because of SIGINT/SIGTERM.

    A :class:`KeyboardInterrupt` (so a broad ``except Exception`` does not swallow it).
    Attributes: ``signum``, ``step`` (steps completed), and, once the caller has written
    one, ``checkpoint`` (its path) and ``resume_from`` (what to pass to resume).
    """

    def __init__(self, signum: int, step: int, checkpoint: Any = None, resume_from: Any = None) -> None:
        super().__init__(signum, step)
        self.signum, self.step = int(signum), int(step)
        self.checkpoint, self.resume_from = checkpoint, resume_from

    def __str__(self) -> str:
        text = f"training interrupted by {signal_name(self.signum)} after step {self.step}"
        if self.checkpoint is not None:
            text += f"; checkpoint written to {self.checkpoint}"
        else:
            text += "; no checkpoint written (checkpoint_path is None)"
        if self.resume_from is not None:
            text += (f"; continue with SyntheticSAERunner.resume({str(self.resume_from)!r}).run() "
                     f"or `synthsae train --resume {self.resume_from}`")
        return text


class InterruptGuard:
    """Context manager: the first SIGINT/SIGTERM becomes :attr:`requested`, a second one raises.

    Args:
        message: printed to stderr (on rank 0 only) when the first signal arrives;
            ``None`` prints nothing.
    """

    def __init__(self, message: str | None = None) -> None:
        self.message = message
        self.requested: int | None = None  # the first signal's number, once one arrived
        self.active = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:  # the second signal: stop at once
            self._restore()
            raise KeyboardInterrupt(f"second {signal_name(signum)}: stopped at once")
        self.requested = signum
        if self.message and distributed.rank() == 0:
            print(f"\n{signal_name(signum)} received: {self.message}", file=sys.stderr, flush=True)

    def __enter__(self) -> InterruptGuard:
        self.requested = None
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
            self.active = True
        return self

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        self.active = False

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._restore()


class StopOnInterrupt:
    """Trainer callback: raise :class:`TrainingInterrupted` at the end of the step in which
    ``guard`` got a signal (under ``torchrun``: the first multiple of ``sync_every`` steps
    at which any rank had one). Register it after every other callback."""

    def __init__(self, guard: InterruptGuard, sync_every: int = 1) -> None:
        self.guard, self.sync_every = guard, max(1, int(sync_every))

    def on_step_end(self, trainer: Trainer) -> None:
        requested = self.guard.requested
        if trainer.world_size > 1:
            if trainer.step % self.sync_every:
                return
            requested = _agreed_signal(requested, trainer.device)
        if requested:
            raise TrainingInterrupted(requested, trainer.step)


def _agreed_signal(requested: int | None, device: torch.device) -> int | None:
    """The signal any rank got (SIGINT before SIGTERM), or ``None``: one collective, called on every rank."""
    counts = torch.tensor([requested == sig for sig in HANDLED_SIGNALS], dtype=torch.int64, device=device)
    distributed.all_reduce_(total=[counts])
    got = [sig for sig, n in zip(HANDLED_SIGNALS, counts.tolist()) if n]
    return int(got[0]) if got else None
