"""The TopK family's encoder pass: one dense product, gradients only where latents were picked.

A TopK-style training pass needs the dense pre-activations
``h = ((x - b_dec) @ W_enc + b_enc) * ||W_dec_j||`` to choose which latents to keep, but
only the picked entries (the kept latents, and the auxiliary loss's dead latents) pass a
gradient back. :class:`EncoderPass` computes ``h`` once without autograd and hands out
picked entries through :meth:`EncoderPass.gather`, whose backward pass works on those
entries only: O(picked x d_in) for ``W_enc``, O(picked) for ``b_enc`` and the decoder
norms, and one ``[d_in, d_sae]`` matrix-vector product for ``b_dec``. No ``[batch, d_sae]``
gradient is ever formed. The gradients are the same as autograd's through the dense
formula (the same sums, added in another order).

Under autocast (``TrainerConfig.autocast``) only the dense product runs in the autocast
dtype; the pre-activations are handed out, and every gradient is computed, in the SAE's
dtype.
"""

from __future__ import annotations

from typing import Any

import torch

from synthsae._work_share import run_pair
from synthsae.saes.sparse_products import per_latent_sums

__all__ = ["EncoderPass", "row_norms"]


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The active autocast dtype for ``device``'s type, or None when autocast is off."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


def _add_bias_and_scale(product: torch.Tensor, bias: torch.Tensor | None, scale: torch.Tensor | None) -> torch.Tensor:
    """``(product + bias) * scale`` in place, in one pass (computed as ``bias*scale + product*scale``)."""
    if scale is None:
        return product if bias is None else product.add_(bias)
    if bias is None:
        return product.mul_(scale)
    return torch.addcmul(bias * scale, product, scale, out=product)


# Split the dense product over two threads (the training thread and an idle prefetch
# producer, see synthsae._work_share) from this many multiply-adds on: below it, handing work
# over costs more than it saves.
_MIN_SPLIT_MACS = 1 << 26


def _dense_pre_activations(sae_in: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           scale: torch.Tensor | None, low: torch.dtype | None) -> torch.Tensor:
    """``(sae_in @ weight + bias) * scale`` as a new ``[n, d_sae]`` tensor in ``sae_in``'s dtype.

    The product runs in ``low`` precision when given. On a CPU training thread with one torch
    thread, the rows are computed in two halves, the second on an idle helper thread when
    there is one (see :func:`synthsae._work_share.run_pair`); row halves give bit-for-bit the
    same values as one product, with or without the helper.
    """
    n = sae_in.shape[0]
    out = torch.empty(n, weight.shape[1], dtype=sae_in.dtype, device=sae_in.device)
    w = weight if low is None else weight.to(low)

    def rows(lo: int, hi: int) -> None:
        if low is None:
            torch.mm(sae_in[lo:hi], w, out=out[lo:hi])
        else:
            out[lo:hi].copy_(sae_in[lo:hi].to(low) @ w)
        _add_bias_and_scale(out[lo:hi], bias, scale)

    split = sae_in.device.type == "cpu" and torch.get_num_threads() == 1 and n > 1 and \
        n * weight.shape[0] * weight.shape[1] >= _MIN_SPLIT_MACS
    if split:
        half = n // 2
        run_pair(lambda: rows(0, half), lambda: rows(half, n))
    else:
        rows(0, n)
    return out


