"""Scalar rescaling of training activations (``normalize_activations="expected_average_only_in"``).

Before training, the mean L2 norm of the input rows is estimated over a number of
batches and the inputs are multiplied by ``sqrt(d_in) / mean_norm`` so that their
expected norm is ``sqrt(d_in)``. At the end of training the factor is folded into
the SAE weights, so the saved SAE takes raw activations.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from synthsae.atomic_files import atomic_write_json


class ActivationScaler:
    """Multiplies activations by ``scaling_factor`` (identity when it is ``None``)."""

    def __init__(self, scaling_factor: float | None = None) -> None:
        self.scaling_factor = scaling_factor

    def scale(self, acts: torch.Tensor) -> torch.Tensor:
        """Activations as the SAE sees them during training."""
        return acts if self.scaling_factor is None else acts * self.scaling_factor

    def unscale(self, acts: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`scale`."""
        return acts if self.scaling_factor is None else acts / self.scaling_factor

    __call__ = scale

    @torch.no_grad()
    def estimate_scaling_factor(self, d_in: int, data: Iterator[torch.Tensor], n_batches: int = 1000) -> float:
        """Set ``scaling_factor = sqrt(d_in) / mean row norm`` over ``n_batches`` batches of ``data``.

        Norms are summed on the batches' device in float64; the host reads the total once.
        """
        if n_batches < 1:
            raise ValueError(f"n_batches must be >= 1, got {n_batches}")
        total: torch.Tensor | None = None
        rows = 0
        for _ in range(n_batches):
            batch = next(data)
            norms = batch.reshape(-1, batch.shape[-1]).double().norm(dim=-1)
            total = norms.sum() if total is None else total + norms.sum()
            rows += norms.numel()
        mean_norm = float(total) / rows  # type: ignore[arg-type]
        if not math.isfinite(mean_norm) or mean_norm <= 0:
            raise ValueError(f"cannot normalise activations: their mean norm is {mean_norm}")
        self.scaling_factor = math.sqrt(d_in) / mean_norm
        return self.scaling_factor

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"scaling_factor": self.scaling_factor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        factor = state.get("scaling_factor")
        self.scaling_factor = None if factor is None else float(factor)

    def save(self, path: str | Path) -> None:
        """Write ``{"scaling_factor": ...}`` as JSON (the reference's ``activation_scaler.json``)."""
        atomic_write_json(path, self.state_dict(), indent=None)

    def load(self, path: str | Path) -> ActivationScaler:
        """Read a file written by :meth:`save` into this scaler; returns ``self``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"activation scaler file not found: {path}")
        self.load_state_dict(json.loads(path.read_text()))
        return self

    def __repr__(self) -> str:
        return f"ActivationScaler(scaling_factor={self.scaling_factor})"
