"""Ready-made :class:`SyntheticModelConfig` recipes.

- :func:`synth_sae_bench_16k`: the SynthSAEBench-16k benchmark model (16,384 features
  in 768 dimensions), as documented for the reference library.
- :func:`cpu_medium`: 2,048 features in 256 dimensions with the same ingredients; on
  it SAE architectures rank as on the 16k model, and it trains on a CPU in minutes.
- :func:`cpu_bench`: 4,096 features in 256 dimensions, the model of the CPU ordering
  benchmark (``synthsae bench --recipe cpu``).
- :func:`cpu_small`: 512 features in 64 dimensions with a mild hierarchy and
  correlation; builds in well under a second and trains an SAE on a CPU in seconds.
- :func:`synth_sae_bench_scaled`: the SynthSAEBench-16k recipe at another number of
  features, with the firing rates rescaled so that L0 stays near 34;
  :func:`synth_sae_bench_1m` is its 1,048,576-feature instance.

Each function returns a fresh config; ``PRESETS`` maps their names to them and
:func:`get_preset` looks one up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from synthsae.config_values import did_you_mean
from synthsae.synthetic.firing_probabilities import ZipfianFiringProbabilityConfig
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.magnitudes import FoldedNormalMagnitudeConfig, LinearMagnitudeConfig
from synthsae.synthetic.model_config import (
    LowRankCorrelationConfig,
    OrthogonalizationConfig,
    SyntheticModelConfig,
)

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "cpu_bench",
    "cpu_medium",
    "cpu_small",
    "get_preset",
    "synth_sae_bench_16k",
    "synth_sae_bench_1m",
    "synth_sae_bench_scaled",
]

DEFAULT_PRESET = "cpu_small"
"""The model every command uses when given none (`synthsae sample`, `train`'s demo job, `bench`)."""


def synth_sae_bench_16k() -> SyntheticModelConfig:
    """SynthSAEBench-16k: 16,384 features, 768 dims, Zipf(0.5, 0.4 -> 5e-4), a forest of
    128 roots (branching 4, depth 3, all children mutually exclusive, compensated and
    parent-scaled), low-rank correlation (rank 25, scale 0.1), 100 orthogonalisation
    steps at lr 3e-4, mean magnitudes 5 -> 4, std folded-normal(0.5, 0.5), bias 0.5,
    seed 42. True L0 is about 34.4 active features per sample."""
    return SyntheticModelConfig(
        num_features=16_384,
        hidden_dim=768,
        firing_probability=ZipfianFiringProbabilityConfig(exponent=0.5, max_prob=0.4, min_prob=5e-4),
        hierarchy=HierarchyConfig(
            total_root_nodes=128,
            branching_factor=4,
            max_depth=3,
            mutually_exclusive_portion=1.0,
            compensate_probabilities=True,
            scale_children_by_parent=True,
        ),
        orthogonalization=OrthogonalizationConfig(num_steps=100, lr=3e-4),
        correlation=LowRankCorrelationConfig(rank=25, correlation_scale=0.1),
        mean_firing_magnitudes=LinearMagnitudeConfig(start=5.0, end=4.0),
        std_firing_magnitudes=FoldedNormalMagnitudeConfig(mean=0.5, std=0.5),
        bias=0.5,
        seed=42,
    )


_BENCH_FEATURES = 16_384


def synth_sae_bench_scaled(
    num_features: int, hidden_dim: int = 768, orthogonalization_steps: int = 100, orthogonalization_lr: float = 3e-4
) -> SyntheticModelConfig:
    """The SynthSAEBench-16k recipe with ``num_features`` features (>= 1,024).

    With ``r = 16,384 / num_features``: ``128 / r`` roots (the forest covers the same
    share of the features), Zipf exponent 0.5 from ``0.4 * sqrt(r)`` down to ``5e-4 * r``.
    The configured rates then sum to the same ~59 per sample as at 16k (about
    ``F * min + sqrt(F) * max`` for this power law), so L0 stays near 34. Everything
    else (correlation, magnitudes, bias, seed) is as in :func:`synth_sae_bench_16k`.

    Raises:
        ValueError: for fewer than 1,024 features (the top rate would pass 1).
    """
    if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1024:
        raise ValueError(f"num_features must be an int >= 1024, got {num_features!r}")
    ratio = _BENCH_FEATURES / num_features
    base = synth_sae_bench_16k()
    assert base.hierarchy is not None
    return replace(
        base,
        num_features=num_features,
        hidden_dim=hidden_dim,
        firing_probability=ZipfianFiringProbabilityConfig(
            exponent=0.5, max_prob=min(1.0, 0.4 * ratio**0.5), min_prob=5e-4 * ratio
        ),
        hierarchy=replace(base.hierarchy, total_root_nodes=max(1, round(128 / ratio))),
        orthogonalization=OrthogonalizationConfig(num_steps=orthogonalization_steps, lr=orthogonalization_lr),
    )


def synth_sae_bench_1m() -> SyntheticModelConfig:
    """:func:`synth_sae_bench_scaled` with 1,048,576 features in 768 dims: 8,192 roots,
    Zipf 0.05 -> 7.8e-6, L0 about 34, and 10 orthogonalisation steps at lr 3e-3 (Adam
    moves each coordinate by about ``lr`` per step, so as far in all as the 16k model's
    100 steps at 3e-4; one step here costs as much as 64 there). Builds, saves, loads
    and samples within 16 GiB of memory."""
    return synth_sae_bench_scaled(1 << 20, hidden_dim=768, orthogonalization_steps=10, orthogonalization_lr=3e-3)


def cpu_medium() -> SyntheticModelConfig:
    """2,048 features in 256 dims built like SynthSAEBench-16k (every other setting is
    :func:`synth_sae_bench_16k`'s): Zipf(0.5, 0.4 -> 2e-3) and a forest of 16 roots
    instead of 128. True L0 is about 12."""
    bench = synth_sae_bench_16k()
    return replace(
        bench,
        num_features=2_048,
        hidden_dim=256,
        firing_probability=replace(bench.firing_probability, min_prob=2e-3),
        hierarchy=replace(bench.hierarchy, total_root_nodes=16),
    )


def cpu_bench() -> SyntheticModelConfig:
    """4,096 features in 256 dims built like SynthSAEBench-16k at a quarter of its size, for
    the CPU ordering benchmark (``synthsae bench --recipe cpu``; every other setting is
    :func:`synth_sae_bench_16k`'s): Zipf(0.5, 0.4 -> 2e-3) and a forest of 32 roots instead
    of 128, so the hierarchy covers two thirds of the features as in the 16k model. True L0
    is about 18."""
    bench = synth_sae_bench_16k()
    return replace(
        bench,
        num_features=4_096,
        hidden_dim=256,
        firing_probability=replace(bench.firing_probability, min_prob=2e-3),
        hierarchy=replace(bench.hierarchy, total_root_nodes=32),
    )


def cpu_small() -> SyntheticModelConfig:
    """512 features in 64 dims: Zipf(0.5, 0.4 -> 5e-3), a small forest (8 roots,
    branching 3, depth 2, half of the parents ME, compensated), low-rank correlation
    (rank 8, scale 0.1), 50 orthogonalisation steps at lr 3e-3, magnitudes 2 -> 1 and
    folded-normal(0.2, 0.2), bias 0.5, seed 42. True L0 is about 10.5."""
    return SyntheticModelConfig(
        num_features=512,
        hidden_dim=64,
        firing_probability=ZipfianFiringProbabilityConfig(exponent=0.5, max_prob=0.4, min_prob=5e-3),
        hierarchy=HierarchyConfig(
            total_root_nodes=8,
            branching_factor=3,
            max_depth=2,
            mutually_exclusive_portion=0.5,
            compensate_probabilities=True,
        ),
        orthogonalization=OrthogonalizationConfig(num_steps=50, lr=3e-3),
        correlation=LowRankCorrelationConfig(rank=8, correlation_scale=0.1),
        mean_firing_magnitudes=LinearMagnitudeConfig(start=2.0, end=1.0),
        std_firing_magnitudes=FoldedNormalMagnitudeConfig(mean=0.2, std=0.2),
        bias=0.5,
        seed=42,
    )


PRESETS: dict[str, Callable[[], SyntheticModelConfig]] = {
    "synth_sae_bench_16k": synth_sae_bench_16k,
    "cpu_medium": cpu_medium,
    "cpu_bench": cpu_bench,
    "cpu_small": cpu_small,
    "synth_sae_bench_1m": synth_sae_bench_1m,
}


def get_preset(name: str) -> SyntheticModelConfig:
    """A fresh config of the preset called ``name`` (``-`` and ``_`` are interchangeable).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    key = name.replace("-", "_") if isinstance(name, str) else name
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}{did_you_mean(key, PRESETS)}; available presets: {', '.join(PRESETS)}")
    return PRESETS[key]()
