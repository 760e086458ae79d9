"""JumpReLU SAE: a latent passes when its pre-activation exceeds a learned threshold (``"jumprelu"``).

Training uses straight-through estimators with a rectangle kernel of width ``bandwidth``
(``eps``) so that the thresholds receive gradients:

* ``JumpReLU(h, t) = h * [h > t]``: ``d/dh = [h > t]``; ``d/dt = -(t / eps) K((h - t) / eps)``.
* ``Step(h, t) = [h > t]``: no gradient to ``h``; ``d/dt = -(1 / eps) K((h - t) / eps)``.

with ``K(u) = 1[|u| < 1/2]``. Threshold gradients are summed over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from synthsae.config_values import check_choice, check_float, check_int
from synthsae.saes.base import SAE, TrainCoefficientConfig, TrainingSAE, TrainStepInput
from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.registry import register_sae_architecture
from synthsae.saes.sparse_acts import is_known_empty


def rectangle(u: torch.Tensor) -> torch.Tensor:
    """The rectangle kernel ``1[-1/2 < u < 1/2]`` in ``u``'s dtype."""
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class JumpReLUFunction(torch.autograd.Function):
    """``h * [h > threshold]`` with a straight-through gradient for the threshold."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return x * (x > threshold)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        x, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        grad_x = (x > threshold) * grad_output
        kernel = rectangle((x - threshold) / bandwidth)
        grad_threshold = -(threshold / bandwidth) * kernel * grad_output
        return grad_x, grad_threshold.sum_to_size(threshold.shape).to(threshold.dtype), None


class StepFunction(torch.autograd.Function):
    """Heaviside step ``[h > threshold]``; only the threshold gets a (straight-through) gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        x, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        kernel = rectangle((x - threshold) / bandwidth)
        grad_threshold = -(1.0 / bandwidth) * kernel * grad_output
        return None, grad_threshold.sum_to_size(threshold.shape).to(threshold.dtype), None


@dataclass
class JumpReLUSAEConfig(SAEConfig):
    """Config of the inference :class:`JumpReLUSAE` (no extra fields)."""

    @classmethod
    def architecture(cls) -> str:
        """``"jumprelu"``."""
        return "jumprelu"


class JumpReLUSAE(SAE):
    """Inference JumpReLU SAE: ``z = ReLU(h) * [h > threshold]``, ``threshold [d_sae]``.

    BatchTopK and Matryoshka SAEs also load as this class (with a constant threshold).
    """

    cfg: JumpReLUSAEConfig

    def initialize_weights(self) -> None:
        """Base weights plus zero ``b_enc`` and ``threshold``."""
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)
        self.threshold = self.zero_parameter(self.cfg.d_sae)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """JumpReLU latents."""
        hidden_pre = self.encoder_linear(x, self.W_enc, self.b_enc)
        return F.relu(hidden_pre) * (hidden_pre > self.threshold)

    @torch.no_grad()
    def fold_W_dec_norm(self) -> None:
        """Fold decoder norms into the encoder and scale the thresholds with them."""
        norms = self.get_W_dec_norm()
        super().fold_W_dec_norm()
        self.threshold.data.mul_(norms)


@dataclass
class JumpReLUTrainingSAEConfig(TrainingSAEConfig):
    """Training config of the JumpReLU SAE.

    ``jumprelu_sparsity_loss_mode`` is ``"step"`` (an L0 penalty through :class:`StepFunction`)
    or ``"tanh"`` (``sum_j tanh(jumprelu_tanh_scale * z_j * ||W_dec_j||)``), weighted by
    ``l0_coefficient`` (ramped up over ``l0_warm_up_steps``). ``pre_act_loss_coefficient``
    (``None`` = off) pushes dead latents' pre-activations up towards their thresholds.
    """

    sparsity_field: ClassVar[str | None] = "l0_coefficient"

    jumprelu_init_threshold: float = 0.01
    jumprelu_bandwidth: float = 0.05
    jumprelu_sparsity_loss_mode: str = "step"
    l0_coefficient: float = 1.0
    l0_warm_up_steps: int = 0
    pre_act_loss_coefficient: float | None = None
    jumprelu_tanh_scale: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.jumprelu_init_threshold = check_float(self.qualified("jumprelu_init_threshold"), self.jumprelu_init_threshold, above=0)
        self.jumprelu_bandwidth = check_float(self.qualified("jumprelu_bandwidth"), self.jumprelu_bandwidth, above=0)
        check_choice(self.qualified("jumprelu_sparsity_loss_mode"), self.jumprelu_sparsity_loss_mode, ("step", "tanh"))
        self.l0_coefficient = check_float(self.qualified("l0_coefficient"), self.l0_coefficient, at_least=0)
        self.l0_warm_up_steps = check_int(self.qualified("l0_warm_up_steps"), self.l0_warm_up_steps, at_least=0)
        if self.pre_act_loss_coefficient is not None:
            self.pre_act_loss_coefficient = check_float(self.qualified("pre_act_loss_coefficient"), self.pre_act_loss_coefficient, at_least=0)
        self.jumprelu_tanh_scale = check_float(self.qualified("jumprelu_tanh_scale"), self.jumprelu_tanh_scale, above=0)

    @classmethod
    def architecture(cls) -> str:
        """``"jumprelu"``."""
        return "jumprelu"


