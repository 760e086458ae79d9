"""Feature correlation matrices: full, random and low-rank (placeholder header; see below)."""

from __future__ import annotations

from typing import NamedTuple

import torch


class LowRankCorrelationMatrix(NamedTuple):
    """A correlation matrix ``factor @ factor.T + diag(diag)`` kept in factored form.

    ``correlation_factor`` is ``[F, R]`` and ``correlation_diag`` is ``[F]`` (all > 0);
    the implied matrix has a unit diagonal when ``diag = 1 - rowwise sum of factor**2``.
    """

    correlation_factor: torch.Tensor
    correlation_diag: torch.Tensor


CorrelationMatrixInput = torch.Tensor | LowRankCorrelationMatrix | tuple[torch.Tensor, torch.Tensor]
