"""Matching pursuit SAE: greedy selection of decoder atoms (architecture ``"matching_pursuit"``).

Tied weights: the encoder is ``W_dec.T`` (there is no ``W_enc`` parameter and no ``b_enc``).
Starting from ``r = x'``, each iteration every unfinished row picks
``j = argmax ReLU(r . W_dec_j)`` (no gradient through the choice), adds
``v = ReLU(r . W_dec_j)`` to ``z_j`` (with gradient) and sets ``r -= v W_dec_j``.
A row finishes when its support did not change (``stop_on_duplicate_support``) or
``||r|| < residual_threshold``; the loop ends when all rows have finished or after
``max_iterations`` (default ``d_in``) iterations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from synthsae.config_values import check_bool, check_float, check_int
from synthsae.saes.base import SAE, TrainingSAE, TrainStepInput, TrainStepOutput
from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.registry import register_sae_architecture

# How often (in iterations) an accelerator checks whether every row has finished: each
# check waits for the device, and iterations past a row's end change nothing.
_DEVICE_CHECK_EVERY = 8


def matching_pursuit_encode(
    sae_in: torch.Tensor,
    W_dec: torch.Tensor,
    residual_threshold: float,
    max_iterations: int | None = None,
    stop_on_duplicate_support: bool = True,
    check_every: int | None = None,
) -> torch.Tensor:
    """Latents ``[..., d_sae]`` of centred inputs ``sae_in [..., d_in]`` over atoms ``W_dec [d_sae, d_in]``.

    Vectorised over the batch; gradients flow into ``sae_in`` and ``W_dec`` through the
    selected values and atoms. ``check_every`` sets how often the loop tests whether all
    rows have finished (default: every iteration on the CPU, every 8 on accelerators);
    it does not change the result.
    """
    d_sae, d_in = W_dec.shape
    lead_shape = sae_in.shape[:-1]
    residual = sae_in.reshape(-1, d_in)
    n_rows = residual.shape[0]
    n_iterations = d_in if max_iterations is None else max_iterations
    device = residual.device
    rows = torch.arange(n_rows, device=device)
    done = torch.zeros(n_rows, dtype=torch.bool, device=device)
    support = torch.zeros(n_rows, d_sae, dtype=torch.bool, device=device)
    if check_every is None:
        check_every = 1 if device.type == "cpu" else _DEVICE_CHECK_EVERY
    picked_atoms: list[torch.Tensor] = []
    picked_values: list[torch.Tensor] = []
    for iteration in range(n_iterations):
        with torch.no_grad():
            atom = (residual @ W_dec.T).argmax(dim=-1)
        direction = W_dec[atom]
        value = (residual * direction).sum(dim=-1).relu()
        value = torch.where(done, torch.zeros_like(value), value)
        residual = residual - value[:, None] * direction
        picked_atoms.append(atom)
        picked_values.append(value)
        with torch.no_grad():
            finished = torch.zeros_like(done)
            if stop_on_duplicate_support:
                # The support grows only when a positive value lands on a new atom.
                was_in_support = support[rows, atom]
                finished |= (value <= 0) | was_in_support
                support[rows, atom] = was_in_support | (value > 0)
            if residual_threshold > 0:
                finished |= residual.norm(dim=-1) < residual_threshold
            done = done | finished
            if (iteration + 1) % check_every == 0 and bool(done.all()):
                break
    acts = residual.new_zeros(n_rows, d_sae)
    if picked_atoms:
        all_rows = rows.repeat(len(picked_atoms))
        acts = acts.index_put((all_rows, torch.cat(picked_atoms)), torch.cat(picked_values), accumulate=True)
    return acts.view(*lead_shape, d_sae)


def _mp_decode(sae: SAE, feature_acts: torch.Tensor) -> torch.Tensor:
    out = feature_acts @ sae.W_dec
    if sae.cfg.apply_b_dec_to_input:  # b_dec is only part of the model when it centres the input
        out = out + sae.b_dec
    return sae._finish_decode(out)


def _no_fold(sae: SAE) -> None:
    raise NotImplementedError(
        "fold_W_dec_norm is not available for matching pursuit SAEs: rescaling the atoms "
        "changes which atoms are picked"
    )


@torch.no_grad()
def _fold_scaling(sae: SAE, scaling_factor: float) -> None:
    # Matching pursuit is homogeneous: raw inputs give latents 1/s times those of s*x.
    sae.b_dec.data.div_(scaling_factor)
    sae.cfg.normalize_activations = "none"


def _check_mp_fields(cfg: SAEConfig) -> None:
    cfg.residual_threshold = check_float(cfg.qualified("residual_threshold"), cfg.residual_threshold, at_least=0)
    if cfg.max_iterations is not None:
        cfg.max_iterations = check_int(cfg.qualified("max_iterations"), cfg.max_iterations, at_least=1)
    check_bool(cfg.qualified("stop_on_duplicate_support"), cfg.stop_on_duplicate_support)


@dataclass
class MatchingPursuitSAEConfig(SAEConfig):
    """Config of the inference :class:`MatchingPursuitSAE`."""

    residual_threshold: float = 1e-2
    max_iterations: int | None = None
    stop_on_duplicate_support: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_mp_fields(self)

    @classmethod
    def architecture(cls) -> str:
        """``"matching_pursuit"``."""
        return "matching_pursuit"


class MatchingPursuitSAE(SAE):
    """Inference matching pursuit SAE (parameters ``W_dec``, ``b_dec``)."""

    cfg: MatchingPursuitSAEConfig
    tied_encoder = True

    @property
    def W_enc(self) -> torch.Tensor:  # type: ignore[override]
        """The tied encoder, ``W_dec.T``."""
        return self.W_dec.T

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Matching pursuit latents."""
        cfg = self.cfg
        return matching_pursuit_encode(
            self.process_sae_in(x), self.W_dec, cfg.residual_threshold, cfg.max_iterations, cfg.stop_on_duplicate_support
        )

    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        """``z W_dec`` (+ ``b_dec`` when ``apply_b_dec_to_input``)."""
        return _mp_decode(self, feature_acts)

    def fold_W_dec_norm(self) -> None:
        """Not available (raises NotImplementedError)."""
        _no_fold(self)

    def fold_activation_norm_scaling_factor(self, scaling_factor: float) -> None:
        """Absorb an input scale: ``b_dec /= s`` (latents come out ``1/s`` as large)."""
        _fold_scaling(self, scaling_factor)


