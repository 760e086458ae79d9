"""The endless stream of synthetic training batches that the trainer, the runner and the
benchmark consume: ``SyntheticActivationIterator``."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from synthsae.config_values import check_int
from synthsae.runs.prefetch import Prefetcher, SideStream

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.synthetic.activation_generator import ActivationGenerator
    from synthsae.synthetic.feature_dictionary import FeatureDictionary

__all__ = ["SyntheticActivationIterator"]


_CHUNK_ELEMENTS = 1 << 21  # hidden-activation floats drawn per generator call (8 MiB in fp32) ...
_MAX_CHUNK_BATCHES = 64  # ... at most this many batches at once


def _rows_independent(generator: Any) -> bool:
    """True when the generator's rows are i.i.d. (no modifier that could mix rows of a batch)."""
    from synthsae.synthetic.hierarchy.modifier import HierarchyModifier

    modifiers = getattr(generator, "modify_activations", None)
    return modifiers is not None and all(isinstance(m, HierarchyModifier) for m in modifiers)


class SyntheticActivationIterator(Iterator[torch.Tensor]):
    """Endless batches of hidden activations ``feature_dict(activations_generator(batch_size))``.

    Batches are made without gradients. When the generator has ``sample_sparse`` the
    feature activations stay sparse (a :class:`SparseBatch`) on their way through the
    dictionary; otherwise the generator is called for a dense batch. With
    ``autocast=True`` the dictionary product runs under bf16 autocast on the dictionary's
    device type and batches come out in bf16; the firing process stays in full precision.

    Small models: rows of a synthetic batch are independent draws, so when the
    generator has no modifier that could mix rows (only hierarchy modifiers), several
    batches are drawn in one call and handed out one by one (``chunk_batches``, by
    default as many as fit in about two million hidden floats, at most 64). The
    distribution is the same; the per-call overhead, which dominates for toy models, is
    paid once per chunk. ``chunk_batches=1`` draws each batch separately.

    ``prefetch=N`` draws up to ``N`` chunks ahead on a background thread (one torch thread;
    see :class:`~synthsae.runs.prefetch.Prefetcher`) while the caller trains on the current
    one. Each chunk is stored with the generator state from before its draw, so
    :meth:`close` can rewind the generator over the chunks never handed out: after it,
    the generator (private, or the global RNG) is exactly where it would be without
    prefetching. The stream is the same as without prefetching, draw for draw, as long as
    nothing else draws from the same generator while the producer runs: wrap code that
    swaps in its own generator (an eval) in :meth:`paused`, call :meth:`close` before code
    that draws from the training generator itself, and do not use the global RNG during
    training when the sampler draws from it.

    ``state_dict()`` / ``load_state_dict()`` save and restore the generator's private
    ``torch.Generator`` (when it has one; a generator drawing from the global RNG leaves
    that RNG to the caller) as of the rows handed out so far, and the rest of the current
    chunk, so a resumed stream continues exactly; the saved state is the same with or
    without prefetching.
    """

    def __init__(
        self,
        feature_dict: FeatureDictionary,
        activations_generator: ActivationGenerator,
        batch_size: int,
        autocast: bool = False,
        chunk_batches: int | None = None,
        prefetch: int = 0,
    ) -> None:
        batch_size = check_int("batch_size", batch_size, at_least=1)
        chunk_batches = check_int("chunk_batches", chunk_batches, at_least=1, optional=True)
        prefetch = check_int("prefetch", prefetch, at_least=0)
        self.feature_dict = feature_dict
        self.activations_generator = activations_generator
        self.batch_size = batch_size
        self.autocast = bool(autocast)
        self._sample_sparse = getattr(activations_generator, "sample_sparse", None)
        self._sample_and_map = getattr(activations_generator, "sample_sparse_and_map", None)
        if chunk_batches is None:
            per_batch = batch_size * int(getattr(feature_dict, "hidden_dim", 1))
            chunk_batches = max(1, min(_MAX_CHUNK_BATCHES, _CHUNK_ELEMENTS // per_batch))
            if not _rows_independent(activations_generator):
                chunk_batches = 1
        self.chunk_batches = chunk_batches
        self.prefetch = prefetch
        self._prefetcher: Prefetcher[Any] | None = None
        self._side_stream: SideStream | None = None
        self._chunk: torch.Tensor | None = None  # rows drawn but not yet handed out
        self._pos = 0

    @torch.no_grad()
    def _draw(self, rows: int) -> torch.Tensor:
        # the firing process always runs in full precision; autocast covers only the
        # dictionary product (sampling hands integer indices and fp32 values to numpy/torch ops
        # that bf16 would break or bias)
        if self._sample_and_map is not None and not self.autocast:
            # each sampling lane maps its own rows (no multi-threaded product after the lanes);
            # autocast is per thread, so a bf16 product stays on this thread below
            return self._sample_and_map(rows, self.feature_dict)[1]
        if self._sample_sparse is not None:
            features = self._sample_sparse(rows)
        else:
            features = self.activations_generator(rows)
        if not self.autocast:
            return self.feature_dict(features)
        device = self.feature_dict.feature_vectors.device.type
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            out = self.feature_dict(features)
        # the sparse product (embedding_bag) is not an autocast op; hand out the dtype autocast gives
        return out.to(torch.bfloat16)

    def _next_block(self) -> torch.Tensor:
        if self.prefetch == 0:
            return self._draw_block()
        if self._prefetcher is None:
            device = self.feature_dict.feature_vectors.device
            self._side_stream = SideStream(device) if device.type == "cuda" else None
            self._prefetcher = Prefetcher(self._draw_ahead, depth=self.prefetch, threads=1)
            weakref.finalize(self, self._prefetcher.close)
        _, item = self._prefetcher.get()
        return item if self._side_stream is None else self._side_stream.receive(item)

    def _draw_block(self) -> torch.Tensor:
        return self._draw(self.batch_size * self.chunk_batches)

    def _draw_ahead(self) -> tuple[torch.Tensor | None, Any]:
        """On the producer thread: (the generator state before the draw, the block), the
        block on its own CUDA stream on a GPU."""
        state = self._generator_state()
        return state, self._draw_block() if self._side_stream is None else self._side_stream.draw(self._draw_block)

    def _generator(self) -> torch.Generator | None:
        """The ``torch.Generator`` the sampler draws from: its own, or the device's default one."""
        gen = getattr(self.activations_generator, "generator", None)
        if isinstance(gen, torch.Generator):
            return gen
        device = self.feature_dict.feature_vectors.device
        if device.type == "cpu":
            return torch.default_generator
        if device.type == "cuda":
            return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
        return None

    def _generator_state(self) -> torch.Tensor | None:
        gen = self._generator()
        return gen.get_state() if gen is not None else None

    def next_batch(self) -> torch.Tensor:
        """One ``[batch_size, hidden_dim]`` batch."""
        b = self.batch_size
        if self._chunk is None or self._pos + b > self._chunk.shape[0]:
            self._chunk, self._pos = self._next_block(), 0
        self._pos += b
        if self._pos == b == self._chunk.shape[0]:
            return self._chunk
        return self._chunk[self._pos - b:self._pos]

    def __iter__(self) -> SyntheticActivationIterator:
        return self

    def __next__(self) -> torch.Tensor:
        return self.next_batch()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No background draw runs inside this block (for code that borrows the generator, e.g.
        an eval that swaps in its own ``torch.Generator``); a no-op without prefetching."""
        if self._prefetcher is None:
            yield
        else:
            with self._prefetcher.paused():
                yield

    def close(self) -> None:
        """Stop the background producer, if any, and rewind the generator over the chunks it
        drew ahead: afterwards the generator is where it would be without prefetching."""
        if self._prefetcher is not None:
            unconsumed = self._prefetcher.close()
            self._prefetcher = None
            gen = self._generator()
            if unconsumed and unconsumed[0][0] is not None and gen is not None:
                gen.set_state(unconsumed[0][0])

    def state_dict(self) -> dict[str, Any]:
        """The generator's position after the rows handed out so far, and the rest of the
        current chunk (prefetched chunks are not stored: the state is taken from before them)."""
        own = isinstance(getattr(self.activations_generator, "generator", None), torch.Generator)
        if self._prefetcher is None:
            state = self._generator_state()
        else:
            queued, state = self._prefetcher.snapshot(self._generator_state)
            if queued:
                state = queued[0][0]
        pending = None
        if self._chunk is not None and self._pos < self._chunk.shape[0]:
            pending = self._chunk[self._pos:].clone()
        return {"generator_state": state if own else None, "pending_rows": pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.close()  # rows drawn ahead belong to the old position of the stream
        gen = getattr(self.activations_generator, "generator", None)
        if state.get("generator_state") is not None and isinstance(gen, torch.Generator):
            gen.set_state(state["generator_state"])
        pending = state.get("pending_rows")
        self._chunk = None if pending is None else pending.to(self.feature_dict.feature_vectors.device)
        self._pos = 0
