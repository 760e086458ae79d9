"""Decoder-only comparison of SAE latents with the ground-truth feature vectors.

Everything here comes from one ``d_sae x F`` matrix of absolute cosine
similarities, built in row chunks on the device of the SAE: the mean correlation
coefficient (a one-to-one Hungarian matching), uniqueness, and the best-matching
feature of every latent. A zero-length vector has similarity 0 with everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from synthsae._tensors import unit_rows

__all__ = [
    "FeatureMatch",
    "best_matching_features",
    "feature_uniqueness",
    "match_decoder_to_features",
    "mean_correlation_coefficient",
]

_DEFAULT_CHUNK = 512


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


def _abs_cos_cost(
    a: torch.Tensor, b: torch.Tensor, chunk_size: int, with_cost: bool
) -> tuple[np.ndarray | None, torch.Tensor]:
    """``1 - |cos(a_i, b_j)|`` as a float64 host array (if asked) and ``argmax_j |cos|``."""
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    a_unit, b_unit_t = unit_rows(a, dtype), unit_rows(b.to(a.device), dtype).T
    n = a.shape[0]
    cost = torch.empty(n, b.shape[0], dtype=torch.float64) if with_cost else None
    best = torch.empty(n, dtype=torch.long, device=a.device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sim = torch.mm(a_unit[start:stop], b_unit_t).abs_()
        sim.nan_to_num_(nan=0.0)  # a NaN direction matches nothing
        best[start:stop] = sim.argmax(dim=1)
        if cost is not None:
            cost[start:stop].copy_(sim).neg_().add_(1.0)
    return (cost.numpy() if cost is not None else None), best


def best_matching_features(
    sae_features: torch.Tensor, gt_features: torch.Tensor, chunk_size: int = _DEFAULT_CHUNK
) -> torch.Tensor:
    """For each row of ``sae_features`` ``[S, D]``, the index of the row of
    ``gt_features`` ``[F, D]`` with the largest absolute cosine similarity."""
    _check_pair(sae_features, gt_features, "sae_features", "gt_features")
    if gt_features.shape[0] == 0:
        raise ValueError("gt_features must hold at least one feature")
    return _abs_cos_cost(sae_features, gt_features, chunk_size, with_cost=False)[1]


def match_decoder_to_features(
    sae_features: torch.Tensor, gt_features: torch.Tensor, chunk_size: int = _DEFAULT_CHUNK
) -> FeatureMatch:
    """MCC, uniqueness and best matches from a single |cos| matrix.

    The matrix is built in chunks of ``chunk_size`` rows on the device of
    ``sae_features`` and stored once, on the host, as the float64 cost
    ``1 - |cos|`` that the Hungarian solver consumes.
    """
    _check_pair(sae_features, gt_features, "sae_features", "gt_features")
    n_sae, n_gt = sae_features.shape[0], gt_features.shape[0]
    if n_sae == 0 or n_gt == 0:
        return FeatureMatch(
            0.0, 0.0, torch.zeros(n_sae, dtype=torch.long, device=sae_features.device)
        )
    cost, best = _abs_cos_cost(sae_features, gt_features, chunk_size, with_cost=True)
    assert cost is not None
    rows, cols = linear_sum_assignment(cost)
    mcc = float(1.0 - cost[rows, cols].mean())
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
