"""Standard ReLU SAE with a decoder-norm-weighted Lp sparsity penalty (architecture ``"standard"``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from synthsae.config_values import check_float, check_int
from synthsae.saes.base import SAE, TrainCoefficientConfig, TrainingSAE, TrainStepInput
from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.registry import register_sae_architecture


def relu_encode(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ReLU(h), h)`` with ``h = process_sae_in(x) @ W_enc + b_enc``."""
    hidden_pre = sae.encoder_linear(x, sae.W_enc, sae.b_enc)
    return F.relu(hidden_pre), hidden_pre


@dataclass
class StandardSAEConfig(SAEConfig):
    """Config of the inference :class:`StandardSAE` (no fields beyond :class:`SAEConfig`)."""

    @classmethod
    def architecture(cls) -> str:
        """``"standard"``."""
        return "standard"


class StandardSAE(SAE):
    """Inference ReLU SAE: ``z = ReLU(x' W_enc + b_enc)``."""

    cfg: StandardSAEConfig

    def initialize_weights(self) -> None:
        """Base weights plus a zero ``b_enc``."""
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU latents."""
        return relu_encode(self, x)[0]


@dataclass
class StandardTrainingSAEConfig(TrainingSAEConfig):
    """Training config of the L1 SAE.

    ``l1_coefficient`` weights the penalty (ramped up over ``l1_warm_up_steps``);
    ``lp_norm`` is the p of the norm taken over decoder-norm-weighted latents.
    """

    sparsity_field: ClassVar[str | None] = "l1_coefficient"

    l1_coefficient: float = 1.0
    lp_norm: float = 1.0
    l1_warm_up_steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.l1_coefficient = check_float(self.qualified("l1_coefficient"), self.l1_coefficient, at_least=0)
        self.lp_norm = check_float(self.qualified("lp_norm"), self.lp_norm, above=0)
        self.l1_warm_up_steps = check_int(self.qualified("l1_warm_up_steps"), self.l1_warm_up_steps, at_least=0)

    @classmethod
    def architecture(cls) -> str:
        """``"standard"``."""
        return "standard"


class StandardTrainingSAE(TrainingSAE):
    """ReLU SAE trained with ``l1_loss = coef * mean_b || z * ||W_dec_j|| ||_p``."""

    cfg: StandardTrainingSAEConfig

    def initialize_weights(self) -> None:
        """Training weights plus a zero ``b_enc``."""
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ReLU latents and their pre-activations."""
        return relu_encode(self, x)

    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        """``{"l1": TrainCoefficientConfig(l1_coefficient, l1_warm_up_steps)}``."""
        return {"l1": TrainCoefficientConfig(self.cfg.l1_coefficient, self.cfg.l1_warm_up_steps)}

    def calculate_aux_loss(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``{"l1_loss": ...}``: the p-norm over latents of ``z_j * ||W_dec_j||``, batch mean."""
        coefficient = self.coefficient(step_input, "l1", self.cfg.l1_coefficient)
        norms = self.W_dec.norm(dim=-1)
        if self.cfg.lp_norm == 1.0 and type(self).encode_with_hidden_pre is StandardTrainingSAE.encode_with_hidden_pre:
            # ReLU latents are non-negative, so the L1 norm of each row is a plain sum and its
            # batch mean is (column sums) . norms / batch: two small ops instead of a [B, d_sae] norm
            column_sums = feature_acts.reshape(-1, feature_acts.shape[-1]).sum(0)
            rows = feature_acts.numel() // feature_acts.shape[-1]
            return {"l1_loss": coefficient / max(rows, 1) * (column_sums @ norms)}
        sparsity = torch.linalg.vector_norm(feature_acts * norms, ord=self.cfg.lp_norm, dim=-1)
        return {"l1_loss": coefficient * sparsity.mean()}


register_sae_architecture(
    "standard", StandardTrainingSAE, StandardTrainingSAEConfig, StandardSAE, StandardSAEConfig
)
