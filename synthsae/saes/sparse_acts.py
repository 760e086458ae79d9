"""Sparse latent activations for the TopK family, and the TopK dead-latent auxiliary loss.

TopK-style SAEs keep a few latents per row. Their training pass keeps the kept entries
as a CSR-like list (row offsets, latent index, value) and decodes it with
``embedding_bag``: O(nnz * d_in) work instead of a dense ``[B, d_sae] x [d_sae, d_in]``
product, with the same result and gradients. Nothing here reads a value back to the host
on an accelerator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from synthsae.saes.sparse_products import sparse_decode


def is_known_empty(mask: torch.Tensor) -> bool:
    """True when ``mask`` is on the CPU and has no True entry.

    Only CPU tensors are inspected: reading a CUDA value would stall the device, so there
    callers compute a (zero) loss instead of skipping it.
    """
    return mask.device.type == "cpu" and not bool(mask.any())


@dataclass
class SparseActivations:
    """Kept latents of a ``[n_rows, d_sae]`` activation matrix, row by row.

    ``cols[offsets[r]:offsets[r+1]]`` are row ``r``'s latent indices and ``values`` the
    matching activations (which carry gradients).
    """

    cols: torch.Tensor  # [nnz] long
    values: torch.Tensor  # [nnz]
    offsets: torch.Tensor  # [n_rows + 1] long
    rows: torch.Tensor  # [nnz] long, row of each entry (non-decreasing)
    n_rows: int
    d_sae: int

    @classmethod
    def from_row_topk(cls, values: torch.Tensor, indices: torch.Tensor, d_sae: int) -> SparseActivations:
        """From per-row ``topk`` output of shape ``[n_rows, k]``."""
        n_rows, k = indices.shape
        device = indices.device
        return cls(
            cols=indices.reshape(-1),
            values=values.reshape(-1),
            offsets=torch.arange(n_rows + 1, device=device) * k,
            rows=torch.arange(n_rows, device=device).repeat_interleave(k),
            n_rows=n_rows,
            d_sae=d_sae,
        )

    @classmethod
    def from_flat(
        cls, values: torch.Tensor, flat_indices: torch.Tensor, n_rows: int, d_sae: int
    ) -> SparseActivations:
        """From indices into the flattened ``[n_rows * d_sae]`` matrix (any order)."""
        flat_indices, order = torch.sort(flat_indices)
        return cls.from_sorted_flat(values[order], flat_indices, n_rows, d_sae)

    @classmethod
    def from_sorted_flat(
        cls, values: torch.Tensor, flat_indices: torch.Tensor, n_rows: int, d_sae: int
    ) -> SparseActivations:
        """From increasing indices into the flattened ``[n_rows * d_sae]`` matrix."""
        rows = torch.div(flat_indices, d_sae, rounding_mode="floor")
        bounds = torch.arange(n_rows + 1, device=rows.device)
        offsets = torch.searchsorted(rows, bounds)
        return cls(flat_indices - rows * d_sae, values, offsets, rows, n_rows, d_sae)

    def to_dense(self) -> torch.Tensor:
        """The ``[n_rows, d_sae]`` dense matrix (differentiable in ``values``)."""
        dense = self.values.new_zeros(self.n_rows * self.d_sae)
        # in place into the fresh zeros: no second [n_rows * d_sae] buffer
        dense.index_put_((self.rows * self.d_sae + self.cols,), self.values)
        return dense.view(self.n_rows, self.d_sae)

    @torch.no_grad()
    def fire_counts(self) -> torch.Tensor:
        """``[d_sae]`` float32: on how many rows each latent is non-zero."""
        fired = (self.values != 0).to(torch.float32)
        return fired.new_zeros(self.d_sae).index_add_(0, self.cols, fired)

    def matmul(
        self,
        W_dec: torch.Tensor,
        scale: torch.Tensor | None = None,
        col_range: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """``(dense * scale) @ W_dec`` for rows of ``W_dec`` ``[d_sae, d_out]``; no bias.

        ``scale`` multiplies latent ``j`` (e.g. ``1/||W_dec_j||``); ``col_range=(lo, hi)``
        keeps only latents ``lo <= j < hi``.
        """
        weights = self.values
        if scale is not None:  # index_select: its backward is a fast index_add
            weights = weights * scale.index_select(0, self.cols)
        if col_range is not None:
            lo, hi = col_range
            weights = weights * ((self.cols >= lo) & (self.cols < hi)).to(weights.dtype)
        return sparse_decode(self.cols, self.rows, self.offsets, weights.to(W_dec.dtype), W_dec)

    def min_positive(self) -> torch.Tensor:
        """Smallest positive kept value as a 0-d tensor (``inf`` if there is none)."""
        positive = torch.where(self.values > 0, self.values, torch.full_like(self.values, torch.inf))
        if positive.numel() == 0:
            return self.values.new_tensor(torch.inf)
        return positive.min()


#: ``gather(rows, cols)`` -> the differentiable pre-activations at those entries (1-D); see
#: :meth:`synthsae.saes.sparse_encoder.EncoderPass.gather`. Without one, values are indexed
#: out of ``hidden_pre`` itself (autograd then forms a dense gradient for it).
Gather = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def row_topk(hidden_pre: torch.Tensor, k: int, gather: Gather | None = None) -> SparseActivations:
    """Per row, the ``k`` largest pre-activations, passed through ReLU."""
    if gather is None:
        values, indices = torch.topk(hidden_pre, k, dim=-1, sorted=False)
        return SparseActivations.from_row_topk(F.relu(values), indices, hidden_pre.shape[-1])
    indices = torch.topk(hidden_pre.detach(), k, dim=-1, sorted=False).indices
    acts = SparseActivations.from_row_topk(indices.new_empty(0), indices, hidden_pre.shape[-1])
    acts.values = F.relu(gather(acts.rows, acts.cols))
    return acts


def row_abs_topk(hidden_pre: torch.Tensor, k: int, gather: Gather | None = None) -> SparseActivations:
    """Per row, the ``k`` pre-activations of largest magnitude, with their signs (no ReLU)."""
    indices = torch.topk(hidden_pre.detach().abs(), k, dim=-1, sorted=False).indices
    if gather is None:
        return SparseActivations.from_row_topk(hidden_pre.gather(-1, indices), indices, hidden_pre.shape[-1])
    acts = SparseActivations.from_row_topk(indices.new_empty(0), indices, hidden_pre.shape[-1])
    acts.values = gather(acts.rows, acts.cols)
    return acts


# CPU batch top-k: a strided sample of the batch gives a cut-off below which (with a 1.5x
# margin) no kept value lies; only entries above it go through the exact top-k. The stride is
# odd so that the sample visits every column of a [rows, 2^m] matrix. At 25,600 kept entries
# about 200 sampled values lie above the true threshold and the cut-off is the ~320th largest
# sampled value: 8 standard deviations of margin (and a miss only costs the exact fallback).
_SAMPLE_STRIDE = 127
_SAMPLE_MARGIN = 1.5
_MIN_PREFILTER_SIZE = 1 << 16


@torch.no_grad()
def flat_topk_indices(flat: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Indices of the ``n_keep`` largest entries of a 1-D tensor (any order).

    Same selection as ``torch.topk`` (up to ties). On the CPU, large inputs are first
    narrowed to the entries above a cut-off estimated from a strided sample; if fewer than
    ``n_keep`` entries pass it, the plain top-k runs instead, so the result is always exact.
    """
    numel = flat.numel()
    if flat.device.type != "cpu" or numel < _MIN_PREFILTER_SIZE or n_keep * 8 > numel:
        return torch.topk(flat, n_keep, sorted=False).indices
    sample = flat[::_SAMPLE_STRIDE]
    n_sample = min(sample.numel(), math.ceil(_SAMPLE_MARGIN * n_keep / _SAMPLE_STRIDE) + 16)
    cutoff = torch.topk(sample, n_sample, sorted=False).values.min()
    candidates = (flat >= cutoff).nonzero().squeeze(1)
    if candidates.numel() < n_keep:
        return torch.topk(flat, n_keep, sorted=False).indices
    return candidates[torch.topk(flat[candidates], n_keep, sorted=False).indices]


