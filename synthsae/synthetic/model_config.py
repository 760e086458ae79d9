"""Declarative description of a :class:`~synthsae.synthetic.SyntheticModel`.

A :class:`SyntheticModelConfig` says everything needed to build a synthetic world:
sizes, firing probabilities, hierarchy, correlation, orthogonalisation, magnitudes,
bias, dtype and seed. It serialises to the JSON layout the reference library uses
(so model directories move between the two libraries) and also to YAML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

import torch
import yaml

from synthsae.config_values import (
    check_dtype,
    check_float,
    check_int,
    dataclass_values,
    load_config_data,
    load_yaml,
    torch_dtype,
)
from synthsae.synthetic.firing_probabilities import (
    FiringProbabilityConfig,
    ZipfianFiringProbabilityConfig,
)
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.magnitudes import MagnitudeConfig

__all__ = [
    "SYNTHETIC_MODEL_CONFIG_FILENAME",
    "SYNTHETIC_MODEL_HIERARCHY_FILENAME",
    "SYNTHETIC_MODEL_WEIGHTS_FILENAME",
    "LowRankCorrelationConfig",
    "OrthogonalizationConfig",
    "SyntheticModelConfig",
]

SYNTHETIC_MODEL_CONFIG_FILENAME = "synthetic_model_config.json"
SYNTHETIC_MODEL_WEIGHTS_FILENAME = "synthetic_model.safetensors"
SYNTHETIC_MODEL_HIERARCHY_FILENAME = "hierarchy.json"


# ------------------------------------------------------------- sub-configs
@dataclass
class OrthogonalizationConfig:
    """How to push the random feature vectors apart after drawing them.

    Attributes:
        num_steps: Adam steps of the orthogonality loss (0 leaves the vectors random).
        lr: Adam learning rate (> 0).
        chunk_size: Rows per chunk of the loss computation (memory only, >= 1).
    """

    num_steps: int = 200
    lr: float = 0.01
    chunk_size: int = 1024

    def __post_init__(self) -> None:
        self.num_steps = check_int("orthogonalization.num_steps", self.num_steps, at_least=0)
        self.lr = check_float("orthogonalization.lr", self.lr, above=0)
        self.chunk_size = check_int("orthogonalization.chunk_size", self.chunk_size, at_least=1)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict."""
        return {"num_steps": self.num_steps, "lr": self.lr, "chunk_size": self.chunk_size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrthogonalizationConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        return cls(**dataclass_values(cls, data))


@dataclass
class LowRankCorrelationConfig:
    """A random low-rank correlation structure between feature firings.

    Attributes:
        rank: Rank of the correlation factor (> 0).
        correlation_scale: Scale of the factor entries (>= 0; 0 means no correlation).
        seed: Seed of the factor. ``None`` (the default) uses the model seed + 4, as the
            reference does; unlike the reference, an explicit seed here is honoured.
    """

    rank: int = 32
    correlation_scale: float = 0.1
    seed: int | None = None

    def __post_init__(self) -> None:
        self.rank = check_int("correlation.rank", self.rank, at_least=1)
        self.correlation_scale = check_float("correlation.correlation_scale", self.correlation_scale, at_least=0)
        self.seed = check_int("correlation.seed", self.seed, at_least=0, optional=True)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict."""
        return {"rank": self.rank, "correlation_scale": self.correlation_scale, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LowRankCorrelationConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        return cls(**dataclass_values(cls, data))


def _magnitude(name: str, value: Any) -> float | MagnitudeConfig:
    if isinstance(value, MagnitudeConfig):
        return value
    if isinstance(value, Mapping):
        return MagnitudeConfig.from_dict(dict(value))
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, a MagnitudeConfig or its dict form, got {value!r}")
    return check_float(name, value, at_least=0)


def _sub_config(name: str, value: Any, cls: type) -> Any:
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls.from_dict(dict(value))
    raise TypeError(f"{name} must be a {cls.__name__}, its dict form or None, got {value!r}")


# ------------------------------------------------------------------ the config
@dataclass
class SyntheticModelConfig:
    """Everything that defines a synthetic model (but not runtime options such as the device).

    Attributes:
        num_features: Number of ground-truth features (>= 1).
        hidden_dim: Dimension of the hidden activations (>= 1).
        firing_probability: Recipe for the per-feature firing probabilities.
        hierarchy: Recipe for a random feature forest, or ``None``.
        orthogonalization: Orthogonalisation of the feature vectors, or ``None``.
        correlation: Low-rank correlation of the firings, or ``None``.
        std_firing_magnitudes: Per-feature std of the firing magnitude: a number (>= 0)
            or a :class:`MagnitudeConfig`.
        mean_firing_magnitudes: Per-feature mean firing magnitude, likewise.
        bias: Dictionary bias: ``False`` for none, ``True`` for a random norm-1 bias, a
            number for a random bias of that norm.
        dtype: dtype of the sampled feature activations (``"float32"``, ``"float64"``,
            ``"float16"`` or ``"bfloat16"``).
        seed: Seed of every random choice made while building (``None``: random).

    Sub-configs may also be given in their dict form; they are converted on
    construction. Invalid values raise ``ValueError``/``TypeError`` naming the field.
    """

    num_features: int
    hidden_dim: int
    firing_probability: FiringProbabilityConfig = field(default_factory=ZipfianFiringProbabilityConfig)
    hierarchy: HierarchyConfig | None = None
    orthogonalization: OrthogonalizationConfig | None = None
    correlation: LowRankCorrelationConfig | None = None
    std_firing_magnitudes: float | MagnitudeConfig = 0.0
    mean_firing_magnitudes: float | MagnitudeConfig = 1.0
    bias: bool | float = 1.0
    dtype: str = "float32"
    seed: int | None = None

    def __post_init__(self) -> None:
        self.num_features = check_int("num_features", self.num_features, at_least=1)
        self.hidden_dim = check_int("hidden_dim", self.hidden_dim, at_least=1)
        fp = self.firing_probability
        if isinstance(fp, Mapping):
            fp = FiringProbabilityConfig.from_dict(dict(fp))
        if not isinstance(fp, FiringProbabilityConfig):
            raise TypeError(f"firing_probability must be a FiringProbabilityConfig or its dict form, got {fp!r}")
        self.firing_probability = fp
        self.hierarchy = _sub_config("hierarchy", self.hierarchy, HierarchyConfig)
        if self.hierarchy is not None:
            self.hierarchy.check_fits("hierarchy.total_root_nodes", self.num_features)
        self.orthogonalization = _sub_config("orthogonalization", self.orthogonalization, OrthogonalizationConfig)
        self.correlation = _sub_config("correlation", self.correlation, LowRankCorrelationConfig)
        self.std_firing_magnitudes = _magnitude("std_firing_magnitudes", self.std_firing_magnitudes)
        self.mean_firing_magnitudes = _magnitude("mean_firing_magnitudes", self.mean_firing_magnitudes)
        if not isinstance(self.bias, bool):
            self.bias = check_float("bias", self.bias, at_least=0)
        check_dtype("dtype", self.dtype)  # kept as written ("torch.float32" too), as the reference saves it
        self.seed = check_int("seed", self.seed, at_least=0, optional=True)

    @property
    def torch_dtype(self) -> torch.dtype:
        """:attr:`dtype` as a ``torch.dtype``."""
        return torch_dtype(self.dtype)

    # -------------------------------------------------------------- dicts
    def to_dict(self) -> dict[str, Any]:
        """The JSON form: sub-configs as dicts (or ``None``), magnitudes as numbers or dicts."""

        def sub(value: Any) -> Any:
            return None if value is None else value.to_dict()

        def mag(value: float | MagnitudeConfig) -> Any:
            return value.to_dict() if isinstance(value, MagnitudeConfig) else value

        return {
            "num_features": self.num_features,
            "hidden_dim": self.hidden_dim,
            "firing_probability": self.firing_probability.to_dict(),
            "hierarchy": sub(self.hierarchy),
            "orthogonalization": sub(self.orthogonalization),
            "correlation": sub(self.correlation),
            "std_firing_magnitudes": mag(self.std_firing_magnitudes),
            "mean_firing_magnitudes": mag(self.mean_firing_magnitudes),
            "bias": self.bias,
            "dtype": self.dtype,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyntheticModelConfig:
        """Rebuild from :meth:`to_dict` output (sub-configs as dicts or objects).

        Raises:
            ValueError: for an unknown or missing key, or an invalid value (the message
                names the key).
        """
        values = dataclass_values(cls, data)
        try:
            return cls(**values)
        except KeyError as err:
            raise ValueError(f"invalid SyntheticModelConfig: {err}") from err

    # ------------------------------------------------------- text and files
    def to_json(self, indent: int | None = 2) -> str:
        """The JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> SyntheticModelConfig:
        """Parse the JSON text written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_yaml(self) -> str:
        """The YAML text of :meth:`to_dict` (keys in field order)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> SyntheticModelConfig:
        """Parse YAML text. Numbers such as ``5e-4`` are read as floats (YAML 1.2 style)."""
        data = load_yaml(text)
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> SyntheticModelConfig:
        """Read a config file: YAML for ``.yaml``/``.yml``, JSON for ``.json``.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: for another file ending, a file that cannot be parsed or an invalid
                config (the message names the file and the key).
        """
        data = load_config_data(path)
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as err:
            raise type(err)(f"{Path(path).expanduser()}: {err}") from None
