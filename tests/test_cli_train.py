"""`synthsae train` and `synthsae eval` end to end on tiny configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from synthsae.cli import build_parser, main
from synthsae.commands.train import DEFAULT_JOB, default_config
from synthsae.training.checkpoint import list_checkpoints

TINY = {
    "synthetic_model": {"num_features": 24, "hidden_dim": 12, "seed": 0},
    "sae": {"architecture": "topk", "d_sae": 16, "k": 3},
    "training_samples": 640,
    "batch_size": 64,
    "lr": 0.01,
    "eval_samples": 256,
    "n_checkpoints": 2,
}


def write_config(tmp_path: Path, **changes: object) -> Path:
    data = {**TINY, "output_path": str(tmp_path / "out"), "checkpoint_path": str(tmp_path / "ck"), **changes}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_train_resume_and_eval_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["train", str(config), "--set", "sae.k=2", "--set", "eval_frequency=4", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("MCC", "F1", "uniqueness", "explained variance", "L0 (true L0)", "dead latents", "shrinkage",
                  "samples/s", "outputs:"):
        assert label in out, label
    saved = json.loads((tmp_path / "out" / "runner_config.json").read_text())
    assert saved["sae"]["k"] == 2 and saved["eval_frequency"] == 4
    assert len(list_checkpoints(tmp_path / "ck")) == 2

    resumed_out = tmp_path / "resumed"
    assert main(["train", "--resume", str(tmp_path / "ck"), "--output", str(resumed_out), "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    # 10 steps of 64 samples, checkpoints after the first step past 214 and 428 samples: steps 4 and 7
    assert f"resumed from step 7 (448 samples) of {tmp_path / 'ck' / '448'}" in captured.err
    assert summary["output_path"] == str(resumed_out)
    assert json.loads((resumed_out / "eval_stats.json").read_text()) == json.loads(
        (tmp_path / "out" / "eval_stats.json").read_text())

    assert main(["eval", str(tmp_path / "out"), "--samples", "500", "--batch-size", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"mcc", "f1", "uniqueness", "explained_variance", "sae_l0", "true_l0", "dead_latents",
            "shrinkage", "samples_per_second"} <= set(result)
    checkpoint = list_checkpoints(tmp_path / "ck")[0]  # training-form weights; the model comes from the checkpoint
    assert main(["eval", str(checkpoint), "--samples", "300", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["d_sae"] == 16
    model_dir = tmp_path / "model"
    from synthsae.synthetic import SyntheticModel, SyntheticModelConfig

    SyntheticModel(SyntheticModelConfig.from_dict(TINY["synthetic_model"])).save(model_dir)
    assert main(["eval", str(tmp_path / "out"), "--model", str(model_dir), "--samples", "500"]) == 0
    assert "MCC" in capsys.readouterr().out


def test_default_job_is_batchtopk_on_cpu_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = default_config(tmp_path / "job")
    assert cfg.architecture == "batchtopk" and cfg.synthetic_model.num_features == 512
    assert cfg.checkpoint_path == str(tmp_path / "job" / "checkpoints")
    assert DEFAULT_JOB["training_samples"] >= 1_000_000 and cfg.sae.k == DEFAULT_JOB["sae"]["k"]
    args = ["--threads", "2", "train", "--output", str(tmp_path / "job"), "--set", "training_samples=2048", "--set", "eval_samples=1024",
            "--set", "eval_frequency=0", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "MCC" in out and str(tmp_path / "job") in out
    assert (tmp_path / "job" / "sae_weights.safetensors").is_file()


@pytest.mark.parametrize(
    ("changes", "overrides", "pattern"),
    [
        ({"batchsize": 64}, [], r"run\.yaml: .*'batchsize' \(did you mean 'batch_size'\?\)"),
        ({}, ["sae.architecture=nope"], r"run\.yaml: sae\.architecture must be one of .*'topk', got 'nope'"),
        ({"training_samples": -1}, [], r"run\.yaml: training_samples must be >= 1"),
        ({"sae": {"architecture": "topk", "d_sae": 16, "k": 3, "d_in": 5}}, [], r"run\.yaml: sae\.d_in \(5\)"),
        ({"synthetic_model": "./no/such/model"}, [], r"synthetic_model: .*no/such/model"),
    ],
)
def test_bad_configs_fail_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict,
                                          overrides: list[str], pattern: str) -> None:
    config = write_config(tmp_path, **changes)
    args = ["train", str(config), "--quiet"] + [x for o in overrides for x in ("--set", o)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("synthsae train: error:")
    import re

    assert re.search(pattern, err), err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_diverging_run_reports_the_step_and_losses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, sae={"architecture": "jumprelu", "d_sae": 16}, lr=1000.0)
    assert main(["train", str(config), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "non-finite training loss" in err and "step" in err and "mse_loss" in err


def test_resume_and_config_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(write_config(tmp_path)), "--resume", str(tmp_path)]) == 1
    assert "not both" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "eval"])
def test_help_explains_every_option(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    for action in sub._actions:
        for option in action.option_strings:
            assert option in text
        assert action.help, f"{command} {action.dest} has no help text"
