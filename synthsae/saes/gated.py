"""Gated SAE: a gate decides which latents fire, a magnitude path sets their size (``"gated"``).

``pi = x' W_enc``; gate ``[pi + b_gate > 0]``; magnitude ``ReLU(pi * exp(r_mag) + b_mag)``
(the same as ``x' (W_enc * exp(r_mag)) + b_mag``, with one matrix product instead of two);
``z = gate * magnitude``. There is no ``b_enc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from synthsae.config_values import check_float, check_int
from synthsae.saes.base import (
    SAE,
    TrainCoefficientConfig,
    TrainingSAE,
    TrainStepInput,
    TrainStepOutput,
)
from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.registry import register_sae_architecture


def gated_encode(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(feature_acts, magnitude_pre, gate_pre)`` of a gated SAE for inputs ``x``."""
    shared = sae.encoder_linear(x, sae.W_enc, None)
    gate_pre = shared + sae.b_gate
    magnitude_pre = shared * torch.exp(sae.r_mag) + sae.b_mag
    feature_acts = (gate_pre > 0).to(magnitude_pre.dtype) * F.relu(magnitude_pre)
    return feature_acts, magnitude_pre, gate_pre


def _init_gated_params(sae: SAE) -> None:
    sae.b_gate = sae.zero_parameter(sae.cfg.d_sae)
    sae.r_mag = sae.zero_parameter(sae.cfg.d_sae)
    sae.b_mag = sae.zero_parameter(sae.cfg.d_sae)


@torch.no_grad()
def _fold_gated(sae: SAE) -> None:
    norms = sae.get_W_dec_norm()
    SAE.fold_W_dec_norm(sae)
    sae.b_gate.data.mul_(norms)
    sae.b_mag.data.mul_(norms)


@dataclass
class GatedSAEConfig(SAEConfig):
    """Config of the inference :class:`GatedSAE` (no extra fields)."""

    @classmethod
    def architecture(cls) -> str:
        """``"gated"``."""
        return "gated"


class GatedSAE(SAE):
    """Inference gated SAE with parameters ``W_enc, W_dec, b_dec, b_gate, r_mag, b_mag``."""

    cfg: GatedSAEConfig

    def initialize_weights(self) -> None:
        """Base weights plus zero ``b_gate``, ``r_mag`` and ``b_mag``."""
        super().initialize_weights()
        _init_gated_params(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Gated latents."""
        return gated_encode(self, x)[0]

    def fold_W_dec_norm(self) -> None:
        """Fold decoder norms into ``W_enc``, ``b_gate`` and ``b_mag``."""
        _fold_gated(self)


@dataclass
class GatedTrainingSAEConfig(TrainingSAEConfig):
    """Training config of the gated SAE: the gate's L1 penalty weight and its warm-up."""

    sparsity_field: ClassVar[str | None] = "l1_coefficient"

    l1_coefficient: float = 1.0
    l1_warm_up_steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.l1_coefficient = check_float(self.qualified("l1_coefficient"), self.l1_coefficient, at_least=0)
        self.l1_warm_up_steps = check_int(self.qualified("l1_warm_up_steps"), self.l1_warm_up_steps, at_least=0)

    @classmethod
    def architecture(cls) -> str:
        """``"gated"``."""
        return "gated"


class GatedTrainingSAE(TrainingSAE):
    """Gated SAE for training.

    Losses: ``l1_loss = coef * mean_b sum_j ReLU(pi_gate)_j ||W_dec_j||`` and
    ``auxiliary_reconstruction_loss = mean_b ||ReLU(pi_gate) W_dec + b_dec - x||^2``
    (``W_dec`` and ``b_dec`` are not detached in the auxiliary term).
    """

    cfg: GatedTrainingSAEConfig

    def initialize_weights(self) -> None:
        """Training weights plus zero ``b_gate``, ``r_mag`` and ``b_mag``."""
        super().initialize_weights()
        _init_gated_params(self)

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated latents and the magnitude path's pre-activations."""
        feature_acts, magnitude_pre, _ = gated_encode(self, x)
        return feature_acts, magnitude_pre

    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        """``{"l1": TrainCoefficientConfig(l1_coefficient, l1_warm_up_steps)}``."""
        return {"l1": TrainCoefficientConfig(self.cfg.l1_coefficient, self.cfg.l1_warm_up_steps)}

    def gate_losses(self, step_input: TrainStepInput, gate_pre: torch.Tensor) -> dict[str, torch.Tensor]:
        """The L1 and auxiliary losses from the gate pre-activations."""
        gate_acts = F.relu(gate_pre)
        coefficient = self.coefficient(step_input, "l1", self.cfg.l1_coefficient)
        l1_loss = coefficient * (gate_acts * self.W_dec.norm(dim=-1)).sum(dim=-1).mean()
        via_gate = self._finish_decode(gate_acts @ self.W_dec + self.b_dec)
        aux_loss = self.mse_loss(via_gate, step_input.sae_in)
        return {"l1_loss": l1_loss, "auxiliary_reconstruction_loss": aux_loss}

    def calculate_aux_loss(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The gate losses, recomputing the gate pre-activations from ``step_input``."""
        return self.gate_losses(step_input, gated_encode(self, step_input.sae_in)[2])

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """One encoder pass feeds the latents and both gate losses."""
        feature_acts, magnitude_pre, gate_pre = gated_encode(self, step_input.sae_in)
        sae_out = self.decode(feature_acts)
        losses = self.gate_losses(step_input, gate_pre)
        return self.make_step_output(step_input, feature_acts, magnitude_pre, sae_out, losses)

    def fold_W_dec_norm(self) -> None:
        """Fold decoder norms into ``W_enc``, ``b_gate`` and ``b_mag``."""
        _fold_gated(self)

    @torch.no_grad()
    def log_histograms(self) -> dict[str, np.ndarray]:
        """Decoder norms plus the gate and magnitude biases."""
        return {
            **super().log_histograms(),
            "weights/b_gate": self.b_gate.detach().float().cpu().numpy(),
            "weights/b_mag": self.b_mag.detach().float().cpu().numpy(),
        }


register_sae_architecture("gated", GatedTrainingSAE, GatedTrainingSAEConfig, GatedSAE, GatedSAEConfig)
