"""Per-feature firing probabilities: helper functions, configs and their registry.

Every function returns a float32 vector ``[num_features]`` of probabilities in
``(0, 1]``. The configs are small dataclasses that remember their parameters,
serialise to a dict (with a ``"generator_name"`` key) and rebuild from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from synthsae.config_values import check_float, check_int, check_probability
from synthsae.synthetic.registry import GeneratorConfig, Registry

__all__ = [
    "FIRING_PROB_REGISTRY",
    "ConstantFiringProbabilityConfig",
    "FiringProbabilityConfig",
    "LinearFiringProbabilityConfig",
    "RandomFiringProbabilityConfig",
    "ZipfianFiringProbabilityConfig",
    "get_firing_probability_class",
    "linear_firing_probabilities",
    "random_firing_probabilities",
    "register_firing_probability",
    "zipfian_firing_probabilities",
]


# ----------------------------------------------------------------- validation
def _bounds(min_prob: Any, max_prob: Any, strict: bool) -> tuple[float, float]:
    lo = check_probability("min_prob", min_prob)
    hi = check_probability("max_prob", max_prob)
    if lo > hi or (strict and lo == hi):
        relation = "<" if strict else "<="
        raise ValueError(
            f"min_prob must be {relation} max_prob, got min_prob={min_prob!r}, max_prob={max_prob!r}"
        )
    return lo, hi


# ------------------------------------------------------------------ functions
def zipfian_firing_probabilities(
    num_features: int, exponent: float = 1.0, max_prob: float = 0.3, min_prob: float = 0.01
) -> torch.Tensor:
    """Power-law probabilities, descending from ``max_prob`` to ``min_prob``.

    The raw values ``k ** -exponent`` (``k = 1..num_features``) are mapped affinely so
    that the first feature gets exactly ``max_prob`` and the last exactly ``min_prob``.
    This is a rescaled power law, not a normalised Zipf distribution.

    Raises:
        ValueError: unless ``0 < min_prob < max_prob <= 1``, ``exponent > 0`` and
            ``num_features > 0``.
    """
    n = check_int("num_features", num_features, at_least=1)
    lo, hi = _bounds(min_prob, max_prob, strict=True)
    exp = check_float("exponent", exponent, above=0)
    if n == 1:
        return torch.tensor([hi], dtype=torch.float32)
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    raw = ranks.pow(-exp)
    # weight 1 for the first feature, 0 for the last; the lerp keeps both ends exact
    weight = (raw - raw[-1]) / (raw[0] - raw[-1])
    probs = hi * weight + lo * (1.0 - weight)
    return probs.to(torch.float32)


def linear_firing_probabilities(
    num_features: int, max_prob: float = 0.3, min_prob: float = 0.01
) -> torch.Tensor:
    """Evenly spaced probabilities from ``max_prob`` (first) down to ``min_prob`` (last).

    Raises:
        ValueError: unless ``0 < min_prob <= max_prob <= 1`` and ``num_features > 0``.
    """
    n = check_int("num_features", num_features, at_least=1)
    lo, hi = _bounds(min_prob, max_prob, strict=False)
    return torch.linspace(hi, lo, n, dtype=torch.float64).to(torch.float32)


def random_firing_probabilities(
    num_features: int, max_prob: float = 0.5, min_prob: float = 0.01, seed: int | None = None
) -> torch.Tensor:
    """Independent uniform probabilities in ``[min_prob, max_prob)``.

    With a ``seed`` the draw uses its own CPU ``torch.Generator`` (the global RNG is
    left untouched); without one it uses the global RNG.

    Raises:
        ValueError: unless ``0 < min_prob < max_prob <= 1`` and ``num_features > 0``.
    """
    n = check_int("num_features", num_features, at_least=1)
    lo, hi = _bounds(min_prob, max_prob, strict=True)
    generator = None
    if seed is not None:
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
    uniform = torch.rand(n, generator=generator, dtype=torch.float32)
    return (lo + (hi - lo) * uniform).clamp_(lo, hi)


# -------------------------------------------------------------------- configs
FIRING_PROB_REGISTRY: Registry[type[FiringProbabilityConfig]] = Registry(
    kind="firing probability generator"
)


@dataclass
class FiringProbabilityConfig(GeneratorConfig):
    """Base class of the serialisable firing-probability recipes.

    Subclasses are dataclasses that validate their fields in ``__post_init__``,
    name themselves through :meth:`generator_name` and are registered with
    :func:`register_firing_probability` so :meth:`from_dict` can find them;
    ``generate(num_features, seed)`` returns probabilities in ``(0, 1]``.
    """

    registry: ClassVar[Registry[Any]] = FIRING_PROB_REGISTRY


@dataclass
class ZipfianFiringProbabilityConfig(FiringProbabilityConfig):
    """Power-law probabilities; see :func:`zipfian_firing_probabilities`."""

    exponent: float = 1.0
    max_prob: float = 0.3
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        self.min_prob, self.max_prob = _bounds(self.min_prob, self.max_prob, strict=True)
        self.exponent = check_float("exponent", self.exponent, above=0)

    @classmethod
    def generator_name(cls) -> str:
        return "zipfian"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        return zipfian_firing_probabilities(num_features, self.exponent, self.max_prob, self.min_prob)


@dataclass
class LinearFiringProbabilityConfig(FiringProbabilityConfig):
    """Evenly spaced probabilities; see :func:`linear_firing_probabilities`."""

    max_prob: float = 0.3
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        self.min_prob, self.max_prob = _bounds(self.min_prob, self.max_prob, strict=False)

    @classmethod
    def generator_name(cls) -> str:
        return "linear"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        return linear_firing_probabilities(num_features, self.max_prob, self.min_prob)


@dataclass
class RandomFiringProbabilityConfig(FiringProbabilityConfig):
    """Uniform random probabilities; see :func:`random_firing_probabilities`."""

    max_prob: float = 0.5
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        self.min_prob, self.max_prob = _bounds(self.min_prob, self.max_prob, strict=True)

    @classmethod
    def generator_name(cls) -> str:
        return "random"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        return random_firing_probabilities(num_features, self.max_prob, self.min_prob, seed=seed)


@dataclass
class ConstantFiringProbabilityConfig(FiringProbabilityConfig):
    """The same probability for every feature."""

    probability: float = 0.1

    def __post_init__(self) -> None:
        self.probability = check_probability("probability", self.probability)

    @classmethod
    def generator_name(cls) -> str:
        return "constant"

    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        return torch.full((check_int("num_features", num_features, at_least=1),), self.probability, dtype=torch.float32)


# ------------------------------------------------------------------- registry
register_firing_probability = FiringProbabilityConfig.register
"""``register_firing_probability(name, cls)``: make ``cls`` rebuildable by
:meth:`FiringProbabilityConfig.from_dict` under ``name`` (see :meth:`GeneratorConfig.register`)."""
get_firing_probability_class = FIRING_PROB_REGISTRY.get_or_raise
"""``get_firing_probability_class(name)``: the class registered under ``name`` (``ValueError``
listing the known names otherwise)."""

for _cls in (
    ZipfianFiringProbabilityConfig,
    LinearFiringProbabilityConfig,
    RandomFiringProbabilityConfig,
    ConstantFiringProbabilityConfig,
):
    register_firing_probability(_cls.generator_name(), _cls)
del _cls
