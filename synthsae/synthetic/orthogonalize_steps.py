"""The Adam passes behind :func:`synthsae.synthetic.orthogonalize.orthogonalize_embeddings`.

A quarter of the loss gradient of row ``i`` is ``(E M)_i + (N (|e_i|^2 - 1) - |e_i|^2) e_i``
with ``M = E.T @ E`` (see the public module). Each step is one pass over the rows in
blocks small enough to stay in the CPU cache: a block's gradient (from ``M`` of the
previous iterate, as a full-batch step needs), its Adam update, and its share of the next
``M`` (from the updated block, upper block triangle only, since ``M`` is symmetric). A
step costs about ``3 N D^2`` flops and the iterate and the two moments are the only
``[N, D]`` tensors.

Blocks are dealt to a fixed number of lanes; each lane sums its share of the next ``M``
and the lanes are added in order, so results do not depend on how many threads run the
lanes. On a CPU the lanes run in Python threads with one intra-op thread each: a step
synchronises threads once, not in every small operation (which costs a lot when other
processes share the cores).

Precision ``"bfloat16"`` forms both products from bfloat16 copies (float32 accumulation
of ``M`` across blocks, float32 Adam state). ``E M`` is taken as ``c E + E (M - c I)``
with ``c`` the mean diagonal of ``M``, so rounding only touches the small deviation of
``M`` from a multiple of the identity: the gradient keeps about three significant
digits, which Adam's normalised steps do not notice (the benchmark docs compare the
results). It roughly halves the cost where bfloat16 products run natively.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["adam_steps", "gram_matrix", "quarter_gradient", "resolve_precision"]

# Adam's default hyper-parameters (Kingma & Ba), as in torch.optim.Adam
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
# rows per block: about 2**19 values (2 MiB in float32), so that a block, its moments and
# its gradient are still in the CPU cache when the Adam update and the next M read them
_BLOCK_ELEMENTS = 1 << 19
# from this width on, M is summed from the upper triangle of a 4 x 4 grid of column
# blocks (10 of the 16 products, ~62 % of the flops); narrower M is one product
_SPLIT_MIN_DIM = 256
_COLUMN_BLOCKS = 4
# the row blocks are dealt to this many lanes, the most threads a step can use
_LANES = 8
PRECISIONS = ("auto", "exact", "bfloat16")
# "auto" uses bfloat16 only from this many multiply-adds per product (N * D^2) on: below
# it a step takes milliseconds anyway, and small models keep their exact float32 values
_LOW_PRECISION_MIN_WORK = 1 << 30


def resolve_precision(precision: str, embeddings: torch.Tensor) -> bool:
    """Whether the products run in bfloat16. ``"auto"`` picks it for large float32
    embeddings (``N * D^2 >= 2**30``, e.g. 16,384 x 768) on hardware with native bfloat16
    products (a CUDA device that supports them, or a CPU with AVX512-BF16 or AMX-BF16),
    and exact products otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    if precision != "auto":
        return precision == "bfloat16"
    n, dim = embeddings.shape
    if embeddings.dtype != torch.float32 or n * dim * dim < _LOW_PRECISION_MIN_WORK:
        return False
    if embeddings.device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if embeddings.device.type != "cpu":
        return False
    try:
        flags = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):  # private API: treat as unknown
        return False
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def _column_bounds(dim: int) -> list[tuple[int, int]]:
    """Column ranges whose upper block triangle makes up a symmetric ``[dim, dim]`` matrix."""
    if dim < _SPLIT_MIN_DIM:
        return [(0, dim)]
    edges = [round(i * dim / _COLUMN_BLOCKS) for i in range(_COLUMN_BLOCKS + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _add_gram_upper(rows: torch.Tensor, gram: torch.Tensor, bounds: list[tuple[int, int]]) -> None:
    """``gram += rows.T @ rows`` on the blocks on and above the block diagonal only
    (``rows`` may be bfloat16; ``gram`` keeps its own dtype)."""
    exact = rows.dtype == gram.dtype
    for i, (a, b) in enumerate(bounds):
        left = rows[:, a:b].T
        for c, d in bounds[i:]:
            if exact:
                gram[a:b, c:d].addmm_(left, rows[:, c:d])
            else:
                gram[a:b, c:d].add_(torch.mm(left, rows[:, c:d]))


def _mirror_upper(gram: torch.Tensor, bounds: list[tuple[int, int]]) -> None:
    """Fill the blocks below the block diagonal from those above it."""
    for i, (a, b) in enumerate(bounds):
        for c, d in bounds[i + 1 :]:
            gram[c:d, a:b].copy_(gram[a:b, c:d].T)


def _block_rows(n: int, dim: int) -> int:
    return max(1, min(n, _BLOCK_ELEMENTS // max(dim, 1)))


def gram_matrix(e: torch.Tensor) -> torch.Tensor:
    """``E.T @ E`` ``[D, D]`` (from the upper block triangle, in row blocks)."""
    n, dim = e.shape
    bounds = _column_bounds(dim)
    gram = e.new_zeros(dim, dim)
    rows = _block_rows(n, dim)
    for start in range(0, n, rows):
        _add_gram_upper(e[start : start + rows], gram, bounds)
    _mirror_upper(gram, bounds)
    return gram


def quarter_gradient(rows: torch.Tensor, gram: torch.Tensor, n: int, out: torch.Tensor) -> torch.Tensor:
    """A quarter of the loss gradient for some rows of ``E`` (``n`` rows in all,
    ``gram = E.T @ E``): ``E M + (n (|e_i|^2 - 1) - |e_i|^2) e_i``, written to ``out``."""
    torch.mm(rows, gram, out=out)
    return _add_norm_terms(rows, n, out)


def _add_norm_terms(rows: torch.Tensor, n: int, out: torch.Tensor) -> torch.Tensor:
    sq_norm = torch.linalg.vector_norm(rows, dim=1, keepdim=True).square_()
    coeff = sq_norm.sub(1.0).mul_(n).sub_(sq_norm)
    return out.addcmul_(rows, coeff)


@dataclass
class _Step:
    """What every block of one step needs: ``M`` (exact) or ``(M - c I, c)`` in bfloat16,
    Adam's step size and epsilon, and whether to sum the next ``M``."""

    gram: torch.Tensor
    shift: float | None
    step_size: float
    eps: float
    bounds: list[tuple[int, int]] | None


class _Lane:
    """A fixed share of the row blocks with its own scratch and partial Gram matrix."""

    def __init__(self, e: torch.Tensor, blocks: list[tuple[int, int]]) -> None:
        dim = e.shape[1]
        self.blocks = blocks
        self.buf = e.new_empty(max((b - a for a, b in blocks), default=0), dim)
        self.gram = e.new_zeros(dim, dim)

    def run(self, e: torch.Tensor, moments: tuple[torch.Tensor, torch.Tensor], step: _Step) -> None:
        """Adam-update this lane's rows of ``e``; with ``step.bounds``, sum their next Gram matrix."""
        exp_avg, exp_avg_sq = moments
        n = e.shape[0]
        if step.bounds is not None:
            self.gram.zero_()
        for start, stop in self.blocks:
            block, grad = e[start:stop], self.buf[: stop - start]
            if step.shift is None:
                quarter_gradient(block, step.gram, n, grad)
            else:
                grad.copy_(torch.mm(block.to(step.gram.dtype), step.gram)).add_(block, alpha=step.shift)
                _add_norm_terms(block, n, grad)
            avg, avg_sq = exp_avg[start:stop], exp_avg_sq[start:stop]
            avg.lerp_(grad, 1.0 - _BETA1)
            avg_sq.mul_(_BETA2).addcmul_(grad, grad, value=1.0 - _BETA2)
            denom = torch.sqrt(avg_sq, out=grad).add_(step.eps)
            block.addcdiv_(avg, denom, value=-step.step_size)
            if step.bounds is not None:
                _add_gram_upper(block if step.shift is None else block.to(step.gram.dtype), self.gram, step.bounds)


def _lanes(e: torch.Tensor) -> list[_Lane]:
    """Row blocks dealt round-robin to lanes (one lane and one block off the CPU)."""
    n, dim = e.shape
    if e.device.type != "cpu":
        return [_Lane(e, [(0, n)])]
    rows = _block_rows(n, dim)
    blocks = [(a, min(a + rows, n)) for a in range(0, n, rows)]
    return [_Lane(e, blocks[i::_LANES]) for i in range(_lane_count(e))]


def _lane_count(e: torch.Tensor) -> int:
    """How many lanes :func:`_lanes` makes for ``e``."""
    n, dim = e.shape
    if e.device.type != "cpu":
        return 1
    return min(_LANES, -(-n // _block_rows(n, dim)))


@contextmanager
def _intra_op_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op CPU threads (restored afterwards)."""
    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _step_input(gram: torch.Tensor, low: bool, step: int, lr: float, bounds: Any) -> _Step:
    # Adam on g / 4 with eps / 4 takes exactly the step Adam takes on g with eps: both
    # moments scale by powers of two, which floating point represents exactly. The bias
    # corrections are folded into the step size and eps:
    #   (m / c1) / (sqrt(v / c2) + eps) = (sqrt(c2) / c1) m / (sqrt(v) + sqrt(c2) eps)
    c2_sqrt = (1.0 - _BETA2**step) ** 0.5
    sizes = (lr * c2_sqrt / (1.0 - _BETA1**step), c2_sqrt * _EPS / 4.0)
    if not low:
        return _Step(gram, None, *sizes, bounds)
    shift = float(gram.diagonal().mean())
    deviation = gram - shift * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return _Step(deviation.to(torch.bfloat16), shift, *sizes, bounds)


def adam_steps(e: torch.Tensor, num_steps: int, lr: float, low_precision: bool, show_progress: bool) -> None:
    """``num_steps`` Adam steps on the orthogonality loss, updating ``e`` in place."""
    bounds = _column_bounds(e.shape[1])
    workers = min(_lane_count(e), torch.get_num_threads()) if e.device.type == "cpu" else 1
    # each worker sets its own thread count too: OpenMP keeps one per thread, and a new
    # thread would otherwise start a team of its own inside every matrix product
    threads = 1 if workers > 1 else torch.get_num_threads()
    # the set-up (moments, lane buffers, first M) runs at that thread count as well: a
    # multi-threaded product just before the lanes start leaves OpenMP threads spin-waiting
    # on the cores the lanes need (on two busy cores a step then took several times as long);
    # a product's value does not depend on the thread count, so the result is the same
    with (
        _intra_op_threads(threads),
        ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(threads,)) as pool,
    ):
        moments = (torch.zeros_like(e), torch.zeros_like(e))
        lanes = _lanes(e)
        gram = _low_gram(e, bounds) if low_precision else gram_matrix(e)
        for step in _step_numbers(num_steps, show_progress):
            plan = _step_input(gram, low_precision, step, lr, bounds if step < num_steps else None)
            groups = [lanes[w::workers] for w in range(workers)]
            if workers == 1:
                _run_group(groups[0], e, moments, plan)
            else:
                list(pool.map(_run_group, groups, [e] * workers, [moments] * workers, [plan] * workers))
            if plan.bounds is not None:
                gram = lanes[0].gram.clone()
                for lane in lanes[1:]:
                    gram.add_(lane.gram)
                _mirror_upper(gram, bounds)


def _step_numbers(num_steps: int, show_progress: bool) -> Any:
    """``1..num_steps``, with a progress bar if asked."""
    steps: Any = range(1, num_steps + 1)
    if show_progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="orthogonalizing", total=num_steps)
    return steps


def _run_group(lanes: list[_Lane], e: torch.Tensor, moments: tuple[torch.Tensor, torch.Tensor], plan: _Step) -> None:
    for lane in lanes:
        lane.run(e, moments, plan)


def _low_gram(e: torch.Tensor, bounds: list[tuple[int, int]]) -> torch.Tensor:
    """``E.T @ E`` from bfloat16 copies of row blocks, summed in float32."""
    n, dim = e.shape
    gram = e.new_zeros(dim, dim)
    rows = _block_rows(n, dim)
    for start in range(0, n, rows):
        _add_gram_upper(e[start : start + rows].to(torch.bfloat16), gram, bounds)
    _mirror_upper(gram, bounds)
    return gram
