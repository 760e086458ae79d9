"""SAE configuration dataclasses: the shared fields, validation and dict round trips.

Every architecture subclasses :class:`SAEConfig` (inference) or :class:`TrainingSAEConfig`
(training) and reports its registry name through :meth:`SAEConfig.architecture`.
Configs are plain dataclasses, checked in ``__post_init__`` so that a bad value fails
when the config is built, with a message naming the field, the value and the rule.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from synthsae.config_values import (
    check_bool,
    check_choice,
    check_device,
    check_dtype,
    check_float,
    check_int,
    dataclass_values,
)
from synthsae.saes.metadata import SAEMetadata

NORMALIZE_ACTIVATIONS_MODES = (
    "none",
    "expected_average_only_in",
    "constant_norm_rescale",
    "layer_norm",
)
RESHAPE_ACTIVATIONS_MODES = ("none", "hook_z")

# Keys a serialised config may hold besides its dataclass fields.
RESERVED_CONFIG_KEYS = ("architecture", "metadata")

T_Config = TypeVar("T_Config", bound="SAEConfig")


# --- configs --------------------------------------------------------------------------------


@dataclass
class SAEConfig:
    """Fields every SAE has: sizes, dtype/device, input handling and free-form metadata.

    Subclasses add architecture fields and implement :meth:`architecture`.
    ``metadata`` is an :class:`~synthsae.saes.metadata.SAEMetadata` (a dict with attribute
    access; a plain dict is converted) saved into ``cfg.json`` as a JSON object.
    """

    d_in: int
    d_sae: int
    dtype: str = "float32"
    device: str = "cpu"
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    reshape_activations: str = "none"
    metadata: SAEMetadata = field(default_factory=SAEMetadata)

    def __post_init__(self) -> None:
        self.d_in = check_int(self.qualified("d_in"), self.d_in, at_least=1)
        self.d_sae = check_int(self.qualified("d_sae"), self.d_sae, at_least=1)
        self.dtype = check_dtype(self.qualified("dtype"), self.dtype)
        self.device = check_device(self.qualified("device"), self.device)
        check_bool(self.qualified("apply_b_dec_to_input"), self.apply_b_dec_to_input)
        check_choice(self.qualified("normalize_activations"), self.normalize_activations, NORMALIZE_ACTIVATIONS_MODES)
        check_choice(self.qualified("reshape_activations"), self.reshape_activations, RESHAPE_ACTIVATIONS_MODES)
        if self.metadata is None:
            self.metadata = SAEMetadata()
        if not isinstance(self.metadata, Mapping):
            raise TypeError(f"{self.qualified('metadata')} must be a dict, got {self.metadata!r}")
        if not isinstance(self.metadata, SAEMetadata):
            self.metadata = SAEMetadata(self.metadata)

    def qualified(self, field_name: str) -> str:
        """``"<ConfigClass>.<field_name>"``: how errors name a field of this config."""
        return f"{type(self).__name__}.{field_name}"

    @classmethod
    def architecture(cls) -> str:
        """Registry name of the architecture this config builds (e.g. ``"standard"``)."""
        raise NotImplementedError(f"{cls.__name__} does not name an architecture")

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-friendly values, plus ``"architecture"`` and ``"metadata"``."""
        result = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        result["metadata"] = copy.deepcopy(self.metadata.to_dict())
        result["architecture"] = self.architecture()
        return result

    @classmethod
    def from_dict(cls: type[T_Config], config_dict: Mapping[str, Any]) -> T_Config:
        """Build a config from :meth:`to_dict` output.

        The ``"architecture"`` key selects the class through the registry (it must be
        ``cls`` or a subclass). Keys that are not fields of that class are ignored with a
        ``UserWarning`` naming them (files from a newer reference still load).
        """
        if not isinstance(config_dict, Mapping):
            raise TypeError(f"config_dict must be a dict, got {type(config_dict).__name__}")
        values = dict(config_dict)
        architecture = values.pop("architecture", None)
        if architecture is None:
            target = cls
        else:
            target = cls._class_for_architecture(architecture, set(values) - {"metadata"})
        if not issubclass(target, cls):
            raise ValueError(
                f"architecture {architecture!r} builds {target.__name__}, "
                f"which is not a {cls.__name__}"
            )
        try:
            target.architecture()
        except NotImplementedError:
            raise ValueError(
                f"{cls.__name__}.from_dict needs an 'architecture' key to choose a config class"
            ) from None
        where = f"{target.__name__} (architecture {target.architecture()!r})"
        return target(**dataclass_values(target, drop_unknown_keys(values, target), where))

    @classmethod
    def _class_for_architecture(cls, architecture: str, keys: set[str]) -> type[SAEConfig]:
        """The registered config class for ``architecture`` that should read ``keys``.

        The inference config unless the keys include a field only the training config
        has (so ``SAEConfig.from_dict`` also reads training configs).
        """
        if _own_architecture(cls) == architecture:
            return cls
        from synthsae.saes.registry import get_sae_architecture

        entry = get_sae_architecture(architecture)
        inference = entry.inference_cfg_cls
        training = entry.training_cfg_cls
        if inference is not None and inference.architecture() == architecture:
            if training is None or not keys & (init_field_names(training) - init_field_names(inference)):
                return inference
        if training is None:
            raise ValueError(f"architecture {architecture!r} has no config class")
        return training


