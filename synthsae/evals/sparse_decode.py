"""Decode sparse latents without the dense ``[batch, d_sae] @ [d_sae, d_in]`` product.

An eval decodes every batch of latents to measure explained variance and shrinkage. With
4,096 latents of which ~25 fire per row, ``sae.decode(z)`` spends almost all its time
multiplying zeros: 3.2 G multiply-adds per 1,024 rows, against 20 M for the non-zero
entries. :class:`SparseDecodeShortcut` treats the SAE's decode as the affine map it is
for every built-in architecture, ``decode(z) = z @ W_eff + b_eff``, reads ``W_eff`` and
``b_eff`` off the SAE by decoding the unit latents and the zero latent (so decoder-norm
rescaling, scalers inside ``decode`` and the like are included), and then decodes each
batch as a sparse product.

The shortcut never trusts that assumption: on the first batch it compares its result
with ``sae.decode(z)`` and, if they differ beyond float rounding (a decode that is not
affine in ``z``, or that keeps per-batch state), or if anything goes wrong while building
``W_eff``, it switches itself off and every batch goes through ``sae.decode``. Batches
denser than :data:`_MAX_DENSITY` also go through ``sae.decode``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["SparseDecodeShortcut"]

# A sparse product beats the dense one (MKL, one core) below roughly 1 non-zero in 16.
_MAX_DENSITY = 1 / 16
# Building W_eff decodes d_sae unit rows, about (d_sae / batch) batches' worth of dense
# decodes; it pays for itself when the eval has several times that many batches.
_MIN_BATCHES_PER_BUILD = 4
# fp32 sums of a few dozen terms in another order differ by ~1e-7 relative; a decode that
# is not affine in z differs by far more.
_RELATIVE_TOLERANCE = 1e-4


class SparseDecodeShortcut:
    """``decode(z)`` for an eval's batches, through a sparse product where that is exact.

    Args:
        sae: the SAE (anything with ``W_dec [d_sae, d_in]`` and ``decode``).
        num_batches: how many batches the eval will decode (the shortcut only turns on
            when building it pays off).
        batch_size: rows per batch.
    """

    def __init__(self, sae: Any, num_batches: int, batch_size: int) -> None:
        self.sae = sae
        d_sae = sae.W_dec.shape[0]
        self.enabled = num_batches >= _MIN_BATCHES_PER_BUILD * math.ceil(d_sae / max(batch_size, 1))
        self._weights: torch.Tensor | None = None  # W_eff [d_sae, d_in]
        self._bias: torch.Tensor | None = None  # b_eff [1, d_in]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """The SAE's reconstruction of the latents ``z [batch, d_sae]``."""
        if not self._applies_to(z):
            return self.sae.decode(z)
        if self._weights is None:
            return self._first_batch(z)
        return self._sparse_decode(z)

    def _applies_to(self, z: torch.Tensor) -> bool:
        if not self.enabled or z.dim() != 2 or z.layout != torch.strided:
            return False
        if z.dtype not in (torch.float32, torch.float64) or z.device.type != "cpu":
            return False  # on a GPU the dense product is cheap; half-precision sparse kernels are patchy
        return torch.count_nonzero(z).item() <= _MAX_DENSITY * z.numel()

    def _sparse_decode(self, z: torch.Tensor) -> torch.Tensor:
        assert self._weights is not None and self._bias is not None
        return torch.sparse.mm(z.to_sparse(), self._weights).add_(self._bias)

    def _first_batch(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``z`` both ways; keep the shortcut only if the two agree."""
        expected = self.sae.decode(z)
        try:
            self._build(z)
            got = self._sparse_decode(z)
            scale = expected.abs().max().item() + 1.0
            agrees = got.shape == expected.shape and (got - expected).abs().max().item() <= _RELATIVE_TOLERANCE * scale
        except Exception:  # a decode with per-batch state or fixed shapes: not for the shortcut
            agrees = False
        if not agrees:
            self.enabled, self._weights, self._bias = False, None, None
        return expected

    def _build(self, z: torch.Tensor) -> None:
        d_sae = z.shape[1]
        bias = self.sae.decode(z.new_zeros(1, d_sae))
        rows = []
        step = max(1, z.shape[0])
        for start in range(0, d_sae, step):
            stop = min(start + step, d_sae)
            unit = torch.zeros(stop - start, d_sae, dtype=z.dtype, device=z.device)
            unit[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            rows.append(self.sae.decode(unit) - bias)
        self._weights = torch.cat(rows).contiguous()
        self._bias = bias
