"""Firing-probability functions, configs and their registry."""

import math
from dataclasses import dataclass

import pytest
import torch

from synthsae.synthetic import (
    FIRING_PROB_REGISTRY,
    ConstantFiringProbabilityConfig,
    FiringProbabilityConfig,
    LinearFiringProbabilityConfig,
    RandomFiringProbabilityConfig,
    ZipfianFiringProbabilityConfig,
    get_firing_probability_class,
    linear_firing_probabilities,
    random_firing_probabilities,
    register_firing_probability,
    zipfian_firing_probabilities,
)

# ---------------------------------------------------------------------- zipf


def test_zipf_ends_are_exact_and_values_follow_the_affine_rescaled_power_law():
    probs = zipfian_firing_probabilities(6, exponent=1.5, max_prob=0.4, min_prob=0.02)
    assert probs.dtype == torch.float32 and probs.shape == (6,)
    assert probs[0].item() == torch.tensor(0.4, dtype=torch.float32).item()
    assert probs[-1].item() == torch.tensor(0.02, dtype=torch.float32).item()
    raw = [k**-1.5 for k in range(1, 7)]
    expected = [0.02 + 0.38 * (r - raw[-1]) / (raw[0] - raw[-1]) for r in raw]
    torch.testing.assert_close(probs, torch.tensor(expected, dtype=torch.float32))


def test_zipf_is_descending_and_steeper_with_a_larger_exponent():
    flat = zipfian_firing_probabilities(50, exponent=0.5)
    steep = zipfian_firing_probabilities(50, exponent=2.0)
    assert (flat[1:] <= flat[:-1]).all() and (steep[1:] <= steep[:-1]).all()
    # same end points, but the steeper law falls towards min_prob sooner
    assert (steep[1:-1] < flat[1:-1]).all()


def test_zipf_single_feature_is_max_prob():
    assert zipfian_firing_probabilities(1, max_prob=0.25).tolist() == [0.25]


# -------------------------------------------------------------------- linear


def test_linear_is_evenly_spaced_from_max_to_min():
    probs = linear_firing_probabilities(5, max_prob=0.5, min_prob=0.1)
    torch.testing.assert_close(probs, torch.tensor([0.5, 0.4, 0.3, 0.2, 0.1]))
    steps = probs[1:] - probs[:-1]
    torch.testing.assert_close(steps, torch.full((4,), -0.1))


def test_linear_equal_bounds_and_single_feature():
    assert linear_firing_probabilities(4, max_prob=0.2, min_prob=0.2).tolist() == pytest.approx(
        [0.2] * 4
    )
    assert linear_firing_probabilities(1, max_prob=0.3).tolist() == pytest.approx([0.3])


# -------------------------------------------------------------------- random


def test_random_range_seed_and_global_rng():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = random_firing_probabilities(1000, max_prob=0.4, min_prob=0.1, seed=7)
    assert torch.equal(torch.get_rng_state(), state), "a seeded draw must not touch the global RNG"
    b = random_firing_probabilities(1000, max_prob=0.4, min_prob=0.1, seed=7)
    c = random_firing_probabilities(1000, max_prob=0.4, min_prob=0.1, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0.1 and a.max() <= 0.4 and a.dtype == torch.float32


def test_random_is_uniform():
    n, lo, hi = 50_000, 0.1, 0.5
    probs = random_firing_probabilities(n, max_prob=hi, min_prob=lo, seed=0).double()
    # U(lo, hi) has sd (hi - lo)/sqrt(12); the sample mean's standard error is sd/sqrt(n),
    # so 5 standard errors (~0.0026 here) is a false-alarm rate below 1e-6.
    se = (hi - lo) / math.sqrt(12) / math.sqrt(n)
    assert abs(probs.mean().item() - (lo + hi) / 2) < 5 * se
    # each quarter of the range holds ~n/4 values; binomial sd is sqrt(n * 1/4 * 3/4)
    counts = torch.histc(probs, bins=4, min=lo, max=hi)
    assert ((counts - n / 4).abs() < 5 * math.sqrt(n * 3 / 16)).all()


# ------------------------------------------------------------------- configs


def test_config_defaults():
    assert (
        ZipfianFiringProbabilityConfig().exponent,
        ZipfianFiringProbabilityConfig().max_prob,
    ) == (1.0, 0.3)
    assert ZipfianFiringProbabilityConfig().min_prob == 0.01
    assert (LinearFiringProbabilityConfig().max_prob, LinearFiringProbabilityConfig().min_prob) == (
        0.3,
        0.01,
    )
    assert (RandomFiringProbabilityConfig().max_prob, RandomFiringProbabilityConfig().min_prob) == (
        0.5,
        0.01,
    )
    assert ConstantFiringProbabilityConfig().probability == 0.1


def test_configs_generate_what_the_functions_give():
    z = ZipfianFiringProbabilityConfig(exponent=0.7, max_prob=0.4, min_prob=0.001)
    assert torch.equal(z.generate(20), zipfian_firing_probabilities(20, 0.7, 0.4, 0.001))
    lin = LinearFiringProbabilityConfig(max_prob=0.6, min_prob=0.2)
    assert torch.equal(lin.generate(7), linear_firing_probabilities(7, 0.6, 0.2))
    r = RandomFiringProbabilityConfig(max_prob=0.3, min_prob=0.05)
    assert torch.equal(r.generate(9, seed=3), random_firing_probabilities(9, 0.3, 0.05, seed=3))
    const = ConstantFiringProbabilityConfig(probability=0.25).generate(5)
    assert const.dtype == torch.float32 and const.tolist() == [0.25] * 5


def test_registry_holds_the_builtin_configs():
    assert FIRING_PROB_REGISTRY["zipfian"] is ZipfianFiringProbabilityConfig
    assert get_firing_probability_class("linear") is LinearFiringProbabilityConfig
    assert get_firing_probability_class("random") is RandomFiringProbabilityConfig
    assert get_firing_probability_class("constant") is ConstantFiringProbabilityConfig


@pytest.mark.parametrize(
    "config",
    [
        ZipfianFiringProbabilityConfig(exponent=0.5, max_prob=0.4, min_prob=5e-4),
        LinearFiringProbabilityConfig(max_prob=0.2, min_prob=0.1),
        RandomFiringProbabilityConfig(max_prob=0.9, min_prob=0.3),
        ConstantFiringProbabilityConfig(probability=0.05),
    ],
)
def test_dict_round_trip(config):
    data = config.to_dict()
    assert data["generator_name"] == config.generator_name()
    rebuilt = FiringProbabilityConfig.from_dict(data)
    assert type(rebuilt) is type(config) and rebuilt == config
    assert type(config).from_dict(data) == config


def test_from_dict_errors():
    with pytest.raises(ValueError, match="generator_name"):
        FiringProbabilityConfig.from_dict({"max_prob": 0.3})
    with pytest.raises(ValueError, match="'zipfian'"):
        FiringProbabilityConfig.from_dict({"generator_name": "pareto"})


def test_register_custom_class_and_duplicates():
    @dataclass
    class HalfConfig(FiringProbabilityConfig):
        @classmethod
        def generator_name(cls) -> str:
            return "half_test"

        def generate(self, num_features, seed=None):
            return torch.full((num_features,), 0.5)

    register_firing_probability("half_test", HalfConfig)
    try:
        assert FiringProbabilityConfig.from_dict({"generator_name": "half_test"}) == HalfConfig()
        with pytest.raises(ValueError, match="half_test"):
            register_firing_probability("half_test", HalfConfig)
    finally:
        del FIRING_PROB_REGISTRY["half_test"]
    with pytest.raises(TypeError, match="FiringProbabilityConfig"):
        register_firing_probability("not_a_config", dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="available"):
        get_firing_probability_class("half_test")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("num_features", [0, -3])
@pytest.mark.parametrize(
    "fn", [zipfian_firing_probabilities, linear_firing_probabilities, random_firing_probabilities]
)
def test_non_positive_num_features(fn, num_features):
    with pytest.raises(ValueError, match=rf"num_features.*{num_features}"):
        fn(num_features)


def test_config_generate_non_positive_num_features():
    with pytest.raises(ValueError, match="num_features"):
        ConstantFiringProbabilityConfig().generate(0)
    with pytest.raises(TypeError, match="num_features"):
        ConstantFiringProbabilityConfig().generate(2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), float("inf")])
