"""Data-parallel training across processes (``torchrun``) with ``torch.distributed``.

Every rank holds a full copy of each SAE and draws its own batches (from the same
synthetic model, with its own sampling seed, see :func:`rank_seed`). After each
backward pass the ranks average their gradients (one ``all_reduce`` per SAE, see
:func:`all_reduce_`), so the clipped Adam update, and hence the weights, are the
same on every rank.

Every helper here is a no-op when no process group is initialised (or when it has
a single rank): single-process training never touches ``torch.distributed``.

Environment: ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed_from_env` reads them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import torch

__all__ = [
    "all_reduce_",
    "average_gradients",
    "barrier",
    "broadcast_object",
    "broadcast_parameters",
    "destroy_distributed",
    "gather_objects",
    "init_distributed_from_env",
    "is_distributed",
    "is_initialized",
    "local_rank",
    "rank",
    "rank_seed",
    "world_size",
]

_MASK64 = (1 << 64) - 1


def _dist() -> Any:
    """``torch.distributed`` when a process group is initialised, else ``None``."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def is_initialized() -> bool:
    """True when a default process group exists (of any size)."""
    return _dist() is not None


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised."""
    dist = _dist()
    return dist is not None and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    dist = _dist()
    return dist.get_rank() if dist is not None else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    dist = _dist()
    return dist.get_world_size() if dist is not None else 1


def local_rank() -> int:
    """This process's rank on its node: ``LOCAL_RANK`` from the environment (0 if unset)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed_from_env(backend: str | None = None, timeout_s: float | None = None) -> bool:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Does nothing (and returns whether training is distributed) if a group already
    exists or if ``RANK``/``WORLD_SIZE`` are not set (a plain ``python`` process).
    ``backend=None`` picks ``"nccl"`` when CUDA is available, else ``"gloo"``; with
    NCCL the current CUDA device is set to ``LOCAL_RANK`` first. ``MASTER_ADDR``
    defaults to ``127.0.0.1``; ``MASTER_PORT`` must be set (torchrun sets it).

    Returns:
        :func:`is_distributed` after the call.
    """
    import torch.distributed as dist

    if not dist.is_available():
        return False
    if dist.is_initialized():
        return is_distributed()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        raise RuntimeError("RANK and WORLD_SIZE are set but MASTER_PORT is not: launch with torchrun, or set it")
    kwargs: dict[str, Any] = {}
    if timeout_s is not None:
        kwargs["timeout"] = timedelta(seconds=timeout_s)
    dist.init_process_group(backend=backend, init_method="env://", rank=int(os.environ["RANK"]),
                            world_size=int(os.environ["WORLD_SIZE"]), **kwargs)
    return is_distributed()


def destroy_distributed() -> None:
    """Destroy the default process group if there is one (no-op otherwise)."""
    dist = _dist()
    if dist is not None:
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The sampling seed of ``rank`` in a run whose (rank-0) sampling seed is ``seed``.

    ``rank_seed(seed, 0) == seed``, so rank 0 of a multi-process run draws exactly the
    batches of a single-process run with the same seed. Other ranks get a 63-bit value
    that mixes ``seed`` and ``rank`` through the SplitMix64 finaliser: distinct ranks
    get unrelated streams, and ``seed + 1``-style offsets of neighbouring seeds do not
    collide with them.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be an int >= 0, got {rank!r}")
    if rank == 0:
        return seed
    x = (seed * 0x9E3779B97F4A7C15 + rank * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return x >> 1  # torch.Generator.manual_seed and set_sampling_seed take any int in [0, 2**63)


def all_reduce_(mean: Sequence[torch.Tensor] = (), total: Sequence[torch.Tensor] = ()) -> None:
    """In place: average ``mean`` and sum ``total`` across ranks (no-op without a group).

    The tensors are packed into one flat buffer per dtype, so the usual case (float32
    gradients plus float32 counters) is a single collective. Every rank must pass
    tensors of the same shapes and dtypes, in the same order.
    """
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return
    n = dist.get_world_size()
    groups: dict[torch.dtype, list[tuple[torch.Tensor, bool]]] = {}
    for tensors, average in ((mean, True), (total, False)):
        for t in tensors:
            groups.setdefault(t.dtype, []).append((t, average))
    for items in groups.values():
        flat = torch.cat([t.reshape(-1) for t, _ in items]) if len(items) > 1 else items[0][0].reshape(-1).clone()
        dist.all_reduce(flat)
        offset = 0
        for t, average in items:
            part = flat[offset:offset + t.numel()].view_as(t)
            offset += t.numel()
            t.copy_(part.div_(n) if average else part)


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Replace each parameter's gradient by its mean over the ranks (one collective per dtype).

    Parameters whose ``grad`` is ``None`` are skipped; they must be the same on every rank.
    """
    all_reduce_(mean=[p.grad for p in params if p.grad is not None])


@torch.no_grad()
def broadcast_parameters(module: torch.nn.Module, src: int = 0) -> None:
    """Copy ``module``'s parameters and buffers from rank ``src`` to every rank (in place)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=src)


def barrier() -> None:
    """Wait for every rank (no-op without a group)."""
    dist = _dist()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (pickled in memory); ``obj`` itself without a group."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any, dst: int = 0) -> list[Any] | None:
    """``[obj of rank 0, obj of rank 1, ...]`` on rank ``dst``, ``None`` on the others.

    Tensors inside ``obj`` are moved to the CPU first. Without a group: ``[obj]``.
    The objects travel pickled between the processes (nothing is written to disk).
    """
    dist = _dist()
    obj = _to_cpu(obj)
    if dist is None or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == dst else None
    dist.gather_object(obj, out, dst=dst)
    return out


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
