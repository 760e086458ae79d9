"""orthogonalize_embeddings: equality with the naive N x N autograd formulation, and more."""

import time

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from synthsae.synthetic import FeatureDictionary, orthogonal_initializer, orthogonalize_embeddings
from synthsae.synthetic.orthogonalize import orthogonality_loss_gradient


def _naive_loss(e: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """The loss the way the reference writes it: row chunks of the N x N Gram matrix."""
    n = e.shape[0]
    total = e.new_zeros(())
    for start in range(0, n, chunk_size):
        gram = e[start : start + chunk_size] @ e.T
        rows = torch.arange(gram.shape[0])
        diag_mask = torch.zeros_like(gram, dtype=torch.bool)
        diag_mask[rows, rows + start] = True
        off = gram[~diag_mask]
        on = gram[diag_mask]
        total = total + off.square().sum() + n * (on - 1).square().sum()
    return total


def _naive_orthogonalize(
    x: torch.Tensor, num_steps: int, lr: float, chunk_size: int = 5
) -> torch.Tensor:
    e = (x / x.norm(dim=1, keepdim=True)).clone().requires_grad_(True)
    opt = torch.optim.Adam([e], lr=lr)
    for _ in range(num_steps):
        opt.zero_grad()
        _naive_loss(e, chunk_size).backward()
        opt.step()
    with torch.no_grad():
        return e / e.norm(dim=1, keepdim=True)


def _random(n: int, d: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_gradient_equals_autograd_gradient():
    e = _random(13, 4).requires_grad_(True)
    _naive_loss(e, chunk_size=4).backward()
    with torch.no_grad():
        analytic = orthogonality_loss_gradient(e)
    torch.testing.assert_close(analytic, e.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("n", "d", "lr"), [(12, 5, 0.01), (6, 8, 0.05)])
def test_matches_naive_autograd_adam(n, d, lr):
    x = _random(n, d, seed=n)
    ours = orthogonalize_embeddings(x, num_steps=40, lr=lr, chunk_size=4)
    naive = _naive_orthogonalize(x, num_steps=40, lr=lr)
    torch.testing.assert_close(ours, naive, rtol=0, atol=1e-10)
    assert not torch.allclose(ours, x / x.norm(dim=1, keepdim=True), atol=1e-3)  # it moved


def test_result_does_not_depend_on_chunk_size():
    x = _random(37, 6, dtype=torch.float32)
    results = [orthogonalize_embeddings(x, num_steps=10, chunk_size=c) for c in (1, 5, 37, 1024)]
    for r in results[1:]:
        assert torch.equal(r, results[0])


def test_unit_rows_dtype_and_input_untouched():
    x = _random(20, 6, dtype=torch.float32) * 3
    before = x.clone()
    out = orthogonalize_embeddings(x, num_steps=5)
    assert torch.equal(x, before)
    assert out.dtype == torch.float32 and out.shape == x.shape
    torch.testing.assert_close(out.norm(dim=1), torch.ones(20))
    zero_steps = orthogonalize_embeddings(x, num_steps=0)
    torch.testing.assert_close(zero_steps, x / x.norm(dim=1, keepdim=True))


def test_reduces_overlap():
    x = _random(30, 10, dtype=torch.float32)
    unit = x / x.norm(dim=1, keepdim=True)
    out = orthogonalize_embeddings(x, num_steps=100, lr=0.01)

    def off_diag_sq(v):
        g = v @ v.T
        return (g - torch.diag(torch.diag(g))).square().sum().item()

    assert off_diag_sq(out) < 0.8 * off_diag_sq(unit)


def test_no_n_by_n_tensor_and_no_global_rng():
    x = _random(600, 12, dtype=torch.float32)

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    Largest.largest = max(Largest.largest, t.numel())
            return out

    torch.manual_seed(0)
    state = torch.get_rng_state()
    with Largest():
        orthogonalize_embeddings(x, num_steps=2, chunk_size=50)
    assert Largest.largest <= 600 * 12  # [N, D] buffers only; N x N would be 360,000
    assert torch.equal(torch.get_rng_state(), state)


def test_initializer_orthogonalizes_the_dictionary():
    plain = FeatureDictionary(10, 6, initializer=None, seed=5)
    expected = orthogonalize_embeddings(plain.feature_vectors.detach(), num_steps=30, lr=0.02)
    fd = FeatureDictionary(10, 6, initializer=orthogonal_initializer(num_steps=30, lr=0.02), seed=5)
    assert torch.equal(fd.feature_vectors.detach(), expected)
    assert isinstance(fd.feature_vectors, torch.nn.Parameter)


def test_show_progress_runs(capsys):
    out = orthogonalize_embeddings(_random(8, 4), num_steps=3, show_progress=True)
    assert out.shape == (8, 4)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_steps": -1}, "num_steps"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        orthogonalize_embeddings(torch.randn(4, 3), **kwargs)
    with pytest.raises(ValueError, match=name):
        orthogonal_initializer(**kwargs)


def test_bad_embeddings():
    with pytest.raises(ValueError, match="embeddings"):
        orthogonalize_embeddings(torch.randn(5))
    with pytest.raises(ValueError, match="embeddings"):
        orthogonalize_embeddings(torch.ones(3, 2, dtype=torch.long))


@pytest.mark.slow
def test_benchmark_size_step_costs_little_more_than_its_two_matmuls():
    """SynthSAEBench-16k size (the reference needs ~34 s per step on 2 threads).

    A step is two [N, D] x [D, D]-sized products plus a few element-wise passes, so it
    is compared with those products timed in the same process, which keeps the check
    meaningful on a busy machine.
    """
    x = _random(16_384, 768, dtype=torch.float32)
    floor = min(_timed(lambda: x @ (x.T @ x)) for _ in range(3))
    base = _timed(lambda: orthogonalize_embeddings(x, num_steps=0))
    per_step = (_timed(lambda: orthogonalize_embeddings(x, num_steps=5, lr=3e-4)) - base) / 5
    assert per_step < 2.0 * floor + 0.1


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ----------------------------------------------------------------- blocks, threads, precision
def _off_diagonal_square_sum(v: torch.Tensor) -> float:
    g = v.double() @ v.double().T
    return float((g - torch.diag(torch.diag(g))).square().sum())


def test_result_does_not_depend_on_the_number_of_threads(monkeypatch):
    from synthsae.synthetic import orthogonalize_steps

    monkeypatch.setattr(orthogonalize_steps, "_BLOCK_ELEMENTS", 40 * 16)  # 40-row blocks: 13 blocks, 8 lanes
    x = _random(500, 16, dtype=torch.float32)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(orthogonalize_embeddings(x, num_steps=7, lr=0.01, precision="exact"))
            assert torch.get_num_threads() == threads  # restored after the run
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


def test_set_up_runs_at_the_lanes_thread_count(monkeypatch):
    """With lanes in worker threads, the first Gram matrix is formed at one intra-op thread
    too: a multi-threaded product just before the lanes start leaves OpenMP threads
    spin-waiting on the cores the lanes need."""
    from synthsae.synthetic import orthogonalize_steps

    monkeypatch.setattr(orthogonalize_steps, "_BLOCK_ELEMENTS", 40 * 16)  # 13 blocks, 8 lanes
    seen = []
    real_gram = orthogonalize_steps.gram_matrix

    def recording_gram(e):
        seen.append(torch.get_num_threads())
        return real_gram(e)

    monkeypatch.setattr(orthogonalize_steps, "gram_matrix", recording_gram)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        orthogonalize_embeddings(_random(500, 16, dtype=torch.float32), num_steps=2, lr=0.01, precision="exact")
        assert torch.get_num_threads() == 2  # restored after the run
    finally:
        torch.set_num_threads(before)
    assert seen == [1]


def test_blocked_steps_match_naive_autograd_in_float64(monkeypatch):
    from synthsae.synthetic import orthogonalize_steps

    # 300 columns use the 4 x 4 column split of M, 7-row blocks spread over all 8 lanes
    monkeypatch.setattr(orthogonalize_steps, "_BLOCK_ELEMENTS", 7 * 300)
    x = _random(60, 300, seed=3)
    ours = orthogonalize_embeddings(x, num_steps=5, lr=0.01)
    naive = _naive_orthogonalize(x, num_steps=5, lr=0.01, chunk_size=16)
    torch.testing.assert_close(ours, naive, rtol=0, atol=1e-10)


def test_bfloat16_products_optimise_as_well_as_exact_ones():
    # 1,024 vectors in 128 dims: the loss can fall from ~N^2/D towards the frame bound
    # N^2/D - N, 12 % lower
    x = _random(1024, 128, seed=4, dtype=torch.float32)
    exact = orthogonalize_embeddings(x, num_steps=40, lr=0.01, precision="exact")
    low = orthogonalize_embeddings(x, num_steps=40, lr=0.01, precision="bfloat16")
    start = _off_diagonal_square_sum(x / x.norm(dim=1, keepdim=True))
    ours, theirs = _off_diagonal_square_sum(low), _off_diagonal_square_sum(exact)
    assert ours < 0.9 * start  # it optimised
    # bfloat16 keeps ~3 significant digits of the gradient; Adam's normalised steps move
    # by ~lr either way, so the loss agrees far better than the 10 % it fell
    assert abs(ours - theirs) < 1e-4 * theirs
    # each step moves a coordinate by at most ~lr; a few sign flips of tiny gradients may
    # differ, but never by more than a handful of steps
    assert float((low - exact).abs().max()) < 10 * 0.01
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.norm(dim=1), torch.ones(1024))


def test_auto_precision_choice(monkeypatch):
    from synthsae.synthetic.orthogonalize_steps import resolve_precision

    big = torch.empty(16_384, 768)
    small = torch.empty(2048, 256)
    monkeypatch.setattr(torch._C._cpu, "_get_cpu_capability", lambda: {"avx512_bf16": True})
    assert resolve_precision("auto", big) is True
    assert resolve_precision("auto", small) is False  # too little work to matter
    assert resolve_precision("auto", big.double()) is False
    assert resolve_precision("exact", big) is False and resolve_precision("bfloat16", small) is True
    monkeypatch.setattr(torch._C._cpu, "_get_cpu_capability", lambda: {"avx512_bf16": False, "amx_bf16": False})
    assert resolve_precision("auto", big) is False


def test_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        orthogonalize_embeddings(torch.randn(4, 3), precision="half")
    with pytest.raises(ValueError, match="precision"):
        orthogonal_initializer(precision="fp8")
