"""Model directories move both ways between synthsae and SAELens (needs the reference venv; slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "interop_reference.py"


def _reference_available() -> bool:
    if not REFERENCE_PYTHON.exists():
        return False
    probe = subprocess.run([str(REFERENCE_PYTHON), "-c", "import sae_lens"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _reference_available(), reason="the SAELens reference venv is not installed")
def test_models_load_both_ways() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert all(report["reference_loaded_equals_file"].values())
    assert all(report["reference_regenerated_magnitudes_equal_ours"].values())
    assert report["reference_hierarchy_equals_file"]
    loaded = report["synthsae_loads_reference_dir"]
    assert loaded["tensors_equal_reference_file"] and loaded["magnitudes_regenerated_equal_original"]
    # the same config builds the same world in both libraries (up to float rounding)
    fresh = report["reference_fresh_build_equals_ours"]
    assert fresh["hierarchy"] and fresh["correlation_factor"] and fresh["bias"]
    assert fresh["feature_vectors_max_abs_diff"] < 1e-5
