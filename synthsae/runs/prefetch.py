"""Drawing the next batches on a background thread while the current one trains.

:class:`Prefetcher` calls a ``draw()`` function on one producer thread and keeps up to
``depth`` results queued. torch releases the GIL inside its operations, so on a CPU with
a spare core the data of step ``n + 1`` is generated while step ``n`` trains.

Exactness: the producer calls ``draw()`` in the same order, on the same generator, as a
plain loop would, so the stream of blocks is unchanged. :meth:`Prefetcher.snapshot`
returns the queued items together with whatever the caller captures while no draw is
running, and :meth:`Prefetcher.close` returns the items never consumed, so the owner can
account for every draw made ahead (the batch iterator stores the generator state before
each draw with the block and rewinds to it). :meth:`Prefetcher.paused` keeps the
producer from drawing (e.g. while an eval borrows the same sampler).

Shutdown: the thread is a daemon; :meth:`close` stops it (waiting for a draw in progress
at most ``join_timeout`` seconds). A bound-method ``draw`` is held weakly, so the
producer never keeps its owner alive: when the owner is collected (or closes the
prefetcher, e.g. from a ``weakref.finalize``) the thread ends. An exception raised by
``draw()`` is re-raised by the next :meth:`get`. The producer never holds the draw lock
while it waits for queue space, so ``snapshot``/``paused`` from another thread (a
checkpoint on SIGINT, say) wait at most one draw.

Lending a core: while it has nothing to draw, the producer serves the work mailbox of
:mod:`synthsae._work_share`, running the second half of work the training thread splits
(the encoder product of TopK-style SAEs). When the training step splits work, the
producer also paces its draws: after the consumer takes an item it waits (at most
``_PACE_TIMEOUT``) for that step's split to start, so that the draw overlaps the
single-threaded rest of the step rather than the split product.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import torch

from synthsae._work_share import WORK_SHARE, WorkShare

__all__ = ["Prefetcher", "SideStream", "training_threads"]

# After the consumer takes an item, a producer whose trainer splits work with it waits at
# most this long for that step's split before drawing anyway (a step that splits nothing).
_PACE_TIMEOUT = 0.25

T = TypeVar("T")
S = TypeVar("S")


class Prefetcher(Generic[T]):
    """Runs ``draw()`` ahead of time on one daemon thread.

    Args:
        draw: produces the next item; called on the producer thread only (in order).
        depth: how many items to keep ready (>= 1).
        threads: torch intra-op threads for the producer thread (its own setting; the
            consumer's is unchanged).
        join_timeout: seconds :meth:`close` waits for a draw in progress.
    """

    def __init__(self, draw: Callable[[], T], depth: int = 2, threads: int = 1, join_timeout: float = 30.0,
                 share: WorkShare = WORK_SHARE) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Prefetcher depth must be an integer >= 1, got {depth!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"Prefetcher threads must be an integer >= 1, got {threads!r}")
        self._draw_ref: Callable[[], Callable[[], T] | None] = \
            weakref.WeakMethod(draw) if inspect.ismethod(draw) else (lambda: draw)  # type: ignore[assignment]
        self.depth, self.threads, self.join_timeout = depth, threads, join_timeout
        self._share = share
        self._queue: deque[T] = deque()
        self._cond = share.condition  # guards _queue and _error; shared with the work mailbox
        self._draw_lock = threading.RLock()  # held for each draw, by snapshot() and by paused()
        self._error: BaseException | None = None
        self._stop_event = threading.Event()  # the running producer's stop signal
        self._thread: threading.Thread | None = None
        self._pairs_at_start = self._pairs_at_pop = share.pairs_started
        self._pace_deadline = 0.0

    # ------------------------------------------------------------------ producer
    def _may_draw(self) -> bool:
        """Room in the queue, and (when the training step splits work with a helper) the
        current step's split has started: draws then overlap the single-threaded rest of
        the step instead of the split product. An empty queue always draws."""
        if len(self._queue) >= self.depth:
            return False
        if not self._queue or self._share.pairs_started == self._pairs_at_start:
            return True
        return self._share.pairs_started > self._pairs_at_pop or time.monotonic() > self._pace_deadline

    def _next_draw(self, stop: threading.Event) -> bool:
        """Wait (serving split work meanwhile) until a draw is due; False when stopped."""
        with self._cond:
            while not stop.is_set():
                if self._share.run_posted():
                    continue
                if self._may_draw():
                    return True
                full = len(self._queue) >= self.depth  # else: pacing, until the split starts or the deadline
                with self._share.idle():
                    self._cond.wait(None if full else max(1e-3, self._pace_deadline - time.monotonic()))
        return False

    def _run(self, stop: threading.Event) -> None:
        torch.set_num_threads(self.threads)  # this thread's own pool size
        try:
            while self._next_draw(stop):
                with self._draw_lock:
                    draw = self._draw_ref()
                    if stop.is_set() or draw is None:
                        return
                    item = draw()
                    del draw  # hold no strong reference to the owner while waiting
                    with self._cond:  # queued while the draw lock is held: snapshots stay consistent
                        if stop.is_set():
                            return
                        self._queue.append(item)
                        self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer by get()
            with self._cond:
                if not stop.is_set():
                    self._error = exc
                self._cond.notify_all()

    def _start(self) -> None:
        if self._thread is None:
            self._stop_event = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop_event,), name="synthsae-prefetch",
                                            daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ consumer
    def get(self) -> T:
        """The next item, in draw order (starts the producer on first use)."""
        self._start()
        with self._cond:
            while not self._queue and self._error is None:
                self._cond.wait()
            if not self._queue:
                error, self._error = self._error, None
                self._thread = None  # the producer has exited; a later get() starts a new one
                raise error  # type: ignore[misc]
            item = self._queue.popleft()
            self._pairs_at_pop = self._share.pairs_started
            self._pace_deadline = time.monotonic() + _PACE_TIMEOUT
            self._cond.notify_all()
            return item

    def snapshot(self, capture: Callable[[], S]) -> tuple[list[T], S]:
        """``(queued items, capture())`` taken while no draw is running."""
        with self._draw_lock, self._cond:
            return list(self._queue), capture()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No draw runs inside this block (one in progress is waited for)."""
        with self._draw_lock:
            yield

    def close(self) -> list[T]:
        """Stop the producer and return the items it drew that were never consumed.

        Waits for a draw in progress to be queued first, so the returned list is every
        draw after the last :meth:`get`. A later :meth:`get` starts a new producer.
        """
        thread = self._thread
        with self._draw_lock, self._cond:
            self._stop_event.set()
            unconsumed = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.join_timeout)
        self._thread, self._error = None, None
        return unconsumed



