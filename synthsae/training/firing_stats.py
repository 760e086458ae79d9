"""Per-latent firing statistics kept on the SAE's device during training.

Two counters per latent:

* ``steps_since_fired``: training steps since the latent was last non-zero on any
  row of a batch. A latent is *dead* when this exceeds ``dead_feature_window``.
* ``fire_counts``: number of rows on which the latent was non-zero during the
  current feature-sampling window; divided by the rows seen in that window it is
  the latent's firing frequency (``log10`` of it is the "feature sparsity").

Updates are a handful of in-place tensor ops and never read values back to the
host, so they cost no device synchronisation.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def fire_counts(feature_acts: torch.Tensor, d_sae: int) -> torch.Tensor:
    """Rows on which each latent is non-zero, ``[d_sae]`` float32, for dense or sparse COO acts.

    ``sign().abs_().sum(0)`` is several times faster than ``count_nonzero(dim=0)`` on CPU.
    """
    acts = feature_acts.detach()
    if acts.is_sparse:
        acts = acts.coalesce()
        return torch.bincount(acts.indices()[-1], weights=(acts.values() != 0).float(), minlength=d_sae).float()
    counts = acts.reshape(-1, d_sae).sign().abs_()
    return counts.sum(0) if counts.dtype == torch.float32 else counts.sum(0, dtype=torch.float32)


class FiringStats:
    """Dead-latent and firing-frequency tracking for one SAE.

    Args:
        d_sae: number of latents.
        device: where the counters live (the SAE's device).
        dead_feature_window: a latent silent for more than this many steps is dead.
        feature_sampling_window: length, in steps, of a firing-frequency window.
    """

    def __init__(
        self,
        d_sae: int,
        device: torch.device | str = "cpu",
        dead_feature_window: int = 1000,
        feature_sampling_window: int = 2000,
    ) -> None:
        for name, value in (("d_sae", d_sae), ("dead_feature_window", dead_feature_window),
                            ("feature_sampling_window", feature_sampling_window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.d_sae = d_sae
        self.dead_feature_window = dead_feature_window
        self.feature_sampling_window = feature_sampling_window
        # steps_since_fired = n_updates - last_fired: one masked fill per step keeps it current
        self.n_updates = 0
        self.last_fired = torch.zeros(d_sae, dtype=torch.long, device=device)
        self.fire_counts = torch.zeros(d_sae, dtype=torch.float32, device=device)
        self.window_samples = 0  # rows seen in the current window (host int, no sync)
        self.window_steps = 0  # steps taken in the current window
        # the last step's per-latent counts and rows: its mean L0 is last_counts.sum() / last_rows
        self.last_counts: torch.Tensor | None = None
        self.last_rows = 0

    # ------------------------------------------------------------------ update
    @torch.no_grad()
    def update(self, feature_acts: torch.Tensor) -> None:
        """Record one training step's latent activations ``[..., d_sae]`` (dense or sparse COO)."""
        self.update_counts(fire_counts(feature_acts, self.d_sae), math.prod(feature_acts.shape[:-1]))

    def update_counts(self, counts: torch.Tensor, rows: int) -> None:
        """Record one step from per-latent fire counts ``[d_sae]`` over ``rows`` rows
        (data-parallel training passes the counts summed over the ranks)."""
        self.fire_counts.add_(counts)
        self.last_counts, self.last_rows = counts, rows
        self.n_updates += 1
        self.last_fired.masked_fill_(counts > 0, self.n_updates)
        self.window_samples += rows
        self.window_steps += 1

    def reset_window(self) -> None:
        """Start a new feature-sampling window (``steps_since_fired`` is kept)."""
        self.fire_counts.zero_()
        self.window_samples = 0
        self.window_steps = 0

    @property
    def window_full(self) -> bool:
        """True once the current window spans ``feature_sampling_window`` steps."""
        return self.window_steps >= self.feature_sampling_window

    # ------------------------------------------------------------------ views
    @property
    def steps_since_fired(self) -> torch.Tensor:
        """``[d_sae]`` int64: steps since each latent was last non-zero (0 if it fired last step)."""
        return self.n_updates - self.last_fired

    def dead_mask(self) -> torch.Tensor:
        """``[d_sae]`` bool: latents silent for more than ``dead_feature_window`` steps."""
        return self.last_fired < self.n_updates - self.dead_feature_window

    def feature_sparsity(self) -> torch.Tensor:
        """Firing frequency of each latent over the current window (zeros for an empty window)."""
        return (self.fire_counts / max(self.window_samples, 1)).float()

    def log_feature_sparsity(self, eps: float = 1e-10) -> torch.Tensor:
        """``log10(frequency + eps)`` per latent, on the CPU (what ``sparsity.safetensors`` stores)."""
        return torch.log10(self.feature_sparsity() + eps).cpu()

    def window_metrics(self) -> dict[str, float]:
        """The feature-sampling-window log keys (one host sync)."""
        freq = self.feature_sparsity()
        vals = torch.stack([
            torch.log10(freq + 1e-10).mean(),
            (freq < 1e-5).sum().float(),
            (freq < 1e-6).sum().float(),
        ]).tolist()
        return {
            "metrics/mean_log10_feature_sparsity": vals[0],
            "sparsity/below_1e-5": vals[1],
            "sparsity/below_1e-6": vals[2],
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Counters, for an exact resume."""
        return {
            "steps_since_fired": self.steps_since_fired.clone(),
            "fire_counts": self.fire_counts.clone(),
            "window_samples": self.window_samples,
            "window_steps": self.window_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters written by :meth:`state_dict` (moved to this object's device)."""
        for key in ("steps_since_fired", "fire_counts"):
            shape = tuple(torch.as_tensor(state[key]).shape)
            if shape != (self.d_sae,):
                raise ValueError(f"firing stats {key!r} has shape {shape}, expected ({self.d_sae},)")
        device = self.last_fired.device
        self.n_updates = 0
        self.last_fired.copy_(-torch.as_tensor(state["steps_since_fired"]).to(device=device, dtype=torch.long))
        self.fire_counts.copy_(torch.as_tensor(state["fire_counts"]).to(device=device, dtype=torch.float32))
        self.window_samples = int(state["window_samples"])
        self.window_steps = int(state["window_steps"])
