"""An encoder product whose weight gradient skips the zeros of the output gradient.

In TopK-style SAEs only the kept latents (and dead latents in the auxiliary loss) pass a
gradient back to the pre-activations, so ``d loss / d h`` is mostly zeros. Autograd's dense
``x.T @ grad_h`` then does ``batch * d_in * d_sae`` work for a few percent of non-zeros.
:func:`sparse_grad_linear` computes the same gradient from the non-zero entries when the
gradient lives on the CPU and is sparse enough; elsewhere it uses the dense product (an
accelerator would have to stop and count the non-zeros first).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

# Use the sparse weight gradient when at most this fraction of grad_h is non-zero.
_MAX_DENSITY = 0.05


def _weight_grad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``x.T @ grad`` for ``x [n, d_in]``, ``grad [n, d_sae]``, returned as ``[d_in, d_sae]``."""
    x = x.to(grad.dtype)
    if grad.device.type == "cpu" and int(torch.count_nonzero(grad)) <= _MAX_DENSITY * grad.numel():
        rows, cols = grad.nonzero().unbind(1)
        cols, order = torch.sort(cols, stable=True)
        rows = rows[order]
        offsets = torch.searchsorted(cols, torch.arange(grad.shape[1] + 1, device=cols.device))
        # one bag per latent j: the sum over its rows b of grad[b, j] * x[b]
        per_latent = F.embedding_bag(
            rows, x, offsets, mode="sum", per_sample_weights=grad[rows, cols], include_last_offset=True
        )
        return per_latent.T
    return x.T @ grad


class _SparseGradLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return F.linear(x, weight.T, bias)  # runs under the caller's autocast, if any

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad_output.reshape(-1, grad_output.shape[-1])
        flat_x = x.reshape(-1, x.shape[-1])
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ weight.T.to(grad.dtype)).to(x.dtype).view(x.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = _weight_grad(flat_x, grad).to(weight.dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(dim=0).to(ctx.bias_dtype)
        return grad_x, grad_weight, grad_bias


def sparse_grad_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight + bias`` (``weight [d_in, d_out]``) with a sparsity-aware weight gradient."""
    return _SparseGradLinear.apply(x, weight, bias)
