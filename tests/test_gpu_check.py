"""benchmarks/gpu_check.py: its plumbing end to end on the CPU (--dry-run), and a clean exit without CUDA."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_writes_the_summary(gpu_check, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.json"
    assert gpu_check.main(["--dry-run", "--json", str(out), "--eval-samples", "1000"]) == 0
    summary = json.loads(out.read_text())
    training, metrics = summary["training"], summary["final_metrics"]
    assert summary["dry_run"] and summary["bf16"] is False and "tests" not in summary
    assert training["samples"] >= 10 * summary["sae"]["batch_size"] and training["samples_per_s"] > 0
    assert training["projected_200M_minutes"] == pytest.approx(2e8 / training["samples_per_s"] / 60)
    assert 0.0 <= metrics["mcc"] <= 1.0 and metrics["l0"] > 0
    printed = capsys.readouterr().out
    assert "[3/4]" in printed and "samples/s" in printed and str(out) in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_without_cuda_it_says_so_and_exits_cleanly(gpu_check, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.json"
    assert gpu_check.main(["--json", str(out)]) == 0
    assert "no CUDA device" in capsys.readouterr().out
    assert not out.exists()
