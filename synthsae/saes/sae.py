"""The inference SAE base class: parameters, input processing, encode/decode, folding, saving.

Shapes: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``; activations
``[..., d_in]`` encode to latents ``[..., d_sae]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from synthsae.config_values import check_device, check_dtype, torch_dtype
from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.io import SAE_WEIGHTS_FILENAME, load_sae_files, save_sae_files
from synthsae.saes.sparse_grad import sparse_grad_linear

T_SAE = TypeVar("T_SAE", bound="SAE")


def _dense_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.linear(x, weight.T, bias)


class SAE(nn.Module):
    """Inference SAE: ``encode``, ``decode``, ``forward = decode(encode(x))``.

    Subclasses implement :meth:`encode` and add their own parameters in
    :meth:`initialize_weights`. The input pipeline (:meth:`process_sae_in`) casts to the
    config dtype, applies the run-time normalisation and subtracts ``b_dec`` when
    ``apply_b_dec_to_input``; :meth:`decode` undoes the normalisation.
    """

    cfg: SAEConfig
    W_enc: nn.Parameter
    W_dec: nn.Parameter
    b_dec: nn.Parameter
    #: True for tied SAEs whose encoder is ``W_dec.T`` (no ``W_enc`` parameter).
    tied_encoder: ClassVar[bool] = False
    #: True on :class:`~synthsae.saes.training_sae.TrainingSAE` and its subclasses.
    is_training: ClassVar[bool] = False

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        if not isinstance(cfg, SAEConfig):
            raise TypeError(f"{type(self).__name__} needs an SAEConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.dtype = torch_dtype(cfg.dtype)
        self.device = torch.device(cfg.device)
        self._norm_state: tuple[torch.Tensor, ...] | None = None
        self._d_head: int | None = None
        with torch.no_grad():
            self.initialize_weights()

    # --- construction ---------------------------------------------------------------------

    def zero_parameter(self, *shape: int) -> nn.Parameter:
        """A new all-zero parameter of ``shape`` in the SAE's dtype and device."""
        return nn.Parameter(torch.zeros(*shape, dtype=self.dtype, device=self.device))

    def initialize_weights(self) -> None:
        """``b_dec = 0``; ``W_dec`` Kaiming-uniform (fan-in ``d_in``); ``W_enc`` a copy of ``W_dec.T``."""
        self.b_dec = self.zero_parameter(self.cfg.d_in)
        w_dec = torch.empty(self.cfg.d_sae, self.cfg.d_in, dtype=self.dtype, device=self.device)
        nn.init.kaiming_uniform_(w_dec)
        self.W_dec = nn.Parameter(w_dec)
        if not self.tied_encoder:
            self.W_enc = nn.Parameter(w_dec.T.clone().contiguous())

    @classmethod
    def from_config(cls: type[T_SAE], cfg: SAEConfig) -> T_SAE:
        """Build a freshly initialised SAE of the class registered for ``cfg``'s architecture."""
        from synthsae.saes.registry import get_sae_architecture

        entry = get_sae_architecture(cfg.architecture())
        if entry.training_cfg_cls is not None and isinstance(cfg, entry.training_cfg_cls):
            sae_cls = entry.training_cls
        else:
            sae_cls = entry.inference_cls
        if sae_cls is None or not issubclass(sae_cls, cls):
            raise TypeError(f"a {type(cfg).__name__} builds {sae_cls}, which is not a {cls.__name__}")
        return sae_cls(cfg)

    @classmethod
    def from_dict(cls: type[T_SAE], config_dict: Mapping[str, Any]) -> T_SAE:
        """Build a freshly initialised SAE from a config dict (``"architecture"`` picks the class)."""
        cfg_cls = TrainingSAEConfig if cls.is_training else SAEConfig
        return cls.from_config(cfg_cls.from_dict(config_dict))

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> SAE:
        # .to()/.cuda()/.half() all land here: keep cfg.device and cfg.dtype in step.
        result = super()._apply(fn, *args, **kwargs)
        w_dec = getattr(self, "W_dec", None)
        if isinstance(w_dec, torch.Tensor):
            self.device = w_dec.device
            self.dtype = w_dec.dtype
            self.cfg.device = str(w_dec.device)
            if w_dec.dtype.is_floating_point:
                self.cfg.dtype = check_dtype("dtype", w_dec.dtype)
        return result

    # --- input / output processing ----------------------------------------------------------

    def _reshape_in(self, x: torch.Tensor) -> torch.Tensor:
        self._d_head = None
        if self.cfg.reshape_activations == "hook_z" and not self.is_training:
            if x.ndim >= 2 and x.shape[-1] != self.cfg.d_in:
                self._d_head = x.shape[-1]
                return x.flatten(-2)
        return x

    def _reshape_out(self, x: torch.Tensor) -> torch.Tensor:
        if self._d_head is not None:
            return x.unflatten(-1, (-1, self._d_head))
        return x

    def _normalize_in(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.cfg.normalize_activations
        if mode == "constant_norm_rescale":
            coeff = math.sqrt(self.cfg.d_in) / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            self._norm_state = (coeff,)
            return x * coeff
        if mode == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            centred = x - mu
            std = centred.std(dim=-1, keepdim=True)
            self._norm_state = (mu, std)
            return centred / (std + 1e-5)
        return x

    def _normalize_out(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.cfg.normalize_activations
        if mode not in ("constant_norm_rescale", "layer_norm"):
            return x
        if self._norm_state is None:
            raise RuntimeError(
                f"normalize_activations={mode!r}: decode() undoes the normalisation of the batch "
                "that encode() last processed; call encode() first"
            )
        if mode == "constant_norm_rescale":
            return x / self._norm_state[0]
        mu, std = self._norm_state
        return x * std + mu

    def _prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        return self._normalize_in(self._reshape_in(x.to(self.dtype)))

    def process_sae_in(self, x: torch.Tensor) -> torch.Tensor:
        """Cast, reshape (``hook_z``), normalise, then subtract ``b_dec`` if configured."""
        x = self._prepare_input(x)
        if self.cfg.apply_b_dec_to_input:
            x = x - self.b_dec
        return x

    def encoder_linear(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        sparse_grad: bool = False,
    ) -> torch.Tensor:
        """``process_sae_in(x) @ weight + bias``.

        When training (``b_dec`` needs a gradient, ``x`` does not) ``b_dec`` is moved into
        the bias as ``bias - b_dec @ weight``: the same function, but the backward pass then
        needs no ``[batch, d_in]`` input gradient, which saves a third of the encoder's work.
        ``sparse_grad=True`` (for TopK-style SAEs, whose pre-activation gradient is mostly
        zeros) computes the weight gradient from the non-zero entries only.
        """
        x = self._prepare_input(x)
        linear = sparse_grad_linear if sparse_grad and torch.is_grad_enabled() else _dense_linear
        if not self.cfg.apply_b_dec_to_input:
            return linear(x, weight, bias)
        if torch.is_grad_enabled() and self.b_dec.requires_grad and not x.requires_grad:
            with torch.autocast(device_type=self.b_dec.device.type, enabled=False):
                shift = self.b_dec @ weight
            return linear(x, weight, -shift if bias is None else bias - shift)
        return linear(x - self.b_dec, weight, bias)

    def _finish_decode(self, sae_out_pre: torch.Tensor) -> torch.Tensor:
        return self._reshape_out(self._normalize_out(sae_out_pre))

    # --- the model ---------------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations ``[..., d_sae]`` for inputs ``[..., d_in]``."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode()")

    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``feature_acts @ W_dec + b_dec``, with the normalisation undone."""
        return self._finish_decode(_dense_linear(feature_acts, self.W_dec, self.b_dec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x))``."""
        return self.decode(self.encode(x))

    # --- weight surgery ----------------------------------------------------------------------

    @torch.no_grad()
    def get_W_dec_norm(self) -> torch.Tensor:
        """Norm of each decoder row, ``[d_sae]``, clamped away from zero."""
        return self.W_dec.norm(dim=-1).clamp(min=1e-8)

    @torch.no_grad()
    def fold_W_dec_norm(self) -> None:
        """Give decoder rows unit norm, moving the norms into the encoder (outputs unchanged)."""
        norms = self.get_W_dec_norm()
        self.W_dec.data.div_(norms[:, None])
        self.W_enc.data.mul_(norms[None, :])
        b_enc = getattr(self, "b_enc", None)
        if isinstance(b_enc, torch.Tensor):
            b_enc.data.mul_(norms)

    @torch.no_grad()
    def fold_activation_norm_scaling_factor(self, scaling_factor: float) -> None:
        """Absorb an input scaling factor ``s`` (inputs were ``s * x``) so raw ``x`` can be fed.

        ``W_enc *= s``, ``W_dec /= s``, ``b_dec /= s``; sets ``normalize_activations="none"``.
        """
        self.W_enc.data.mul_(scaling_factor)
        self.W_dec.data.div_(scaling_factor)
        self.b_dec.data.div_(scaling_factor)
        self.cfg.normalize_activations = "none"

    # --- saving and loading ------------------------------------------------------------------

    def process_state_dict_for_saving(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Edit a copy of the state dict, in place, into its saved form (default: unchanged)."""

    def process_state_dict_for_loading(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`process_state_dict_for_saving`, applied before loading weights."""

    def _state_dict_copy(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().clone() for name, tensor in self.state_dict().items()}

    def save_model(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``sae_weights.safetensors`` and ``cfg.json`` (full config) into ``path``."""
        state = self._state_dict_copy()
        self.process_state_dict_for_saving(state)
        return save_sae_files(path, state, self.cfg.to_dict())

    def load_saved_state(self, state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
        """Load weights in saved form, checking names and shapes with a clear error."""
        state = dict(state_dict)
        self.process_state_dict_for_loading(state)
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"{source} does not fit {type(self).__name__}: missing tensors {missing}, "
                f"unexpected tensors {unexpected}"
            )
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[name].shape):
                raise ValueError(
                    f"{source}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                    f"{type(self).__name__} expects {tuple(own[name].shape)}"
                )
        with torch.no_grad():
            self.load_state_dict(state, strict=True)

    @classmethod
    def load_from_disk(
        cls: type[T_SAE], path: str | Path, device: str | torch.device = "cpu", dtype: str | None = None
    ) -> T_SAE:
        """Load an SAE folder written by ``save_model``/``save_inference_model``.

        On :class:`SAE` (or an inference class) this returns the inference class named by
        ``cfg.json``'s ``"architecture"``; a training checkpoint is converted to its
        inference form. On :class:`TrainingSAE` (or a training class) it returns the
        training class. ``device``/``dtype`` override the saved values.
        """
        from synthsae.saes.loading import load_sae

        device = check_device("device", device)  # before any tensor is read onto it
        cfg_dict, state_dict = load_sae_files(path, device=device)
        source = str(Path(path) / SAE_WEIGHTS_FILENAME)
        return load_sae(cls, cfg_dict, state_dict, device, dtype, source)  # type: ignore[return-value]