class JumpReLUTrainingSAE(TrainingSAE):
    """JumpReLU SAE for training; the thresholds are learned as ``log_threshold``."""

    cfg: JumpReLUTrainingSAEConfig

    def initialize_weights(self) -> None:
        """Training weights, a zero ``b_enc`` and ``log_threshold = log(jumprelu_init_threshold)``."""
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)
        log_init = math.log(self.cfg.jumprelu_init_threshold)
        self.log_threshold = nn.Parameter(
            torch.full((self.cfg.d_sae,), log_init, dtype=self.dtype, device=self.device)
        )

    @property
    def threshold(self) -> torch.Tensor:
        """``exp(log_threshold)`` (differentiable)."""
        return torch.exp(self.log_threshold)

    @property
    def bandwidth(self) -> float:
        """Width of the straight-through rectangle kernel."""
        return self.cfg.jumprelu_bandwidth

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """JumpReLU latents and their pre-activations."""
        hidden_pre = self.encoder_linear(x, self.W_enc, self.b_enc)
        feature_acts = JumpReLUFunction.apply(hidden_pre, self.threshold, self.bandwidth)
        return feature_acts, hidden_pre

    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        """``{"l0": TrainCoefficientConfig(l0_coefficient, l0_warm_up_steps)}``."""
        return {"l0": TrainCoefficientConfig(self.cfg.l0_coefficient, self.cfg.l0_warm_up_steps)}

    def calculate_aux_loss(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``{"l0_loss": ...}`` plus ``"pre_act_loss"`` when its coefficient is set."""
        threshold = self.threshold
        coefficient = self.coefficient(step_input, "l0", self.cfg.l0_coefficient)
        if self.cfg.jumprelu_sparsity_loss_mode == "step":
            per_row = StepFunction.apply(hidden_pre, threshold, self.bandwidth).sum(dim=-1)
        else:
            scaled = self.cfg.jumprelu_tanh_scale * feature_acts * self.W_dec.norm(dim=-1)
            per_row = torch.tanh(scaled).sum(dim=-1)
        losses = {"l0_loss": (coefficient * per_row).mean()}
        if self.cfg.pre_act_loss_coefficient is not None:
            losses["pre_act_loss"] = self.calculate_pre_act_loss(
                hidden_pre, threshold, step_input.dead_neuron_mask
            )
        return losses

    def calculate_pre_act_loss(
        self, hidden_pre: torch.Tensor, threshold: torch.Tensor, dead_neuron_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``coef * mean_b sum_j ReLU(t_j - h_j) * ||W_dec_j||`` over dead latents only."""
        if dead_neuron_mask is None or is_known_empty(dead_neuron_mask):
            return hidden_pre.new_zeros((), dtype=threshold.dtype)
        dead = dead_neuron_mask.to(device=hidden_pre.device, dtype=threshold.dtype)
        gap = F.relu(threshold - hidden_pre) * (dead * self.W_dec.norm(dim=-1))
        return self.cfg.pre_act_loss_coefficient * gap.sum(dim=-1).mean()

    @torch.no_grad()
    def fold_W_dec_norm(self) -> None:
        """Fold decoder norms into the encoder and scale the thresholds with them."""
        norms = self.get_W_dec_norm()
        super().fold_W_dec_norm()
        self.log_threshold.data.add_(torch.log(norms))

    def process_state_dict_for_saving(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Saved files hold ``threshold = exp(log_threshold)``."""
        if "log_threshold" in state_dict:
            state_dict["threshold"] = torch.exp(state_dict.pop("log_threshold"))

    def process_state_dict_for_loading(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Turn a saved ``threshold`` back into ``log_threshold``."""
        if "threshold" in state_dict and "log_threshold" not in state_dict:
            state_dict["log_threshold"] = torch.log(state_dict.pop("threshold"))


register_sae_architecture(
    "jumprelu", JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig, JumpReLUSAE, JumpReLUSAEConfig
)
