"""A second core for the training thread, lent by an idle helper thread.

On a small CPU the training step runs with one torch thread (two-thread kernels spin-wait
and slow everything down when the machine is busy), and the batch producer thread
(:mod:`synthsae.runs.prefetch`) is idle most of the time. :func:`run_pair` lets the
training thread hand half of a large, splittable piece of work (the rows of the encoder
product) to a helper waiting in :meth:`WorkShare.serve`: the training thread runs
``first()``, the helper runs ``second()``; if no helper picked ``second`` up by the time
``first`` is done, the training thread runs it itself. Nobody ever spins: a busy or
descheduled helper costs nothing but the lost overlap.

Both halves are always computed the same way (the split never depends on timing), so the
results are bit-for-bit the same whether or not a helper took part. torch releases the
GIL inside its operations, so the two halves really run at the same time.

The helper side (:meth:`WorkShare.serve`) shares one condition variable with its owner
(:attr:`WorkShare.condition`), so a producer thread can wait for "a task, or room in my
queue" at once. ``pairs_started`` counts :func:`run_pair` calls; producers use it to
time their own work around the training step (see :mod:`synthsae.runs.prefetch`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["WORK_SHARE", "WorkShare", "run_pair"]


class _Task:
    __slots__ = ("fn", "state", "error")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.state = "posted"  # -> "running" -> "done", or "reclaimed" by the poster
        self.error: BaseException | None = None


class WorkShare:
    """A mailbox of one task between a training thread and helper threads."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._task: _Task | None = None
        self._idle_helpers = 0
        self.pairs_started = 0  # run_pair calls so far (read by producers to pace their draws)

    # ------------------------------------------------------------------ training side
    def run_pair(self, first: Callable[[], None], second: Callable[[], None]) -> None:
        """Run ``first()`` here and ``second()`` on an idle helper if there is one (else here, after)."""
        task = None
        with self.condition:
            self.pairs_started += 1
            if self._idle_helpers > 0 and self._task is None:
                task = self._task = _Task(second)
            self.condition.notify_all()
        try:
            first()
        finally:
            if task is not None:
                with self.condition:
                    if task.state == "posted":  # nobody took it
                        self._task, task.state = None, "reclaimed"
                    while task.state == "running":
                        self.condition.wait()
        if task is None or task.state == "reclaimed":
            second()
        elif task.error is not None:
            raise task.error

    # ------------------------------------------------------------------ helper side
    def has_task(self) -> bool:
        """Whether a task is waiting for a helper (call with :attr:`condition` held)."""
        return self._task is not None

    def run_posted(self) -> bool:
        """Run the waiting task, if any, on this thread; call with :attr:`condition` held
        (it is released while the task runs). True if a task ran."""
        task = self._task
        if task is None:
            return False
        self._task, task.state = None, "running"
        self.condition.release()
        try:
            task.fn()
        except BaseException as exc:  # handed to the poster
            task.error = exc
        finally:
            self.condition.acquire()
            task.state = "done"
            self.condition.notify_all()
        return True

    def idle(self) -> _IdleHelper:
        """``with share.idle(): condition.wait()``: mark this helper as available meanwhile
        (call with :attr:`condition` held)."""
        return _IdleHelper(self)


class _IdleHelper:
    def __init__(self, share: WorkShare) -> None:
        self.share = share

    def __enter__(self) -> None:
        self.share._idle_helpers += 1

    def __exit__(self, *exc: object) -> None:
        self.share._idle_helpers -= 1


#: The process-wide mailbox: training code posts here, prefetch producers serve it.
WORK_SHARE = WorkShare()


def run_pair(first: Callable[[], None], second: Callable[[], None]) -> None:
    """:meth:`WorkShare.run_pair` on the process-wide :data:`WORK_SHARE`."""
    WORK_SHARE.run_pair(first, second)