@dataclass
class MatchingPursuitTrainingSAEConfig(TrainingSAEConfig):
    """Training config of the matching pursuit SAE.

    ``decoder_init_norm`` must be 1.0 (unit atoms), which is its default here; any other
    value is replaced by 1.0 with a warning.
    """

    sparsity_field: ClassVar[str | None] = "max_iterations"

    residual_threshold: float = 1e-2
    max_iterations: int | None = None
    stop_on_duplicate_support: bool = True
    decoder_init_norm: float | None = field(default=1.0, kw_only=True)

    def __post_init__(self) -> None:
        if self.decoder_init_norm != 1.0:
            warnings.warn(
                f"{type(self).__name__}.decoder_init_norm must be 1.0 for matching pursuit; "
                f"replacing {self.decoder_init_norm!r} with 1.0",
                UserWarning,
                stacklevel=3,
            )
            self.decoder_init_norm = 1.0
        super().__post_init__()
        _check_mp_fields(self)

    @classmethod
    def architecture(cls) -> str:
        """``"matching_pursuit"``."""
        return "matching_pursuit"


class MatchingPursuitTrainingSAE(TrainingSAE):
    """Matching pursuit SAE for training: MSE only; extra metrics on logging steps."""

    cfg: MatchingPursuitTrainingSAEConfig
    tied_encoder = True

    @property
    def W_enc(self) -> torch.Tensor:  # type: ignore[override]
        """The tied encoder, ``W_dec.T``."""
        return self.W_dec.T

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Matching pursuit latents; there is no single pre-activation, so ``hidden_pre`` is zeros."""
        cfg = self.cfg
        acts = matching_pursuit_encode(
            self.process_sae_in(x), self.W_dec, cfg.residual_threshold, cfg.max_iterations, cfg.stop_on_duplicate_support
        )
        return acts, torch.zeros_like(acts)

    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        """``z W_dec`` (+ ``b_dec`` when ``apply_b_dec_to_input``)."""
        return _mp_decode(self, feature_acts)

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """MSE only; on logging steps adds ``max_l0``, ``min_l0``, ``residual_norm`` and
        ``residual_threshold_converged_portion`` (tensors, no host reads)."""
        output = super().training_forward_pass(step_input)
        if step_input.is_logging_step:
            with torch.no_grad():
                l0 = (output.feature_acts != 0).sum(dim=-1).float()
                residual_norm = (step_input.sae_in - output.sae_out).norm(dim=-1)
                output.metrics["max_l0"] = l0.max()
                output.metrics["min_l0"] = l0.min()
                output.metrics["residual_norm"] = residual_norm.mean()
                output.metrics["residual_threshold_converged_portion"] = (
                    (residual_norm < self.cfg.residual_threshold).float().mean()
                )
        return output

    def fold_W_dec_norm(self) -> None:
        """Not available (raises NotImplementedError)."""
        _no_fold(self)

    def fold_activation_norm_scaling_factor(self, scaling_factor: float) -> None:
        """Absorb an input scale: ``b_dec /= s`` (latents come out ``1/s`` as large)."""
        _fold_scaling(self, scaling_factor)


register_sae_architecture(
    "matching_pursuit",
    MatchingPursuitTrainingSAE,
    MatchingPursuitTrainingSAEConfig,
    MatchingPursuitSAE,
    MatchingPursuitSAEConfig,
)
