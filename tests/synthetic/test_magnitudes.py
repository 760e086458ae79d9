"""Per-feature magnitude configs, their registry and generate_magnitudes."""

import math
from dataclasses import dataclass

import pytest
import torch

from synthsae.synthetic import (
    MAGNITUDE_REGISTRY,
    ConstantMagnitudeConfig,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
    LinearMagnitudeConfig,
    MagnitudeConfig,
    generate_magnitudes,
    get_magnitude_class,
    register_magnitude,
)


def test_defaults():
    assert ConstantMagnitudeConfig().value == 1.0
    fn = FoldedNormalMagnitudeConfig()
    assert (fn.mean, fn.std, fn.min_value, fn.max_value) == (0.0, 0.1, None, None)
    with pytest.raises(TypeError):
        LinearMagnitudeConfig()  # type: ignore[call-arg]  # start and end are required


def test_constant_values():
    out = ConstantMagnitudeConfig(value=2.5).generate(4)
    assert out.dtype == torch.float32 and out.tolist() == [2.5] * 4


def test_linear_formula_single_feature_and_order():
    out = LinearMagnitudeConfig(start=1.0, end=3.0).generate(5)
    torch.testing.assert_close(out, torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))
    assert LinearMagnitudeConfig(start=4.0, end=9.0).generate(1).tolist() == [4.0]
    ascending = LinearMagnitudeConfig(start=0.5, end=2.0).generate(100)
    assert (ascending[1:] > ascending[:-1]).all()
    assert ascending[0].item() == 0.5 and ascending[-1].item() == 2.0


def test_exponential_formula_and_single_feature():
    start, end, n = 0.1, 10.0, 5
    out = ExponentialMagnitudeConfig(start=start, end=end).generate(n)
    expected = [start * (end / start) ** (k / (n - 1)) for k in range(n)]  # 0.1, 0.316, 1, 3.16, 10
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float32))
    assert ExponentialMagnitudeConfig(start=2.0, end=8.0).generate(1).tolist() == [2.0]
    # consecutive ratios are constant
    ratios = out[1:] / out[:-1]
    torch.testing.assert_close(ratios, torch.full((4,), 10**0.5))


def test_folded_normal_non_negative_even_with_negative_mean():
    out = FoldedNormalMagnitudeConfig(mean=-1.0, std=2.0).generate(10_000, seed=0)
    assert (out >= 0).all()
    # folding a N(-1, 4) sends a sizeable share of mass through zero; values near 0 exist
    assert out.min() < 0.01


def test_folded_normal_half_normal_moments_at_zero_mean():
    n, sigma = 200_000, 0.7
    x = FoldedNormalMagnitudeConfig(mean=0.0, std=sigma).generate(n, seed=1).double()
    # |N(0, s^2)| has E|X| = s*sqrt(2/pi), Var = s^2 (1 - 2/pi), E[X^2] = s^2, Var(X^2) = 2 s^4.
    # Tolerances are 6 standard errors of the sample mean (sd/sqrt(n)): a false alarm
    # has probability ~2e-9 while a wrong scale (e.g. a missing sqrt(2/pi)) is far outside.
    mean_expected = sigma * math.sqrt(2 / math.pi)
    se_mean = sigma * math.sqrt(1 - 2 / math.pi) / math.sqrt(n)
    assert abs(x.mean().item() - mean_expected) < 6 * se_mean
    se_sq = sigma**2 * math.sqrt(2) / math.sqrt(n)
    assert abs(x.square().mean().item() - sigma**2) < 6 * se_sq


def test_folded_normal_clamping():
    cfg = FoldedNormalMagnitudeConfig(mean=1.0, std=1.0, min_value=0.5, max_value=1.5)
    out = cfg.generate(5_000, seed=2)
    assert out.min().item() == 0.5 and out.max().item() == 1.5  # both bounds are hit
    unclamped = FoldedNormalMagnitudeConfig(mean=1.0, std=1.0).generate(5_000, seed=2)
    torch.testing.assert_close(out, unclamped.clamp(0.5, 1.5))


def test_folded_normal_seeding_and_global_rng():
    cfg = FoldedNormalMagnitudeConfig(mean=0.5, std=0.5)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = cfg.generate(100, seed=42)
    assert torch.equal(torch.get_rng_state(), state), "a seeded draw must not touch the global RNG"
    assert torch.equal(a, cfg.generate(100, seed=42))
    assert not torch.equal(a, cfg.generate(100, seed=43))
    torch.manual_seed(5)
    b = cfg.generate(100)
    torch.manual_seed(5)
    assert torch.equal(b, cfg.generate(100)), "unseeded draws follow the global RNG"


