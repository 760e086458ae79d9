"""Turning a saved config dict and state dict back into the right SAE class.

The registry entry named by the config's ``"architecture"`` decides the class. Asking for
an inference SAE (``SAE.load_from_disk``) gives the inference class; a training checkpoint
is loaded with its training class and converted. Asking for a training SAE
(``TrainingSAE.load_from_disk``) gives the training class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from synthsae.config_values import check_dtype
from synthsae.saes.config import RESERVED_CONFIG_KEYS
from synthsae.saes.io import SAE_CFG_FILENAME

if TYPE_CHECKING:
    from synthsae.saes.sae import SAE


def _init_fields(cfg_cls: type) -> set[str]:
    return {f.name for f in fields(cfg_cls) if f.init}


def load_sae(
    wanted: type[SAE],
    cfg_dict: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    device: str | torch.device,
    dtype: str | torch.dtype | None,
    source: str,
) -> SAE:
    """Build the SAE that ``cfg_dict`` describes, load ``state_dict`` (saved form) into it.

    ``wanted`` is the class the caller asked through; the result must be an instance of it.
    ``source`` names the file in error messages.
    """
    from synthsae.saes.registry import get_sae_architecture

    cfg_dict = dict(cfg_dict)
    architecture = cfg_dict.get("architecture")
    if not isinstance(architecture, str):
        raise ValueError(f"the config for {source} has no 'architecture' key")
    cfg_dict["device"] = str(device)
    if dtype is not None:
        cfg_dict["dtype"] = check_dtype("dtype", dtype)
    entry = get_sae_architecture(architecture)
    keys = set(cfg_dict) - set(RESERVED_CONFIG_KEYS)

    def build(sae_cls: type, cfg_cls: type) -> SAE:
        try:
            cfg = cfg_cls.from_dict(cfg_dict)
        except (ValueError, TypeError) as err:  # name the file the bad config came from
            raise type(err)(f"{Path(source).with_name(SAE_CFG_FILENAME)}: {err}") from None
        sae = sae_cls(cfg)
        sae.load_saved_state(state_dict, source)
        return sae

    inference_cfg = entry.inference_cfg_cls
    if wanted.is_training:
        if entry.training_cls is None:
            raise ValueError(f"architecture {architecture!r} has no training class")
        sae = build(entry.training_cls, entry.training_cfg_cls)
    elif (
        inference_cfg is not None
        and inference_cfg.architecture() == architecture
        and keys <= _init_fields(inference_cfg)
    ):
        sae = build(entry.inference_cls, inference_cfg)
    elif entry.training_cls is not None and keys <= _init_fields(entry.training_cfg_cls):
        sae = build(entry.training_cls, entry.training_cfg_cls)
        if entry.inference_cls is not None:
            sae = sae.to_inference_sae()
    else:
        # Neither config class takes these keys: let build() name the unknown ones.
        cfg_cls = inference_cfg or entry.training_cfg_cls
        build(entry.inference_cls or entry.training_cls, cfg_cls)
        raise ValueError(f"the config for {source} does not fit {cfg_cls.__name__}")
    if not isinstance(sae, wanted):
        raise TypeError(
            f"{source} holds a {architecture!r} SAE, which loads as {type(sae).__name__}, "
            f"not {wanted.__name__}; load it with {type(sae).__name__}.load_from_disk or SAE.load_from_disk"
        )
    return sae
