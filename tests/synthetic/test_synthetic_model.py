"""SyntheticModel: building, seeds, sampling, hierarchy, compensation and devices."""

from __future__ import annotations

import random
import warnings

import pytest
import torch
from synthetic_model_helpers import (
    assert_same_model,
    check_hierarchy_invariants,
    iter_parent_child,
    model_state,
    small_config,
)

from synthsae.synthetic.feature_dictionary import FeatureDictionary
from synthsae.synthetic.firing_probabilities import ConstantFiringProbabilityConfig
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.magnitudes import FoldedNormalMagnitudeConfig
from synthsae.synthetic.model_config import SyntheticModelConfig
from synthsae.synthetic.sparse_batch import SparseBatch
from synthsae.synthetic.synthetic_model import SyntheticModel


def test_sample_shapes_and_forward() -> None:
    model = SyntheticModel(small_config(), sampling_seed=0)
    assert (model.num_features, model.hidden_dim) == (64, 16)
    hidden = model.sample(32)
    assert hidden.shape == (32, 16) and hidden.dtype == torch.float32
    assert not hidden.requires_grad
    hidden, feats = model.sample_with_features(32)
    assert hidden.shape == (32, 16) and feats.shape == (32, 64) and not feats.is_sparse
    hidden2, sparse = model.sample_with_sparse_features(8)
    assert isinstance(sparse, SparseBatch) and hidden2.shape == (8, 16)
    model.set_sampling_seed(5)
    a = model(16)
    model.set_sampling_seed(5)
    assert torch.equal(a, model.sample(16))


def test_hidden_is_features_times_dictionary_plus_bias() -> None:
    model = SyntheticModel(small_config(), sampling_seed=1)
    hidden, feats = model.sample_with_features(256)
    expected = (
        feats @ model.feature_dict.feature_vectors.detach() + model.feature_dict.bias.detach()
    )
    torch.testing.assert_close(hidden, expected, atol=1e-5, rtol=1e-5)
    assert (feats >= 0).all()


def test_use_sparse_tensors_forwards_and_returns_coo() -> None:
    model = SyntheticModel(small_config(), sampling_seed=2)
    assert model.use_sparse_tensors is False
    model.use_sparse_tensors = True
    assert model.activation_generator.use_sparse_tensors is True
    hidden, feats = model.sample_with_features(16)
    assert feats.is_sparse and feats.shape == (16, 64)
    torch.testing.assert_close(hidden, model.feature_dict(feats.to_dense()), atol=1e-5, rtol=1e-5)


def test_same_seed_same_model_different_seed_different() -> None:
    a, b = SyntheticModel(small_config()), SyntheticModel(small_config())
    assert_same_model(a, b)
    c = SyntheticModel(small_config(seed=8))
    assert not torch.equal(a.feature_dict.feature_vectors, c.feature_dict.feature_vectors)
    assert not torch.equal(
        a.correlation_matrix.correlation_factor, c.correlation_matrix.correlation_factor
    )
    assert not torch.equal(
        a.activation_generator.std_firing_magnitudes, c.activation_generator.std_firing_magnitudes
    )


def test_building_with_a_seed_leaves_the_global_rngs_alone() -> None:
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    SyntheticModel(small_config())
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state


def test_sampling_without_a_seed_uses_the_global_rng() -> None:
    a, b = SyntheticModel(small_config()), SyntheticModel(small_config())
    assert a.sampling_seed is None
    # the build seed does not make sampling deterministic (as in the reference)...
    assert not torch.equal(a.sample(64), b.sample(64))
    # ...but the global RNG does
    torch.manual_seed(123)
    x = a.sample(64)
    torch.manual_seed(123)
    assert torch.equal(x, b.sample(64))


