"""Step types of the SAE training contract: what the trainer passes in and gets back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from synthsae.config_values import check_float, check_int


@dataclass
class TrainStepInput:
    """What the trainer hands an SAE for one step.

    ``coefficients`` holds the current (warmed-up) value of each coefficient named by
    :meth:`TrainingSAE.get_coefficients`; ``dead_neuron_mask`` is a ``[d_sae]`` bool tensor
    of latents that have not fired for longer than the dead window (``None``: unknown, so
    no dead-latent losses).
    """

    sae_in: torch.Tensor
    coefficients: dict[str, float]
    dead_neuron_mask: torch.Tensor | None
    n_training_steps: int
    is_logging_step: bool = False


@dataclass
class TrainStepOutput:
    """Result of :meth:`TrainingSAE.training_forward_pass`; ``loss`` is what to backpropagate."""

    sae_in: torch.Tensor
    sae_out: torch.Tensor
    feature_acts: torch.Tensor
    hidden_pre: torch.Tensor
    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor | float | int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainCoefficientConfig:
    """A loss coefficient's final ``value`` and the steps over which it ramps up linearly from 0."""

    value: float
    warm_up_steps: int = 0

    def __iter__(self) -> Iterator[float | int]:
        """Unpack as ``value, warm_up_steps = config``."""
        return iter((self.value, self.warm_up_steps))

    def __post_init__(self) -> None:
        check_float("TrainCoefficientConfig.value", self.value)
        check_int("TrainCoefficientConfig.warm_up_steps", self.warm_up_steps, at_least=0)
