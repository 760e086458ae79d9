"""Ready-made :class:`SyntheticModelConfig` recipes.

- :func:`synth_sae_bench_16k`: the SynthSAEBench-16k benchmark model (16,384 features
  in 768 dimensions), as documented for the reference library.
- :func:`cpu_medium`: 2,048 features in 256 dimensions with the same ingredients; on
  it SAE architectures rank as on the 16k model, and it trains on a CPU in minutes.
- :func:`cpu_small`: 512 features in 64 dimensions with a mild hierarchy and
  correlation; builds in well under a second and trains an SAE on a CPU in seconds.

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

__all__ = ["DEFAULT_PRESET", "PRESETS", "cpu_medium", "cpu_small", "get_preset", "synth_sae_bench_16k"]

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
    "cpu_small": cpu_small,
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
