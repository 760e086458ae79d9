"""SyntheticSAERunnerConfig: defaults, round trips, files, overrides and validation messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthsae import BatchTopKTrainingSAEConfig, LoggingConfig, StandardTrainingSAEConfig
from synthsae.runs.runner_config import parse_override, parse_yaml_scalar
from synthsae.synthetic import (
    RUNNER_CONFIG_FILENAME,
    SyntheticModelConfig,
    SyntheticSAERunnerConfig,
)

MODEL = SyntheticModelConfig(num_features=32, hidden_dim=16, seed=0)
SAE = {"architecture": "batchtopk", "d_sae": 32, "k": 4}


def make(**kw: object) -> SyntheticSAERunnerConfig:
    return SyntheticSAERunnerConfig(**{"synthetic_model": MODEL, "sae": dict(SAE), **kw})


def test_defaults_match_the_reference() -> None:
    cfg = SyntheticSAERunnerConfig(synthetic_model="some/repo", sae=BatchTopKTrainingSAEConfig(d_in=16, d_sae=32, k=4))
    assert (cfg.training_samples, cfg.batch_size, cfg.lr, cfg.device) == (100_000_000, 1024, 3e-4, "cpu")
    assert (cfg.lr_warm_up_steps, cfg.lr_decay_steps, cfg.lr_scheduler_name, cfg.lr_end) == (0, 0, "constant", None)
    assert (cfg.adam_beta1, cfg.adam_beta2, cfg.n_restart_cycles) == (0.9, 0.999, 1)
    assert (cfg.n_checkpoints, cfg.checkpoint_path, cfg.save_final_checkpoint) == (0, "checkpoints", False)
    assert (cfg.output_path, cfg.save_synthetic_model) == ("output", False)
    assert (cfg.eval_frequency, cfg.eval_samples, cfg.run_final_eval) == (0, 500_000, True)
    assert (cfg.dead_feature_window, cfg.feature_sampling_window) == (1000, 2000)
    assert not cfg.autocast_sae and not cfg.autocast_data
    assert cfg.logger.log_to_wandb is False  # unlike the reference: no account needed
    assert cfg.total_training_steps == 100_000_000 // 1024
    assert cfg.default_run_name() == "synthetic-batchtopk-32-LR-0.0003"
    assert RUNNER_CONFIG_FILENAME == "runner_config.json"


def test_dict_round_trip_with_model_config_and_string_source() -> None:
    cfg = make(lr=1e-3, logger=LoggingConfig(run_name="r", wandb_log_frequency=5), seed=7)
    data = json.loads(json.dumps(cfg.to_dict()))
    back = SyntheticSAERunnerConfig.from_dict(data)
    assert back.to_dict() == cfg.to_dict()
    assert isinstance(back.synthetic_model, SyntheticModelConfig) and isinstance(back.sae, BatchTopKTrainingSAEConfig)
    assert back.sae.d_in == 16  # filled in from the model config
    path_cfg = SyntheticSAERunnerConfig(synthetic_model="./models/m", sae=StandardTrainingSAEConfig(d_in=16, d_sae=8))
    assert SyntheticSAERunnerConfig.from_dict(path_cfg.to_dict()).synthetic_model == "./models/m"


def test_reference_style_dict_is_accepted() -> None:
    data = make().to_dict()
    data["sae_lens_version"] = "6.54.12"
    data["lr_end"] = 3e-5  # the reference stores lr / 10
    data["logger"] = {**LoggingConfig().to_dict(), "wandb_project": "sae_lens_training", "log_weights_to_wandb": True}
    data["sae"] = {  # the shape of a BatchTopK section in the reference's runner_config.json
        "d_in": 16, "d_sae": 32, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
        "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"sae_lens_version": "6.54.12", "training_architecture": "batchtopk"},
        "decoder_init_norm": 0.1, "k": 7, "use_sparse_activations": False, "aux_loss_coefficient": 1.0,
        "rescale_acts_by_decoder_norm": True, "topk_threshold_lr": 0.01, "architecture": "batchtopk",
    }
    cfg = SyntheticSAERunnerConfig.from_dict(data)
    assert (cfg.lr, cfg.lr_end, cfg.sae.k, cfg.logger.wandb_project) == (3e-4, 3e-5, 7, "sae_lens_training")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_round_trip(tmp_path: Path, suffix: str) -> None:
    cfg = make(training_samples=5_000, batch_size=100)
    path = cfg.to_file(tmp_path / f"run{suffix}")
    assert SyntheticSAERunnerConfig.from_file(path).to_dict() == cfg.to_dict()


def test_yaml_with_preset_missing_d_in_and_float_notation(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "synthetic_model: {preset: cpu_small, seed: 3}\n"
        "sae: {architecture: topk, d_sae: 128, k: 8}\n"
        "lr: 3e-4\ntraining_samples: 1_000_000\nlogger: {wandb_log_frequency: 50}\n"
    )
    cfg = SyntheticSAERunnerConfig.from_file(path)
    assert cfg.lr == 3e-4 and cfg.training_samples == 1_000_000
    assert cfg.synthetic_model.num_features == 512 and cfg.synthetic_model.seed == 3
    assert cfg.sae.d_in == 64 and cfg.sae.k == 8
    assert cfg.logger.wandb_log_frequency == 50


def test_d_in_left_out_with_a_path_source_is_filled_later() -> None:
    cfg = SyntheticSAERunnerConfig(synthetic_model="/models/x", sae=dict(SAE))
    assert cfg.sae_d_in is None and cfg.architecture == "batchtopk"
    assert cfg.sae_config(48).d_in == 48
    assert "d_in" not in cfg.to_dict()["sae"]
    assert SyntheticSAERunnerConfig.from_dict(cfg.to_dict()).sae_d_in is None


def test_overrides_with_dotted_keys() -> None:
    cfg = make()
    new = cfg.with_overrides({"lr": 1e-3, "sae.k": 8, "logger.log_to_wandb": True, "synthetic_model.seed": 3})
    assert (new.lr, new.sae.k, new.logger.log_to_wandb, new.synthetic_model.seed) == (1e-3, 8, True, 3)
    assert cfg.lr == 3e-4 and cfg.sae.k == 4  # the original is unchanged
    assert parse_override("sae.k=8") == ("sae.k", 8)
    assert parse_override("lr = 1e-3") == ("lr", 1e-3)
    assert parse_yaml_scalar("null") is None and parse_yaml_scalar("[16, 64]") == [16, 64]
    assert parse_yaml_scalar("cuda") == "cuda" and parse_yaml_scalar("true") is True
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_override("lr")
    with pytest.raises(ValueError, match="'lr' is not a section"):
        cfg.with_overrides({"lr.x": 1})


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        ({"training_samples": -5}, ValueError, "training_samples must be >= 1"),
        ({"training_samples": 0}, ValueError, "training_samples"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"training_samples": 10, "batch_size": 64}, ValueError, r"training_samples \(10\) must be >= batch_size"),
        ({"eval_frequency": -1}, ValueError, "eval_frequency must be >= 0"),
        ({"eval_samples": -1}, ValueError, "eval_samples"),
        ({"lr": 0}, ValueError, "lr must be > 0"),
        ({"lr": float("nan")}, ValueError, "lr must be a finite number"),
        ({"adam_beta1": 1.0}, ValueError, r"adam_beta1 must be in \[0, 1\)"),
        ({"n_checkpoints": -2}, ValueError, "n_checkpoints"),
        ({"lr_scheduler_name": "linear"}, ValueError, "lr_scheduler_name"),
        ({"lr_warm_up_steps": 10**9}, ValueError, "lr_warm_up_steps"),
        ({"device": "gpu:x"}, ValueError, "device"),
        ({"autocast_sae": "yes"}, TypeError, "autocast_sae must be true or false"),
        ({"batch_size": 1.5}, TypeError, "batch_size must be an integer"),
        ({"seed": -1}, ValueError, "seed"),
        ({"sae": {"architecture": "nope", "d_sae": 4}}, ValueError, "sae.architecture must be one of .*batchtopk.*got .nope."),
        ({"sae": {"d_sae": 4}}, ValueError, "sae.architecture is required"),
        ({"sae": {**SAE, "kk": 3}}, ValueError, "kk.*did you mean 'k'"),
        ({"sae": {**SAE, "d_sae": -3}}, ValueError, "sae: .*d_sae"),
        ({"sae": {**SAE, "d_in": 17}}, ValueError, r"sae.d_in \(17\) does not match synthetic_model.hidden_dim \(16\)"),
        ({"synthetic_model": {"num_features": 0, "hidden_dim": 4}}, ValueError, "synthetic_model: .*num_features"),
        ({"synthetic_model": {"preset": "huge"}}, ValueError, "synthetic_model.preset"),
        ({"synthetic_model": 3}, TypeError, "synthetic_model must be"),
        ({"logger": {"wandb_log_frequency": 0}}, ValueError, "logger: .*wandb_log_frequency"),
        ({"logger": {"wandb_projekt": "x"}}, ValueError, "logger: .*wandb_projekt"),
    ],
)
def test_bad_values_name_the_key(change: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make(**change)


def test_sae_object_with_wrong_d_in_is_rejected() -> None:
    with pytest.raises(ValueError, match="sae.d_in"):
        SyntheticSAERunnerConfig(synthetic_model=MODEL, sae=BatchTopKTrainingSAEConfig(d_in=8, d_sae=32, k=4))


def test_unknown_and_missing_keys_in_dicts() -> None:
    data = make().to_dict()
    with pytest.raises(ValueError, match="'batchsize' \\(did you mean 'batch_size'\\?\\)"):
        SyntheticSAERunnerConfig.from_dict({**data, "batchsize": 3})
    del data["sae"]
    with pytest.raises(ValueError, match="missing required key.*sae"):
        SyntheticSAERunnerConfig.from_dict(data)


def test_file_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("synthetic_model: {preset: cpu_small}\nsae: {architecture: topk, d_sae: 8, k: 2}\nbatch_size: -1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: batch_size must be >= 1"):
        SyntheticSAERunnerConfig.from_file(path)
    path.write_text("synthetic_model: {preset: cpu_small}\nsae: {architecture: topk, d_sae: 8, k: 2}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: .*'lrr'"):
        SyntheticSAERunnerConfig.from_file(path, overrides={"lrr": 1})
    path.write_text("sae: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: cannot parse"):
        SyntheticSAERunnerConfig.from_file(path)
    with pytest.raises(FileNotFoundError, match="nothere.yaml"):
        SyntheticSAERunnerConfig.from_file(tmp_path / "nothere.yaml")
