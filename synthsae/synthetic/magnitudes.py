"""Per-feature firing magnitudes (the mean or the std of each feature's activation).

A magnitude recipe turns ``num_features`` into a float32 vector ``[num_features]``
that is fixed when a model is built. Recipes are registered dataclasses, so they
round-trip through ``to_dict()`` / ``MagnitudeConfig.from_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import torch

from synthsae.config_values import check_float, check_int
from synthsae.synthetic.registry import GeneratorConfig, Registry

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


MAGNITUDE_REGISTRY: Registry[type[MagnitudeConfig]] = Registry(kind="magnitude generator")


@dataclass
class MagnitudeConfig(GeneratorConfig):
    """Base class of the serialisable per-feature magnitude recipes; ``generate(num_features,
    seed)`` returns finite magnitudes >= 0."""

    registry: ClassVar[Registry[Any]] = MAGNITUDE_REGISTRY


@dataclass
class ConstantMagnitudeConfig(MagnitudeConfig):
    """Every feature gets ``value`` (which must be finite and >= 0)."""

    value: float = 1.0

    def __post_init__(self) -> None:
        self.value = check_float("value", self.value, at_least=0)

    @classmethod
    def generator_name(cls) -> str:
        return "constant"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        return torch.full((check_int("num_features", num_features, at_least=1),), self.value, dtype=torch.float32)


@dataclass
class _StartEndMagnitudeConfig(MagnitudeConfig):
    """Magnitudes running from ``start`` (first feature) to ``end`` (last); both > 0."""

    start: float
    end: float

    def __post_init__(self) -> None:
        self.start = check_float("start", self.start, above=0)
        self.end = check_float("end", self.end, above=0)


@dataclass
class LinearMagnitudeConfig(_StartEndMagnitudeConfig):
    """Evenly spaced from ``start`` (first feature) to ``end`` (last); both > 0."""

    @classmethod
    def generator_name(cls) -> str:
        return "linear"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        n = check_int("num_features", num_features, at_least=1)
        return torch.linspace(self.start, self.end, n, dtype=torch.float64).to(torch.float32)


@dataclass
class ExponentialMagnitudeConfig(_StartEndMagnitudeConfig):
    """Geometric interpolation ``start * (end / start) ** t``, t evenly spaced in [0, 1]."""

    @classmethod
    def generator_name(cls) -> str:
        return "exponential"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        t = torch.linspace(0.0, 1.0, check_int("num_features", num_features, at_least=1), dtype=torch.float64)
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
        self.mean = check_float("mean", self.mean)
        self.std = check_float("std", self.std, above=0)
        self.min_value = check_float("min_value", self.min_value, at_least=0, optional=True)
        self.max_value = check_float("max_value", self.max_value, above=0, optional=True)
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
        n = check_int("num_features", num_features, at_least=1)
        generator = None
        if seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
        noise = torch.randn(n, generator=generator, dtype=torch.float32)
        values = (self.mean + self.std * noise).abs()
        if self.min_value is not None or self.max_value is not None:
            values = values.clamp(min=self.min_value, max=self.max_value)
        return values


register_magnitude = MagnitudeConfig.register
"""``register_magnitude(name, cls)``: make ``cls`` rebuildable by :meth:`MagnitudeConfig.from_dict`
under ``name`` (see :meth:`GeneratorConfig.register`)."""
get_magnitude_class = MAGNITUDE_REGISTRY.get_or_raise
"""``get_magnitude_class(name)``: the class registered under ``name`` (``ValueError`` listing the
known names otherwise)."""


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
    n = check_int("num_features", num_features, at_least=1)
    if isinstance(config, MagnitudeConfig):
        out = config.generate(n, seed=seed)
        return out.to(torch.float32)
    if isinstance(config, bool) or not isinstance(config, Real):
        raise TypeError(
            f"config must be a number or a MagnitudeConfig, got {config!r} ({type(config).__name__})"
        )
    value = check_float("config", config, at_least=0)
    return torch.full((n,), value, dtype=torch.float32)


for _cls in (
    ConstantMagnitudeConfig,
    LinearMagnitudeConfig,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
):
    register_magnitude(_cls.generator_name(), _cls)
del _cls
