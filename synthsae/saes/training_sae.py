"""The training SAE base class: the training forward pass, coefficients and inference export."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from synthsae.saes.config import TrainingSAEConfig
from synthsae.saes.io import SAE_WEIGHTS_FILENAME, load_tensors, save_sae_files
from synthsae.saes.sae import SAE
from synthsae.saes.steps import (
    DeferredActsStepOutput,
    TrainCoefficientConfig,
    TrainStepInput,
    TrainStepOutput,
)


class TrainingSAE(SAE):
    """An SAE that can be trained: :meth:`training_forward_pass` returns the losses to minimise.

    Subclasses implement :meth:`encode_with_hidden_pre`, and where they have extra
    losses :meth:`calculate_aux_loss` and :meth:`get_coefficients`.
    """

    cfg: TrainingSAEConfig
    is_training: ClassVar[bool] = True

    def __init__(self, cfg: TrainingSAEConfig, use_error_term: bool = False):
        if not isinstance(cfg, TrainingSAEConfig):
            raise TypeError(f"{type(self).__name__} needs a TrainingSAEConfig, got {type(cfg).__name__}")
        cfg.add_training_info_to_metadata()  # the details as validated (subclasses convert values after the base)
        super().__init__(cfg, use_error_term)

    def initialize_weights(self) -> None:
        """Base initialisation, then decoder rows rescaled to ``decoder_init_norm`` and re-tied."""
        super().initialize_weights()
        if self.cfg.decoder_init_norm is not None:
            self.W_dec.data.mul_(self.cfg.decoder_init_norm / self.W_dec.norm(dim=-1, keepdim=True))
            if not self.tied_encoder:
                self.W_enc.data.copy_(self.W_dec.data.T)

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(feature_acts, hidden_pre)`` for inputs ``x``."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode_with_hidden_pre()")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations (the first output of :meth:`encode_with_hidden_pre`)."""
        return self.encode_with_hidden_pre(x)[0]

    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        """Loss coefficients the trainer schedules, by name (e.g. ``{"l1": TrainCoefficientConfig(...)}``)."""
        return {}

    @staticmethod
    def coefficient(step_input: TrainStepInput, name: str, default: float) -> float:
        """The scheduled value of coefficient ``name``, or ``default`` if the trainer gave none."""
        return step_input.coefficients.get(name, default)

    def calculate_aux_loss(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Architecture losses added to the MSE, by name (default: none)."""
        return {}

    @staticmethod
    def mse_loss(sae_out: torch.Tensor, sae_in: torch.Tensor) -> torch.Tensor:
        """Squared error summed over ``d_in`` and averaged over the batch."""
        rows = sae_in.numel() // sae_in.shape[-1] if sae_in.dim() else 1
        # one fused op (forward and backward), computed in fp32 under autocast
        return F.mse_loss(sae_out, sae_in, reduction="sum") / max(rows, 1)

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """Encode, decode and compute ``loss = mse_loss + sum(aux losses)``."""
        feature_acts, hidden_pre = self.encode_with_hidden_pre(step_input.sae_in)
        sae_out = self.decode(feature_acts)
        aux_losses = self.calculate_aux_loss(step_input, feature_acts, hidden_pre, sae_out)
        return self.make_step_output(step_input, feature_acts, hidden_pre, sae_out, aux_losses)

    def make_step_output(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
        aux_losses: Mapping[str, torch.Tensor] | torch.Tensor,
        metrics: dict[str, torch.Tensor | float | int] | None = None,
        make_feature_acts: Callable[[], torch.Tensor] | None = None,
    ) -> TrainStepOutput:
        """Assemble a :class:`TrainStepOutput` from the pieces of a forward pass.

        With ``make_feature_acts`` (and ``feature_acts=None``) the output is a
        :class:`DeferredActsStepOutput` that builds ``feature_acts`` on first read.
        """
        if isinstance(aux_losses, torch.Tensor):
            aux_losses = {"auxiliary_loss": aux_losses}
        mse_loss = self.mse_loss(sae_out, step_input.sae_in)
        losses = {"mse_loss": mse_loss, **aux_losses}
        total = mse_loss
        for value in aux_losses.values():
            total = total + value
        fields = dict(
            sae_in=step_input.sae_in,
            sae_out=sae_out,
            feature_acts=feature_acts,
            hidden_pre=hidden_pre,
            loss=total,
            losses=losses,
            metrics=metrics if metrics is not None else {},
        )
        if make_feature_acts is not None:
            return DeferredActsStepOutput(make_feature_acts=make_feature_acts, **fields)
        return TrainStepOutput(**fields)

    def process_state_dict_for_saving_inference(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Edit a state-dict copy into the inference save's form (default: the training form)."""
        self.process_state_dict_for_saving(state_dict)

    def save_inference_model(self, path: str | Path) -> tuple[Path, Path]:
        """Write the inference form (weights and ``cfg.json``) that ``SAE.load_from_disk`` reads."""
        state = self._state_dict_copy()
        self.process_state_dict_for_saving_inference(state)
        return save_sae_files(path, state, self.cfg.get_inference_sae_cfg_dict())

    def to_inference_sae(self) -> SAE:
        """A new inference SAE equal to what ``save_inference_model`` + ``load_from_disk`` give."""
        state = self._state_dict_copy()
        self.process_state_dict_for_saving_inference(state)
        cfg_dict = self.cfg.get_inference_sae_cfg_dict()
        from synthsae.saes.loading import load_sae

        return load_sae(SAE, cfg_dict, state, self.cfg.device, None, f"{type(self).__name__} weights")

    def load_weights_from_checkpoint(self, checkpoint_path: str | Path) -> None:
        """Load the weights of a ``save_model`` folder into this SAE (its config is not read)."""
        path = Path(checkpoint_path) / SAE_WEIGHTS_FILENAME
        self.load_saved_state(load_tensors(path, device=self.device), str(path))

    @torch.no_grad()
    def log_histograms(self) -> dict[str, np.ndarray]:
        """Weight distributions for logging: decoder row norms, and the encoder bias if any."""
        result = {"weights/W_dec_norms": self.W_dec.detach().float().norm(dim=1).cpu().numpy()}
        b_enc = getattr(self, "b_enc", None)
        if isinstance(b_enc, torch.Tensor):
            result["weights/b_e"] = b_enc.detach().float().cpu().numpy()
        return result
