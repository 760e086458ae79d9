"""Configs and saved files: missing keys, unknown file endings and wrong types give one-line errors
that name the file and the key, from Python and from the command line (no traceback unless
``--debug``); ``--set`` reads YAML values everywhere (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from synthsae import SAE, TopKTrainingSAE, TopKTrainingSAEConfig
from synthsae.benchmark import BenchmarkConfig
from synthsae.cli import main
from synthsae.commands.train import default_config
from synthsae.synthetic import SyntheticModel, SyntheticModelConfig, SyntheticSAERunnerConfig

RUN = {
    "synthetic_model": {"num_features": 24, "hidden_dim": 12, "seed": 0},
    "sae": {"architecture": "topk", "d_sae": 16, "k": 3},
    "training_samples": 640,
    "batch_size": 64,
}


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"synthsae {command}: error: ") and err.count("\n") == 1, err
    return err


def test_sae_cfg_json_without_a_required_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    TopKTrainingSAE(TopKTrainingSAEConfig(d_in=64, d_sae=6, k=2)).save_inference_model(tmp_path / "sae")
    cfg_path = tmp_path / "sae" / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["d_in"]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"sae/cfg\.json: missing required key\(s\) in TopKSAEConfig.*'d_in'"):
        SAE.load_from_disk(tmp_path / "sae")
    assert main(["eval", str(tmp_path / "sae"), "--model", "preset:cpu_small", "--samples", "100"]) == 1
    assert "cfg.json: missing required key(s)" in _one_line_error(capsys, "eval")


def test_sae_cfg_json_with_a_wrong_type_names_the_file(tmp_path: Path) -> None:
    TopKTrainingSAE(TopKTrainingSAEConfig(d_in=4, d_sae=6, k=2)).save_inference_model(tmp_path / "sae")
    cfg_path = tmp_path / "sae" / "cfg.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "k": "two"}))
    with pytest.raises(TypeError, match=r"sae/cfg\.json: TopKSAEConfig\.k must be an integer, got 'two'"):
        SAE.load_from_disk(tmp_path / "sae")


def test_model_config_without_a_required_key(tmp_path: Path) -> None:
    SyntheticModel(SyntheticModelConfig(num_features=8, hidden_dim=4, seed=0)).save(tmp_path / "model")
    path = tmp_path / "model" / "synthetic_model_config.json"
    data = json.loads(path.read_text())
    del data["hidden_dim"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"synthetic_model_config\.json.*missing required key\(s\).*'hidden_dim'"):
        SyntheticModel.load_from_disk(tmp_path / "model")


def test_runner_config_file_without_sae(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in RUN.items() if k != "sae"}))
    with pytest.raises(ValueError, match=r"run\.yaml: missing required key\(s\) in the runner config: 'sae'"):
        SyntheticSAERunnerConfig.from_file(path)
    assert main(["train", str(path), "--quiet"]) == 1
    assert "run.yaml: missing required key(s) in the runner config: 'sae'" in _one_line_error(capsys, "train")


@pytest.mark.parametrize("name", ["cfg.txt", "cfg", "cfg.toml"])
def test_unknown_config_file_endings(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(RUN))  # valid JSON, but the ending does not say so
    expected = r"unknown config file type '(\.txt|\(no ending\)|\.toml)'; name it \.yaml, \.yml \(YAML\) or \.json"
    for read in (SyntheticSAERunnerConfig.from_file, SyntheticModelConfig.from_file, BenchmarkConfig.from_file):
        with pytest.raises(ValueError, match=expected):
            read(path)
    for argv in (["train", str(path)], ["sample", "--config", str(path)], ["bench", "--config", str(path)]):
        assert main(argv) == 1
        assert "unknown config file type" in _one_line_error(capsys, argv[0])


def test_wrong_types_from_the_command_line_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(RUN))
    assert main(["train", str(path), "--set", "batch_size=abc"]) == 1
    assert "batch_size must be an integer, got 'abc'" in _one_line_error(capsys, "train")
    assert main(["train", str(path), "--set", "sae.k=[1, 2]"]) == 1
    assert "TopKTrainingSAEConfig.k must be an integer, got [1, 2]" in _one_line_error(capsys, "train")
    with pytest.raises(TypeError, match="batch_size must be an integer"):  # --debug: the exception itself
        main(["--debug", "train", str(path), "--set", "batch_size=abc"])


def test_set_reads_yaml_numbers_for_integer_fields(tmp_path: Path) -> None:
    cfg = default_config(tmp_path, {"training_samples": 1e5, "sae.k": 16.0})
    assert cfg.training_samples == 100_000 and isinstance(cfg.training_samples, int)
    assert cfg.sae_config(64).k == 16
    with pytest.raises(TypeError, match="training_samples must be an integer, got 100000.5"):
        default_config(tmp_path, {"training_samples": 100000.5})
    bench = BenchmarkConfig().with_overrides({"training_samples": 1e5, "d_sae": 1.28e2})
    assert (bench.training_samples, bench.d_sae) == (100_000, 128)


def test_set_sae_architecture_switches_to_its_defaults(tmp_path: Path) -> None:
    cfg = default_config(tmp_path, {"sae.architecture": "topk"})  # the demo job is BatchTopK k=8
    sae = cfg.sae_config(64)
    assert sae.architecture() == "topk" and (sae.d_sae, sae.k) == (256, 8)  # shared keys kept
    cfg = default_config(tmp_path, {"sae.architecture": "standard", "sae.l1_coefficient": 2.0})
    sae = cfg.sae_config(64)
    assert sae.architecture() == "standard" and sae.l1_coefficient == 2.0 and not hasattr(sae, "k")
    from synthsae import StandardTrainingSAEConfig

    assert sae.lp_norm == StandardTrainingSAEConfig(d_in=1, d_sae=1).lp_norm  # the rest: its defaults
    with pytest.raises(ValueError, match="sae.architecture must be one of .*got 'topkk' \\(did you mean 'topk'"):
        default_config(tmp_path, {"sae.architecture": "topkk"})


def test_set_null_removes_an_optional_key(tmp_path: Path) -> None:
    cfg = default_config(tmp_path, {"eval_frequency": None, "sae.k": None, "logger.wandb_log_frequency": None})
    assert cfg.eval_frequency == 0 and cfg.sae_config(64).k == 100 and cfg.logger.wandb_log_frequency == 10
    cfg = default_config(tmp_path, {"logger.run_name": None, "seed": None, "checkpoint_path": None})
    assert cfg.logger.run_name is None and cfg.seed is None and cfg.checkpoint_path is None  # null is a value here
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**RUN, "lr": 0.01}))
    assert SyntheticSAERunnerConfig.from_file(path, {"lr": None}).lr == 3e-4  # back to the default
