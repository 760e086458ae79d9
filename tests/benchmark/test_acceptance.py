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