class SideStream:
    """Producer-side CUDA stream: draws run there and are handed over with an event.

    Data-dependent sampling ops wait for their own stream only, so they never stall the
    training stream. :meth:`receive` makes the consumer's current stream wait for the
    draw and marks the tensor as used there (so the caching allocator does not reuse its
    memory too early).
    """

    def __init__(self, device: torch.device) -> None:
        self.stream = torch.cuda.Stream(device=device)

    def draw(self, fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, torch.cuda.Event]:
        with torch.cuda.stream(self.stream):
            tensor = fn()
            event = torch.cuda.Event()
            event.record(self.stream)
        return tensor, event

    @staticmethod
    def receive(item: tuple[torch.Tensor, torch.cuda.Event]) -> torch.Tensor:
        tensor, event = item
        stream = torch.cuda.current_stream(tensor.device)
        stream.wait_event(event)
        tensor.record_stream(stream)
        return tensor


@contextlib.contextmanager
def training_threads(device: str | torch.device, prefetching: bool) -> Iterator[int]:
    """The thread rule while a producer thread draws batches: it gets a core of its own.

    On a CPU with prefetching, the training thread runs with one torch thread fewer than
    the current setting (at least one): on two cores, one thread, with the idle producer
    taking half of the split work (:mod:`synthsae._work_share`) and nobody spin-waiting
    for a descheduled partner when the machine is busy. Yields the count in force; the
    previous setting is restored afterwards. Elsewhere (no prefetching, or a GPU) a no-op.
    """
    before = torch.get_num_threads()
    if not prefetching or torch.device(device).type != "cpu" or before == 1:
        yield before
        return
    torch.set_num_threads(before - 1)
    try:
        yield before - 1
    finally:
        torch.set_num_threads(before)
