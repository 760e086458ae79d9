"""Feature correlation matrices: hand-specified, random dense, random low-rank.

Correlations shape only *which* features fire together (through a Gaussian
copula in the activation generator); the magnitudes stay independent. A dense
matrix must be a proper correlation matrix (symmetric, unit diagonal, positive
definite); a low-rank one is kept as ``factor @ factor.T + diag(diag)``.
"""

from __future__ import annotations

import bisect
import logging
import random
from numbers import Integral
from typing import Any, NamedTuple

import torch

from synthsae.config_values import check_float, check_int, check_probability

__all__ = [
    "CorrelationMatrixInput",
    "LowRankCorrelationMatrix",
    "create_correlation_matrix_from_correlations",
    "generate_random_correlation_matrix",
    "generate_random_correlations",
    "generate_random_low_rank_correlation_matrix",
    "validate_correlation_matrix",
    "validate_low_rank_correlation",
]

logger = logging.getLogger(__name__)

# eigenvalues below -_REPAIR_TOLERANCE trigger a repair, which floors them at _EIGEN_FLOOR
_REPAIR_TOLERANCE = 1e-6
_EIGEN_FLOOR = 1e-6
# rows of a low-rank factor are shrunk so that their implied diagonal share is at least this
_MIN_LOW_RANK_DIAG = 0.01


class LowRankCorrelationMatrix(NamedTuple):
    """A correlation matrix ``factor @ factor.T + diag(diag)`` kept in factored form.

    ``correlation_factor`` is ``[F, R]`` and ``correlation_diag`` is ``[F]`` (all > 0);
    the implied matrix has a unit diagonal when ``diag = 1 - rowwise sum of factor**2``.
    """

    correlation_factor: torch.Tensor
    correlation_diag: torch.Tensor


CorrelationMatrixInput = torch.Tensor | LowRankCorrelationMatrix | tuple[torch.Tensor, torch.Tensor]


# ----------------------------------------------------------------- validation
def _check_random_params(
    positive_ratio: float,
    uncorrelated_ratio: float,
    min_correlation_strength: float,
    max_correlation_strength: float,
) -> tuple[float, float, float, float]:
    pos = check_probability("positive_ratio", positive_ratio, allow_zero=True)
    unc = check_probability("uncorrelated_ratio", uncorrelated_ratio, allow_zero=True)
    lo = check_float("min_correlation_strength", min_correlation_strength, at_least=0.0)
    hi = check_float("max_correlation_strength", max_correlation_strength, at_most=1.0)
    if lo > hi:
        raise ValueError(
            "min_correlation_strength must be <= max_correlation_strength, got "
            f"min_correlation_strength={lo!r}, max_correlation_strength={hi!r}"
        )
    return pos, unc, lo, hi


def validate_correlation_matrix(matrix: torch.Tensor, num_features: int) -> None:
    """Check that ``matrix`` is a usable ``[F, F]`` correlation matrix.

    It must be a finite floating tensor, square with ``num_features`` rows, symmetric,
    with an all-close-to-1 diagonal, and positive definite (a Cholesky factorisation,
    done in float64, must succeed).

    Raises:
        TypeError: if ``matrix`` is not a floating-point tensor.
        ValueError: naming ``correlation_matrix`` and the failed property.
    """
    if not isinstance(matrix, torch.Tensor) or not matrix.is_floating_point():
        raise TypeError(
            "correlation_matrix must be a floating-point torch.Tensor, got "
            f"{getattr(matrix, 'dtype', type(matrix).__name__)}"
        )
    shape = tuple(matrix.shape)
    if shape != (num_features, num_features):
        raise ValueError(
            f"correlation_matrix must have shape ({num_features}, {num_features}) "
            f"for num_features={num_features}, got {shape}"
        )
    m = matrix.detach().to(torch.float64)
    if not torch.isfinite(m).all():
        raise ValueError("correlation_matrix must be finite, but it contains NaN or infinity")
    asym = (m - m.T).abs().max().item() if num_features else 0.0
    if asym > 1e-5:
        raise ValueError(
            f"correlation_matrix must be symmetric, got max |C - C.T| = {asym:.3g}"
        )
    diag = torch.diagonal(m)
    if not torch.allclose(diag, torch.ones_like(diag), atol=1e-5, rtol=1e-5):
        worst = (diag - 1).abs().argmax().item()
        raise ValueError(
            "correlation_matrix must have a unit diagonal, got "
            f"correlation_matrix[{worst}, {worst}] = {diag[worst].item():.6g}"
        )
    _, info = torch.linalg.cholesky_ex(0.5 * (m + m.T))
    if int(info.item()) != 0:
        raise ValueError(
            "correlation_matrix must be positive definite, but its Cholesky factorisation "
            f"failed at leading minor {int(info.item())}; repair it, for example with "
            "create_correlation_matrix_from_correlations"
        )


