"""Summary statistics of correlation matrices and of feature superposition.

Nothing here builds an ``F x F`` matrix unless it was given one: the low-rank
statistics work on the factor, and the superposition statistics walk over the
features in row blocks of ``batch_size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from synthsae.synthetic.correlation import LowRankCorrelationMatrix, validate_low_rank_correlation

if TYPE_CHECKING:
    from synthsae.synthetic.feature_dictionary import FeatureDictionary

__all__ = [
    "CorrelationMatrixStats",
    "SuperpositionStats",
    "compute_correlation_matrix_stats",
    "compute_low_rank_correlation_matrix_stats",
    "compute_superposition_stats",
]


@dataclass
class CorrelationMatrixStats:
    """Off-diagonal summary of a correlation matrix.

    Attributes:
        rms_correlation: root mean square of the off-diagonal entries.
        mean_correlation: signed mean of the off-diagonal entries.
        num_features: the matrix size ``F``.
    """

    rms_correlation: float
    mean_correlation: float
    num_features: int


def _finish(sum_sq: float, total: float, num_features: int) -> CorrelationMatrixStats:
    pairs = num_features * (num_features - 1)
    if pairs == 0:  # a single feature has no off-diagonal entries
        return CorrelationMatrixStats(0.0, 0.0, num_features)
    return CorrelationMatrixStats(
        rms_correlation=max(sum_sq, 0.0) ** 0.5 / pairs**0.5,
        mean_correlation=total / pairs,
        num_features=num_features,
    )


def compute_correlation_matrix_stats(
    correlation_matrix: torch.Tensor | LowRankCorrelationMatrix,
) -> CorrelationMatrixStats:
    """RMS and mean of the off-diagonal entries of a ``[F, F]`` correlation matrix.

    A :class:`LowRankCorrelationMatrix` is passed on to
    :func:`compute_low_rank_correlation_matrix_stats`. With ``F == 1`` both statistics are 0.

    Raises:
        ValueError: if the matrix is not square and 2-D.
    """
    if isinstance(correlation_matrix, tuple):
        return compute_low_rank_correlation_matrix_stats(correlation_matrix)
    c = correlation_matrix.detach()
    if c.dim() != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise ValueError(
            f"correlation_matrix must be a non-empty square [F, F] tensor, got shape {tuple(c.shape)}"
        )
    c = c.to(torch.float64)
    diag = torch.diagonal(c)
    sum_sq = (c.square().sum() - diag.square().sum()).item()
    total = (c.sum() - diag.sum()).item()
    return _finish(sum_sq, total, c.shape[0])


def compute_low_rank_correlation_matrix_stats(
    correlation_matrix: LowRankCorrelationMatrix | tuple[torch.Tensor, torch.Tensor],
) -> CorrelationMatrixStats:
    """The statistics of :func:`compute_correlation_matrix_stats` for ``L @ L.T + diag(d)``.

    Uses only ``[R, R]`` and ``[F]`` intermediates: the off-diagonal sum of squares is
    ``||L.T @ L||_F^2 - sum_i ||L_i||^4`` and the off-diagonal sum is
    ``||column sums of L||^2 - sum_i ||L_i||^2`` (the diagonal term only touches the diagonal).
    """
    factor, diag = correlation_matrix
    low_rank = validate_low_rank_correlation(factor, diag, int(factor.shape[0]))
    f = low_rank.correlation_factor.detach().to(torch.float64)
    row_sq = f.square().sum(dim=1)
    gram = f.T @ f
    sum_sq = (gram.square().sum() - row_sq.square().sum()).item()
    total = (f.sum(dim=0).square().sum() - row_sq.sum()).item()
    return _finish(sum_sq, total, f.shape[0])


@dataclass
class SuperpositionStats:
    """How much each feature direction overlaps with the others.

    Attributes:
        max_abs_cos_sims: ``[F]``, each feature's largest ``|cos|`` with another feature.
        percentile_abs_cos_sims: ``{p: [F]}``, each feature's ``p``-th percentile of
            ``|cos|`` with the other features (linear interpolation, itself excluded).
        mean_max_abs_cos_sim: mean of ``max_abs_cos_sims``.
        mean_percentile_abs_cos_sim: ``{p: mean of percentile_abs_cos_sims[p]}``.
        mean_abs_cos_sim: mean ``|cos|`` over the ``F (F - 1) / 2`` distinct pairs.
        num_features: ``F``.
        hidden_dim: ``D``.
    """

    max_abs_cos_sims: torch.Tensor
    percentile_abs_cos_sims: dict[float, torch.Tensor]
    mean_max_abs_cos_sim: float
    mean_percentile_abs_cos_sim: dict[float, float]
    mean_abs_cos_sim: float
    num_features: int
    hidden_dim: int


def compute_superposition_stats(
    feature_dictionary: FeatureDictionary | torch.Tensor,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    percentiles: Sequence[float] | None = None,
) -> SuperpositionStats:
    """Cosine-overlap statistics of the feature directions of a dictionary.

    Args:
        feature_dictionary: a :class:`FeatureDictionary` or its ``[F, D]`` feature vectors.
        batch_size: number of features whose similarities are computed at once; peak
            memory is about ``batch_size x F`` floats.
        device: where to compute (defaults to the vectors' device). Results are on CPU.
        percentiles: the percentiles (0-100) to report; defaults to ``[95, 99]``.

    Zero vectors count as having cosine 0 with everything.

    Raises:
        ValueError: if there are fewer than 2 features, ``batch_size <= 0`` or a
            percentile is outside [0, 100].
    """
    vectors = getattr(feature_dictionary, "feature_vectors", feature_dictionary)
    if not isinstance(vectors, torch.Tensor) or vectors.dim() != 2:
        raise TypeError(
            "feature_dictionary must be a FeatureDictionary or a 2-D [F, D] tensor, got "
            f"{type(feature_dictionary).__name__}"
        )
    num_features, hidden_dim = vectors.shape
    if num_features < 2:
        raise ValueError(
            f"superposition stats need at least 2 features, got num_features={num_features}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    pcts = [95.0, 99.0] if percentiles is None else [float(p) for p in percentiles]
    for p in pcts:
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentiles must lie in [0, 100], got {p!r}")
    keys = list(percentiles) if percentiles is not None else [95, 99]

    work_device = torch.device(device) if device is not None else vectors.device
    dtype = torch.float64 if vectors.dtype == torch.float64 else torch.float32
    v = vectors.detach().to(device=work_device, dtype=dtype)
    unit = v / v.norm(dim=1, keepdim=True).clamp(min=1e-8)

    # linear-interpolation positions among the F - 1 other features (sorted ascending)
    others = num_features - 1
    positions = torch.tensor(pcts, dtype=torch.float64, device=work_device) / 100.0 * (others - 1)
    lower = positions.floor().long()
    upper = positions.ceil().long()
    frac = (positions - lower).to(dtype)

    max_abs = torch.empty(num_features, dtype=dtype, device=work_device)
    pct_values = torch.empty(len(pcts), num_features, dtype=dtype, device=work_device)
    abs_sum = torch.zeros((), dtype=torch.float64, device=work_device)
    for start in range(0, num_features, batch_size):
        stop = min(start + batch_size, num_features)
        rows = torch.arange(stop - start, device=work_device)
        sims = (unit[start:stop] @ unit.T).abs_()
        sims[rows, rows + start] = -1.0  # below every |cos|: sorts first, never the max
        max_abs[start:stop] = sims.max(dim=1).values
        abs_sum += sims.sum(dtype=torch.float64) + (stop - start)  # undo the -1 markers
        ranked = sims.sort(dim=1).values[:, 1:]  # the F - 1 others, ascending
        lo_vals = ranked[:, lower]
        hi_vals = ranked[:, upper]
        pct_values[:, start:stop] = (lo_vals + (hi_vals - lo_vals) * frac).T
        del sims, ranked

    max_abs_cpu = max_abs.cpu()
    percentile_map = {k: pct_values[i].cpu() for i, k in enumerate(keys)}
    return SuperpositionStats(
        max_abs_cos_sims=max_abs_cpu,
        percentile_abs_cos_sims=percentile_map,
        mean_max_abs_cos_sim=max_abs_cpu.mean().item(),
        mean_percentile_abs_cos_sim={k: t.mean().item() for k, t in percentile_map.items()},
        mean_abs_cos_sim=(abs_sum / (num_features * others)).item(),
        num_features=num_features,
        hidden_dim=hidden_dim,
    )
