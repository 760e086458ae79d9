"""Slow acceptance runs of `synthsae bench`: the L0 targets on cpu_small, the published recipe's smoke run."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from synthsae.benchmark.config import BenchmarkConfig
from synthsae.benchmark.run import run_benchmark
from synthsae.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_target_is_reached_within_three_percent_on_cpu_small() -> None:
    """The issue's acceptance sweep: standard, JumpReLU, gated, BatchTopK x L0 5, 10, 20 x seeds 0, 1 at the
    default budget. The achieved L0 is measured by the final eval on 50k rows (sd of the mean well under 1%)."""
    cfg = BenchmarkConfig(architectures=["standard", "jumprelu", "gated", "batchtopk"], l0_targets=[5, 10, 20],
                          seeds=[0, 1], plots=False, absorption=False, show_progress=False)
    result = run_benchmark(cfg)
    off = {r["name"]: round(r["l0"] / r["target_l0"] - 1, 4) for r in result.rows}
    assert len(off) == 24
    assert all(abs(v) < 0.03 for v in off.values()), off
    md = result.markdown()
    assert all(f"## L0 = {t}" in md for t in (5, 10, 20)) and " ± " in md


def test_published_recipe_smoke_run_prints_the_published_column(tmp_path: Path) -> None:
    """`--recipe synthsaebench` on the 16k preset with a few thousand samples: it runs on a CPU and every
    table carries the published numbers beside the measured ones."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["bench", "--recipe", "synthsaebench", "--seeds", "0", "--l0", "25", "--samples", "4096",
                     "--eval-samples", "4096", "--output", str(tmp_path / "out"), "--quiet", "--set",
                     "autocast=false", "--set", "plots=false"])
    printed = out.getvalue()
    assert code == 0
    assert "## L0 = 25" in printed and "Published F1" in printed and "Published MCC" in printed
    assert "0.879 ± 0.002" in printed and "0.757 ± 0.000" in printed  # Matryoshka F1, BatchTopK MCC
    for arch in ("batchtopk", "matryoshka_batchtopk", "jumprelu", "standard", "matching_pursuit"):
        assert f"| {arch}" in printed


def test_a_killed_sweep_resumes_to_the_same_tables(tmp_path: Path) -> None:
    """`synthsae bench` killed with SIGKILL once its first SAE is on disk, then `--resume DIR`: the
    final tables equal those of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    tiny = {"model_config": {"num_features": 24, "hidden_dim": 12, "seed": 0},
            "architectures": ["topk", "standard"], "l0_targets": [2, 4], "seeds": [0, 1], "d_sae": 16,
            "training_samples": 8192, "batch_size": 256, "eval_samples": 2000, "plots": False}
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump(tiny))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [sys.executable, "-m", "synthsae", "bench", "--config", str(config), "--quiet", "--threads", "1"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*argv, "--output", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(killed.glob("saes/*/run.json")):
        assert proc.poll() is None, "the benchmark ended before it could be killed"
        assert time.monotonic() < deadline, "no SAE was written within 300 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "leaderboard.md").exists()
    resumed = subprocess.run([sys.executable, "-m", "synthsae", "bench", "--resume", str(killed), "--quiet",
                              "--threads", "1"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    full = tmp_path / "full"
    assert subprocess.run([*argv, "--output", str(full)], env=env, capture_output=True).returncode == 0
    assert (killed / "leaderboard.md").read_text() == (full / "leaderboard.md").read_text()
    assert (killed / "leaderboard.csv").read_text() == (full / "leaderboard.csv").read_text()


def test_cpu_recipe_reproduces_the_published_f1_ordering() -> None:
    """The CPU ordering benchmark (`synthsae bench --recipe cpu`, 3 seeds): Matryoshka ahead of BatchTopK
    and JumpReLU, both clearly ahead of Standard and matching pursuit (the published SynthSAEBench-16k
    ordering on F1). About 16 minutes on one thread.

    Margins: the seed sd of an architecture's mean F1 here is about 0.01 (measured: 0.002-0.01 over 3
    seeds), so a gap of 0.03 between two means is at least two combined sds of the means' difference."""
    cfg = BenchmarkConfig.from_recipe("cpu", {"plots": False, "absorption": False, "show_progress": False})
    assert cfg.seeds == [0, 1, 2] and cfg.batch_size == 256  # the recipe, not the default sweep
    result = run_benchmark(cfg)
    f1 = {row["architecture"]: row["f1_mean"] for row in result.summaries}
    assert set(f1) == {"batchtopk", "matryoshka_batchtopk", "jumprelu", "standard", "matching_pursuit"}
    middle = ("batchtopk", "jumprelu")
    assert all(f1["matryoshka_batchtopk"] > f1[a] + 0.03 for a in middle), f1
    assert all(f1[a] > f1[b] + 0.03 for a in middle for b in ("standard", "matching_pursuit")), f1
    # every controlled SAE reached its target: the ordering is at matched L0
    assert all(abs(row["l0"] / row["target_l0"] - 1) < 0.03 for row in result.rows), result.rows
