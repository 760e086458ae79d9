"""The user docs' SyntheticModel samples with ``sae_lens`` -> ``synthsae``.

Only sizes are changed where the documented ones would be slow on a CPU (and the
16k sample's ``device="cuda"`` runs as written only when a GPU is present; its CPU
variant changes just the device). The hub samples talk to an ``HfApi`` stand-in
(upload) and to an offline hub cache (download).
"""

from __future__ import annotations

import os

import pytest
import torch
from test_hub import FakeApi, offline_cache, publish  # noqa: F401 - fixture

hub = pytest.importorskip("huggingface_hub")


def test_synthetic_model_sample() -> None:
    from synthsae.synthetic import SyntheticModel, SyntheticModelConfig

    cfg = SyntheticModelConfig(
        num_features=10_000,
        hidden_dim=512,
    )
    model = SyntheticModel(cfg)

    # Generate training data
    hidden_activations = model.sample(batch_size=1024)

    # Or get both hidden activations and ground-truth features
    hidden_acts, feature_acts = model.sample_with_features(batch_size=1024)
    assert hidden_activations.shape == hidden_acts.shape == (1024, 512)
    assert feature_acts.shape == (1024, 10_000)


def _config_sample(device: str, num_features: int, hidden_dim: int, num_steps: int):
    from synthsae.synthetic import (
        FoldedNormalMagnitudeConfig,
        HierarchyConfig,
        LinearMagnitudeConfig,
        LowRankCorrelationConfig,
        OrthogonalizationConfig,
        SyntheticModel,
        SyntheticModelConfig,
        ZipfianFiringProbabilityConfig,
    )

    cfg = SyntheticModelConfig(
        num_features=num_features,
        hidden_dim=hidden_dim,

        # Zipfian firing probabilities: few features fire often, most are rare
        firing_probability=ZipfianFiringProbabilityConfig(
            exponent=0.5,
            max_prob=0.4,
            min_prob=5e-4,
        ),

        # Hierarchical features with mutual exclusion
        hierarchy=HierarchyConfig(
            total_root_nodes=128,
            branching_factor=4,
            max_depth=3,
            mutually_exclusive_portion=1.0,  # All children are mutually exclusive
            compensate_probabilities=True,  # Try to compensate firing probabilities for hierarchy effects
            scale_children_by_parent=True,  # Scale child activations by parent activation / parent mean
        ),

        # Orthogonalize feature vectors to reduce overlap
        orthogonalization=OrthogonalizationConfig(
            num_steps=num_steps,
            lr=3e-4,
        ),

        # Low-rank feature correlations
        correlation=LowRankCorrelationConfig(
            rank=25,
            correlation_scale=0.1,
        ),

        # Per-feature magnitude variation
        mean_firing_magnitudes=LinearMagnitudeConfig(start=5.0, end=4.0),
        std_firing_magnitudes=FoldedNormalMagnitudeConfig(mean=0.5, std=0.5),

        seed=42,
    )  # fmt: skip

    model = SyntheticModel(cfg, device=device)
    return model


def test_synthetic_model_config_sample_on_cpu() -> None:
    model = _config_sample("cpu", num_features=4_096, hidden_dim=128, num_steps=5)
    assert model.hierarchy is not None and len(model.hierarchy.roots) == 128
    assert model.sample(256).shape == (256, 128)


@pytest.mark.gpu
def test_synthetic_model_config_sample_on_cuda() -> None:
    model = _config_sample("cuda", num_features=16_384, hidden_dim=768, num_steps=100)
    x = model.sample(1024)
    assert x.device.type == "cuda" and x.shape == (1024, 768)


