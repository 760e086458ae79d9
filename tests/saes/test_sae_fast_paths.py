"""The CPU fast paths give exactly what the plain torch operations give."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from synthsae.saes.sparse_acts import batch_topk, flat_topk_indices
from synthsae.saes.sparse_grad import sparse_grad_linear


def _values(flat: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    return flat[indices].sort().values


@pytest.mark.parametrize(
    "make",
    [
        lambda g: torch.randn(300_000, generator=g),
        lambda g: torch.randn(300_000, generator=g) - 3.0,  # almost all negative
        lambda g: torch.randint(0, 4, (300_000,), generator=g).float(),  # heavy ties
        lambda g: torch.cat([torch.full((200_000,), -1.0), torch.randn(100_000, generator=g).abs()]),
        # the strided sample sees only the large values: the cut-off is too high, so the
        # exact fallback must run
        lambda g: torch.zeros(300_000).index_fill_(0, torch.arange(0, 300_000, 31), 10.0),
    ],
    ids=["normal", "negative", "ties", "skewed", "adversarial"],
)
@pytest.mark.parametrize("n_keep", [1, 700, 30_000])
def test_flat_topk_matches_torch_topk(make, n_keep: int) -> None:
    flat = make(torch.Generator().manual_seed(n_keep))
    indices = flat_topk_indices(flat, n_keep)
    assert indices.shape == (n_keep,) and indices.unique().numel() == n_keep
    torch.testing.assert_close(_values(flat, indices), flat.topk(n_keep).values.sort().values)


def test_batch_topk_equals_topk_of_relu() -> None:
    generator = torch.Generator().manual_seed(0)
    h = (torch.randn(256, 512, generator=generator) - 1.5).requires_grad_()
    acts = batch_topk(h, 20.0)
    values, indices = F.relu(h).flatten().topk(20 * 256)
    expected = torch.zeros(256 * 512).scatter(0, indices, values).view(256, 512)
    torch.testing.assert_close(acts.to_dense(), expected)
    acts.values.sum().backward()
    torch.testing.assert_close(h.grad, (expected > 0).float())


@pytest.mark.parametrize("density", [0.005, 0.5])
def test_sparse_grad_linear_matches_linear(density: float) -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 16, generator=generator)
    weight = torch.randn(16, 400, generator=generator, requires_grad=True)
    bias = torch.randn(400, generator=generator, requires_grad=True)
    upstream = torch.randn(64, 400, generator=generator) * (torch.rand(64, 400, generator=generator) < density)
    out = sparse_grad_linear(x, weight, bias)
    torch.testing.assert_close(out, x @ weight + bias)
    mine = torch.autograd.grad((out * upstream).sum(), (weight, bias))
    plain = torch.autograd.grad(((x @ weight + bias) * upstream).sum(), (weight, bias))
    for a, b in zip(mine, plain):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_sparse_grad_linear_input_gradient_and_autocast() -> None:
    x = torch.randn(8, 4, requires_grad=True)
    weight = torch.randn(4, 6, requires_grad=True)
    out = sparse_grad_linear(x, weight, None)
    (grad_x,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(grad_x, torch.ones(8, 6) @ weight.T)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sparse_grad_linear(x.detach(), weight, None)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert weight.grad.dtype == torch.float32