@pytest.mark.parametrize(
    "make",
    [
        lambda v: ZipfianFiringProbabilityConfig(max_prob=v, min_prob=1e-4),
        lambda v: LinearFiringProbabilityConfig(max_prob=v, min_prob=1e-4),
        lambda v: RandomFiringProbabilityConfig(max_prob=v, min_prob=1e-4),
        lambda v: zipfian_firing_probabilities(5, max_prob=v, min_prob=1e-4),
    ],
)
def test_max_prob_outside_unit_interval(make, bad):
    with pytest.raises(ValueError, match=r"max_prob.*(\(0, 1\]|finite)"):
        make(bad)


@pytest.mark.parametrize("bad", [0.0, -0.2, 2.0, float("nan")])
def test_min_prob_and_probability_outside_unit_interval(bad):
    with pytest.raises(ValueError, match="min_prob"):
        LinearFiringProbabilityConfig(max_prob=0.5, min_prob=bad)
    with pytest.raises(ValueError, match="min_prob"):
        random_firing_probabilities(4, max_prob=0.5, min_prob=bad)
    with pytest.raises(ValueError, match="probability"):
        ConstantFiringProbabilityConfig(probability=bad)


def test_probability_of_one_is_allowed():
    assert ConstantFiringProbabilityConfig(probability=1.0).generate(2).tolist() == [1.0, 1.0]
    assert linear_firing_probabilities(2, max_prob=1.0, min_prob=0.5).tolist() == [1.0, 0.5]


@pytest.mark.parametrize(
    "make",
    [
        lambda: zipfian_firing_probabilities(5, max_prob=0.1, min_prob=0.2),
        lambda: linear_firing_probabilities(5, max_prob=0.1, min_prob=0.2),
        lambda: random_firing_probabilities(5, max_prob=0.1, min_prob=0.2),
        lambda: ZipfianFiringProbabilityConfig(max_prob=0.2, min_prob=0.2),
        lambda: RandomFiringProbabilityConfig(max_prob=0.2, min_prob=0.2),
        lambda: LinearFiringProbabilityConfig(max_prob=0.1, min_prob=0.2),
    ],
)
def test_min_above_max(make):
    with pytest.raises(ValueError, match=r"min_prob.*max_prob.*min_prob=0\.2"):
        make()


@pytest.mark.parametrize("exponent", [0.0, -1.0, float("nan")])
def test_bad_exponent(exponent):
    with pytest.raises(ValueError, match="exponent"):
        ZipfianFiringProbabilityConfig(exponent=exponent)


def test_non_numeric_probability_is_a_type_error():
    with pytest.raises(TypeError, match="probability"):
        ConstantFiringProbabilityConfig(probability="0.1")  # type: ignore[arg-type]
