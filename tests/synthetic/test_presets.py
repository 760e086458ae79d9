"""Presets: documented values, look-up, and (slow) the statistics of SynthSAEBench-16k."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from synthetic_model_helpers import check_hierarchy_invariants

from synthsae.synthetic.firing_probabilities import ZipfianFiringProbabilityConfig
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.magnitudes import FoldedNormalMagnitudeConfig, LinearMagnitudeConfig
from synthsae.synthetic.model_config import LowRankCorrelationConfig, OrthogonalizationConfig
from synthsae.synthetic.presets import (
    PRESETS,
    cpu_bench,
    cpu_medium,
    cpu_small,
    get_preset,
    synth_sae_bench_1m,
    synth_sae_bench_16k,
    synth_sae_bench_scaled,
)
from synthsae.synthetic.synthetic_model import SyntheticModel


def _bench_hierarchy(roots: int) -> HierarchyConfig:
    return HierarchyConfig(
        total_root_nodes=roots,
        branching_factor=4,
        max_depth=3,
        mutually_exclusive_portion=1.0,
        compensate_probabilities=True,
        scale_children_by_parent=True,
    )


def test_synth_sae_bench_16k_matches_the_documented_table() -> None:
    cfg = synth_sae_bench_16k()
    assert (cfg.num_features, cfg.hidden_dim, cfg.seed, cfg.bias, cfg.dtype) == (
        16_384,
        768,
        42,
        0.5,
        "float32",
    )
    assert cfg.firing_probability == ZipfianFiringProbabilityConfig(
        exponent=0.5, max_prob=0.4, min_prob=5e-4
    )
    assert cfg.hierarchy == _bench_hierarchy(128)
    assert cfg.orthogonalization == OrthogonalizationConfig(num_steps=100, lr=3e-4, chunk_size=1024)
    assert cfg.correlation == LowRankCorrelationConfig(rank=25, correlation_scale=0.1, seed=None)
    assert cfg.mean_firing_magnitudes == LinearMagnitudeConfig(start=5.0, end=4.0)
    assert cfg.std_firing_magnitudes == FoldedNormalMagnitudeConfig(mean=0.5, std=0.5)


def test_cpu_medium_matches_the_anchor_model() -> None:
    cfg = cpu_medium()
    assert (cfg.num_features, cfg.hidden_dim, cfg.seed, cfg.bias) == (2_048, 256, 42, 0.5)
    assert cfg.firing_probability == ZipfianFiringProbabilityConfig(
        exponent=0.5, max_prob=0.4, min_prob=2e-3
    )
    assert cfg.hierarchy == _bench_hierarchy(16)
    assert cfg.orthogonalization == OrthogonalizationConfig(num_steps=100, lr=3e-4)
    assert cfg.correlation == LowRankCorrelationConfig(rank=25, correlation_scale=0.1)
    assert cfg.mean_firing_magnitudes == LinearMagnitudeConfig(start=5.0, end=4.0)
    assert cfg.std_firing_magnitudes == FoldedNormalMagnitudeConfig(mean=0.5, std=0.5)


def test_cpu_bench_is_the_16k_recipe_at_a_quarter_size() -> None:
    cfg, big = cpu_bench(), synth_sae_bench_16k()
    assert (cfg.num_features, cfg.hidden_dim, cfg.seed, cfg.bias) == (4_096, 256, 42, 0.5)
    assert cfg.hierarchy == _bench_hierarchy(32)  # 32 x 85 nodes: two thirds of the features, as 128 x 85 of 16k
    assert cfg.firing_probability == ZipfianFiringProbabilityConfig(exponent=0.5, max_prob=0.4, min_prob=2e-3)
    for name in ("orthogonalization", "correlation", "mean_firing_magnitudes", "std_firing_magnitudes"):
        assert getattr(cfg, name) == getattr(big, name), name


def test_lookup_and_fresh_instances() -> None:
    assert set(PRESETS) == {"synth_sae_bench_16k", "cpu_medium", "cpu_bench", "cpu_small", "synth_sae_bench_1m"}
    assert get_preset("cpu-small") == cpu_small()
    assert get_preset("cpu_small") is not get_preset("cpu_small")
    with pytest.raises(ValueError, match="cpu_small"):
        get_preset("huge")


def test_scaled_recipe_is_the_16k_model_at_16k_features() -> None:
    assert synth_sae_bench_scaled(16_384) == synth_sae_bench_16k()


@pytest.mark.parametrize("num_features", [4096, 65_536, 1 << 20])
def test_scaled_recipe_keeps_the_rate_sum(num_features: int) -> None:
    # the configured rates (before the hierarchy) sum to the same ~59 per sample at every
    # size, which is what keeps L0 near the 16k model's 34
    def rate_sum(cfg) -> float:
        return float(cfg.firing_probability.generate(cfg.num_features).double().sum())

    cfg = synth_sae_bench_scaled(num_features, hidden_dim=512)
    assert cfg.hidden_dim == 512 and cfg.num_features == num_features
    assert cfg.hierarchy is not None and cfg.hierarchy.total_root_nodes == 128 * num_features // 16_384
    assert rate_sum(cfg) == pytest.approx(rate_sum(synth_sae_bench_16k()), rel=0.03)


def test_million_feature_preset() -> None:
    cfg = synth_sae_bench_1m()
    assert (cfg.num_features, cfg.hidden_dim) == (1 << 20, 768)
    assert cfg.orthogonalization == OrthogonalizationConfig(num_steps=10, lr=3e-3)
    with pytest.raises(ValueError, match="num_features"):
        synth_sae_bench_scaled(512)


def _empirical_l0(
    model: SyntheticModel, batches: int, batch_size: int = 2048
) -> tuple[float, float]:
    counts = torch.cat(
        [model.sample_sparse_features(batch_size).row_counts().double() for _ in range(batches)]
    )
    return counts.mean().item(), counts.std().item() / math.sqrt(counts.numel())


def test_cpu_small_fires_sensibly() -> None:
    model = SyntheticModel(cpu_small(), sampling_seed=0)
    l0, se = _empirical_l0(model, batches=4)
    base = cpu_small().firing_probability.generate(512).sum().item()
    assert 3.0 < l0 < base + 5 * se
    _, feats = model.sample_with_features(2048)
    check_hierarchy_invariants(model.hierarchy.roots, feats)


def test_cpu_medium_true_l0_matches_the_anchor() -> None:
    # orthogonalisation moves the directions only, not the firing process: skip it here
    model = SyntheticModel(dataclasses.replace(cpu_medium(), orthogonalization=None), sampling_seed=0)
    l0, se = _empirical_l0(model, batches=5)
    # the anchor measurement is 12.1 (rounded to 0.05); allow the rounding plus 4 standard errors
    assert abs(l0 - 12.1) < 0.05 + 4 * se, (l0, se)


@pytest.mark.slow
def test_synth_sae_bench_16k_statistics() -> None:
    # orthogonalisation changes the directions only, not the firing process: skip it here
    cfg = dataclasses.replace(synth_sae_bench_16k(), orthogonalization=None)
    model = SyntheticModel(cfg, sampling_seed=0)
    hierarchy = model.hierarchy
    assert len(hierarchy.roots) == 128 and len(hierarchy.feature_indices_used) == 10_880
    l0, se = _empirical_l0(model, batches=50)  # 102,400 samples
    # reference: 34.45 with sd 11.7 over 20,480 samples, i.e. a standard error of 0.082
    ref_se = 11.7 / math.sqrt(20_480)
    assert abs(l0 - 34.45) < 4 * math.hypot(se, ref_se), (l0, se)
    _, feats = model.sample_with_features(4096)
    check_hierarchy_invariants(hierarchy.roots, feats)
