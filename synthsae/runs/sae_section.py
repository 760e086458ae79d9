"""The runner config's ``sae`` section: from its dict form to a training-SAE config.

The section names its class by ``architecture`` (any registered, trainable one); the
other keys must be fields of that class. ``--set sae.architecture=...`` switches the
whole section, keeping only the keys the new class also has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthsae.config_values import apply_overrides, check_choice, check_keys, check_str
from synthsae.saes.config import TrainingSAEConfig, init_field_names

__all__ = ["apply_runner_overrides", "build_sae_config", "prefixed_error", "switch_sae_architecture",
           "training_config_class"]


def training_config_class(architecture: Any) -> type[TrainingSAEConfig]:
    """The training config class registered for ``architecture``; a ``ValueError`` names the
    trainable architectures when it is unknown or inference-only."""
    from synthsae.saes.registry import get_sae_architecture, list_sae_architectures

    check_str("sae.architecture", architecture)
    if architecture not in list_sae_architectures():
        trainable = [n for n in list_sae_architectures() if get_sae_architecture(n).training_cls is not None]
        check_choice("sae.architecture", architecture, trainable)
    entry = get_sae_architecture(architecture)
    if entry.training_cfg_cls is None:
        raise ValueError(f"sae.architecture: {architecture!r} is inference-only and cannot be trained")
    return entry.training_cfg_cls


def prefixed_error(err: Exception, prefix: str) -> Exception:
    """The same kind of error with ``prefix`` in front of its message."""
    kind = type(err) if isinstance(err, (ValueError, TypeError)) else ValueError
    message = str(err)
    return kind(message if message.startswith(prefix) else f"{prefix}{message}")


def build_sae_config(data: Mapping[str, Any], d_in: int | None = None) -> TrainingSAEConfig:
    """A training-SAE config from its dict form (``architecture`` selects the class).

    ``d_in`` fills in a missing ``d_in``; keys that are not fields of the class raise a
    ``ValueError`` that names them.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"sae must be a mapping or a TrainingSAEConfig, got {type(data).__name__}")
    values = dict(data)
    if "architecture" not in values:
        raise ValueError("sae.architecture is required (e.g. 'batchtopk', 'topk', 'standard', 'jumprelu')")
    cfg_cls = training_config_class(values["architecture"])
    check_keys(f"sae ({values['architecture']})", values, ["architecture", *sorted(init_field_names(cfg_cls))])
    if values.get("d_in") is None:
        values["d_in"] = d_in if d_in is not None else 1  # placeholder: validates the other fields
    try:
        return cfg_cls.from_dict(values)
    except (ValueError, TypeError) as err:
        raise prefixed_error(err, "sae: ") from None


def switch_sae_architecture(section: Any, architecture: Any) -> dict[str, Any]:
    """The ``sae`` section for ``architecture``: the keys of ``section`` that its config class
    also has (``d_sae``, ``k`` from TopK to BatchTopK, ...) are kept, the others dropped, so
    every other field takes the new architecture's default."""
    values = section.to_dict() if isinstance(section, TrainingSAEConfig) else dict(section or {})
    keep = init_field_names(training_config_class(architecture))
    return {"architecture": architecture, **{k: v for k, v in values.items() if k in keep}}


def apply_runner_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with dotted ``overrides`` applied; ``sae.architecture`` first switches the whole
    ``sae`` section to that architecture (:func:`switch_sae_architecture`)."""
    overrides = dict(overrides)
    if "sae.architecture" in overrides:
        data = {**data, "sae": switch_sae_architecture(data.get("sae"), overrides.pop("sae.architecture"))}
    return apply_overrides(data, overrides)