def test_hierarchy_and_magnitude_config_samples() -> None:
    from synthsae.synthetic import HierarchyConfig

    hierarchy_cfg = HierarchyConfig(
        total_root_nodes=100,           # Number of root features
        branching_factor=10,            # Children per parent (or tuple for range)
        max_depth=2,                    # Maximum tree depth
        mutually_exclusive_portion=0.3, # Fraction of parents with ME children
        mutually_exclusive_min_depth=0, # Minimum depth for ME
        mutually_exclusive_max_depth=None, # Maximum depth for ME
        compensate_probabilities=False,  # Adjust probs for hierarchy effects
        scale_children_by_parent=False, # Scale child activations by parent activation / parent mean
    )  # fmt: skip

    from synthsae.synthetic import (
        ConstantMagnitudeConfig,
        ExponentialMagnitudeConfig,
        FoldedNormalMagnitudeConfig,
        LinearMagnitudeConfig,
    )

    # All features have magnitude 1.0
    constant = ConstantMagnitudeConfig(value=1.0)

    # Linear interpolation from 0.5 to 2.0 across features
    linear = LinearMagnitudeConfig(start=0.5, end=2.0)

    # Exponential interpolation
    exponential = ExponentialMagnitudeConfig(start=0.1, end=10.0)

    # Random magnitudes from folded normal distribution
    random = FoldedNormalMagnitudeConfig(mean=1.0, std=0.3)

    from synthsae.synthetic import SyntheticModel, SyntheticModelConfig

    cfg = SyntheticModelConfig(
        num_features=12_000, hidden_dim=32, hierarchy=hierarchy_cfg,
        mean_firing_magnitudes=linear, std_firing_magnitudes=random, seed=0,
    )  # fmt: skip
    model = SyntheticModel(cfg)
    assert len(model.hierarchy.roots) == 100 and len(model.hierarchy.feature_indices_used) == 11_100
    assert constant.generate(3).tolist() == [1.0, 1.0, 1.0]
    assert exponential.generate(3)[1].item() == pytest.approx(1.0)


def test_save_and_load_samples(tmp_path, monkeypatch, offline_cache) -> None:  # noqa: F811
    from synthsae.synthetic import SyntheticModel, SyntheticModelConfig

    cfg = SyntheticModelConfig(num_features=64, hidden_dim=16, seed=3)
    model = SyntheticModel(cfg)
    other = SyntheticModel(SyntheticModelConfig(num_features=32, hidden_dim=8, seed=4))
    publish(offline_cache, "username/repo", other.save(tmp_path / "published"))
    monkeypatch.chdir(tmp_path)
    os.makedirs("path", exist_ok=True)
    model.save("./path")

    # Save to disk
    model.save("./my_synthetic_model")

    # Load from disk
    model = SyntheticModel.load_from_disk("./my_synthetic_model")

    # Smart loading from various sources
    model = SyntheticModel.load_from_source(cfg)  # From config
    model = SyntheticModel.load_from_source("./path")  # From disk
    model = SyntheticModel.load_from_source("username/repo")  # From HuggingFace

    assert torch.equal(model.feature_dict.feature_vectors, other.feature_dict.feature_vectors)


def test_hugging_face_samples(tmp_path, monkeypatch, offline_cache) -> None:  # noqa: F811
    from synthsae.synthetic import SyntheticModel, SyntheticModelConfig

    api = FakeApi()
    monkeypatch.setattr(hub, "HfApi", lambda *a, **k: api)
    model = SyntheticModel(SyntheticModelConfig(num_features=64, hidden_dim=16, seed=5))
    publish(offline_cache, "username/my-synthetic-model", model.save(tmp_path / "root"))
    publish(offline_cache, "username/repo", model.save(tmp_path / "large"), subfolder="models/large")
    publish(offline_cache, "decoderesearch/synth-sae-bench-16k-v1", model.save(tmp_path / "bench"))

    from synthsae.synthetic import (
        SyntheticModel,
        upload_synthetic_model_to_huggingface,
    )

    # Upload a model
    upload_synthetic_model_to_huggingface(
        model=model,  # Or path to saved model
        hf_repo_id="username/my-synthetic-model",
    )

    # Load from HuggingFace
    model = SyntheticModel.from_pretrained("username/my-synthetic-model")

    # Load from a subfolder in a repo
    model = SyntheticModel.from_pretrained(
        "username/repo",
        model_path="models/large",
    )

    from synthsae.synthetic import SyntheticModel

    model = SyntheticModel.from_pretrained("decoderesearch/synth-sae-bench-16k-v1")

    assert "upload_folder" in api.names() and model.num_features == 64