class _RowNorms(torch.autograd.Function):
    """``||W_j||`` per row, with a one-pass backward ``W * (grad / norm)`` (0 for zero rows)."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor) -> torch.Tensor:
        norms = torch.linalg.vector_norm(weight, dim=-1)
        ctx.save_for_backward(weight, norms)
        return norms

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        weight, norms = ctx.saved_tensors
        coef = torch.where(norms > 0, grad / norms, torch.zeros_like(norms))
        return weight * coef.unsqueeze(-1)


def row_norms(weight: torch.Tensor) -> torch.Tensor:
    """``weight.norm(dim=-1)`` for a 2-D ``weight``, with a cheaper backward pass."""
    return _RowNorms.apply(weight)


class _Gather(torch.autograd.Function):
    """``hidden_pre[rows, cols]`` with gradients for ``(W_enc, b_enc, b_dec, norms)``."""

    @staticmethod
    def forward(ctx: Any, enc: EncoderPass, rows: torch.Tensor, cols: torch.Tensor, W_enc: torch.Tensor,
                b_enc: torch.Tensor | None, b_dec: torch.Tensor | None, norms: torch.Tensor | None) -> torch.Tensor:
        values = enc.hidden_pre.reshape(-1)[rows * enc.d_sae + cols]
        ctx.enc = enc
        ctx.save_for_backward(rows, cols, values)
        return values

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        enc: EncoderPass = ctx.enc
        rows, cols, values = ctx.saved_tensors
        need_w, need_b, need_dec, need_norms = ctx.needs_input_grad[3:7]
        grad = grad.to(values.dtype)
        grad_norms, grad_raw = None, grad
        if enc.norm_values is not None:  # hidden_pre = raw * norms
            norms = enc.norm_values.index_select(0, cols)
            if need_norms:  # d/d norm = raw, recovered as hidden_pre / norm (within 2 ulp)
                grad_norms = values.new_zeros(enc.d_sae).index_add_(0, cols, grad * (values / norms))
            grad_raw = grad * norms
        grad_w = per_latent_sums(rows, cols, grad_raw, enc.sae_in, enc.d_sae, transposed=True) if need_w else None
        grad_bias = None
        if need_b or need_dec:
            grad_bias = grad_raw.new_zeros(enc.d_sae).index_add_(0, cols, grad_raw)
        grad_dec = -(enc.W_enc_values @ grad_bias) if need_dec else None
        return None, None, None, grad_w, grad_bias if need_b else None, grad_dec, grad_norms


class EncoderPass:
    """Pre-activations of one batch, computed once, with sparse-gradient access to entries.

    Args:
        x: the encoder input ``[n, d_in]`` after the SAE's input processing (no gradient).
        W_enc, b_enc: the encoder (``b_enc`` may be None).
        b_dec: subtracted from ``x`` first, or None.
        norms: ``||W_dec_j||`` (differentiable) to multiply the pre-activations by, or None.

    Attributes:
        hidden_pre: ``[n, d_sae]`` pre-activations (detached; times ``norms`` if given).
    """

    def __init__(self, x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor | None,
                 b_dec: torch.Tensor | None, norms: torch.Tensor | None) -> None:
        self.W_enc, self.b_enc, self.b_dec, self.norms = W_enc, b_enc, b_dec, norms
        self.d_sae = W_enc.shape[1]
        with torch.no_grad():
            sae_in = x.detach() if b_dec is None else x.detach() - b_dec.detach()
            self.sae_in = sae_in
            self.W_enc_values = W_enc.detach()
            low = _autocast_dtype(sae_in.device)
            self.norm_values = None if norms is None else norms.detach()
            with torch.autocast(sae_in.device.type, enabled=False):
                self.hidden_pre = _dense_pre_activations(sae_in, self.W_enc_values,
                                                         None if b_enc is None else b_enc.detach(),
                                                         self.norm_values, low)

    def gather(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """``hidden_pre[rows, cols]`` (1-D), differentiable in the encoder's parameters."""
        return _Gather.apply(self, rows, cols, self.W_enc, self.b_enc, self.b_dec, self.norms)

    def gather_flat(self, flat_indices: torch.Tensor) -> torch.Tensor:
        """:meth:`gather` by indices into the flattened ``[n * d_sae]`` matrix."""
        rows = torch.div(flat_indices, self.d_sae, rounding_mode="floor")
        return self.gather(rows, flat_indices - rows * self.d_sae)