def batch_topk(hidden_pre: torch.Tensor, k: float, gather: Gather | None = None) -> SparseActivations:
    """The ``int(k * n_rows)`` largest ReLU activations of the whole ``[n_rows, d_sae]`` batch.

    Selecting on the pre-activations and applying ReLU to the kept values gives the same
    latents as selecting on ``ReLU(h)``, without a dense ReLU pass.
    """
    n_rows, d_sae = hidden_pre.shape
    n_keep = min(int(k * n_rows), n_rows * d_sae)
    flat = hidden_pre.reshape(-1)
    flat_indices = flat_topk_indices(flat.detach(), n_keep)
    if gather is None:
        return SparseActivations.from_flat(F.relu(flat[flat_indices]), flat_indices, n_rows, d_sae)
    acts = SparseActivations.from_sorted_flat(flat.new_empty(0), torch.sort(flat_indices).values, n_rows, d_sae)
    acts.values = F.relu(gather(acts.rows, acts.cols))
    return acts


def topk_aux_loss(
    hidden_pre: torch.Tensor,
    dead_mask: torch.Tensor | None,
    residual: torch.Tensor,
    W_dec: torch.Tensor,
    scale: torch.Tensor | None,
    k_aux: int,
    read_dead_count: bool | None = None,
    by_magnitude: bool = False,
    gather: Gather | None = None,
) -> torch.Tensor:
    """Reconstruction of ``residual`` by the top ``k_aux`` dead latents of each row.

    The top latents are those with the largest pre-activations, or with
    ``by_magnitude`` the largest ``|pre-activation|`` (AbsTopK); either way they
    contribute their signed pre-activations.
    ``hidden_pre [n, m]`` may be negative (no ReLU); ``W_dec [m, d_out]`` gives the
    latents' directions, optionally multiplied per latent by ``scale``; no bias is added.
    Returns ``min(n_dead / k_aux, 1) * mean_b ||recon - residual||^2`` (0 when no latent is
    dead). On the CPU the dead count is read to skip the work; elsewhere the loss is
    computed with a fixed ``k`` and masked, so the device never waits
    (``read_dead_count`` forces either way; both give the same value). ``gather`` (column
    indices relative to ``hidden_pre``) supplies differentiable values for the picked entries.
    """
    zero = residual.new_zeros(())
    if dead_mask is None or k_aux <= 0 or is_known_empty(dead_mask):
        return zero
    dead_mask = dead_mask.to(device=hidden_pre.device, dtype=torch.bool)
    n_latents = hidden_pre.shape[-1]
    if read_dead_count is None:
        read_dead_count = dead_mask.device.type == "cpu"
    h = hidden_pre if gather is None else hidden_pre.detach()
    if read_dead_count:
        # Work on the dead columns only: cost grows with the number of dead latents.
        dead_columns = dead_mask.nonzero().squeeze(1)
        n_dead = dead_columns.numel()
        scale_factor: torch.Tensor | float = min(n_dead / k_aux, 1.0)
        key = h.index_select(-1, dead_columns)
        rank = key.abs() if by_magnitude else key
        local = torch.topk(rank.detach(), min(k_aux, n_dead), dim=-1, sorted=False).indices
        indices = dead_columns[local]
        values = key.gather(-1, local)
    else:
        scale_factor = (dead_mask.sum() / k_aux).clamp(max=1.0)
        key = h.abs() if by_magnitude else h
        masked = torch.where(dead_mask, key, torch.full_like(key, -torch.inf))
        indices = torch.topk(masked.detach(), min(k_aux, n_latents), dim=-1, sorted=False).indices
        values = h.gather(-1, indices)
    if gather is not None:
        rows = torch.arange(indices.shape[0], device=indices.device).repeat_interleave(indices.shape[1])
        values = gather(rows, indices.reshape(-1)).view(indices.shape)
    if not read_dead_count:
        values = torch.where(dead_mask[indices], values, torch.zeros_like(values))
    weights = values if scale is None else values * scale.index_select(0, indices.reshape(-1)).view(indices.shape)
    recon = F.embedding_bag(indices, W_dec, mode="sum", per_sample_weights=weights.to(W_dec.dtype))
    return scale_factor * (recon - residual).pow(2).sum(dim=-1).mean()
