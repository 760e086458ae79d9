"""Step types of the SAE training contract: what the trainer passes in and gets back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    """Result of :meth:`TrainingSAE.training_forward_pass`; ``loss`` is what to backpropagate.

    ``fire_counts`` (optional, ``[d_sae]`` float32): on how many rows each latent is non-zero,
    for SAEs that know it without scanning the dense ``feature_acts`` (the trainer's firing
    statistics then use it instead of counting).
    """

    sae_in: torch.Tensor
    sae_out: torch.Tensor
    feature_acts: torch.Tensor
    hidden_pre: torch.Tensor
    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor | float | int] = field(default_factory=dict)
    fire_counts: torch.Tensor | None = None


class DeferredActsStepOutput(TrainStepOutput):
    """A :class:`TrainStepOutput` whose dense ``feature_acts`` is built on first read.

    For SAEs that keep their latents sparse: the ``[batch, d_sae]`` tensor (and its
    gradient graph) is only formed if something asks for it. Build it with the
    dataclass fields (``feature_acts=None``) plus ``make_feature_acts``, a callable
    returning the dense tensor; assigning ``feature_acts`` replaces it.
    """

    def __init__(self, *args: object, make_feature_acts: Callable[[], torch.Tensor], **kwargs: object) -> None:
        self._make_feature_acts: Callable[[], torch.Tensor] | None = make_feature_acts
        self._feature_acts: torch.Tensor | None = None
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    @property  # type: ignore[override]
    def feature_acts(self) -> torch.Tensor:
        if self._feature_acts is None and self._make_feature_acts is not None:
            self._feature_acts, self._make_feature_acts = self._make_feature_acts(), None
        return self._feature_acts  # type: ignore[return-value]

    @feature_acts.setter
    def feature_acts(self, value: torch.Tensor | None) -> None:
        if value is not None:
            self._feature_acts, self._make_feature_acts = value, None


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
