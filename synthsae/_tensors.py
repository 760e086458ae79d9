"""Small tensor helpers shared by the data world and the evals (foundation: no synthsae imports)."""

from __future__ import annotations

import torch

__all__ = ["unit_rows"]

_NORM_EPS = 1e-8
"""Rows shorter than this are divided by it instead of their norm, so zero rows stay zero
(far below the norm of any row that carries a direction in float32)."""


def unit_rows(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The rows of the 2-D tensor ``x`` scaled to unit L2 norm, detached, in ``dtype`` if given.

    Always a new tensor: ``x`` is never changed.
    """
    x = x.detach() if dtype is None else x.detach().to(dtype)
    return x / x.norm(dim=1, keepdim=True).clamp_min(_NORM_EPS)
