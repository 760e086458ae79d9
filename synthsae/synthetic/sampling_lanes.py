"""Drawing a large CPU batch as independent sub-batches ("lanes"), in threads.

Rows of a batch are independent, so a batch of ``B`` rows can be drawn as several
sub-batches, each from its own generator seeded from the caller's. How a batch is split
depends only on ``B`` and the device (never on the number of threads), so a seed gives
the same batch whether the lanes run one after the other or side by side. On a CPU the
lanes run in worker threads, each with a single intra-op thread: the sampler's many
small operations then need no synchronisation between cores until the batch is done,
which is where multi-threaded kernels lose most (especially when other processes share
the cores).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import torch

from synthsae.synthetic.sparse_batch import SparseBatch

__all__ = ["lane_sizes", "mapped_lane", "merge_mapped", "merge_rows", "sample_in_lanes"]

# a lane has at least this many rows: below it the fixed cost of a draw (a few hundred
# small operations) outweighs the gain of a second core
MIN_LANE_ROWS = 512
# at most this many lanes (and worker threads) per batch
MAX_LANES = 8
_SEED_RANGE = 2**62

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def lane_sizes(batch_size: int, device: torch.device) -> list[int]:
    """Rows of each lane: one lane off the CPU or below ``2 * MIN_LANE_ROWS`` rows, else
    ``min(MAX_LANES, batch_size // MIN_LANE_ROWS)`` lanes of near-equal size."""
    if device.type != "cpu" or batch_size < 2 * MIN_LANE_ROWS:
        return [batch_size]
    lanes = min(MAX_LANES, batch_size // MIN_LANE_ROWS)
    base, extra = divmod(batch_size, lanes)
    return [base + (1 if i < extra else 0) for i in range(lanes)]


def merge_rows(parts: list[SparseBatch]) -> SparseBatch:
    """The rows of ``parts`` one after the other, as one batch."""
    if len(parts) == 1:
        return parts[0]
    offsets, nnz = [parts[0].offsets[:1]], 0
    for part in parts:
        offsets.append(part.offsets[1:] + nnz)
        nnz += part.nnz
    return SparseBatch(
        torch.cat(offsets),
        torch.cat([p.indices for p in parts]),
        torch.cat([p.values for p in parts]),
        parts[0].num_features,
    )


def mapped_lane(
    draw: Callable[[int, torch.Generator | None], SparseBatch],
    fn: Callable[[SparseBatch], torch.Tensor],
    finish: Callable[[SparseBatch], Any] | None,
    dtype: torch.dtype,
) -> Callable[[int, torch.Generator | None], tuple[SparseBatch, torch.Tensor]]:
    """A lane that draws its rows, applies ``finish`` (if any) and the dtype, and maps them
    with the row-wise ``fn`` (without autograd: grad mode is per thread), all in the lane's
    own thread: no multi-threaded operation then follows the lanes, which would leave
    OpenMP threads spin-waiting on the cores the next batch's lanes need."""

    def lane(rows: int, generator: torch.Generator | None) -> tuple[SparseBatch, torch.Tensor]:
        acts = draw(rows, generator)
        if finish is not None:
            acts = finish(acts)
        acts = acts.to(dtype=dtype)
        with torch.no_grad():
            return acts, fn(acts)

    return lane


def merge_mapped(parts: list[tuple[SparseBatch, torch.Tensor]]) -> tuple[SparseBatch, torch.Tensor]:
    """The lanes of :func:`mapped_lane` as one batch and one tensor, rows in lane order."""
    return merge_rows([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start a new pool there."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_LANES, thread_name_prefix="synthsae-sampling")
        return _pool


def sample_in_lanes(
    draw: Callable[[int, torch.Generator | None], T],
    batch_size: int,
    generator: torch.Generator | None,
    device: torch.device,
    workers: int,
    merge: Callable[[list[T]], T] = merge_rows,  # type: ignore[assignment]
) -> T:
    """``draw(rows, generator)`` for every lane of the batch, merged in lane order by ``merge``.

    Each lane gets a generator seeded from ``generator`` (the global RNG if ``None``).
    With ``workers > 1`` lanes run in that many threads; callers must then hold the
    intra-op thread count at 1 (each worker sets its own, which OpenMP keeps per thread).
    """
    sizes = lane_sizes(batch_size, device)
    if len(sizes) == 1:
        return draw(batch_size, generator)
    seeds = torch.randint(0, _SEED_RANGE, (len(sizes),), generator=generator, device=device).tolist()
    gens = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
    workers = max(1, min(workers, len(sizes)))
    if workers == 1:
        return merge([draw(rows, gen) for rows, gen in zip(sizes, gens)])

    def run(lanes: list[int]) -> list[T]:
        torch.set_num_threads(1)  # this thread's OpenMP setting; the global one is already 1
        return [draw(sizes[i], gens[i]) for i in lanes]

    groups = [list(range(w, len(sizes), workers)) for w in range(workers)]
    done = list(_shared_pool().map(run, groups))
    by_lane: dict[int, T] = {}
    for group, batches in zip(groups, done):
        by_lane.update(zip(group, batches))
    return merge([by_lane[i] for i in range(len(sizes))])
