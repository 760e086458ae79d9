"""Evaluation with the library's own FeatureDictionary, ActivationGenerator and SAEs,
including the Evaluation and Visualization samples of the user docs."""

from __future__ import annotations

import copy

import pytest
import torch

from synthsae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from synthsae.synthetic import (
    ActivationGenerator,
    FeatureDictionary,
    eval_sae_on_synthetic_data,
    init_sae_to_match_feature_dict,
    plot_sae_feature_similarity,
)
from synthsae.training.activation_scaler import ActivationScaler


def _orthonormal_dict(
    num_features: int, hidden_dim: int, seed: int, bias: bool = False
) -> FeatureDictionary:
    """Orthonormal features via QR (the default orthogonal initializer is slower)."""
    fd = FeatureDictionary(num_features, hidden_dim, bias=bias, initializer=None, seed=seed)
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(hidden_dim, hidden_dim, generator=g))
    with torch.no_grad():
        fd.feature_vectors.copy_(q[:num_features])
    return fd


def _standard_sae(d_in: int, d_sae: int):  # noqa: ANN202 - returns the library SAE
    from synthsae import StandardTrainingSAE, StandardTrainingSAEConfig

    return StandardTrainingSAE(
        StandardTrainingSAEConfig(d_in=d_in, d_sae=d_sae, l1_coefficient=5e-2)
    )


def test_docs_evaluation_and_visualization_samples(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    # setup as in the docs' basic workflow, with two shortcuts to keep the test fast:
    # QR-orthonormal features, and ground-truth init instead of train_toy_sae
    feature_dict = _orthonormal_dict(16, 32, seed=0)
    activation_gen = ActivationGenerator(
        num_features=16, firing_probabilities=torch.ones(16) * 0.25
    )
    sae = _standard_sae(feature_dict.hidden_dim, feature_dict.num_features)
    init_sae_to_match_feature_dict(sae, feature_dict)

    # --- the Evaluation sample, unchanged
    result = eval_sae_on_synthetic_data(sae, feature_dict, activation_gen)
    print(f"MCC: {result.mcc:.3f}")  # Mean Correlation Coefficient
    print(f"Explained variance: {result.explained_variance:.3f}")  # R²
    print(f"Uniqueness: {result.uniqueness:.3f}")  # Fraction of unique latents
    print(f"L0: {result.sae_l0:.1f}")  # Average active latents
    print(f"Dead latents: {result.dead_latents}")
    print(f"Shrinkage: {result.shrinkage:.3f}")
    print(f"Precision: {result.classification.precision:.3f}")
    print(f"Recall: {result.classification.recall:.3f}")
    print(f"F1: {result.classification.f1_score:.3f}")

    # --- the Visualization sample, unchanged
    plot_sae_feature_similarity(sae, feature_dict, reorder_sae_latents=True)

    out = capsys.readouterr().out
    assert "MCC: 1.000" in out and "Uniqueness: 1.000" in out and "Recall: 1.000" in out
    assert result.true_l0 == pytest.approx(4.0, abs=0.05)
    assert result.explained_variance == pytest.approx(1.0, abs=1e-4)


def test_true_l0_matches_probabilities_with_real_generator() -> None:
    probs = torch.linspace(0.05, 0.5, 16)
    fd = FeatureDictionary(16, 32, initializer=None, seed=0)
    gen = ActivationGenerator(16, probs, seed=0)
    res = eval_sae_on_synthetic_data(_standard_sae(32, 16), fd, gen, num_samples=20_000)
    # sd of the mean is sqrt(sum p(1-p) / N) ~ 0.011; allow about 5 sd
    assert res.true_l0 == pytest.approx(float(probs.sum()), abs=0.06)


def test_ground_truth_sae_on_orthogonal_dictionary() -> None:
    fd = _orthonormal_dict(24, 32, seed=1)
    gen = ActivationGenerator(24, 0.2, seed=1)
    sae = _standard_sae(32, 24)
    init_sae_to_match_feature_dict(sae, fd)
    res = eval_sae_on_synthetic_data(sae, fd, gen, num_samples=5_000)
    assert res.mcc == pytest.approx(1.0, abs=1e-4)
    assert res.uniqueness == 1.0
    assert res.explained_variance == pytest.approx(1.0, abs=1e-4)
    assert res.classification.recall == pytest.approx(1.0)


def test_scaler_equals_folded_library_sae() -> None:
    fd = FeatureDictionary(24, 32, bias=True, initializer=None, seed=2)
    sae = _standard_sae(32, 24)
    with torch.no_grad():
        sae.b_enc.uniform_(-0.3, 0.1)
        sae.b_dec.normal_(0.0, 0.1)
    folded = copy.deepcopy(sae)
    folded.fold_activation_norm_scaling_factor(3.0)
    scaled = eval_sae_on_synthetic_data(
        sae,
        fd,
        ActivationGenerator(24, 0.2, seed=3),
        2_000,
        activation_scaler=ActivationScaler(3.0),
    )
    plain = eval_sae_on_synthetic_data(folded, fd, ActivationGenerator(24, 0.2, seed=3), 2_000)
    for key, value in scaled.to_log_dict().items():
        assert value == pytest.approx(plain.to_log_dict()[key], abs=1e-4), key


def test_batch_topk_sees_batch_level_top_k() -> None:
    fd = FeatureDictionary(24, 32, initializer=None, seed=4)
    cfg = BatchTopKTrainingSAEConfig(d_in=32, d_sae=48, k=3)
    sae = BatchTopKTrainingSAE(cfg)
    res = eval_sae_on_synthetic_data(
        sae, fd, ActivationGenerator(24, 0.2, seed=4), 1_000, batch_size=250
    )
    assert res.sae_l0 == pytest.approx(3.0, abs=1e-6)  # exactly k per row on average
    assert sae.training  # training mode restored
