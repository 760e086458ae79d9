"""Products with a sparse ``[n, d_sae]`` matrix given as entries ``(rows, cols, weights)``.

The TopK family's gradients need, per latent ``j``, the weighted sum of the rows of a dense
``[n, d]`` matrix at the entries of column ``j`` (the weight gradients of the encoder and the
decoder), and, per entry, a dot product of two dense rows (the gradient of the decoder's
per-entry weights). :func:`per_latent_sums` and :func:`sparse_decode` do that in
O(entries x d); on a CPU training thread with one torch thread, they cut the work in two
halves (by latent, or by row) and hand one half to an idle helper thread
(:mod:`synthsae._work_share`). Every output element is computed the same way with or
without the helper.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from synthsae._work_share import run_pair

__all__ = ["per_latent_sums", "sparse_decode"]

# Split across the helper thread from this many entry x column multiply-adds on.
_MIN_SPLIT_WORK = 1 << 22


def _split(n_entries: int, width: int, device: torch.device) -> bool:
    return device.type == "cpu" and torch.get_num_threads() == 1 and n_entries * width >= _MIN_SPLIT_WORK


def per_latent_sums(rows: torch.Tensor, cols: torch.Tensor, weights: torch.Tensor, source: torch.Tensor,
                    d_sae: int, transposed: bool = False) -> torch.Tensor:
    """``G.T @ source`` for the sparse ``G[rows, cols] = weights``: ``[d_sae, d]``, or with
    ``transposed`` a contiguous ``[d, d_sae]`` (``source.T @ G``).

    One ``embedding_bag`` per block of latents: latent ``j``'s row is the sum over its entries
    of ``weights * source[rows]``.
    """
    cols_sorted, order = torch.sort(cols, stable=True)
    offsets = torch.searchsorted(cols_sorted, torch.arange(d_sae + 1, device=cols.device))
    bag_rows, bag_weights = rows[order], weights[order].to(source.dtype)
    d = source.shape[1]

    def bag_sums(lo: int, hi: int, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        bag_offsets = offsets[lo:hi + 1] if start is None else offsets[lo:hi + 1] - start
        return F.embedding_bag(bag_rows[start:stop], source, bag_offsets, mode="sum",
                               per_sample_weights=bag_weights[start:stop], include_last_offset=True)

    if not _split(rows.numel(), d, source.device):
        block = bag_sums(0, d_sae)
        return block.T.contiguous() if transposed else block
    out = source.new_empty((d, d_sae) if transposed else (d_sae, d))

    def latents(lo: int, hi: int) -> None:
        block = bag_sums(lo, hi, int(offsets[lo]), int(offsets[hi]))  # CPU tensors: no device sync
        if transposed:
            out[:, lo:hi].copy_(block.T)
        else:
            out[lo:hi].copy_(block)

    half = d_sae // 2
    run_pair(lambda: latents(0, half), lambda: latents(half, d_sae))
    return out


def _entry_dots(grad: torch.Tensor, weight: torch.Tensor, cols: torch.Tensor, rows: torch.Tensor,
                offsets: torch.Tensor) -> torch.Tensor:
    """Per entry ``e``: ``<grad[rows[e]], weight[cols[e]]>`` (bag ``b`` holds entries
    ``offsets[b]:offsets[b+1]``; ``rows`` is each entry's bag, aten's ``offset2bag``)."""
    def dots(bag_grad: torch.Tensor, bag_cols: torch.Tensor, bag_offsets: torch.Tensor,
             bag_of_entry: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._embedding_bag_per_sample_weights_backward(
            bag_grad, weight, bag_cols, bag_offsets, bag_of_entry, 0, -1)

    n = offsets.numel() - 1
    if not _split(cols.numel(), weight.shape[1], grad.device) or n < 2:
        return dots(grad, cols, offsets, rows)
    out = grad.new_empty(cols.numel())

    def bags(lo: int, hi: int) -> None:
        start, stop = int(offsets[lo]), int(offsets[hi])  # a CPU tensor: no device sync
        if stop > start:
            out[start:stop] = dots(grad[lo:hi], cols[start:stop], offsets[lo:hi + 1] - start, rows[start:stop] - lo)

    half = n // 2
    run_pair(lambda: bags(0, half), lambda: bags(half, n))
    return out


class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cols: torch.Tensor, rows: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cols, rows, offsets, weights, weight)
        return F.embedding_bag(cols, weight, offsets, mode="sum", per_sample_weights=weights, include_last_offset=True)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        cols, rows, offsets, weights, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_weights = _entry_dots(grad, weight, cols, rows, offsets) if ctx.needs_input_grad[3] else None
        grad_weight = per_latent_sums(rows, cols, weights, grad, weight.shape[0]) if ctx.needs_input_grad[4] else None
        return None, None, None, grad_weights, grad_weight


def sparse_decode(cols: torch.Tensor, rows: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
    """``sum_{e in bag b} weights[e] * weight[cols[e]]`` per bag ``b`` (entries of bag ``b`` are
    ``offsets[b]:offsets[b+1]``, ``rows[e] == b``): ``embedding_bag`` with a backward pass that
    splits its work (see the module docstring)."""
    return _SparseDecode.apply(cols, rows, offsets, weights, weight)
