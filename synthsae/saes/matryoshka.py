"""Matryoshka BatchTopK SAE: nested latent prefixes must each reconstruct the input.

For widths ``w_1 < ... < w_L = d_sae`` the loss adds, for every width but the last,
``inner_mse_loss_{w}``: the squared error of ``b_dec + sum_{j < w} z_j W_dec_j`` (same
decoder-norm rescaling as the full SAE), each with weight 1. Architecture
``"matryoshka_batchtopk"``; inference saves are JumpReLU SAEs, like BatchTopK.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import torch

from synthsae.config_values import check_bool
from synthsae.saes.base import TrainStepInput, TrainStepOutput
from synthsae.saes.batchtopk import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from synthsae.saes.jumprelu import JumpReLUSAE, JumpReLUSAEConfig
from synthsae.saes.registry import register_sae_architecture
from synthsae.saes.sparse_acts import Gather, SparseActivations, is_known_empty, topk_aux_loss


@dataclass
class MatryoshkaBatchTopKTrainingSAEConfig(BatchTopKTrainingSAEConfig):
    """Training config of the Matryoshka BatchTopK SAE.

    ``matryoshka_widths`` must be non-empty and strictly increasing, each in
    ``1..d_sae``; if the last is not ``d_sae``, ``d_sae`` is appended (with a warning).
    ``use_matryoshka_aux_loss`` gives each level its own dead-latent auxiliary loss on the
    residual of its prefix reconstruction.
    """

    matryoshka_widths: list[int] = field(default_factory=list)
    use_matryoshka_aux_loss: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool(self.qualified("use_matryoshka_aux_loss"), self.use_matryoshka_aux_loss)
        self.matryoshka_widths = self._checked_widths(self.matryoshka_widths)

    def _checked_widths(self, widths: object) -> list[int]:
        name = f"{type(self).__name__}.matryoshka_widths"
        if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
            raise TypeError(f"{name} must be a list of integers, got {widths!r}")
        widths = list(widths)  # type: ignore[call-overload]
        if not widths:
            raise ValueError(
                f"{name} must list at least one width (e.g. [{self.d_sae // 4}, {self.d_sae}]); got []"
            )
        for position, width in enumerate(widths):
            if isinstance(width, bool) or not isinstance(width, numbers.Integral) or not 1 <= width <= self.d_sae:
                raise ValueError(
                    f"{name}[{position}] must be an integer in 1..d_sae={self.d_sae}, got {width!r}"
                )
        widths = [int(width) for width in widths]
        for position in range(1, len(widths)):
            if widths[position] <= widths[position - 1]:
                raise ValueError(
                    f"{name} must be strictly increasing, but entry {position} ({widths[position]}) "
                    f"is not above entry {position - 1} ({widths[position - 1]}): {widths}"
                )
        if widths[-1] != self.d_sae:
            warnings.warn(
                f"{name} ends at {widths[-1]}, not d_sae={self.d_sae}; adding a final level of "
                f"width {self.d_sae}",
                UserWarning,
                stacklevel=4,
            )
            widths.append(self.d_sae)
        if len(widths) == 1:
            warnings.warn(
                f"{name} has a single level, which trains a plain BatchTopK SAE",
                UserWarning,
                stacklevel=4,
            )
        return widths

    @classmethod
    def architecture(cls) -> str:
        """``"matryoshka_batchtopk"``."""
        return "matryoshka_batchtopk"


class MatryoshkaBatchTopKTrainingSAE(BatchTopKTrainingSAE):
    """Matryoshka BatchTopK SAE for training; saved for inference as a :class:`JumpReLUSAE`."""

    cfg: MatryoshkaBatchTopKTrainingSAEConfig

    def prefix_reconstructions(self, acts: SparseActivations) -> list[torch.Tensor]:
        """Reconstruction from each latent prefix ``[:w]``, one per width (the last is the full output)."""
        scale = self.decoder_scale()
        partial: torch.Tensor = self.b_dec
        outputs = []
        low = 0
        for width in self.cfg.matryoshka_widths:
            col_range = None if (low, width) == (0, self.cfg.d_sae) else (low, width)
            partial = partial + acts.matmul(self.W_dec, scale, col_range)
            outputs.append(self._finish_decode(partial))
            low = width
        return outputs

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """BatchTopK pass plus an ``inner_mse_loss_{w}`` for every width but the last."""
        hidden_pre, acts = self.begin_training_pass(step_input.sae_in)
        try:
            def dense() -> torch.Tensor:
                return acts.to_dense().view(hidden_pre.shape)

            prefixes = self.prefix_reconstructions(acts)
            out_shape = (*hidden_pre.shape[:-1], self.cfg.d_in)
            sae_out = prefixes[-1].view(out_shape)
            if self.cfg.use_matryoshka_aux_loss:
                aux = self.cfg.aux_loss_coefficient * self.matryoshka_aux_loss(
                    step_input.sae_in, step_input.dead_neuron_mask, hidden_pre, prefixes
                )
            else:
                aux = self.calculate_topk_aux_loss(step_input.sae_in, sae_out, hidden_pre, step_input.dead_neuron_mask)
            losses = {"auxiliary_reconstruction_loss": aux}
            for width, prefix in zip(self.cfg.matryoshka_widths[:-1], prefixes[:-1]):
                losses[f"inner_mse_loss_{width}"] = self.mse_loss(prefix.view(out_shape), step_input.sae_in)
            output = self.make_step_output(step_input, None, hidden_pre, sae_out, losses,  # type: ignore[arg-type]
                                           make_feature_acts=dense)
        finally:
            self.end_training_pass()
        output.fire_counts = acts.fire_counts()
        self.after_training_step(acts, output)
        return output

    def calculate_matryoshka_aux_loss(
        self,
        sae_in: torch.Tensor,
        sae_out: torch.Tensor,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        dead_neuron_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """The per-level auxiliary loss (see :meth:`matryoshka_aux_loss`) from dense latents,
        times ``aux_loss_coefficient``. ``sae_out`` is not needed (the levels are rebuilt)."""
        d_sae = self.cfg.d_sae
        dense = feature_acts.reshape(-1, d_sae)
        scale = self.decoder_scale()
        if scale is not None:
            dense = dense * scale
        prefixes, partial, low = [], self.b_dec, 0
        for width in self.cfg.matryoshka_widths:
            partial = partial + dense[:, low:width] @ self.W_dec[low:width]
            prefixes.append(self._finish_decode(partial))
            low = width
        loss = self.matryoshka_aux_loss(sae_in, dead_neuron_mask, hidden_pre.reshape(-1, d_sae), prefixes)
        return self.cfg.aux_loss_coefficient * loss

    def matryoshka_aux_loss(
        self,
        sae_in: torch.Tensor,
        dead: torch.Tensor | None,
        hidden_pre: torch.Tensor,
        prefixes: list[torch.Tensor],
    ) -> torch.Tensor:
        """Sum over levels ``[low, w)`` of the TopK auxiliary loss restricted to that level.

        Each level's dead latents reconstruct the residual left by the prefix up to ``w``;
        ``k_aux = d_in // 2`` and the dead-count scale are per level. Not multiplied by
        ``aux_loss_coefficient``. ``hidden_pre`` is ``[n, d_sae]``.
        """
        sae_in = sae_in.reshape(-1, self.cfg.d_in)
        total = sae_in.new_zeros((), dtype=torch.float32)
        if dead is None or is_known_empty(dead):
            return total
        scale = self.decoder_scale()
        gather = self.pass_gather(hidden_pre)
        flat_hidden = hidden_pre.reshape(-1, self.cfg.d_sae)
        low = 0
        for width, prefix in zip(self.cfg.matryoshka_widths, prefixes):
            total = total + topk_aux_loss(
                flat_hidden[:, low:width],
                dead[low:width],
                (sae_in - prefix.reshape(-1, self.cfg.d_in)).detach(),
                self.W_dec[low:width],
                None if scale is None else scale[low:width],
                self.cfg.d_in // 2,
                gather=None if gather is None else _shifted(gather, low),
            )
            low = width
        return total


def _shifted(gather: Gather, low: int) -> Gather:
    """``gather`` for the column block starting at ``low``."""
    return lambda rows, cols: gather(rows, cols + low)


register_sae_architecture(
    "matryoshka_batchtopk",
    MatryoshkaBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAEConfig,
    JumpReLUSAE,
    JumpReLUSAEConfig,
)