def init_field_names(cfg_cls: type) -> set[str]:
    """The names of the dataclass fields of ``cfg_cls`` that its constructor takes."""
    return {f.name for f in fields(cfg_cls) if f.init}


def drop_unknown_keys(values: Mapping[str, Any], cfg_cls: type, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """``values`` without the keys that are not fields of ``cfg_cls``, warning about any
    dropped key not listed in ``ignore``."""
    known = init_field_names(cfg_cls)
    unknown = sorted(set(values) - known - set(ignore))
    if unknown:
        warnings.warn(
            f"ignoring config key(s) {unknown}: not fields of {cfg_cls.__name__} "
            f"(architecture {cfg_cls.architecture()!r}) in this version of synthsae",
            UserWarning,
            stacklevel=3,
        )
    return {key: value for key, value in values.items() if key in known}


def _own_architecture(cls: type[SAEConfig]) -> str | None:
    try:
        return cls.architecture()
    except NotImplementedError:
        return None


@dataclass
class TrainingSAEConfig(SAEConfig):
    """Base of the training configs; adds ``decoder_init_norm`` (keyword only).

    ``decoder_init_norm`` rescales each decoder row to this norm at initialisation
    (``None`` keeps the Kaiming-uniform norms).
    """

    decoder_init_norm: float | None = field(default=0.1, kw_only=True)

    sparsity_field: ClassVar[str | None] = None
    """The config field that sets how many latents fire (``"k"``, ``"l1_coefficient"``, ...):
    a count of latents (``k``, ``max_iterations``) is set to an L0 target directly, a penalty
    coefficient is steered towards one. ``None``: ``synthsae bench`` cannot aim it at an L0."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decoder_init_norm is not None:
            self.decoder_init_norm = check_float(self.qualified("decoder_init_norm"), self.decoder_init_norm, above=0)
        self.add_training_info_to_metadata()

    def to_dict(self) -> dict[str, Any]:
        """All fields, ``"architecture"``, and the metadata with the training details."""
        result = super().to_dict()
        result["metadata"] = self._metadata_with_training_info()
        return result

    def add_training_info_to_metadata(self) -> None:
        """Record ``training_architecture`` and ``training_architecture_details`` in the metadata."""
        self.metadata.update(self._training_info())

    def _training_info(self) -> dict[str, Any]:
        return {
            "training_architecture": self.architecture(),
            "training_architecture_details": self.get_training_architecture_details(),
        }

    def _metadata_with_training_info(self) -> dict[str, Any]:
        metadata = copy.deepcopy(self.metadata.to_dict())
        metadata.update(self._training_info())
        return metadata

    @classmethod
    def _class_for_architecture(cls, architecture: str, keys: set[str]) -> type[SAEConfig]:
        if _own_architecture(cls) == architecture:
            return cls
        from synthsae.saes.registry import get_sae_architecture

        entry = get_sae_architecture(architecture)
        if entry.training_cfg_cls is None:
            raise ValueError(f"architecture {architecture!r} has no training config class")
        return entry.training_cfg_cls

    def get_inference_config_class(self) -> type[SAEConfig]:
        """Config class the inference save of this SAE loads as (the registry entry's)."""
        from synthsae.saes.registry import get_sae_architecture

        try:
            entry = get_sae_architecture(self.architecture())
        except ValueError:
            return type(self)
        return entry.inference_cfg_cls or type(self)

    def get_training_architecture_details(self) -> dict[str, Any]:
        """Fields that only matter for training (absent from the inference config)."""
        inference_fields = {f.name for f in fields(self.get_inference_config_class())}
        return {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if f.name not in inference_fields and f.name != "metadata"
        }

    def get_inference_sae_cfg_dict(self) -> dict[str, Any]:
        """The ``cfg.json`` content of an inference save.

        Holds the inference config's fields taken from this config, its architecture name
        and the metadata, extended with the training architecture and its details.
        """
        inference_cls = self.get_inference_config_class()
        result = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(inference_cls)
            if f.name != "metadata"
        }
        result["metadata"] = self._metadata_with_training_info()
        result["architecture"] = inference_cls.architecture()
        return result