def test_sampling_seed_is_reproducible_and_private() -> None:
    a = SyntheticModel(small_config(), sampling_seed=11)
    b = SyntheticModel(small_config()).set_sampling_seed(11)
    assert b.sampling_seed == 11
    state = torch.get_rng_state()
    xa = [a.sample(64) for _ in range(3)]
    xb = [b.sample(64) for _ in range(3)]
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip(xa, xb):
        assert torch.equal(p, q)
    assert not torch.equal(xa[0], xa[1])
    b.set_sampling_seed(12)
    assert not torch.equal(
        b.sample(64), SyntheticModel(small_config(), sampling_seed=11).sample(64)
    )
    gen = torch.Generator().manual_seed(11)
    c = SyntheticModel(small_config()).set_sampling_seed(gen)
    assert c.sampling_seed is None and torch.equal(c.sample(64), xa[0])
    b.set_sampling_seed(None)
    torch.manual_seed(0)
    y = b.sample(8)
    torch.manual_seed(0)
    assert torch.equal(y, b.sample(8))


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_bad_sampling_seed(bad) -> None:
    with pytest.raises((ValueError, TypeError), match="sampling seed"):  # TypeError for a non-integer
        SyntheticModel(small_config(hierarchy=None, correlation=None), sampling_seed=bad)


def test_bias_options() -> None:
    none = SyntheticModel(small_config(bias=False))
    assert torch.count_nonzero(none.feature_dict.bias) == 0
    two = SyntheticModel(small_config(bias=2.0))
    assert two.feature_dict.bias.norm().item() == pytest.approx(2.0, rel=1e-5)


def test_hierarchy_invariants_hold_in_samples() -> None:
    model = SyntheticModel(small_config(), sampling_seed=3)
    assert model.hierarchy is not None
    _, feats = model.sample_with_features(4096)
    check_hierarchy_invariants(model.hierarchy.roots, feats)


def test_no_hierarchy_when_zero_roots_or_none() -> None:
    assert SyntheticModel(small_config(hierarchy=None)).hierarchy is None
    assert SyntheticModel(small_config(correlation=None)).correlation_matrix is None


def test_compensation_is_off_by_default() -> None:
    cfg = small_config(
        hierarchy=HierarchyConfig(total_root_nodes=4, branching_factor=3, max_depth=2)
    )
    model = SyntheticModel(cfg)
    base = cfg.firing_probability.generate(cfg.num_features, seed=cfg.seed)
    assert torch.equal(model.activation_generator.firing_probabilities.cpu(), base)


def test_compensation_raises_child_probabilities() -> None:
    cfg = small_config()
    model = SyntheticModel(cfg)
    base = cfg.firing_probability.generate(cfg.num_features, seed=cfg.seed)
    used = model.activation_generator.firing_probabilities.cpu()
    children = sorted({c for _, c in iter_parent_child(model.hierarchy.roots)})
    assert (used[children] > base[children]).all()
    free = sorted(set(range(cfg.num_features)) - model.hierarchy.feature_indices_used)
    assert torch.equal(used[free], base[free])


def test_compensation_warns_when_it_clamps() -> None:
    cfg = small_config(
        firing_probability=ConstantFiringProbabilityConfig(probability=0.6),
        hierarchy=HierarchyConfig(
            total_root_nodes=2, branching_factor=3, max_depth=1,
            mutually_exclusive_portion=1.0, compensate_probabilities=True,
        ),
    )  # fmt: skip
    with pytest.warns(UserWarning, match="clamped"):
        model = SyntheticModel(cfg)
    assert model.activation_generator.firing_probabilities.max().item() <= 1.0


def test_no_warning_without_clamping() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SyntheticModel(small_config())


def test_prebuilt_parts_are_checked() -> None:
    cfg = small_config(hierarchy=None, correlation=None)
    wrong = FeatureDictionary(num_features=32, hidden_dim=16, initializer=None, seed=0)
    with pytest.raises(ValueError, match="feature_vectors"):
        SyntheticModel(cfg, feature_dict=wrong)
    with pytest.raises(ValueError, match="correlation_matrix"):
        SyntheticModel(cfg, correlation_matrix=(torch.zeros(10, 2), torch.ones(10)))
    with pytest.raises(TypeError, match="SyntheticModelConfig"):
        SyntheticModel({"num_features": 4, "hidden_dim": 2})  # type: ignore[arg-type]


