"""JumpReLU SAE: a latent passes when its pre-activation exceeds a learned threshold (``"jumprelu"``).

Training uses straight-through estimators with a rectangle kernel of width ``bandwidth``
(``eps``) so that the thresholds receive gradients:

* ``JumpReLU(h, t) = h * [h > t]``: ``d/dh = [h > t]``; ``d/dt = -(t / eps) K((h - t) / eps)``.
* ``Step(h, t) = [h > t]``: ``d/dt = -(1 / eps) K((h - t) / eps)``.

with ``K(u) = 1[|u| < 1/2]``. Threshold gradients are summed over the batch. With
``ste_to_input`` the estimator's term also reaches ``h`` (with the opposite sign of the
threshold's, since both functions depend on ``h - t`` only): ``+(t / eps) K`` for
JumpReLU and ``+(1 / eps) K`` for Step; without it ``h`` gets only the exact part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from synthsae.config_values import check_bool, check_choice, check_float, check_int
from synthsae.saes.base import (
    SAE,
    TrainCoefficientConfig,
    TrainingSAE,
    TrainStepInput,
    TrainStepOutput,
)
from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.registry import register_sae_architecture
from synthsae.saes.sparse_acts import is_known_empty, topk_aux_loss

SPARSITY_LOSS_MODES = ("step", "tanh", "quadratic")


def rectangle(u: torch.Tensor) -> torch.Tensor:
    """The rectangle kernel ``1[-1/2 < u < 1/2]`` in ``u``'s dtype."""
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


