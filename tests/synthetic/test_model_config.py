"""SyntheticModelConfig and its sub-configs: defaults, validation, dict/JSON/YAML round trips."""

from __future__ import annotations

import json
import math

import pytest

from synthsae.config_values import write_config_file
from synthsae.synthetic.firing_probabilities import (
    ConstantFiringProbabilityConfig,
    LinearFiringProbabilityConfig,
    RandomFiringProbabilityConfig,
    ZipfianFiringProbabilityConfig,
)
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.magnitudes import (
    ConstantMagnitudeConfig,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
    LinearMagnitudeConfig,
)
from synthsae.synthetic.model_config import (
    SYNTHETIC_MODEL_CONFIG_FILENAME,
    SYNTHETIC_MODEL_HIERARCHY_FILENAME,
    SYNTHETIC_MODEL_WEIGHTS_FILENAME,
    LowRankCorrelationConfig,
    OrthogonalizationConfig,
    SyntheticModelConfig,
)


def test_file_name_constants() -> None:
    assert SYNTHETIC_MODEL_CONFIG_FILENAME == "synthetic_model_config.json"
    assert SYNTHETIC_MODEL_WEIGHTS_FILENAME == "synthetic_model.safetensors"
    assert SYNTHETIC_MODEL_HIERARCHY_FILENAME == "hierarchy.json"


def test_defaults_match_the_reference() -> None:
    cfg = SyntheticModelConfig(num_features=10, hidden_dim=4)
    assert cfg.firing_probability == ZipfianFiringProbabilityConfig(
        exponent=1.0, max_prob=0.3, min_prob=0.01
    )
    assert cfg.hierarchy is None and cfg.orthogonalization is None and cfg.correlation is None
    assert cfg.std_firing_magnitudes == 0.0 and cfg.mean_firing_magnitudes == 1.0
    assert cfg.bias == 1.0 and cfg.dtype == "float32" and cfg.seed is None
    assert OrthogonalizationConfig() == OrthogonalizationConfig(
        num_steps=200, lr=0.01, chunk_size=1024
    )
    assert LowRankCorrelationConfig() == LowRankCorrelationConfig(
        rank=32, correlation_scale=0.1, seed=None
    )


def _configs() -> list[SyntheticModelConfig]:
    hierarchy = HierarchyConfig(
        total_root_nodes=3,
        branching_factor=(2, 4),
        max_depth=2,
        mutually_exclusive_portion=0.5,
        compensate_probabilities=True,
        scale_children_by_parent=True,
    )
    return [
        SyntheticModelConfig(num_features=8, hidden_dim=4),
        SyntheticModelConfig(
            num_features=100,
            hidden_dim=16,
            firing_probability=LinearFiringProbabilityConfig(max_prob=0.5, min_prob=0.1),
            hierarchy=hierarchy,
            orthogonalization=OrthogonalizationConfig(num_steps=3, lr=1e-3, chunk_size=7),
            correlation=LowRankCorrelationConfig(rank=5, correlation_scale=0.2, seed=9),
            std_firing_magnitudes=FoldedNormalMagnitudeConfig(
                mean=0.5, std=0.25, min_value=0.0, max_value=2.0
            ),
            mean_firing_magnitudes=LinearMagnitudeConfig(start=5.0, end=4.0),
            bias=0.5,
            dtype="float64",
            seed=42,
        ),
        SyntheticModelConfig(
            num_features=30,
            hidden_dim=30,
            firing_probability=RandomFiringProbabilityConfig(max_prob=0.4, min_prob=5e-4),
            std_firing_magnitudes=ConstantMagnitudeConfig(value=0.1),
            mean_firing_magnitudes=ExponentialMagnitudeConfig(start=0.1, end=10.0),
            bias=False,
            seed=0,
        ),
        SyntheticModelConfig(
            num_features=5,
            hidden_dim=2,
            firing_probability=ConstantFiringProbabilityConfig(probability=0.25),
            std_firing_magnitudes=0.3,
            mean_firing_magnitudes=2.0,
            bias=True,
            dtype="bfloat16",
        ),
    ]


@pytest.mark.parametrize(
    "cfg", _configs(), ids=["defaults", "everything", "random-exp", "constant"]
)
def test_round_trips(cfg: SyntheticModelConfig, tmp_path) -> None:
    as_dict = cfg.to_dict()
    assert SyntheticModelConfig.from_dict(as_dict) == cfg
    via_json = json.loads(json.dumps(as_dict))
    assert SyntheticModelConfig.from_dict(via_json) == cfg
    assert SyntheticModelConfig.from_dict(via_json).to_dict() == as_dict
    assert SyntheticModelConfig.from_json(cfg.to_json()) == cfg
    assert SyntheticModelConfig.from_yaml(cfg.to_yaml()) == cfg
    assert SyntheticModelConfig.from_yaml(cfg.to_yaml()).to_dict() == as_dict
    assert SyntheticModelConfig.from_file(write_config_file(tmp_path / "a" / "cfg.json", as_dict)) == cfg
    assert SyntheticModelConfig.from_file(write_config_file(tmp_path / "cfg.yaml", as_dict)) == cfg


