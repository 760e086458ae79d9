"""TopK SAE: each row keeps its ``k`` largest pre-activations (architecture ``"topk"``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from synthsae.config_values import check_bool, check_float, check_int
from synthsae.saes.base import (
    SAE,
    TrainCoefficientConfig,
    TrainingSAE,
    TrainStepInput,
    TrainStepOutput,
)
from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.registry import register_sae_architecture
from synthsae.saes.sparse_acts import Gather, SparseActivations, row_topk, topk_aux_loss
from synthsae.saes.sparse_encoder import EncoderPass, row_norms


def dense_row_topk(hidden_pre: torch.Tensor, k: int) -> torch.Tensor:
    """Dense latents keeping each row's ``k`` largest entries after ReLU (others 0)."""
    values, indices = torch.topk(hidden_pre, k, dim=-1, sorted=False)
    return torch.zeros_like(hidden_pre).scatter(-1, indices, F.relu(values))


class TopK(nn.Module):
    """Activation keeping each row's ``k`` largest entries after ReLU (others 0)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense_row_topk(x, self.k)


@torch.no_grad()
def fold_decoder_norm_into_encoder(W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor) -> None:
    """In place: ``W_dec /= n``, ``W_enc *= n``, ``b_enc *= n`` with ``n = ||W_dec_j||``."""
    norms = W_dec.norm(dim=-1).clamp(min=1e-8)
    W_dec.div_(norms[:, None])
    W_enc.mul_(norms[None, :])
    b_enc.mul_(norms)


@dataclass
class TopKSAEConfig(SAEConfig):
    """Config of the inference :class:`TopKSAE`.

    ``rescale_acts_by_decoder_norm`` multiplies pre-activations by ``||W_dec_j||`` before
    the selection and divides latents by it when decoding.
    """

    k: int = 100
    rescale_acts_by_decoder_norm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.k = check_int(self.qualified("k"), self.k, at_least=1)
        if self.k > self.d_sae:
            raise ValueError(f"{type(self).__name__}.k must be <= d_sae ({self.d_sae}), got {self.k}")
        check_bool(self.qualified("rescale_acts_by_decoder_norm"), self.rescale_acts_by_decoder_norm)

    @classmethod
    def architecture(cls) -> str:
        """``"topk"``."""
        return "topk"


@torch.no_grad()
def _fold_topk_decoder_norm(sae: SAE) -> None:
    """Fold decoder norms into the encoder; only exact when rescaling by decoder norm (the
    ``fold_W_dec_norm`` of both TopK classes)."""
    if not sae.cfg.rescale_acts_by_decoder_norm:
        raise NotImplementedError(
            "fold_W_dec_norm would change which latents a TopK SAE keeps unless "
            "rescale_acts_by_decoder_norm=True"
        )
    fold_decoder_norm_into_encoder(sae.W_enc.data, sae.b_enc.data, sae.W_dec.data)


class TopKSAE(SAE):
    """Inference TopK SAE."""

    cfg: TopKSAEConfig

    def initialize_weights(self) -> None:
        """Base weights plus a zero ``b_enc``."""
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)

    def get_activation_fn(self) -> nn.Module:
        """:class:`TopK` with this SAE's ``k``."""
        return TopK(self.cfg.k)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row top-``k`` latents through :meth:`get_activation_fn` (for TopK, ReLU applied,
        so fewer than ``k`` can be non-zero)."""
        hidden_pre = self.encoder_linear(x, self.W_enc, self.b_enc)
        if self.cfg.rescale_acts_by_decoder_norm:
            hidden_pre = hidden_pre * self.W_dec.norm(dim=-1)
        return self.get_activation_fn()(hidden_pre)

    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        """Reconstruction; latents are divided by ``||W_dec_j||`` first when rescaling."""
        if self.cfg.rescale_acts_by_decoder_norm:
            feature_acts = feature_acts / self.W_dec.norm(dim=-1)
        return self._finish_decode(F.linear(feature_acts, self.W_dec.T, self.b_dec))

    fold_W_dec_norm = _fold_topk_decoder_norm


@dataclass
class TopKTrainingSAEConfig(TrainingSAEConfig):
    """Training config of the TopK SAE.

    ``aux_loss_coefficient`` weights the dead-latent auxiliary loss;
    ``rescale_acts_by_decoder_norm`` makes the decoder act as if its rows had unit norm
    (the norms are folded into the encoder when saving for inference).
    ``use_sparse_activations`` is accepted for compatibility: training always keeps the
    kept latents sparse internally and returns dense ``feature_acts``.
    """

    sparsity_field: ClassVar[str | None] = "k"

    k: int = 100
    use_sparse_activations: bool = False
    aux_loss_coefficient: float = 1.0
    rescale_acts_by_decoder_norm: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_k()
        check_bool(self.qualified("use_sparse_activations"), self.use_sparse_activations)
        self.aux_loss_coefficient = check_float(self.qualified("aux_loss_coefficient"), self.aux_loss_coefficient, at_least=0)
        check_bool(self.qualified("rescale_acts_by_decoder_norm"), self.rescale_acts_by_decoder_norm)
        if self.aux_loss_coefficient > 0 and self.normalize_activations in (
            "constant_norm_rescale",
            "layer_norm",
        ):
            raise ValueError(
                f"{type(self).__name__}: the dead-latent auxiliary loss cannot be used with "
                f"normalize_activations={self.normalize_activations!r}; use 'none' or "
                "'expected_average_only_in', or set aux_loss_coefficient=0"
            )

    def _check_k(self) -> None:
        self.k = check_int(self.qualified("k"), self.k, at_least=1)
        if self.k > self.d_sae:
            raise ValueError(f"{type(self).__name__}.k must be <= d_sae ({self.d_sae}), got {self.k}")

    @classmethod
    def architecture(cls) -> str:
        """``"topk"``."""
        return "topk"


class _TrainingPass(NamedTuple):
    """What one training pass shares between encoding, decoding and the auxiliary losses."""

    encoder: EncoderPass
    hidden_pre: torch.Tensor  # the pre-activations handed to calculate_aux_loss
    scale: torch.Tensor | None  # 1 / ||W_dec_j||, computed once per pass


class TopKTrainingSAE(TrainingSAE):
    """TopK SAE for training, with the dead-latent auxiliary loss.

    The training pass computes the dense pre-activations once without autograd
    (:class:`~synthsae.saes.sparse_encoder.EncoderPass`), keeps the selected latents
    sparse, decodes them with ``embedding_bag`` and back-propagates through the picked
    entries only; ``feature_acts`` is still returned dense, ``hidden_pre`` without a graph.
    """

    cfg: TopKTrainingSAEConfig
    _active_pass: _TrainingPass | None = None
    dead_latents_by_magnitude: ClassVar[bool] = False  # AbsTopK ranks dead latents by |h|

    def initialize_weights(self) -> None:
        """Training weights plus a zero ``b_enc``."""
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)

    def get_activation_fn(self) -> nn.Module:
        """:class:`TopK` with this SAE's ``k`` (the activation of :meth:`select`, dense)."""
        return TopK(self.cfg.k)

    # --- pieces shared with BatchTopK and Matryoshka -----------------------------------------

    def decoder_scale(self) -> torch.Tensor | None:
        """``1 / ||W_dec_j||`` when rescaling by decoder norm, else ``None`` (differentiable)."""
        if self._active_pass is not None:
            return self._active_pass.scale
        if self.cfg.rescale_acts_by_decoder_norm:
            return 1.0 / self.W_dec.norm(dim=-1)
        return None

    def compute_hidden_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations, multiplied by ``||W_dec_j||`` when rescaling."""
        hidden_pre = self.encoder_linear(x, self.W_enc, self.b_enc, sparse_grad=True)
        if self.cfg.rescale_acts_by_decoder_norm:
            hidden_pre = hidden_pre * self.W_dec.norm(dim=-1)
        return hidden_pre

    def select(self, hidden_pre: torch.Tensor, gather: Gather | None = None) -> SparseActivations:
        """Kept latents of a ``[n, d_sae]`` pre-activation matrix (values from ``gather`` if given)."""
        return row_topk(hidden_pre, self.cfg.k, gather)

    def begin_training_pass(self, sae_in: torch.Tensor) -> tuple[torch.Tensor, SparseActivations]:
        """Encode ``sae_in`` and select its latents: ``(hidden_pre, kept latents)``.

        Until :meth:`end_training_pass`, :meth:`decoder_scale` returns this pass's scale and
        the auxiliary losses of ``hidden_pre`` take their gradients through the sparse
        encoder. An input that needs a gradient itself takes the plain autograd path.
        """
        if sae_in.requires_grad:
            hidden_pre = self.compute_hidden_pre(sae_in)
            return hidden_pre, self.select(hidden_pre.reshape(-1, self.cfg.d_sae))
        x = self._prepare_input(sae_in)
        norms = row_norms(self.W_dec) if self.cfg.rescale_acts_by_decoder_norm else None
        b_dec = self.b_dec if self.cfg.apply_b_dec_to_input else None
        encoder = EncoderPass(x.reshape(-1, self.cfg.d_in), self.W_enc, self.b_enc, b_dec, norms)
        hidden_pre = encoder.hidden_pre.view(*x.shape[:-1], self.cfg.d_sae)
        self._active_pass = _TrainingPass(encoder, hidden_pre, None if norms is None else 1.0 / norms)
        return hidden_pre, self.select(encoder.hidden_pre, encoder.gather)

    def end_training_pass(self) -> None:
        """Forget the current pass (its tensors are freed with the autograd graph)."""
        self._active_pass = None

    def pass_gather(self, hidden_pre: torch.Tensor) -> Gather | None:
        """The sparse-gradient accessor of ``hidden_pre`` if it is the current pass's, else None."""
        active = self._active_pass
        return active.encoder.gather if active is not None and hidden_pre is active.hidden_pre else None

    def decode_sparse(self, acts: SparseActivations) -> torch.Tensor:
        """:meth:`decode` of sparse latents, ``[n, d_in]``."""
        return self._finish_decode(acts.matmul(self.W_dec, self.decoder_scale()) + self.b_dec)

    # --- the SAE ----------------------------------------------------------------------------

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense kept latents and the (rescaled) pre-activations."""
        hidden_pre = self.compute_hidden_pre(x)
        acts = self.select(hidden_pre.reshape(-1, self.cfg.d_sae))
        return acts.to_dense().view(hidden_pre.shape), hidden_pre

    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        """Reconstruction; latents are divided by ``||W_dec_j||`` first when rescaling."""
        scale = self.decoder_scale()
        if scale is not None:
            feature_acts = feature_acts * scale
        return self._finish_decode(feature_acts @ self.W_dec + self.b_dec)

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """Sparse encode/decode, then MSE plus the auxiliary loss.

        The dense ``feature_acts`` is built only when read (see
        :class:`~synthsae.saes.steps.DeferredActsStepOutput`), or up front for a subclass
        that overrides :meth:`calculate_aux_loss` (which receives it).
        """
        hidden_pre, acts = self.begin_training_pass(step_input.sae_in)
        try:
            def dense() -> torch.Tensor:
                return acts.to_dense().view(hidden_pre.shape)

            feature_acts = dense() if self._aux_reads_feature_acts() else None
            sae_out = self.decode_sparse(acts).view(*hidden_pre.shape[:-1], -1)
            aux_losses = self.calculate_aux_loss(step_input, feature_acts, hidden_pre, sae_out)  # type: ignore[arg-type]
            output = self.make_step_output(step_input, feature_acts, hidden_pre, sae_out, aux_losses,  # type: ignore[arg-type]
                                           make_feature_acts=dense if feature_acts is None else None)
        finally:
            self.end_training_pass()
        output.fire_counts = acts.fire_counts()
        self.after_training_step(acts, output)
        return output

    def _aux_reads_feature_acts(self) -> bool:
        """True when a subclass overrides :meth:`calculate_aux_loss` (it may read ``feature_acts``)."""
        return type(self).calculate_aux_loss is not TopKTrainingSAE.calculate_aux_loss

    def after_training_step(self, acts: SparseActivations, output: TrainStepOutput) -> None:
        """Hook run at the end of each training pass (BatchTopK updates its threshold here)."""

    def calculate_aux_loss(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``{"auxiliary_reconstruction_loss": ...}`` (see :func:`topk_aux_loss`; ``feature_acts`` is unused)."""
        loss = self._dead_latent_loss(step_input.sae_in, sae_out, hidden_pre, step_input.dead_neuron_mask,
                                      by_magnitude=self.dead_latents_by_magnitude)
        return {"auxiliary_reconstruction_loss": loss}

    def calculate_topk_aux_loss(
        self,
        sae_in: torch.Tensor,
        sae_out: torch.Tensor,
        hidden_pre: torch.Tensor,
        dead_neuron_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Dead latents (top ``d_in // 2`` per row, no ReLU) reconstruct the detached residual,
        times ``aux_loss_coefficient``."""
        return self._dead_latent_loss(sae_in, sae_out, hidden_pre, dead_neuron_mask, by_magnitude=False)

    def _dead_latent_loss(
        self,
        sae_in: torch.Tensor,
        sae_out: torch.Tensor,
        hidden_pre: torch.Tensor,
        dead_neuron_mask: torch.Tensor | None,
        by_magnitude: bool,
    ) -> torch.Tensor:
        residual = (sae_in - sae_out).detach().reshape(-1, self.cfg.d_in)
        loss = topk_aux_loss(
            hidden_pre.reshape(-1, self.cfg.d_sae),
            dead_neuron_mask,
            residual,
            self.W_dec,
            self.decoder_scale(),
            self.cfg.d_in // 2,
            by_magnitude=by_magnitude,
            gather=self.pass_gather(hidden_pre),
        )
        return self.cfg.aux_loss_coefficient * loss

    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        """No scheduled coefficients."""
        return {}

    fold_W_dec_norm = _fold_topk_decoder_norm

    def process_state_dict_for_saving_inference(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Inference saves have unit-norm decoder rows when rescaling (norms folded in)."""
        super().process_state_dict_for_saving_inference(state_dict)
        if self.cfg.rescale_acts_by_decoder_norm:
            fold_decoder_norm_into_encoder(state_dict["W_enc"], state_dict["b_enc"], state_dict["W_dec"])


register_sae_architecture("topk", TopKTrainingSAE, TopKTrainingSAEConfig, TopKSAE, TopKSAEConfig)