def test_generate_magnitudes_numbers_and_configs():
    out = generate_magnitudes(3, 2.0)
    assert out.dtype == torch.float32 and out.tolist() == [2.0, 2.0, 2.0]
    assert generate_magnitudes(2, 0).tolist() == [0.0, 0.0]  # a std of 0 is common
    cfg = LinearMagnitudeConfig(start=5.0, end=4.0)
    assert torch.equal(generate_magnitudes(6, cfg), cfg.generate(6))
    fn = FoldedNormalMagnitudeConfig(mean=0.5, std=0.5)
    assert torch.equal(generate_magnitudes(6, fn, seed=9), fn.generate(6, seed=9))
    assert generate_magnitudes(6, fn, seed=9).dtype == torch.float32
    with pytest.raises(TypeError, match="config"):
        generate_magnitudes(3, "1.0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="config"):
        generate_magnitudes(3, float("nan"))
    with pytest.raises(ValueError, match="num_features"):
        generate_magnitudes(0, 1.0)


@pytest.mark.parametrize(
    "config",
    [
        ConstantMagnitudeConfig(value=3.0),
        LinearMagnitudeConfig(start=5.0, end=4.0),
        ExponentialMagnitudeConfig(start=0.1, end=10.0),
        FoldedNormalMagnitudeConfig(mean=0.5, std=0.5),
        FoldedNormalMagnitudeConfig(mean=1.0, std=0.3, min_value=0.2, max_value=2.0),
    ],
)
def test_dict_round_trip(config):
    data = config.to_dict()
    assert data["generator_name"] == config.generator_name()
    assert MagnitudeConfig.from_dict(data) == config
    assert get_magnitude_class(data["generator_name"]) is type(config)


def test_registry_contents_and_errors():
    assert set(MAGNITUDE_REGISTRY) >= {"constant", "linear", "exponential", "folded_normal"}
    with pytest.raises(ValueError, match="generator_name"):
        MagnitudeConfig.from_dict({"value": 1.0})
    with pytest.raises(ValueError, match="'folded_normal'"):
        get_magnitude_class("lognormal")
    with pytest.raises(ValueError, match="constant"):
        register_magnitude("constant", ConstantMagnitudeConfig)

    @dataclass
    class TwiceConfig(MagnitudeConfig):
        @classmethod
        def generator_name(cls) -> str:
            return "twice_test"

        def generate(self, num_features, seed=None):
            return torch.full((num_features,), 2.0)

    register_magnitude("twice_test", TwiceConfig)
    try:
        assert MagnitudeConfig.from_dict({"generator_name": "twice_test"}) == TwiceConfig()
    finally:
        del MAGNITUDE_REGISTRY["twice_test"]


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: LinearMagnitudeConfig(start=0.0, end=1.0), "start"),
        (lambda: LinearMagnitudeConfig(start=1.0, end=-1.0), "end"),
        (lambda: ExponentialMagnitudeConfig(start=-0.1, end=1.0), "start"),
        (lambda: ExponentialMagnitudeConfig(start=1.0, end=0.0), "end"),
        (lambda: FoldedNormalMagnitudeConfig(std=0.0), "std"),
        (lambda: FoldedNormalMagnitudeConfig(std=-1.0), "std"),
        (lambda: FoldedNormalMagnitudeConfig(min_value=-0.1), "min_value"),
        (lambda: FoldedNormalMagnitudeConfig(max_value=0.0), "max_value"),
        (lambda: FoldedNormalMagnitudeConfig(min_value=2.0, max_value=1.0), "min_value"),
        (lambda: FoldedNormalMagnitudeConfig(mean=float("nan")), "mean"),
        (lambda: ConstantMagnitudeConfig(value=-1.0), "value"),
        (lambda: ConstantMagnitudeConfig(value=float("inf")), "value"),
        (lambda: ConstantMagnitudeConfig().generate(0), "num_features"),
        (lambda: LinearMagnitudeConfig(start=1.0, end=2.0).generate(-2), "num_features"),
    ],
)
def test_bad_input(make, name):
    with pytest.raises(ValueError, match=name):
        make()
