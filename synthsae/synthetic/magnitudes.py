"""Per-feature firing magnitudes (the mean or the std of each feature's activation).

A magnitude recipe turns ``num_features`` into a float32 vector ``[num_features]``
that is fixed when a model is built. Recipes are registered dataclasses, so they
round-trip through ``to_dict()`` / ``MagnitudeConfig.from_dict()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from typing import Any

import torch

from synthsae.synthetic.checks import non_negative_number as _non_negative
from synthsae.synthetic.checks import positive_number as _positive
from synthsae.synthetic.checks import real_number as _real
from synthsae.synthetic.registry import Registry, config_from_dict

__all__ = [
    "MAGNITUDE_REGISTRY",
    "ConstantMagnitudeConfig",
    "ExponentialMagnitudeConfig",
    "FoldedNormalMagnitudeConfig",
    "LinearMagnitudeConfig",
    "MagnitudeConfig",
    "generate_magnitudes",
    "get_magnitude_class",
    "register_magnitude",
]


def _num_features(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"num_features must be an int, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"num_features must be a positive int, got {value!r}")
    return int(value)


MAGNITUDE_REGISTRY: Registry[type[MagnitudeConfig]] = Registry(kind="magnitude generator")


@dataclass
class MagnitudeConfig(ABC):
    """Base class of the serialisable per-feature magnitude recipes."""

    @classmethod
    @abstractmethod
    def generator_name(cls) -> str:
        """The registry key of this class (stored as ``"generator_name"``)."""

    @abstractmethod
    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        """A float32 vector ``[num_features]`` of magnitudes."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict, plus ``"generator_name"``."""
        return {"generator_name": self.generator_name(), **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MagnitudeConfig:
        """Rebuild a config written by :meth:`to_dict`, whatever its concrete class.

        Raises:
            ValueError: if ``"generator_name"`` is missing or not registered.
        """
        return config_from_dict(MAGNITUDE_REGISTRY, d, MagnitudeConfig)


@dataclass
class ConstantMagnitudeConfig(MagnitudeConfig):
    """Every feature gets ``value`` (which must be finite and >= 0)."""

    value: float = 1.0

    def __post_init__(self) -> None:
        self.value = _non_negative("value", self.value)

    @classmethod
    def generator_name(cls) -> str:
        return "constant"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        return torch.full((_num_features(num_features),), self.value, dtype=torch.float32)


@dataclass
class LinearMagnitudeConfig(MagnitudeConfig):
    """Evenly spaced from ``start`` (first feature) to ``end`` (last); both > 0."""

    start: float
    end: float

    def __post_init__(self) -> None:
        self.start = _positive("start", self.start)
        self.end = _positive("end", self.end)

    @classmethod
    def generator_name(cls) -> str:
        return "linear"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        n = _num_features(num_features)
        return torch.linspace(self.start, self.end, n, dtype=torch.float64).to(torch.float32)


@dataclass
class ExponentialMagnitudeConfig(MagnitudeConfig):
    """Geometric interpolation ``start * (end / start) ** t``, t evenly spaced in [0, 1]."""

    start: float
    end: float

    def __post_init__(self) -> None:
        self.start = _positive("start", self.start)
        self.end = _positive("end", self.end)

    @classmethod
    def generator_name(cls) -> str:
        return "exponential"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        t = torch.linspace(0.0, 1.0, _num_features(num_features), dtype=torch.float64)
        return (self.start * (self.end / self.start) ** t).to(torch.float32)


@dataclass
class FoldedNormalMagnitudeConfig(MagnitudeConfig):
    """``|mean + std * N(0, 1)|`` per feature, optionally clamped to ``[min_value, max_value]``.

    With a ``seed`` the normal draws come from a private CPU ``torch.Generator``;
    without one, from the global RNG.
    """

    mean: float = 0.0
    std: float = 0.1
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        self.mean = _real("mean", self.mean)
        self.std = _positive("std", self.std)
        if self.min_value is not None:
            self.min_value = _non_negative("min_value", self.min_value)
        if self.max_value is not None:
            self.max_value = _positive("max_value", self.max_value)
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            raise ValueError(
                f"min_value must be <= max_value, got min_value={self.min_value!r}, "
                f"max_value={self.max_value!r}"
            )

    @classmethod
    def generator_name(cls) -> str:
        return "folded_normal"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        n = _num_features(num_features)
        generator = None
        if seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
        noise = torch.randn(n, generator=generator, dtype=torch.float32)
        values = (self.mean + self.std * noise).abs()
        if self.min_value is not None or self.max_value is not None:
            values = values.clamp(min=self.min_value, max=self.max_value)
        return values


def register_magnitude(name: str, config_class: type[MagnitudeConfig]) -> None:
    """Make ``config_class`` available to :meth:`MagnitudeConfig.from_dict` under ``name``.

    Raises:
        TypeError: if ``config_class`` is not a :class:`MagnitudeConfig` subclass.
        ValueError: if ``name`` is already registered.
    """
    if not (isinstance(config_class, type) and issubclass(config_class, MagnitudeConfig)):
        raise TypeError(f"config_class must be a MagnitudeConfig subclass, got {config_class!r}")
    MAGNITUDE_REGISTRY.register(name, config_class)


def get_magnitude_class(name: str) -> type[MagnitudeConfig]:
    """The magnitude config class registered under ``name``.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the known names).
    """
    return MAGNITUDE_REGISTRY.get_or_raise(name)


def generate_magnitudes(
    num_features: int, config: float | MagnitudeConfig, seed: int | None = None
) -> torch.Tensor:
    """Per-feature magnitudes as a float32 vector ``[num_features]``.

    A plain number is broadcast to every feature; a :class:`MagnitudeConfig` is asked
    to ``generate`` them (``seed`` only matters for random recipes).

    Raises:
        TypeError: if ``config`` is neither a number nor a :class:`MagnitudeConfig`.
        ValueError: if ``num_features <= 0`` or a number is negative or not finite.
    """
    n = _num_features(num_features)
    if isinstance(config, MagnitudeConfig):
        out = config.generate(n, seed=seed)
        return out.to(torch.float32)
    if isinstance(config, bool) or not isinstance(config, Real):
        raise TypeError(
            f"config must be a number or a MagnitudeConfig, got {config!r} ({type(config).__name__})"
        )
    value = _non_negative("config", config)
    return torch.full((n,), value, dtype=torch.float32)


for _cls in (
    ConstantMagnitudeConfig,
    LinearMagnitudeConfig,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
):
    register_magnitude(_cls.generator_name(), _cls)
del _cls