def test_dtype_from_config() -> None:
    model = SyntheticModel(small_config(dtype="float64"), sampling_seed=0)
    _, feats = model.sample_with_sparse_features(8)
    assert feats.values.dtype == torch.float64
    assert model.sample(8).shape == (8, 16)


def test_to_same_device_keeps_loadedmodel_state() -> None:
    model = SyntheticModel(small_config(dtype="float64"), sampling_seed=4)
    custom = torch.linspace(
        0.05, 0.5, 64, dtype=model.activation_generator.firing_probabilities.dtype
    )
    model.activation_generator.firing_probabilities = custom
    model.use_sparse_tensors = True
    before = model_state(model)
    assert model.to("cpu") is model
    after = model_state(model)
    for key in before:
        assert torch.equal(before[key], after[key]) and before[key].dtype == after[key].dtype, key
    assert torch.equal(model.activation_generator.firing_probabilities, custom)
    assert model.use_sparse_tensors is True and model.sampling_seed == 4
    assert model.cpu() is model
    with pytest.raises(ValueError, match="dtype"):
        model.to(torch.float16)


@pytest.mark.gpu
def test_to_cuda_moves_everything_and_keepsmodel_state() -> None:
    model = SyntheticModel(small_config(), sampling_seed=4)
    custom = torch.linspace(0.05, 0.5, 64)
    model.activation_generator.firing_probabilities = custom
    model.use_sparse_tensors = True
    before = model_state(model)
    model.to("cuda")
    assert model.device.startswith("cuda")
    for key, value in model_state(model).items():
        assert value.device.type == "cuda", key
        assert torch.equal(value.cpu(), before[key].cpu()), key
    assert model.use_sparse_tensors is True
    hidden, feats = model.sample_with_features(128)
    assert hidden.device.type == "cuda" and feats.is_sparse
    check_hierarchy_invariants(model.hierarchy.roots, feats.to_dense().cpu())
    model.set_sampling_seed(4)
    x = model.sample(64)
    model.set_sampling_seed(4)
    assert torch.equal(x, model.sample(64))
    model.to("cpu")
    assert all(v.device.type == "cpu" for v in model_state(model).values())
    assert model.sample(4).device.type == "cpu"


def test_config_is_validated_before_building() -> None:
    with pytest.raises(ValueError, match="num_features"):
        SyntheticModel(SyntheticModelConfig(num_features=0, hidden_dim=4))


@pytest.mark.parametrize("correlated", [False, True], ids=["independent", "low-rank"])
def test_empirical_rates_match_the_exact_expectation(correlated: bool) -> None:
    from synthsae.synthetic.model_stats import expected_firing_rates

    # magnitudes that are sometimes clipped to 0 (a mean of 1 with std up to ~1)
    cfg = small_config(
        correlation=small_config().correlation if correlated else None,
        mean_firing_magnitudes=1.0,
        std_firing_magnitudes=FoldedNormalMagnitudeConfig(mean=0.6, std=0.3),
    )
    model = SyntheticModel(cfg, sampling_seed=0)
    n, counts, rows = 0, torch.zeros(cfg.num_features, dtype=torch.float64), []
    for _ in range(8):
        batch = model.sample_sparse_features(4096)
        fired = batch.values != 0
        counts += torch.bincount(batch.indices[fired], minlength=cfg.num_features).double()
        rows.append(torch.zeros(batch.batch_size).index_add_(0, batch.row_ids()[fired], torch.ones(int(fired.sum()))))
        n += batch.batch_size
    expected = expected_firing_rates(model)
    se = (expected * (1 - expected) / n).sqrt().clamp(min=1e-9)
    z = (counts / n - expected) / se
    l0 = torch.cat(rows)
    if not correlated:  # exact: every feature within 4.5 standard errors (64 features)
        assert z.abs().max() < 4.5, (z.abs().max(), int(z.abs().argmax()))
    else:  # weak correlations only perturb the mutual exclusion slightly
        assert (z.abs() > 4.5).sum() <= 4
    assert abs(l0.mean().item() - expected.sum().item()) < 4 * l0.std().item() / n**0.5 + (0.02 if correlated else 0)
