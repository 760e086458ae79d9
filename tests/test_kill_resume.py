"""Real processes: `synthsae train` stopped by SIGINT, SIGTERM or kill -9 at some step, then resumed
(as many times as it takes), ends with the same weights, bit for bit, and the same per-step log
as one uninterrupted run.

Each test starts `python -m synthsae` subprocesses on a tiny config that checkpoints every 10
steps and logs every step; the parent watches `metrics.jsonl` and signals the child once it has
passed a given step, so the signal lands at whatever the child is doing then (a step, a log line
or a checkpoint write). The default suite kills once; the slow tests send SIGINT, SIGTERM and
kill at more points. (The command line's SIGINT message and exit status are also tested in
process, in tests/test_cli_run_safety.py.)
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from synthsae.training.checkpoint import list_checkpoints

REPO = Path(__file__).resolve().parents[1]
STEPS = 200
CONFIG = {
    "synthetic_model": {"num_features": 32, "hidden_dim": 16, "seed": 0},
    "sae": {"architecture": "topk", "d_sae": 24, "k": 3},
    "training_samples": 32 * STEPS, "batch_size": 32, "lr": 0.003, "seed": 5,
    "eval_frequency": 70, "eval_samples": 256,
    "n_checkpoints": STEPS // 10 - 1,  # one every 10 steps: kills land between, and sometimes inside, writes
    "logger": {"wandb_log_frequency": 1},  # a log line per step, so the parent sees the progress
    "output_path": "run", "checkpoint_path": "run/checkpoints",  # relative, as users write them
}
START_TIMEOUT_S = 120  # a cold start of torch on a busy 2-core machine can take tens of seconds


def synthsae(*args: str) -> list[str]:
    return [sys.executable, "-m", "synthsae", "--threads", "1", *args]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}


def prepare(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.yaml").write_text(yaml.safe_dump(CONFIG))
    return folder


def run_to_end(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(synthsae(*args), cwd=folder, env=child_env(), capture_output=True, text=True,
                          timeout=START_TIMEOUT_S * 2)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def last_step(metrics: Path) -> int:
    """The step of the last complete line of ``metrics.jsonl`` (0 before there is one)."""
    if not metrics.is_file():
        return 0
    lines = metrics.read_bytes().split(b"\n")[:-1]  # a line being written has no newline yet
    return json.loads(lines[-1])["step"] if lines else 0


def start_and_signal(folder: Path, args: list[str], at_step: int, signum: int) -> subprocess.Popen[str]:
    """Start ``synthsae args`` in ``folder`` and send ``signum`` once it has logged step ``at_step``."""
    stderr = open(folder / f"stderr-{at_step}.txt", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(synthsae(*args), cwd=folder, env=child_env(), stdout=subprocess.DEVNULL,
                            stderr=stderr, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    metrics = folder / "run" / "metrics.jsonl"
    while last_step(metrics) < at_step:
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before step {at_step}"
        assert time.monotonic() < deadline, f"no step {at_step} after {START_TIMEOUT_S} s"
        time.sleep(0.002)
    proc.send_signal(signum)
    proc.wait(timeout=START_TIMEOUT_S)
    stderr.close()
    return proc


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "run" / "sae_weights.safetensors"))


def training_log(folder: Path) -> list[tuple[int, float, float]]:
    """(step, loss, l0) of every training line, in file order."""
    lines = (folder / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [(r["step"], r["losses/overall_loss"], r["metrics/l0"]) for r in records if "losses/overall_loss" in r]


def assert_same_run(folder: Path, reference: Path) -> None:
    got, want = weights(folder), weights(reference)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
    log = training_log(folder)
    assert [step for step, *_ in log] == list(range(1, STEPS + 1))  # each step once, in order
    assert log == training_log(reference)
    leftovers = [p for p in (folder / "run").rglob(".*")]
    assert leftovers == []  # temporaries of a write cut by kill -9 are removed by the resume


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run, in this process (one thread, like the children): a process start saved,
    and the comparison also shows that runs in different processes give the same bits."""
    from synthsae.cli import main

    folder = prepare(tmp_path_factory.mktemp("uninterrupted"))
    cwd, threads = Path.cwd(), torch.get_num_threads()
    os.chdir(folder)
    try:
        assert main(["--threads", "1", "train", "run.yaml", "--quiet"]) == 0
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    return folder


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(reference: Path, tmp_path: Path) -> None:
    folder = prepare(tmp_path)
    killed = start_and_signal(folder, ["train", "run.yaml", "--quiet"], 120, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert last_step(folder / "run" / "metrics.jsonl") >= 120  # lines past the last checkpoint, cut on resume
    run_to_end(folder, "train", "--resume", "run", "--quiet")
    assert_same_run(folder, reference)


@pytest.mark.slow
def test_sigint_then_kill_9_then_resume_ends_like_an_uninterrupted_run(reference: Path, tmp_path: Path) -> None:
    folder = prepare(tmp_path)
    first = start_and_signal(folder, ["train", "run.yaml", "--quiet"], 60, signal.SIGINT)
    err = (folder / "stderr-60.txt").read_text()
    assert first.returncode == 130, err  # 128 + SIGINT, as a shell reports it
    assert "Traceback" not in err and "SIGINT received: finishing this step" in err
    assert "resume with: synthsae train --resume run" in err
    command = err.split("resume with: ")[1].splitlines()[0]

    # the printed command, killed -9 at a later step, then once more to the end
    second = start_and_signal(folder, shlex.split(command)[1:] + ["--quiet"], 145, signal.SIGKILL)
    assert second.returncode == -signal.SIGKILL
    assert last_step(folder / "run" / "metrics.jsonl") >= 145  # lines past the last checkpoint, cut on resume
    run_to_end(folder, "train", "--resume", "run", "--quiet")
    assert_same_run(folder, reference)


@pytest.mark.slow
@pytest.mark.parametrize("kills", [[23, 101, 177], [8, 95, 190]], ids=["three-kills", "first-before-a-checkpoint"])
def test_kill_9_at_several_points(reference: Path, tmp_path: Path, kills: list[int]) -> None:
    folder = prepare(tmp_path)
    args = ["train", "run.yaml", "--quiet"]
    for at_step in kills:
        proc = start_and_signal(folder, args, at_step, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL
        if list_checkpoints(folder / "run" / "checkpoints"):
            args = ["train", "--resume", "run", "--quiet"]
        else:  # killed before the first checkpoint (after step 10): start again over the run's files
            refused = subprocess.run(synthsae(*args), cwd=folder, env=child_env(), capture_output=True, text=True)
            assert refused.returncode == 1 and "--overwrite" in refused.stderr
            args = ["train", "run.yaml", "--overwrite", "--quiet"]
    run_to_end(folder, *args)
    assert_same_run(folder, reference)


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_143(reference: Path, tmp_path: Path) -> None:
    folder = prepare(tmp_path)
    proc = start_and_signal(folder, ["train", "run.yaml", "--quiet"], 115, signal.SIGTERM)
    err = (folder / "stderr-115.txt").read_text()
    assert proc.returncode == 143, err  # 128 + SIGTERM
    assert "interrupted by SIGTERM after step" in err and "resume with: synthsae train --resume run" in err
    run_to_end(folder, "train", "--resume", "run", "--quiet")
    assert_same_run(folder, reference)