def test_json_shape_is_the_reference_layout() -> None:
    cfg = _configs()[1]
    d = cfg.to_dict()
    assert list(d) == [
        "num_features", "hidden_dim", "firing_probability", "hierarchy", "orthogonalization",
        "correlation", "std_firing_magnitudes", "mean_firing_magnitudes", "bias", "dtype", "seed",
    ]  # fmt: skip
    assert d["firing_probability"] == {"generator_name": "linear", "max_prob": 0.5, "min_prob": 0.1}
    assert d["orthogonalization"] == {"num_steps": 3, "lr": 1e-3, "chunk_size": 7}
    assert d["correlation"] == {"rank": 5, "correlation_scale": 0.2, "seed": 9}
    assert d["mean_firing_magnitudes"] == {"generator_name": "linear", "start": 5.0, "end": 4.0}
    assert d["std_firing_magnitudes"]["generator_name"] == "folded_normal"
    assert d["hierarchy"]["branching_factor"] == [2, 4]
    plain = _configs()[0].to_dict()
    assert (
        plain["hierarchy"] is None
        and plain["std_firing_magnitudes"] == 0.0
        and plain["bias"] == 1.0
    )


def test_from_dict_accepts_objects_or_dicts_for_sub_configs() -> None:
    cfg = _configs()[1]
    mixed = cfg.to_dict()
    mixed["orthogonalization"] = cfg.orthogonalization
    mixed["mean_firing_magnitudes"] = cfg.mean_firing_magnitudes
    mixed["firing_probability"] = cfg.firing_probability
    assert SyntheticModelConfig.from_dict(mixed) == cfg
    direct = SyntheticModelConfig(
        num_features=4, hidden_dim=2, correlation={"rank": 2}, hierarchy=None
    )
    assert direct.correlation == LowRankCorrelationConfig(rank=2)


def test_from_dict_defaults_missing_optional_keys() -> None:
    cfg = SyntheticModelConfig.from_dict({"num_features": 3, "hidden_dim": 2})
    assert cfg == SyntheticModelConfig(num_features=3, hidden_dim=2)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"num_features": 3, "hidden_dim": 2, "colour": "red"}, "colour"),
        ({"num_features": 3, "hidden_dim": 2, "orthogonalization": {"steps": 3}}, "steps"),
        (
            {"num_features": 3, "hidden_dim": 2, "correlation": {"rank": 2, "strength": 1}},
            "strength",
        ),
        ({"hidden_dim": 2}, "num_features"),
        (
            {"num_features": 3, "hidden_dim": 2, "firing_probability": {"max_prob": 0.3}},
            "generator_name",
        ),
        ({"num_features": 3, "hidden_dim": 2, "seed": "x"}, "seed"),
    ],
)
def test_from_dict_rejects_bad_data(data: dict, needle: str) -> None:
    with pytest.raises((ValueError, TypeError), match=needle):  # TypeError for a wrong kind of value
        SyntheticModelConfig.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_features": 0}, "num_features"),
        ({"num_features": -3}, "num_features"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"dtype": "float8"}, "dtype"),
        ({"std_firing_magnitudes": -1.0}, "std_firing_magnitudes"),
        ({"mean_firing_magnitudes": math.nan}, "mean_firing_magnitudes"),
        ({"bias": -0.5}, "bias"),
        ({"seed": -1}, "seed"),
    ],
)
def test_validation_value_errors(kwargs: dict, needle: str) -> None:
    args = {"num_features": 4, "hidden_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=needle):
        SyntheticModelConfig(**args)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_features": 2.5}, "num_features"),
        ({"hidden_dim": True}, "hidden_dim"),
        ({"firing_probability": "zipfian"}, "firing_probability"),
        ({"hierarchy": 5}, "hierarchy"),
        ({"std_firing_magnitudes": "big"}, "std_firing_magnitudes"),
    ],
)
def test_validation_type_errors(kwargs: dict, needle: str) -> None:
    args = {"num_features": 4, "hidden_dim": 2, **kwargs}
    with pytest.raises(TypeError, match=needle):
        SyntheticModelConfig(**args)


@pytest.mark.parametrize(
    ("factory", "needle"),
    [
        (lambda: LowRankCorrelationConfig(rank=0), "rank"),
        (lambda: LowRankCorrelationConfig(correlation_scale=-0.1), "correlation_scale"),
        (lambda: LowRankCorrelationConfig(seed=-2), "seed"),
        (lambda: OrthogonalizationConfig(num_steps=-1), "num_steps"),
        (lambda: OrthogonalizationConfig(lr=0.0), "lr"),
        (lambda: OrthogonalizationConfig(chunk_size=0), "chunk_size"),
    ],
)
def test_sub_config_validation(factory, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        factory()


def test_zero_steps_and_zero_scale_are_allowed() -> None:
    assert OrthogonalizationConfig(num_steps=0).num_steps == 0
    assert LowRankCorrelationConfig(correlation_scale=0).correlation_scale == 0.0


def test_dtype_names() -> None:
    import torch

    assert SyntheticModelConfig(num_features=2, hidden_dim=2, dtype="float32").torch_dtype is torch.float32
    assert SyntheticModelConfig(num_features=2, hidden_dim=2, dtype="torch.bfloat16").torch_dtype is torch.bfloat16
    assert (
        SyntheticModelConfig(num_features=2, hidden_dim=2, dtype="torch.float64").torch_dtype
        is torch.float64
    )


def test_yaml_reads_exponent_floats_without_a_dot() -> None:
    text = """
num_features: 64
hidden_dim: 8
firing_probability: {generator_name: zipfian, exponent: 0.5, max_prob: 0.4, min_prob: 5e-4}
orthogonalization: {num_steps: 10, lr: 3e-4}
"""
    cfg = SyntheticModelConfig.from_yaml(text)
    assert cfg.firing_probability.min_prob == pytest.approx(5e-4)
    assert cfg.orthogonalization == OrthogonalizationConfig(num_steps=10, lr=3e-4)


def test_from_file_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.json"):
        SyntheticModelConfig.from_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        SyntheticModelConfig.from_file(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("num_features: 3\nhidden_dim: 2\nwidth: 9\n")
    with pytest.raises(ValueError, match="width"):
        SyntheticModelConfig.from_file(unknown)
