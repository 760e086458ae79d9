"""Name -> classes registry for SAE architectures.

An entry pairs a training SAE class and its config with the inference class and config
that its inference saves load as (``batchtopk`` loads as ``jumprelu``, for example).
The built-in architectures (the table in :mod:`synthsae.saes.architectures`) register
themselves when their modules are imported; every lookup here imports them first, so
``get_sae_architecture("topk")`` works on its own.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from synthsae.saes.architectures import BUILTIN_ARCHITECTURES


class SAEArchitecture(NamedTuple):
    """Classes registered under one architecture name.

    ``inference_cls``/``inference_cfg_cls`` are ``None`` when the architecture has no
    separate inference class; its saves then load with the training classes.
    """

    name: str
    training_cls: type | None
    training_cfg_cls: type | None
    inference_cls: type | None
    inference_cfg_cls: type | None


_REGISTRY: dict[str, SAEArchitecture] = {}
_builtins_state = {"loaded": False}


def _load_builtins() -> None:
    if _builtins_state["loaded"]:
        return
    _builtins_state["loaded"] = True
    for row in BUILTIN_ARCHITECTURES:
        importlib.import_module(f"synthsae.saes.{row.module}")


def _check_pair(
    name: str, sae_cls: type | None, cfg_cls: type | None, kind: str, sae_base: type, cfg_base: type
) -> None:
    if (sae_cls is None) != (cfg_cls is None):
        raise ValueError(f"architecture {name!r}: give both the {kind} class and its config, or neither")
    if sae_cls is None:
        return
    if not (isinstance(sae_cls, type) and issubclass(sae_cls, sae_base)):
        raise TypeError(f"architecture {name!r}: {kind}_cls must subclass {sae_base.__name__}, got {sae_cls!r}")
    if not (isinstance(cfg_cls, type) and issubclass(cfg_cls, cfg_base)):
        raise TypeError(
            f"architecture {name!r}: {kind}_cfg_cls must subclass {cfg_base.__name__}, got {cfg_cls!r}"
        )


def register_sae_architecture(
    name: str,
    training_cls: type | None,
    training_cfg_cls: type | None,
    inference_cls: type | None = None,
    inference_cfg_cls: type | None = None,
    *,
    overwrite: bool = False,
) -> SAEArchitecture:
    """Register an architecture under ``name`` and return its entry.

    ``training_cfg_cls.architecture()`` must return ``name``. Registering the same classes
    again is a no-op; different classes under a taken name need ``overwrite=True``.
    Once registered, the architecture works with the trainer, the evals, save/load and the
    runner like a built-in one.
    """
    from synthsae.saes.base import SAE, TrainingSAE
    from synthsae.saes.config import SAEConfig, TrainingSAEConfig

    if not isinstance(name, str) or not name:
        raise ValueError(f"architecture name must be a non-empty string, got {name!r}")
    _check_pair(name, training_cls, training_cfg_cls, "training", TrainingSAE, TrainingSAEConfig)
    _check_pair(name, inference_cls, inference_cfg_cls, "inference", SAE, SAEConfig)
    if training_cls is None and inference_cls is None:
        raise ValueError(f"architecture {name!r}: give at least a training or an inference class")
    own_cfg = training_cfg_cls if training_cfg_cls is not None else inference_cfg_cls
    if own_cfg.architecture() != name:
        raise ValueError(
            f"{own_cfg.__name__}.architecture() returns {own_cfg.architecture()!r}, "
            f"but it is being registered as {name!r}"
        )
    entry = SAEArchitecture(name, training_cls, training_cfg_cls, inference_cls, inference_cfg_cls)
    existing = _REGISTRY.get(name)
    if existing is not None and existing != entry and not overwrite:
        raise ValueError(
            f"architecture {name!r} is already registered (to {existing.training_cls or existing.inference_cls}); "
            "pass overwrite=True to replace it"
        )
    _REGISTRY[name] = entry
    return entry


def get_sae_architecture(name: str) -> SAEArchitecture:
    """Return the entry registered under ``name``; unknown names raise ValueError listing the known ones."""
    _load_builtins()
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(
            f"unknown SAE architecture {name!r}; registered architectures: {list_sae_architectures()}"
        )
    return entry


def list_sae_architectures() -> list[str]:
    """Sorted names of every registered architecture (built-ins included)."""
    _load_builtins()
    return sorted(_REGISTRY)