def validate_low_rank_correlation(
    factor: Any, diag: torch.Tensor | None, num_features: int
) -> LowRankCorrelationMatrix:
    """Check a low-rank correlation ``(factor [F, R], diag [F])`` and return it as a NamedTuple.

    ``factor`` may also be a ``(factor, diag)`` tuple or a :class:`LowRankCorrelationMatrix`,
    in which case ``diag`` must be ``None``. The factor must be 2-D with
    ``num_features`` rows, ``diag`` must have shape ``[num_features]`` with every entry
    ``> 0``, and both must be finite floating tensors.

    Raises:
        TypeError: if the pieces are not floating tensors or the tuple is malformed.
        ValueError: naming ``correlation_factor`` / ``correlation_diag`` and the problem.
    """
    if isinstance(factor, tuple):
        if diag is not None or len(factor) != 2:
            raise TypeError(
                "a low-rank correlation_matrix must be a (correlation_factor, correlation_diag) "
                f"pair, got a tuple of length {len(factor)}"
            )
        factor, diag = factor
    for name, value in (("correlation_factor", factor), ("correlation_diag", diag)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(
                f"{name} must be a floating-point torch.Tensor, got "
                f"{getattr(value, 'dtype', type(value).__name__)}"
            )
    assert isinstance(factor, torch.Tensor) and isinstance(diag, torch.Tensor)
    if factor.dim() != 2 or factor.shape[0] != num_features:
        raise ValueError(
            f"correlation_factor must be 2-D with {num_features} rows (num_features), "
            f"got shape {tuple(factor.shape)}"
        )
    if tuple(diag.shape) != (num_features,):
        raise ValueError(
            f"correlation_diag must have shape ({num_features},), got {tuple(diag.shape)}"
        )
    if not torch.isfinite(factor).all():
        raise ValueError("correlation_factor must be finite, but it contains NaN or infinity")
    if not torch.isfinite(diag).all():
        raise ValueError("correlation_diag must be finite, but it contains NaN or infinity")
    if num_features and not (diag > 0).all():
        worst = diag.argmin().item()
        raise ValueError(
            "correlation_diag must be > 0 everywhere, got "
            f"correlation_diag[{worst}] = {diag[worst].item():.6g}"
        )
    if factor.device != diag.device:
        raise ValueError(
            "correlation_factor and correlation_diag must be on the same device, got "
            f"{factor.device} and {diag.device}"
        )
    return LowRankCorrelationMatrix(factor, diag)


# --------------------------------------------------------------------- repair
def _repair_to_correlation(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetrise and, if it is not PSD, project ``matrix`` onto a nearby correlation matrix.

    Negative eigenvalues are floored at a small positive value, the matrix is rebuilt,
    rescaled to a unit diagonal and its diagonal set to exactly 1. Works in float64.
    """
    m = matrix.to(torch.float64)
    m = 0.5 * (m + m.T)
    if m.shape[0] == 0 or torch.linalg.eigvalsh(m).min().item() >= -_REPAIR_TOLERANCE:
        return m
    eigenvalues, eigenvectors = torch.linalg.eigh(m)
    eigenvalues = eigenvalues.clamp(min=_EIGEN_FLOOR)
    rebuilt = (eigenvectors * eigenvalues) @ eigenvectors.T
    scale = torch.diagonal(rebuilt).clamp(min=1e-8).rsqrt()
    rebuilt = rebuilt * scale[:, None] * scale[None, :]
    rebuilt = 0.5 * (rebuilt + rebuilt.T)
    rebuilt.fill_diagonal_(1.0)
    return rebuilt


# ------------------------------------------------------------------ builders
def create_correlation_matrix_from_correlations(
    num_features: int,
    correlations: dict[tuple[int, int], float] | None = None,
    default_correlation: float = 0.0,
) -> torch.Tensor:
    """A float32 ``[F, F]`` correlation matrix from a sparse description.

    Starts from ``default_correlation`` on every off-diagonal entry and 1 on the
    diagonal, then sets each listed pair ``(i, j)`` (and ``(j, i)``) to its value.
    If the result is not positive semi-definite (smallest eigenvalue below -1e-6),
    it is repaired: eigenvalues are floored at 1e-6, the matrix is rebuilt and
    rescaled to a unit diagonal. Repair can move the requested values.

    Raises:
        ValueError: for ``num_features <= 0``, out-of-range or diagonal pairs, and
            correlations outside ``[-1, 1]``.
    """
    n = check_int("num_features", num_features, at_least=1)
    default = check_float("default_correlation", default_correlation, at_least=-1.0, at_most=1.0)
    requested: dict[tuple[int, int], float] = {}  # (low, high) -> value; a later entry wins
    for pair, value in (correlations or {}).items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"correlations keys must be (i, j) pairs, got {pair!r}")
        i, j = pair
        if isinstance(i, bool) or isinstance(j, bool) or not (isinstance(i, Integral) and isinstance(j, Integral)):
            raise ValueError(f"correlations pair {pair!r} must hold two int feature indices")
        i, j = int(i), int(j)
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"correlations pair {pair!r} is out of range for num_features={n}")
        if i == j:
            raise ValueError(f"correlations pair {pair!r} is on the diagonal, which is fixed at 1")
        v = check_float(f"correlations[{pair!r}]", value, at_least=-1.0, at_most=1.0)
        requested[(min(i, j), max(i, j))] = v
    matrix = torch.full((n, n), default, dtype=torch.float64)
    if requested:
        low, high = torch.tensor(list(requested), dtype=torch.long).unbind(1)
        values = torch.tensor(list(requested.values()), dtype=torch.float64)
        matrix[low, high] = values
        matrix[high, low] = values
    matrix.fill_diagonal_(1.0)
    return _repair_to_correlation(matrix).to(torch.float32)


def generate_random_correlations(
    num_features: int,
    positive_ratio: float = 0.5,
    uncorrelated_ratio: float = 0.3,
    min_correlation_strength: float = 0.1,
    max_correlation_strength: float = 0.8,
    seed: int | None = None,
) -> dict[tuple[int, int], float]:
    """Random pairwise correlations ``{(i, j): value}`` with ``i < j`` and exact counts.

    Of the ``P = F (F - 1) / 2`` pairs, ``int(P * uncorrelated_ratio)`` are left
    uncorrelated and the rest are chosen at random; ``int(n_correlated * positive_ratio)``
    of those are positive, the others negative, in shuffled order. Strengths are
    uniform in ``[min_correlation_strength, max_correlation_strength]``. Pairs whose
    value comes out as exactly 0 are omitted. Uses ``random.Random(seed)``.

    Raises:
        ValueError: for ``num_features <= 0``, ratios outside [0, 1], or bad strengths.
    """
    n = check_int("num_features", num_features, at_least=1)
    pos, unc, lo, hi = _check_random_params(
        positive_ratio, uncorrelated_ratio, min_correlation_strength, max_correlation_strength
    )
    rng = random.Random(seed)
    num_pairs = n * (n - 1) // 2
    num_correlated = num_pairs - int(num_pairs * unc)
    chosen = rng.sample(range(num_pairs), num_correlated)
    num_positive = int(num_correlated * pos)
    signs = [1.0] * num_positive + [-1.0] * (num_correlated - num_positive)
    rng.shuffle(signs)
    # row i's pairs (i, i+1..n-1) occupy flat positions [starts[i], starts[i + 1])
    starts = [i * (2 * n - i - 1) // 2 for i in range(n)]
    result: dict[tuple[int, int], float] = {}
    for flat, sign in zip(chosen, signs):
        value = sign * rng.uniform(lo, hi)
        if value == 0.0:
            continue
        i = bisect.bisect_right(starts, flat) - 1
        j = i + 1 + flat - starts[i]
        result[(i, j)] = value
    return result


def generate_random_correlation_matrix(
    num_features: int,
    positive_ratio: float = 0.5,
    uncorrelated_ratio: float = 0.3,
    min_correlation_strength: float = 0.1,
    max_correlation_strength: float = 0.8,
    seed: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A random ``[F, F]`` correlation matrix, each pair decided independently.

    For every pair ``i < j``: it is correlated when a uniform draw is
    ``>= uncorrelated_ratio``, positive when a second draw is ``< positive_ratio``, and
    its strength is uniform in ``[min, max]``. The matrix is mirrored, given a unit
    diagonal and repaired if it is not positive semi-definite. ``num_features <= 1``
    gives the identity. With a ``seed`` the draws use a private generator on
    ``device`` (so the values depend on the device type).

    Raises:
        ValueError: for ``num_features <= 0``, ratios outside [0, 1], or bad strengths.
    """
    n = check_int("num_features", num_features, at_least=1)
    pos, unc, lo, hi = _check_random_params(
        positive_ratio, uncorrelated_ratio, min_correlation_strength, max_correlation_strength
    )
    device = torch.device(device)
    if n <= 1:
        return torch.eye(n, device=device, dtype=dtype)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    draws = torch.rand(3, n, n, generator=generator, device=device, dtype=torch.float32)
    correlated = draws[0] >= unc
    sign = torch.where(draws[1] < pos, 1.0, -1.0)
    strength = lo + (hi - lo) * draws[2]
    upper = torch.triu(correlated * sign * strength, diagonal=1).to(torch.float64)
    matrix = upper + upper.T
    matrix.fill_diagonal_(1.0)
    return _repair_to_correlation(matrix).to(dtype)


def generate_random_low_rank_correlation_matrix(
    num_features: int,
    rank: int,
    correlation_scale: float = 0.075,
    seed: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LowRankCorrelationMatrix:
    """A random low-rank correlation ``factor @ factor.T + diag(diag)`` with unit diagonal.

    ``factor = correlation_scale * N(0, 1)[F, rank]`` and ``diag = 1 - rowwise sum of
    factor**2``. Rows whose ``diag`` would fall below 0.01 are shrunk so that it is
    exactly 0.01, and a warning gives the number of such rows. ``correlation_scale=0``
    gives the identity. Nothing of size ``F x F`` is built.

    Raises:
        ValueError: for ``num_features <= 0``, ``rank <= 0`` or ``correlation_scale < 0``.
    """
    n = check_int("num_features", num_features, at_least=1)
    r = check_int("rank", rank, at_least=1)
    scale = check_float("correlation_scale", correlation_scale, at_least=0.0)
    device = torch.device(device)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    work = torch.float64 if dtype == torch.float64 else torch.float32
    factor = torch.randn(n, r, generator=generator, device=device, dtype=work) * scale
    row_sq = factor.square().sum(dim=1)
    too_big = row_sq > 1.0 - _MIN_LOW_RANK_DIAG
    num_capped = int(too_big.sum().item())
    if num_capped:
        shrink = torch.where(
            too_big, ((1.0 - _MIN_LOW_RANK_DIAG) / row_sq).sqrt(), torch.ones_like(row_sq)
        )
        factor = factor * shrink[:, None]
        logger.warning(
            "generate_random_low_rank_correlation_matrix: %d of %d rows of the correlation "
            "factor were shrunk so that their diagonal term is %.2g (correlation_scale=%g, rank=%d)",
            num_capped,
            n,
            _MIN_LOW_RANK_DIAG,
            scale,
            r,
        )
    diag = (1.0 - factor.square().sum(dim=1)).clamp(min=_MIN_LOW_RANK_DIAG)
    return LowRankCorrelationMatrix(factor.to(dtype), diag.to(dtype))
