"""The command line does not lose work: used output folders are refused (--overwrite clears them),
--resume takes a run folder and writes into it wherever the current folder is, bad output folders
fail before any model is built, and a write that fails after training still prints the results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from synthsae.cli import main
from synthsae.training.checkpoint import list_checkpoints
from synthsae.training.logging import read_metrics

TINY_RUN = {
    "synthetic_model": {"num_features": 24, "hidden_dim": 12, "seed": 0},
    "sae": {"architecture": "topk", "d_sae": 16, "k": 3},
    "training_samples": 640, "batch_size": 64, "lr": 0.01, "eval_samples": 256, "n_checkpoints": 2,
}
TINY_BENCH = {"model_config": {"num_features": 24, "hidden_dim": 12, "seed": 0}, "architectures": ["topk"],
              "l0_targets": [3], "d_sae": 16, "training_samples": 1024, "batch_size": 256, "eval_samples": 512,
              "plots": False}


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def write_yaml(path: Path, data: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def train_args(config: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(config), "--output", str(out), "--set", f"checkpoint_path={out / 'checkpoints'}",
            "--quiet", *extra]


def test_a_used_output_folder_is_refused_and_overwrite_clears_it(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config, out = write_yaml(tmp_path / "run.yaml", TINY_RUN), tmp_path / "out"
    assert main(train_args(config, out)) == 0
    (out / "notes.txt").write_text("stale")
    capsys.readouterr()
    assert main(train_args(config, out)) == 1
    err = capsys.readouterr().err
    assert f"output_path '{out}' already holds files" in err and "--overwrite" in err
    assert f"--resume {out}" in err and "Traceback" not in err
    assert main(train_args(config, out, "--overwrite")) == 0
    assert not (out / "notes.txt").exists()
    steps = [r["step"] for r in read_metrics(out) if "losses/overall_loss" in r]
    assert steps == sorted(set(steps))  # one run's log


def test_resume_takes_the_run_folder_and_writes_into_it_from_any_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    job = ["--set", "training_samples=1280", "--set", "eval_samples=256", "--set", "eval_frequency=0",
           "--set", "batch_size=64", "--set", "save_final_checkpoint=true", "--quiet"]
    assert main(["--threads", "1", "train", "--output", "first", *job]) == 0  # the demo job's layout, relative paths
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    first = tmp_path / "first"
    final = list_checkpoints(first / "checkpoints")[-1]
    (final / "COMPLETE").unlink()  # resume from the checkpoint before the final one
    capsys.readouterr()
    assert main(["train", "--resume", "../first", "--output", "../second", "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output_path"] == "../second"
    assert list(elsewhere.iterdir()) == []  # no stray runs/<ts>/checkpoints under the current folder
    assert (tmp_path / "second" / "sae_weights.safetensors").is_file()
    assert list_checkpoints(first / "checkpoints")[-1].name.startswith("final_")  # checkpoints continue at home
    assert main(["train", "--resume", str(elsewhere)]) == 1  # a folder without checkpoints: one clear error
    err = capsys.readouterr().err
    assert f"no complete checkpoint in {elsewhere}" in err and "pass a run's output folder" in err


def test_bench_refuses_a_used_or_unwritable_folder_before_training(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import synthsae.benchmark.run as bench_run

    def no_model(cfg: object) -> None:
        raise AssertionError("the model was built before the output folder was checked")

    monkeypatch.setattr(bench_run, "load_benchmark_model", no_model)
    config = write_yaml(tmp_path / "bench.yaml", TINY_BENCH)
    used = tmp_path / "used"
    used.mkdir()
    (used / "leaderboard.md").write_text("old")
    assert main(["bench", "--config", str(config), "--output", str(used), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"output_dir '{used}' already holds files" in err and "pass --overwrite" in err
    (tmp_path / "a_file").write_text("x")
    assert main(["bench", "--config", str(config), "--output", str(tmp_path / "a_file" / "out"), "--quiet"]) == 1
    assert "cannot be created" in capsys.readouterr().err
    assert main(["sample", "--preset", "cpu_small", "--save", str(tmp_path / "a_file" / "m")]) == 1
    assert "--save" in capsys.readouterr().err


def test_bench_prints_its_results_when_the_files_cannot_be_written(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import synthsae.benchmark.run as bench_run

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "saes"))

    monkeypatch.setattr(bench_run, "_write_outputs", disk_full)
    config = write_yaml(tmp_path / "bench.yaml", TINY_BENCH)
    with pytest.warns(UserWarning, match="could not write its outputs"):
        code = main(["bench", "--config", str(config), "--output", str(tmp_path / "out"), "--quiet"])
    assert code == 1
    captured = capsys.readouterr()
    assert "| Rank | Architecture" in captured.out  # the results are not lost
    assert "could not write the outputs in" in captured.err and "No space left on device" in captured.err


def test_ctrl_c_checkpoints_prints_the_resume_command_and_exits_130(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import shlex
    import signal

    import synthsae.runs.runner as runner_module

    class CtrlCAtBatch4(runner_module.SyntheticActivationIterator):  # type: ignore[misc, name-defined]
        served = 0

        def __next__(self) -> torch.Tensor:
            CtrlCAtBatch4.served += 1
            if CtrlCAtBatch4.served == 4:
                os.kill(os.getpid(), signal.SIGINT)
            return super().__next__()

    monkeypatch.chdir(tmp_path)
    config = write_yaml(tmp_path / "run.yaml", {**TINY_RUN, "output_path": "a b", "checkpoint_path": "a b/ck"})
    monkeypatch.setattr(runner_module, "SyntheticActivationIterator", CtrlCAtBatch4)
    assert main(["train", str(config), "--quiet"]) == 130  # 128 + SIGINT
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "interrupted by SIGINT after step 4; checkpoint written to a b/ck/256" in err
    command = err.split("resume with: ")[1].splitlines()[0]
    assert command == "synthsae train --resume 'a b'"  # quoted for the shell
    assert main([*shlex.split(command)[1:], "--quiet"]) == 0
    steps = [r["step"] for r in read_metrics(tmp_path / "a b") if "losses/overall_loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 10  # each logged step once, up to the last
