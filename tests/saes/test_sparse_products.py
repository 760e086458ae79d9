"""Sparse products of the TopK family's backward pass against autograd through embedding_bag,
split in halves (on a helper thread or not) and unsplit."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

import synthsae.saes.sparse_products as products
from synthsae._work_share import WORK_SHARE
from synthsae.saes.sparse_products import per_latent_sums, sparse_decode


def _entries(n: int, d_sae: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    counts = torch.randint(0, 6, (n,), generator=generator)
    counts[0] = counts[-1] = 0  # empty bags at both ends
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    rows = torch.repeat_interleave(torch.arange(n), counts)
    cols = torch.randint(0, d_sae, (int(counts.sum()),), generator=generator)
    return rows, cols, offsets


@pytest.fixture
def helper():
    """A thread serving the process-wide work mailbox, as an idle prefetch producer does."""
    stop = threading.Event()

    def serve() -> None:
        with WORK_SHARE.condition:
            while not stop.is_set():
                if not WORK_SHARE.run_posted():
                    with WORK_SHARE.idle():
                        WORK_SHARE.condition.wait(0.01)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


@pytest.mark.parametrize("mode", ["unsplit", "split", "split-with-helper"])
def test_sparse_decode_and_its_gradients_match_embedding_bag(mode: str, monkeypatch: pytest.MonkeyPatch,
                                                             request: pytest.FixtureRequest) -> None:
    if mode != "unsplit":
        monkeypatch.setattr(products, "_MIN_SPLIT_WORK", 1)
    if mode == "split-with-helper":
        request.getfixturevalue("helper")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # the split applies to one-thread callers
    generator = torch.Generator().manual_seed(0)
    rows, cols, offsets = _entries(40, 30, generator)
    weights = torch.randn(cols.numel(), generator=generator, requires_grad=True)
    W = torch.randn(30, 6, generator=generator, requires_grad=True)
    upstream = torch.randn(40, 6, generator=generator)
    expected = F.embedding_bag(cols, W, offsets, mode="sum", per_sample_weights=weights, include_last_offset=True)
    out = sparse_decode(cols, rows, offsets, weights, W)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    for mine, theirs in zip(torch.autograd.grad(out, (weights, W), upstream),
                            torch.autograd.grad(expected, (weights, W), upstream)):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-6)  # sums of <= 6 terms, reordered


def test_per_latent_sums_is_the_sparse_transpose_product(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # the split applies to one-thread callers
    generator = torch.Generator().manual_seed(1)
    rows, cols, _ = _entries(25, 12, generator)
    weights, source = torch.randn(cols.numel(), generator=generator), torch.randn(25, 5, generator=generator)
    dense = torch.zeros(25, 12).index_put((rows, cols), weights, accumulate=True)
    for threshold in (1 << 40, 1):  # unsplit, then split in two latent blocks
        monkeypatch.setattr(products, "_MIN_SPLIT_WORK", threshold)
        torch.testing.assert_close(per_latent_sums(rows, cols, weights, source, 12), dense.T @ source)
        transposed = per_latent_sums(rows, cols, weights, source, 12, transposed=True)
        assert transposed.is_contiguous()
        torch.testing.assert_close(transposed, source.T @ dense)
