"""SAE configs: defaults, validation, dict round trips."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from sae_helpers import ARCHITECTURES, training_config

from synthsae.saes.base import SAEConfig, TrainingSAEConfig
from synthsae.saes.batchtopk import BatchTopKTrainingSAEConfig
from synthsae.saes.gated import GatedSAEConfig, GatedTrainingSAEConfig
from synthsae.saes.jumprelu import JumpReLUSAEConfig, JumpReLUTrainingSAEConfig
from synthsae.saes.matching_pursuit import (
    MatchingPursuitSAEConfig,
    MatchingPursuitTrainingSAEConfig,
)
from synthsae.saes.matryoshka import MatryoshkaBatchTopKTrainingSAEConfig
from synthsae.saes.registry import get_sae_architecture
from synthsae.saes.standard import StandardSAEConfig, StandardTrainingSAEConfig
from synthsae.saes.topk import TopKSAEConfig, TopKTrainingSAEConfig


def test_base_defaults() -> None:
    cfg = StandardTrainingSAEConfig(d_in=8, d_sae=16)
    assert (cfg.dtype, cfg.device, cfg.apply_b_dec_to_input) == ("float32", "cpu", True)
    assert (cfg.normalize_activations, cfg.reshape_activations, cfg.metadata) == ("none", "none", {})
    assert cfg.decoder_init_norm == 0.1
    assert (cfg.l1_coefficient, cfg.lp_norm, cfg.l1_warm_up_steps) == (1.0, 1.0, 0)


def test_architecture_defaults() -> None:
    topk = TopKTrainingSAEConfig(d_in=8, d_sae=200)
    assert (topk.k, topk.use_sparse_activations, topk.aux_loss_coefficient) == (100, False, 1.0)
    assert topk.rescale_acts_by_decoder_norm is True
    assert TopKSAEConfig(d_in=8, d_sae=200).rescale_acts_by_decoder_norm is False
    batch = BatchTopKTrainingSAEConfig(d_in=8, d_sae=200)
    assert (batch.k, batch.topk_threshold_lr) == (100.0, 0.01)
    jump = JumpReLUTrainingSAEConfig(d_in=8, d_sae=16)
    assert (jump.jumprelu_init_threshold, jump.jumprelu_bandwidth) == (0.01, 0.05)
    assert (jump.jumprelu_sparsity_loss_mode, jump.l0_coefficient, jump.l0_warm_up_steps) == ("step", 1.0, 0)
    assert (jump.pre_act_loss_coefficient, jump.jumprelu_tanh_scale) == (None, 4.0)
    gated = GatedTrainingSAEConfig(d_in=8, d_sae=16)
    assert (gated.l1_coefficient, gated.l1_warm_up_steps) == (1.0, 0)
    mp = MatchingPursuitTrainingSAEConfig(d_in=8, d_sae=16)
    assert (mp.residual_threshold, mp.max_iterations, mp.stop_on_duplicate_support) == (1e-2, None, True)
    assert mp.decoder_init_norm == 1.0


@pytest.mark.parametrize(
    "cls, name",
    [
        (StandardSAEConfig, "standard"),
        (StandardTrainingSAEConfig, "standard"),
        (TopKSAEConfig, "topk"),
        (TopKTrainingSAEConfig, "topk"),
        (BatchTopKTrainingSAEConfig, "batchtopk"),
        (MatryoshkaBatchTopKTrainingSAEConfig, "matryoshka_batchtopk"),
        (JumpReLUSAEConfig, "jumprelu"),
        (JumpReLUTrainingSAEConfig, "jumprelu"),
        (GatedSAEConfig, "gated"),
        (GatedTrainingSAEConfig, "gated"),
        (MatchingPursuitSAEConfig, "matching_pursuit"),
        (MatchingPursuitTrainingSAEConfig, "matching_pursuit"),
    ],
)
def test_architecture_names(cls: type[SAEConfig], name: str) -> None:
    assert cls.architecture() == name


def test_decoder_init_norm_is_keyword_only() -> None:
    field = next(f for f in dataclasses.fields(TrainingSAEConfig) if f.name == "decoder_init_norm")
    assert field.kw_only
    assert StandardTrainingSAEConfig(8, 16, decoder_init_norm=None).decoder_init_norm is None


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_training_config_round_trip(name: str) -> None:
    cfg = training_config(name, metadata={"note": "x"})
    data = cfg.to_dict()
    assert data["architecture"] == name
    assert data["metadata"] == {"note": "x"}
    assert TrainingSAEConfig.from_dict(data) == cfg  # class chosen from "architecture"
    assert type(cfg).from_dict(data) == cfg


def test_inference_config_round_trip() -> None:
    cfg = TopKSAEConfig(d_in=8, d_sae=16, k=3, rescale_acts_by_decoder_norm=True)
    assert SAEConfig.from_dict(cfg.to_dict()) == cfg
    mp = MatchingPursuitSAEConfig(d_in=8, d_sae=16, max_iterations=5)
    assert SAEConfig.from_dict(mp.to_dict()) == mp


def test_from_dict_rejects_unknown_keys_naming_them() -> None:
    data = StandardTrainingSAEConfig(d_in=8, d_sae=16).to_dict()
    data["l2_coefficient"] = 3
    with pytest.raises(ValueError, match="l2_coefficient"):
        StandardTrainingSAEConfig.from_dict(data)


def test_from_dict_rejects_mismatched_class() -> None:
    data = StandardTrainingSAEConfig(d_in=8, d_sae=16).to_dict()
    with pytest.raises(ValueError, match="not a TopKTrainingSAEConfig"):
        TopKTrainingSAEConfig.from_dict(data)


def test_from_dict_unknown_architecture_lists_known() -> None:
    with pytest.raises(ValueError, match="registered architectures: .*standard"):
        TrainingSAEConfig.from_dict({"architecture": "nope", "d_in": 1, "d_sae": 1})


def test_from_dict_subclass_via_parent_class() -> None:
    data = BatchTopKTrainingSAEConfig(d_in=8, d_sae=16, k=2.5).to_dict()
    cfg = TopKTrainingSAEConfig.from_dict(data)
    assert isinstance(cfg, BatchTopKTrainingSAEConfig) and cfg.k == 2.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"d_in": 0, "d_sae": 4}, r"d_in must be >= 1, got 0"),
        ({"d_in": -3, "d_sae": 4}, r"d_in must be >= 1, got -3"),
        ({"d_in": 4, "d_sae": 0}, r"d_sae must be >= 1, got 0"),
        ({"d_in": 4, "d_sae": 4, "normalize_activations": "bogus"}, r"normalize_activations must be one of"),
        ({"d_in": 4, "d_sae": 4, "reshape_activations": "x"}, r"reshape_activations must be one of"),
        ({"d_in": 4, "d_sae": 4, "dtype": "int8"}, r"dtype"),
        ({"d_in": 4, "d_sae": 4, "l1_coefficient": -1.0}, r"l1_coefficient must be >= 0"),
        ({"d_in": 4, "d_sae": 4, "lp_norm": 0.0}, r"lp_norm must be > 0"),
        ({"d_in": 4, "d_sae": 4, "decoder_init_norm": 0.0}, r"decoder_init_norm must be > 0"),
    ],
)
def test_bad_standard_configs(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StandardTrainingSAEConfig(**kwargs)


def test_non_integer_sizes_are_type_errors() -> None:
    with pytest.raises(TypeError, match="d_in must be an integer"):
        StandardTrainingSAEConfig(d_in=2.5, d_sae=4)
    with pytest.raises(TypeError, match="d_sae must be an integer"):
        StandardSAEConfig(d_in=2, d_sae=True)


@pytest.mark.parametrize("k", [0, -1])
def test_bad_k(k: int) -> None:
    with pytest.raises(ValueError, match=rf"TopKTrainingSAEConfig.k must be >= 1, got {k}"):
        TopKTrainingSAEConfig(d_in=4, d_sae=8, k=k)
    with pytest.raises(ValueError, match="BatchTopKTrainingSAEConfig.k must be > 0"):
        BatchTopKTrainingSAEConfig(d_in=4, d_sae=8, k=float(k))
    with pytest.raises(ValueError, match="TopKSAEConfig.k must be >= 1"):
        TopKSAEConfig(d_in=4, d_sae=8, k=k)


def test_k_above_d_sae() -> None:
    with pytest.raises(ValueError, match=r"k must be <= d_sae \(8\), got 9"):
        TopKTrainingSAEConfig(d_in=4, d_sae=8, k=9)
    with pytest.raises(TypeError, match="k must be an integer"):
        TopKTrainingSAEConfig(d_in=4, d_sae=8, k=2.5)


def test_topk_aux_loss_rejects_runtime_normalisation() -> None:
    with pytest.raises(ValueError, match="layer_norm"):
        TopKTrainingSAEConfig(d_in=4, d_sae=8, k=2, normalize_activations="layer_norm")
    cfg = TopKTrainingSAEConfig(d_in=4, d_sae=8, k=2, normalize_activations="layer_norm", aux_loss_coefficient=0.0)
    assert cfg.normalize_activations == "layer_norm"


def test_jumprelu_validation() -> None:
    with pytest.raises(ValueError, match="jumprelu_sparsity_loss_mode must be one of"):
        JumpReLUTrainingSAEConfig(d_in=4, d_sae=8, jumprelu_sparsity_loss_mode="l1")
    with pytest.raises(ValueError, match="jumprelu_bandwidth must be > 0"):
        JumpReLUTrainingSAEConfig(d_in=4, d_sae=8, jumprelu_bandwidth=0)
    with pytest.raises(ValueError, match="jumprelu_init_threshold must be > 0"):
        JumpReLUTrainingSAEConfig(d_in=4, d_sae=8, jumprelu_init_threshold=-0.1)


def test_matching_pursuit_validation_and_norm_warning() -> None:
    with pytest.raises(ValueError, match="max_iterations must be >= 1"):
        MatchingPursuitTrainingSAEConfig(d_in=4, d_sae=8, max_iterations=0)
    with pytest.raises(ValueError, match="residual_threshold must be >= 0"):
        MatchingPursuitSAEConfig(d_in=4, d_sae=8, residual_threshold=-1.0)
    with pytest.warns(UserWarning, match="decoder_init_norm must be 1.0"):
        cfg = MatchingPursuitTrainingSAEConfig(d_in=4, d_sae=8, decoder_init_norm=0.1)
    assert cfg.decoder_init_norm == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MatchingPursuitTrainingSAEConfig(d_in=4, d_sae=8)


class TestMatryoshkaWidths:
    def test_empty_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="at least one width"):
            MatryoshkaBatchTopKTrainingSAEConfig(d_in=4, d_sae=8, k=2.0)

    @pytest.mark.parametrize("widths", [[4, 4, 8], [6, 2, 8], [8, 4]])
    def test_not_increasing(self, widths: list[int]) -> None:
        with pytest.raises(ValueError, match="strictly increasing"):
            MatryoshkaBatchTopKTrainingSAEConfig(d_in=4, d_sae=8, k=2.0, matryoshka_widths=widths)

    @pytest.mark.parametrize("widths", [[0, 8], [4, 9], [2.5, 8]])
    def test_out_of_range(self, widths: list) -> None:
        with pytest.raises(ValueError, match=r"matryoshka_widths\[\d\] must be an integer in 1..d_sae=8"):
            MatryoshkaBatchTopKTrainingSAEConfig(d_in=4, d_sae=8, k=2.0, matryoshka_widths=widths)

    def test_missing_last_width_is_appended_with_warning(self) -> None:
        with pytest.warns(UserWarning, match="adding a final level"):
            cfg = MatryoshkaBatchTopKTrainingSAEConfig(d_in=4, d_sae=8, k=2.0, matryoshka_widths=[2, 4])
        assert cfg.matryoshka_widths == [2, 4, 8]

    def test_single_level_warns(self) -> None:
        with pytest.warns(UserWarning, match="single level"):
            MatryoshkaBatchTopKTrainingSAEConfig(d_in=4, d_sae=8, k=2.0, matryoshka_widths=[8])

    def test_valid_widths_do_not_warn(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cfg = MatryoshkaBatchTopKTrainingSAEConfig(d_in=4, d_sae=8, k=2.0, matryoshka_widths=(2, 8))
        assert cfg.matryoshka_widths == [2, 8]


def test_dtype_accepts_torch_dtype_and_canonicalises() -> None:
    assert StandardSAEConfig(d_in=2, d_sae=2, dtype=torch.bfloat16).dtype == "bfloat16"
    assert StandardSAEConfig(d_in=2, d_sae=2, dtype="torch.float64").dtype == "float64"


def test_inference_cfg_dict_of_training_configs() -> None:
    cfg = training_config("batchtopk", metadata={"run": 1})
    inference = cfg.get_inference_sae_cfg_dict()
    assert inference["architecture"] == "jumprelu"
    assert set(inference) == {f.name for f in dataclasses.fields(JumpReLUSAEConfig)} | {"architecture"}
    assert inference["metadata"]["run"] == 1
    assert inference["metadata"]["training_architecture"] == "batchtopk"
    assert inference["metadata"]["training_architecture_details"]["k"] == 4.0
    assert get_sae_architecture("batchtopk").inference_cfg_cls is JumpReLUSAEConfig


def test_train_coefficient_config() -> None:
    from synthsae.saes.base import TrainCoefficientConfig

    value, warm_up = TrainCoefficientConfig(0.5, 100)
    assert (value, warm_up) == (0.5, 100)
    assert TrainCoefficientConfig(2.0).warm_up_steps == 0
    with pytest.raises(ValueError, match="warm_up_steps"):
        TrainCoefficientConfig(1.0, -1)
