"""SyntheticSAERunner never loses or mixes work: used folders are refused (or cleared on request),
SIGINT checkpoints the step, resume writes into the run's own (possibly moved) folders with each
step logged once, damaged checkpoints fall back to the previous one, write failures keep the result."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from synthsae.output_folders import OutputFolderExistsError
from synthsae.runs import runner as runner_module
from synthsae.runs.activation_iterator import SyntheticActivationIterator
from synthsae.synthetic import SyntheticModelConfig, SyntheticSAERunner, SyntheticSAERunnerConfig
from synthsae.training.checkpoint import list_checkpoints
from synthsae.training.interrupts import TrainingInterrupted
from synthsae.training.logging import read_metrics

MODEL = SyntheticModelConfig(num_features=24, hidden_dim=12, seed=0)
STEPS = 24
CHECKPOINTS = ["224", "416", "608"]  # n_checkpoints=3 of 768 samples: after steps 7, 13 and 19 (32 rows each)


def make_cfg(root: Path, **kw: Any) -> SyntheticSAERunnerConfig:
    base: dict[str, Any] = dict(
        synthetic_model=MODEL, sae={"architecture": "topk", "d_sae": 16, "k": 3}, training_samples=32 * STEPS,
        batch_size=32, lr=1e-2, eval_frequency=10, eval_samples=128, n_checkpoints=3, seed=1,
        output_path=str(root / "out"), checkpoint_path=str(root / "ck"), show_progress=False,
        logger={"wandb_log_frequency": 2},
    )
    base.update(kw)
    return SyntheticSAERunnerConfig(**base)


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "sae_weights.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def training_records(out: Path) -> list[tuple[int, float]]:
    """(step, loss) of every training log line, in file order."""
    return [(r["step"], r["losses/overall_loss"]) for r in read_metrics(out) if "losses/overall_loss" in r]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("full")
    SyntheticSAERunner(make_cfg(root)).run()
    return root / "out"


def stop_at_batch(monkeypatch: pytest.MonkeyPatch, batch: int, action: Any) -> None:
    """Run ``action()`` when the training stream hands out its ``batch``-th batch (1-based)."""
    counter = {"n": 0}

    class Stream(SyntheticActivationIterator):
        def __next__(self) -> torch.Tensor:
            counter["n"] += 1
            if counter["n"] == batch:
                action()
            return super().__next__()

    monkeypatch.setattr(runner_module, "SyntheticActivationIterator", Stream)


def crash() -> None:
    raise RuntimeError("power cut")  # like kill -9: no checkpoint, log lines after the last one


def test_a_used_folder_is_refused_before_the_model_is_built(uninterrupted: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = uninterrupted.parent
    built: list[str] = []
    real_load = runner_module.SyntheticModel.load_from_source
    monkeypatch.setattr(runner_module.SyntheticModel, "load_from_source",
                        lambda *a, **k: built.append("model") or real_load(*a, **k))
    with pytest.raises(OutputFolderExistsError, match=r"output_path '.*out' already holds files .*overwrite=True.*"
                       r"SyntheticSAERunner.resume"):
        SyntheticSAERunner(make_cfg(root))
    with pytest.raises(OutputFolderExistsError, match="checkpoint_path '.*ck' already holds"):
        SyntheticSAERunner(make_cfg(root, output_path=str(tmp_path / "fresh")))
    assert built == []  # refused before anything was built
    assert not (tmp_path / "fresh").exists()


def test_overwrite_clears_the_earlier_run_first(tmp_path: Path) -> None:
    SyntheticSAERunner(make_cfg(tmp_path, training_samples=32 * 12)).run()
    (tmp_path / "out" / "stale.txt").write_text("from the first run")
    assert [p.name for p in list_checkpoints(tmp_path / "ck")] == ["128", "224", "320"]
    result = SyntheticSAERunner(make_cfg(tmp_path), overwrite=True).run()
    assert not (tmp_path / "out" / "stale.txt").exists()
    assert [p.name for p in list_checkpoints(tmp_path / "ck")] == CHECKPOINTS  # none of the first run's
    steps = [s for s, _ in training_records(tmp_path / "out")]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS  # one run's log, not two appended
    assert result.final_eval is not None


def test_sigint_checkpoints_the_step_and_the_run_folder_resumes_exactly(
        uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop_at_batch(monkeypatch, 11, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(TrainingInterrupted) as info:
        SyntheticSAERunner(make_cfg(tmp_path)).run()
    monkeypatch.undo()
    stop = info.value
    assert (stop.signum, stop.step) == (signal.SIGINT, 11)  # the step in progress was finished
    assert stop.checkpoint == tmp_path / "ck" / str(11 * 32) and stop.resume_from == str(tmp_path / "out")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    events = [r for r in read_metrics(tmp_path / "out") if r.get("event") == "interrupted"]
    assert events == [{"step": 11, "sae_index": None, "event": "interrupted", "signal": "SIGINT"}]

    resumed = SyntheticSAERunner.resume(tmp_path / "out").run()  # the run folder, not its checkpoints
    assert resumed.output_path == tmp_path / "out"
    assert_same_weights(uninterrupted, tmp_path / "out")
    assert training_records(tmp_path / "out") == training_records(uninterrupted)  # each step once, same losses


def test_after_a_crash_the_log_holds_each_step_once_and_a_moved_run_resumes_into_itself(
        uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "first"
    stop_at_batch(monkeypatch, 24, crash)  # the last checkpoint was at step 19: steps 20 and 22 are logged past it
    with pytest.raises(RuntimeError, match="power cut"):
        SyntheticSAERunner(make_cfg(first)).run()
    monkeypatch.undo()
    assert max(s for s, _ in training_records(first / "out")) == 22
    moved = tmp_path / "moved"
    shutil.move(str(first), str(moved))
    SyntheticSAERunner.resume(moved / "out").run()
    assert not first.exists()  # nothing written at the old place
    assert training_records(moved / "out") == training_records(uninterrupted)
    assert_same_weights(uninterrupted, moved / "out")
    saved = json.loads((moved / "out" / "runner_config.json").read_text())
    assert saved["output_path"] == str(moved / "out") and saved["checkpoint_path"] == str(moved / "ck")
    assert [p.name for p in list_checkpoints(moved / "ck")] == CHECKPOINTS


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(uninterrupted: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stop_at_batch(monkeypatch, 22, crash)
    with pytest.raises(RuntimeError):
        SyntheticSAERunner(make_cfg(tmp_path)).run()
    monkeypatch.undo()
    checkpoints = list_checkpoints(tmp_path / "ck")
    assert [p.name for p in checkpoints] == CHECKPOINTS
    state = checkpoints[-1] / "runner_state.safetensors"
    state.write_bytes(b"\xff" * state.stat().st_size)  # same size, unreadable: the marker is still there
    with pytest.warns(UserWarning, match=r"skipping the damaged checkpoint .*608.*runner_state"):
        runner = SyntheticSAERunner.resume(tmp_path / "ck")
    assert runner._resume.checkpoint == checkpoints[-2]
    runner.run()
    assert_same_weights(uninterrupted, tmp_path / "out")
    assert training_records(tmp_path / "out") == training_records(uninterrupted)
    assert any(r.get("event") == "skipped_damaged_checkpoint" for r in read_metrics(tmp_path / "out"))

    for checkpoint in list_checkpoints(tmp_path / "ck"):  # now damage all of them: one clear error
        weights_file = checkpoint / "runner_state.safetensors"
        weights_file.write_bytes(weights_file.read_bytes()[:100])  # truncated: its size no longer matches
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"no usable checkpoint in .*out: .*608.*"
                                                                    r"runner_state.safetensors has 100 bytes"):
        SyntheticSAERunner.resume(tmp_path / "out")


def test_outputs_that_cannot_be_written_after_training_keep_the_result(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: Any, path: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(runner_module.SyntheticSAERunner(make_cfg(tmp_path / "probe")).sae),
                        "save_inference_model", disk_full)
    with pytest.warns(UserWarning, match="could not write the SAE in .*No space left on device"):
        result = SyntheticSAERunner(make_cfg(tmp_path)).run()
    assert result.final_eval is not None and result.write_errors == [
        f"the SAE in {tmp_path / 'out'} ([Errno 28] No space left on device)"]
    assert (tmp_path / "out" / "eval_stats.json").is_file()  # the other outputs are still written