def _threshold_grad(grad: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return grad.sum_to_size(threshold.shape).to(threshold.dtype)


class JumpReLUFunction(torch.autograd.Function):
    """``h * [h > threshold]`` with a straight-through gradient for the threshold."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float, ste_to_input: bool = False
    ) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        ctx.ste_to_input = ste_to_input
        return x * (x > threshold)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        x, threshold = ctx.saved_tensors
        ste = (threshold / ctx.bandwidth) * rectangle((x - threshold) / ctx.bandwidth) * grad_output
        grad_x = (x > threshold) * grad_output
        if ctx.ste_to_input:
            grad_x = grad_x + ste
        return grad_x, _threshold_grad(-ste, threshold), None, None


class StepFunction(torch.autograd.Function):
    """Heaviside step ``[h > threshold]`` with a straight-through gradient for the threshold
    (and, with ``ste_to_input``, for ``h``)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float, ste_to_input: bool = False
    ) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        ctx.ste_to_input = ste_to_input
        return (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, None, None]:
        x, threshold = ctx.saved_tensors
        ste = (1.0 / ctx.bandwidth) * rectangle((x - threshold) / ctx.bandwidth) * grad_output
        grad_x = ste if ctx.ste_to_input else None
        return grad_x, _threshold_grad(-ste, threshold), None, None


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

    ``jumprelu_sparsity_loss_mode`` picks the sparsity loss, weighted by ``l0_coefficient``
    (ramped up over ``l0_warm_up_steps``):

    * ``"step"``: the L0 of each row through :class:`StepFunction`;
    * ``"tanh"``: ``sum_j tanh(jumprelu_tanh_scale * z_j * ||W_dec_j||)``;
    * ``"quadratic"``: ``2 / target_l0 * (L0 - target_l0)^2`` per row, which pulls the L0
      towards ``target_l0`` (required in this mode, ``0 < target_l0 <= d_sae``; ignored
      otherwise).

    ``jumprelu_ste_to_input`` also sends the straight-through gradients to the
    pre-activations (and so to the encoder), not only to the thresholds.
    ``pre_act_loss_coefficient`` (``None`` = off) pushes dead latents' pre-activations up
    towards their thresholds. The thresholds start at ``jumprelu_init_threshold``.
    ``topk_aux_loss_coefficient`` (0 = off, as in SAELens 6.54.12, which lacks the field)
    adds the TopK SAE's dead-latent auxiliary loss (each row's ``d_in // 2`` largest dead
    pre-activations reconstruct the detached residual), as the SynthSAEBench recipe does.
    """

    sparsity_field: ClassVar[str | None] = "l0_coefficient"

    jumprelu_init_threshold: float = 0.01
    jumprelu_bandwidth: float = 0.05
    jumprelu_sparsity_loss_mode: str = "step"
    l0_coefficient: float = 1.0
    l0_warm_up_steps: int = 0
    pre_act_loss_coefficient: float | None = None
    jumprelu_tanh_scale: float = 4.0
    jumprelu_ste_to_input: bool = False
    target_l0: float | None = None
    topk_aux_loss_coefficient: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        q = self.qualified
        self.jumprelu_init_threshold = check_float(q("jumprelu_init_threshold"), self.jumprelu_init_threshold, at_least=0)
        self.jumprelu_bandwidth = check_float(q("jumprelu_bandwidth"), self.jumprelu_bandwidth, above=0)
        check_choice(q("jumprelu_sparsity_loss_mode"), self.jumprelu_sparsity_loss_mode, SPARSITY_LOSS_MODES)
        self.l0_coefficient = check_float(q("l0_coefficient"), self.l0_coefficient, at_least=0)
        self.l0_warm_up_steps = check_int(q("l0_warm_up_steps"), self.l0_warm_up_steps, at_least=0)
        self.pre_act_loss_coefficient = check_float(
            q("pre_act_loss_coefficient"), self.pre_act_loss_coefficient, at_least=0, optional=True
        )
        self.jumprelu_tanh_scale = check_float(q("jumprelu_tanh_scale"), self.jumprelu_tanh_scale, above=0)
        check_bool(q("jumprelu_ste_to_input"), self.jumprelu_ste_to_input)
        self.topk_aux_loss_coefficient = check_float(
            q("topk_aux_loss_coefficient"), self.topk_aux_loss_coefficient, at_least=0
        )
        self._check_target_l0()

    def _check_target_l0(self) -> None:
        where = self.qualified("target_l0")
        self.target_l0 = check_float(where, self.target_l0, optional=True)
        if self.jumprelu_sparsity_loss_mode != "quadratic":
            return
        if self.target_l0 is None:
            raise ValueError(f"{where} must be set when jumprelu_sparsity_loss_mode='quadratic'")
        if not 0 < self.target_l0 <= self.d_sae:
            raise ValueError(f"{where} must be in (0, d_sae={self.d_sae}], got {self.target_l0!r}")

    @classmethod
    def architecture(cls) -> str:
        """``"jumprelu"``."""
        return "jumprelu"


class JumpReLUTrainingSAE(TrainingSAE):
    """JumpReLU SAE for training.

    The thresholds are learned directly (not through a logarithm: Adam moves a parameter
    by about ``lr`` per step, so a log-parameterised small threshold would barely move).
    They are kept in float32 whatever the SAE's dtype (bf16 would round Adam's steps
    away), cast to the compute dtype where used, and projected onto ``>= 0`` before each
    training pass (a negative threshold would let negative pre-activations through).
    """

    cfg: JumpReLUTrainingSAEConfig

    def initialize_weights(self) -> None:
        """Training weights, a zero ``b_enc`` and float32 thresholds at ``jumprelu_init_threshold``."""
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)
        self.threshold = nn.Parameter(
            torch.full((self.cfg.d_sae,), self.cfg.jumprelu_init_threshold, dtype=torch.float32, device=self.device)
        )

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> JumpReLUTrainingSAE:
        result = super()._apply(fn, *args, **kwargs)
        threshold = self._parameters.get("threshold")
        if threshold is not None and threshold.dtype != torch.float32:
            threshold.data = threshold.data.float()  # .to(dtype) casts every parameter; keep fp32
        return result

    @property
    def bandwidth(self) -> float:
        """Width of the straight-through rectangle kernel."""
        return self.cfg.jumprelu_bandwidth

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """Project the thresholds onto ``>= 0`` (outside the graph), then the usual pass."""
        with torch.no_grad():
            self.threshold.data.clamp_(min=0.0)
        return super().training_forward_pass(step_input)

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """JumpReLU latents and their pre-activations."""
        hidden_pre = self.encoder_linear(x, self.W_enc, self.b_enc)
        threshold = self.threshold.to(hidden_pre.dtype)
        feature_acts = JumpReLUFunction.apply(hidden_pre, threshold, self.bandwidth, self.cfg.jumprelu_ste_to_input)
        return feature_acts, hidden_pre

    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        """``{"l0": TrainCoefficientConfig(l0_coefficient, l0_warm_up_steps)}``."""
        return {"l0": TrainCoefficientConfig(self.cfg.l0_coefficient, self.cfg.l0_warm_up_steps)}

    def sparsity_per_row(self, feature_acts: torch.Tensor, hidden_pre: torch.Tensor) -> torch.Tensor:
        """The sparsity loss of each row (before the coefficient), by loss mode."""
        cfg = self.cfg
        if cfg.jumprelu_sparsity_loss_mode == "tanh":
            return torch.tanh(cfg.jumprelu_tanh_scale * feature_acts * self.W_dec.norm(dim=-1)).sum(dim=-1)
        threshold = self.threshold.to(hidden_pre.dtype)
        l0 = StepFunction.apply(hidden_pre, threshold, self.bandwidth, cfg.jumprelu_ste_to_input).sum(dim=-1)
        if cfg.jumprelu_sparsity_loss_mode == "quadratic":
            return 2.0 / cfg.target_l0 * (l0 - cfg.target_l0) ** 2
        return l0

    def calculate_aux_loss(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``{"l0_loss": ...}`` plus ``"pre_act_loss"`` and ``"auxiliary_reconstruction_loss"``
        when their coefficients are set."""
        coefficient = self.coefficient(step_input, "l0", self.cfg.l0_coefficient)
        losses = {"l0_loss": (coefficient * self.sparsity_per_row(feature_acts, hidden_pre)).mean()}
        if self.cfg.pre_act_loss_coefficient is not None:
            losses["pre_act_loss"] = self.calculate_pre_act_loss(
                hidden_pre, self.threshold.to(hidden_pre.dtype), step_input.dead_neuron_mask
            )
        if self.cfg.topk_aux_loss_coefficient > 0:
            residual = (step_input.sae_in - sae_out).detach().reshape(-1, self.cfg.d_in)
            dead_loss = topk_aux_loss(hidden_pre.reshape(-1, self.cfg.d_sae), step_input.dead_neuron_mask,
                                      residual, self.W_dec, None, self.cfg.d_in // 2)
            losses["auxiliary_reconstruction_loss"] = self.cfg.topk_aux_loss_coefficient * dead_loss
        return losses

    def calculate_pre_act_loss(
        self, hidden_pre: torch.Tensor, threshold: torch.Tensor, dead_neuron_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``coef * mean_b sum_j ReLU(t_j - h_j) * ||W_dec_j||`` over dead latents only."""
        if dead_neuron_mask is None or is_known_empty(dead_neuron_mask):
            return hidden_pre.new_zeros(())
        dead = dead_neuron_mask.to(device=hidden_pre.device, dtype=hidden_pre.dtype)
        gap = F.relu(threshold - hidden_pre) * dead * self.W_dec.norm(dim=-1)
        return self.cfg.pre_act_loss_coefficient * gap.sum(dim=-1).mean()

    @torch.no_grad()
    def fold_W_dec_norm(self) -> None:
        """Fold decoder norms into the encoder and scale the thresholds with them."""
        norms = self.get_W_dec_norm()
        super().fold_W_dec_norm()
        self.threshold.data.mul_(norms.to(self.threshold.dtype))

    def process_state_dict_for_loading(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Files from before the direct parameterisation hold ``log_threshold``: use its exp."""
        if "log_threshold" in state_dict:
            state_dict["threshold"] = torch.exp(state_dict.pop("log_threshold")).contiguous()


register_sae_architecture(
    "jumprelu", JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig, JumpReLUSAE, JumpReLUSAEConfig
)
