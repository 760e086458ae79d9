"""Metrics that compare an SAE with the ground-truth features it should recover.

This module is the public home of all of them. The decoder-only metrics (MCC,
uniqueness, best matches) are implemented in :mod:`synthsae.evals.feature_matching`
and the classification scores in :mod:`synthsae.evals.classification`; both are
re-exported here. The streaming calculators below accumulate per-batch
statistics on the device of the batch without host synchronisation and only read
the result back in ``compute()``.

A latent *fires* when it is non-zero (so SAEs with signed latents are judged
correctly); a ground-truth feature fires when its activation is positive.
"""

from __future__ import annotations

import torch

from synthsae.evals.classification import (
    ClassificationMetrics,
    ClassificationMetricsCalculator,
    as_sparse_batch_or_dense,
    compute_classification_metrics,
)
from synthsae.evals.feature_matching import (
    FeatureMatch,
    best_matching_features,
    feature_uniqueness,
    match_decoder_to_features,
    mean_correlation_coefficient,
)
from synthsae.synthetic.sparse_batch import SparseBatch

__all__ = [
    "ClassificationMetrics",
    "ClassificationMetricsCalculator",
    "DeadLatentsCalculator",
    "ExplainedVarianceCalculator",
    "FeatureMatch",
    "L0Calculator",
    "ShrinkageCalculator",
    "best_matching_features",
    "compute_classification_metrics",
    "feature_uniqueness",
    "match_decoder_to_features",
    "mean_correlation_coefficient",
]


# --------------------------------------------------------------------------- streaming calculators
class L0Calculator:
    """Mean number of firing entries per row (0.0 before any rows were added).

    Args:
        positive_only: count entries ``> 0`` instead of entries ``!= 0`` (use it for
            ground-truth activations; SAE latents fire when non-zero).
    """

    def __init__(self, positive_only: bool = False) -> None:
        self.positive_only = positive_only
        self._count: torch.Tensor | None = None
        self._rows = 0

    def add_batch(self, activations: torch.Tensor | SparseBatch) -> None:
        """Add ``[B, N]`` activations (dense, sparse COO or :class:`SparseBatch`)."""
        activations = as_sparse_batch_or_dense(activations)
        if isinstance(activations, SparseBatch):
            values, rows = activations.values, activations.batch_size
        else:
            values = activations.detach()
            rows = values.reshape(-1, values.shape[-1]).shape[0]
        count = torch.count_nonzero(values > 0 if self.positive_only else values)
        self._count = count if self._count is None else self._count + count
        self._rows += rows

    def compute(self) -> float:
        if self._count is None or self._rows == 0:
            return 0.0
        return float(self._count) / self._rows


class DeadLatentsCalculator:
    """Number of latents that were zero for every added sample."""

    def __init__(self, num_latents: int) -> None:
        if num_latents < 0:
            raise ValueError(f"num_latents must be >= 0, got {num_latents}")
        self.num_latents = num_latents
        self._fired: torch.Tensor | None = None

    def add_batch(self, sae_latents: torch.Tensor) -> None:
        """Add ``[B, num_latents]`` latent activations."""
        if sae_latents.shape[-1] != self.num_latents:
            raise ValueError(
                f"sae_latents has {sae_latents.shape[-1]} columns, expected {self.num_latents}"
            )
        fired = (sae_latents.detach().reshape(-1, self.num_latents) != 0).any(dim=0)
        self._fired = fired if self._fired is None else self._fired | fired

    def compute(self) -> int:
        if self._fired is None:
            return self.num_latents
        return int((~self._fired).sum())


class ShrinkageCalculator:
    """Mean of ``||x_hat|| / ||x||`` over rows with ``||x|| > min_input_norm`` (0.0 if none)."""

    def __init__(self, min_input_norm: float = 1e-6) -> None:
        self.min_input_norm = min_input_norm
        self._sum: torch.Tensor | None = None
        self._count: torch.Tensor | None = None

    def add_batch(self, sae_output: torch.Tensor, hidden_acts: torch.Tensor) -> None:
        """Add reconstructions and inputs, both ``[B, D]``."""
        out_norm = sae_output.detach().float().reshape(-1, sae_output.shape[-1]).norm(dim=1)
        in_norm = hidden_acts.detach().float().reshape(-1, hidden_acts.shape[-1]).norm(dim=1)
        valid = in_norm > self.min_input_norm
        ratio_sum = (
            torch.where(valid, out_norm / in_norm.clamp_min(self.min_input_norm), 0.0)
            .double()
            .sum()
        )
        count = valid.sum()
        if self._sum is None or self._count is None:
            self._sum, self._count = ratio_sum, count
        else:
            self._sum, self._count = self._sum + ratio_sum, self._count + count

    def compute(self) -> float:
        if self._count is None or int(self._count) == 0:
            return 0.0
        assert self._sum is not None
        return float(self._sum) / int(self._count)


class ExplainedVarianceCalculator:
    """Pooled R^2: ``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2`` over all samples.

    The total variance is merged batch by batch (per-batch mean and sum of squared
    deviations, combined with Chan's formula in float64), so the result does not
    depend on the batching and constant inputs are handled without cancellation.
    If the variance per sample is below 1e-10 the result is 1.0 when the mean
    residual is also below 1e-10, else 0.0; it is 0.0 before any rows were added.
    """

    def __init__(self, hidden_dim: int, device: torch.device | str = "cpu") -> None:
        self.hidden_dim = hidden_dim
        self.device = torch.device(device)
        self._n = 0
        self._mean = torch.zeros(hidden_dim, dtype=torch.float64, device=self.device)
        self._m2 = torch.zeros((), dtype=torch.float64, device=self.device)
        self._resid = torch.zeros((), dtype=torch.float64, device=self.device)

    def add_batch(self, sae_output: torch.Tensor, hidden_acts: torch.Tensor) -> None:
        """Add reconstructions and inputs, both ``[B, hidden_dim]``."""
        if hidden_acts.shape[-1] != self.hidden_dim or sae_output.shape != hidden_acts.shape:
            raise ValueError(
                f"expected sae_output and hidden_acts of equal shape [B, {self.hidden_dim}], "
                f"got {tuple(sae_output.shape)} and {tuple(hidden_acts.shape)}"
            )
        x = hidden_acts.detach().float().reshape(-1, self.hidden_dim)
        nb = x.shape[0]
        if nb == 0:
            return
        x_hat = sae_output.detach().float().reshape(-1, self.hidden_dim)
        mean_b = x.mean(dim=0)
        centred = (x - mean_b).reshape(-1)
        diff = (x - x_hat).reshape(-1)
        m2_b = torch.dot(centred, centred).double().to(self.device)
        self._resid += torch.dot(diff, diff).double().to(self.device)
        delta = mean_b.double().to(self.device) - self._mean
        n_new = self._n + nb
        self._m2 += m2_b + delta.square().sum() * (self._n * nb / n_new)
        self._mean += delta * (nb / n_new)
        self._n = n_new

    def compute(self) -> float:
        if self._n == 0:
            return 0.0
        total_var, resid = float(self._m2) / self._n, float(self._resid) / self._n
        if total_var < 1e-10:
            return 1.0 if resid < 1e-10 else 0.0
        return 1.0 - resid / total_var
