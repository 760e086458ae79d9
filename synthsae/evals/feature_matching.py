"""Decoder-only comparison of SAE latents with the ground-truth feature vectors.

Everything here comes from passes over the ``d_sae x F`` absolute cosine
similarities, computed in tiles on the device of the SAE and never stored whole:
each row keeps its best match (uniqueness, classification) and its few largest
values, from which the mean correlation coefficient (an optimal one-to-one
matching) is found exactly. Memory is ``O((d_sae + F) * D)``, so a million
features need no ``d_sae x F`` matrix. A zero-length vector has similarity 0 with
everything.

Why a few candidates per row are enough (see :func:`_optimal_matching_mean`): give
each row only its ``k`` best columns plus a private "outside" column that costs as
much as its ``(k + 1)``-th best, a lower bound on every column left out. Any
assignment of the full problem maps onto this smaller one at no higher cost, so the
smaller optimum is a lower bound; when it uses no outside column it is an assignment
of the full problem and therefore optimal there too. Rows that do take their
outside column get more candidates and the matching is solved again. Small problems
(up to 2**25 values), and square-ish ones that keep needing more candidates, are solved
from the whole cost matrix instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from synthsae._tensors import unit_rows

__all__ = [
    "FeatureMatch",
    "best_matching_features",
    "cosine_similarities",
    "feature_uniqueness",
    "match_decoder_to_features",
    "mean_correlation_coefficient",
]

_DEFAULT_CHUNK = 512
# rows shorter than this count as zero-length (similarity 0 with everything), as in unit_rows
_NORM_EPS = 1e-8
# |cos| values computed at once (16 MiB in float32)
_TILE_ELEMENTS = 1 << 22
# candidates per row before the first matching: enough for nearly every row when there
# are several features per latent (a random 4,096 x 16,384 pair needs no second round);
# rows that need more get 4x more
_CANDIDATES = 8
# up to this many |cos| values (256 MiB in float64) the whole cost matrix is built and
# solved densely, as square-ish problems make many rows compete for the same features
_DENSE_ENTRIES = 1 << 25
# after this many candidate rounds a problem of up to _DENSE_FALLBACK_ENTRIES values
# (2 GiB in float64) is solved densely instead
_MAX_ROUNDS = 3
_DENSE_FALLBACK_ENTRIES = 1 << 28


def cosine_similarities(mat1: torch.Tensor, mat2: torch.Tensor | None = None) -> torch.Tensor:
    """``[n1, n2]`` cosine similarities between the rows of ``mat1 [n1, d]`` and of ``mat2
    [n2, d]`` (``mat2`` defaults to ``mat1``), differentiable, in the inputs' dtype.

    Norms are clamped at ``1e-8`` so a zero row has similarity 0 with everything. Builds the
    full matrix: for an SAE against many features the eval computes it in chunks instead.
    """
    mat2 = mat1 if mat2 is None else mat2
    _check_pair(mat1, mat2, "mat1", "mat2")
    # the same 1e-8 norm floor as unit_rows, without detaching (callers may differentiate)
    unit1 = mat1 / mat1.norm(dim=1, keepdim=True).clamp(min=1e-8)
    unit2 = mat2 / mat2.norm(dim=1, keepdim=True).clamp(min=1e-8)
    return unit1 @ unit2.T


def _check_pair(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError(
            f"{name_a} and {name_b} must be 2-D [n, dim] tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same vector dimension, got {a.shape[1]} and {b.shape[1]}"
        )


@dataclass
class FeatureMatch:
    """Decoder-only comparison of SAE latents with ground-truth features.

    Attributes:
        mcc: mean |cos| over a one-to-one (Hungarian) matching of ``min(S, F)`` pairs.
        uniqueness: number of distinct best-matching features divided by ``S``.
        best_match: ``[S]`` index of the feature with the largest |cos| for each latent.
    """

    mcc: float
    uniqueness: float
    best_match: torch.Tensor


class _UnitTiles:
    """The rows of ``x`` as unit vectors in ``dtype``, normalised one tile at a time: the
    many-row side (a million features are 3 GiB) is never copied whole."""

    def __init__(self, x: torch.Tensor, dtype: torch.dtype, device: torch.device) -> None:
        self.x = x.detach().to(device)
        self.dtype = dtype
        self.inverse_norm = torch.linalg.vector_norm(self.x, dim=1).to(dtype).clamp_min_(_NORM_EPS).reciprocal_()
        self.num_rows = self.x.shape[0]

    def tile(self, start: int, stop: int) -> torch.Tensor:
        return self.x[start:stop].to(self.dtype) * self.inverse_norm[start:stop, None]


def _unit_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, _UnitTiles]:
    """``a``'s rows as unit vectors and ``b``'s as tiles, in the wider of their dtypes."""
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    return unit_rows(a, dtype), _UnitTiles(b, dtype, a.device)


def _scan_rows(
    a_unit: torch.Tensor, b_unit: _UnitTiles, k: int, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each row of ``a_unit``: its ``k`` largest ``|cos|`` with the rows of ``b_unit``
    (descending, ``[n, k]``), their column indices, and the first column of the largest.

    Tiles of at most ``chunk_size`` rows and ``_TILE_ELEMENTS`` values are computed one
    at a time; NaN similarities count as 0.
    """
    n, m = a_unit.shape[0], b_unit.num_rows
    k = min(k, m)
    cols = max(1, _TILE_ELEMENTS // chunk_size)
    device = a_unit.device
    top_v = torch.empty(n, k, dtype=a_unit.dtype, device=device)
    top_i = torch.empty(n, k, dtype=torch.long, device=device)
    best = torch.empty(n, dtype=torch.long, device=device)
    for start in range(0, n, chunk_size):
        rows = a_unit[start : start + chunk_size]
        run_v = run_i = best_v = best_i = None
        for col in range(0, m, cols):
            sim = torch.mm(rows, b_unit.tile(col, col + cols).T).abs_().nan_to_num_(nan=0.0)
            tile_v, tile_i = sim.max(dim=1)
            tile_i += col
            if best_v is None or best_i is None:
                best_v, best_i = tile_v, tile_i
            else:  # strictly larger only, so ties keep the first column as argmax does
                better = tile_v > best_v
                best_v, best_i = torch.where(better, tile_v, best_v), torch.where(better, tile_i, best_i)
            if k:
                v, i = sim.topk(min(k, sim.shape[1]), dim=1)
                i += col
                if run_v is not None and run_i is not None:
                    v, pick = torch.cat([run_v, v], dim=1).topk(k, dim=1)
                    i = torch.cat([run_i, i], dim=1).gather(1, pick)
                run_v, run_i = v, i
        stop = start + rows.shape[0]
        assert best_i is not None
        best[start:stop] = best_i
        if k:
            top_v[start:stop], top_i[start:stop] = run_v, run_i
    return top_v, top_i, best


def _optimal_matching_mean(
    small: torch.Tensor, large: _UnitTiles, chunk_size: int, first: tuple[torch.Tensor, torch.Tensor] | None = None
) -> float:
    """Mean ``|cos|`` of an optimal one-to-one matching of every row of ``small`` (unit rows,
    ``n <= m``) with distinct rows of ``large`` (see the module docstring for why it is exact).

    ``first`` may hold the top ``_CANDIDATES + 1`` values and indices of every row.
    """
    n, m = small.shape[0], large.num_rows
    if n * m <= _DENSE_ENTRIES:
        return _dense_matching_mean(small, large, chunk_size)
    width = min(_CANDIDATES, m)
    rows = np.arange(n)
    owner = np.full(n, -1)  # which round holds each row's current candidates
    rounds: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
    while True:
        if len(rounds) == _MAX_ROUNDS and n * m <= _DENSE_FALLBACK_ENTRIES:
            return _dense_matching_mean(small, large, chunk_size)
        extra = 1 if width < m else 0  # the (width + 1)-th value bounds the columns left out
        if first is not None and width + extra <= first[0].shape[1]:
            values, indices = first[0][:, : width + extra], first[1][:, : width + extra]
        else:
            values, indices, _ = _scan_rows(small[torch.as_tensor(rows, device=small.device)], large, width + extra, chunk_size)
        owner[rows] = len(rounds)
        rounds.append((rows, values.double().cpu().numpy(), indices.cpu().numpy(), width))
        matched_rows, matched_cols, matched_cost = _solve_relaxed(rounds, owner, n, m)
        outside = matched_rows[matched_cols >= m]
        if outside.size == 0:
            return float(1.0 - matched_cost.mean())
        rows, width = outside, min(width * 4, m)


def _dense_matching_mean(small: torch.Tensor, large: _UnitTiles, chunk_size: int) -> float:
    """The same optimum from the whole float64 cost matrix ``1 - |cos|`` and the dense solver."""
    from scipy.optimize import linear_sum_assignment

    cost = np.empty((small.shape[0], large.num_rows))
    columns = large.tile(0, large.num_rows).T  # at most _DENSE_FALLBACK_ENTRIES values
    for start in range(0, small.shape[0], chunk_size):
        sim = torch.mm(small[start : start + chunk_size], columns).abs_().nan_to_num_(nan=0.0)
        cost[start : start + sim.shape[0]] = 1.0 - sim.double().cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(1.0 - cost[rows, cols].mean())


def _solve_relaxed(
    rounds: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]], owner: np.ndarray, n: int, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal matching of the candidate graph; row ``r``'s outside column is ``m + r``.

    Returns the matched rows, columns and costs ``1 - |cos|``.
    """
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for number, (rows, values, indices, width) in enumerate(rounds):
        current = owner[rows] == number
        if not current.any():
            continue
        r, v, i = rows[current], values[current], indices[current]
        parts.append((np.repeat(r, width), i[:, :width].ravel(), 1.0 - v[:, :width].ravel()))
        if width < m:
            parts.append((r, m + r, 1.0 - v[:, width]))
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    r_all, c_all, cost_all = (np.concatenate(p) for p in zip(*parts))
    # the solver reads stored zeros as missing edges: shift every cost by 1 (every row is
    # matched exactly once, so the optimum does not move)
    graph = coo_array((cost_all + 1.0, (r_all, c_all)), shape=(n, m + n)).tocsr()
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    cost = np.asarray(graph[row_ind, col_ind]).ravel() - 1.0
    return row_ind, col_ind, cost


def best_matching_features(
    sae_features: torch.Tensor, gt_features: torch.Tensor, chunk_size: int = _DEFAULT_CHUNK
) -> torch.Tensor:
    """For each row of ``sae_features`` ``[S, D]``, the index of the row of
    ``gt_features`` ``[F, D]`` with the largest absolute cosine similarity."""
    _check_pair(sae_features, gt_features, "sae_features", "gt_features")
    if gt_features.shape[0] == 0:
        raise ValueError("gt_features must hold at least one feature")
    return _scan_rows(*_unit_pair(sae_features, gt_features), 0, chunk_size)[2]


def match_decoder_to_features(
    sae_features: torch.Tensor, gt_features: torch.Tensor, chunk_size: int = _DEFAULT_CHUNK
) -> FeatureMatch:
    """MCC, uniqueness and best matches from tiled passes over the |cos| values.

    With ``S <= F`` one pass gives everything (a second only for the rare rows whose
    few candidates do not settle the matching); with ``S > F`` the matching is found
    from the feature side in a second pass. Tiles have ``chunk_size`` rows.
    """
    _check_pair(sae_features, gt_features, "sae_features", "gt_features")
    n_sae, n_gt = sae_features.shape[0], gt_features.shape[0]
    if n_sae == 0 or n_gt == 0:
        return FeatureMatch(
            0.0, 0.0, torch.zeros(n_sae, dtype=torch.long, device=sae_features.device)
        )
    sae_unit, gt_tiles = _unit_pair(sae_features, gt_features)
    if n_sae <= n_gt:
        values, indices, best = _scan_rows(sae_unit, gt_tiles, _CANDIDATES + 1, chunk_size)
        mcc = _optimal_matching_mean(sae_unit, gt_tiles, chunk_size, first=(values, indices))
    else:
        best = _scan_rows(sae_unit, gt_tiles, 0, chunk_size)[2]
        gt_unit, sae_tiles = _unit_pair(gt_features.to(sae_features.device), sae_features)
        mcc = _optimal_matching_mean(gt_unit, sae_tiles, chunk_size)
    uniqueness = torch.unique(best).numel() / n_sae
    return FeatureMatch(mcc=mcc, uniqueness=uniqueness, best_match=best)


def mean_correlation_coefficient(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Mean |cos| of the best one-to-one matching between the rows of two matrices.

    ``features_a`` ``[Na, D]`` and ``features_b`` ``[Nb, D]`` may differ in row
    count (``min(Na, Nb)`` pairs are matched). The value lies in [0, 1], does not
    depend on the sign or length of any row nor on the argument order, and a
    zero row has similarity 0 with everything. Returns 0.0 if either is empty.
    """
    return match_decoder_to_features(features_a, features_b).mcc


def feature_uniqueness(sae_features: torch.Tensor, gt_features: torch.Tensor) -> float:
    """Fraction of SAE latents whose best-matching (max |cos|) ground-truth feature
    is distinct: ``#distinct argmaxes / S``. 0.0 when either input is empty."""
    _check_pair(sae_features, gt_features, "sae_features", "gt_features")
    if sae_features.shape[0] == 0 or gt_features.shape[0] == 0:
        return 0.0
    best = best_matching_features(sae_features, gt_features)
    return torch.unique(best).numel() / sae_features.shape[0]
