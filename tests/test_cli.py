"""The ``synthsae`` command line: ``sample`` end to end and the help texts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from synthsae.cli import build_parser, main
from synthsae.config_values import write_config_file
from synthsae.synthetic.model_config import SyntheticModelConfig

TINY = {
    "num_features": 48,
    "hidden_dim": 12,
    "firing_probability": {"generator_name": "zipfian", "exponent": 0.5, "max_prob": 0.3, "min_prob": 0.02},
    "hierarchy": {"total_root_nodes": 3, "branching_factor": 3, "max_depth": 2, "mutually_exclusive_portion": 1.0},
    "correlation": {"rank": 3, "correlation_scale": 0.1},
    "bias": 0.5,
    "seed": 1,
}


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    write_config_file(path, SyntheticModelConfig.from_dict(TINY).to_dict())
    return path


def test_sample_prints_a_statistics_table(tiny_config, capsys) -> None:
    code = main(["sample", "--config", str(tiny_config), "--batches", "3", "--batch-size", "256", "--seed", "0"])
    out = capsys.readouterr().out
    assert code == 0
    for needle in ["features            48", "hidden dims         12", "true L0 empirical", "true L0 expected", "true L0 configured",
                   "build time", "samples/s", "3 roots", "most frequent", "median", "rarest", "low rank 3"]:  # fmt: skip
        assert needle in out, needle


def test_sample_json_is_reproducible_with_a_seed_and_saves(tiny_config, tmp_path, capsys) -> None:
    args = ["sample", "--config", str(tiny_config), "--batches", "2", "--batch-size", "128", "--seed", "5", "--json"]
    assert main([*args, "--save", str(tmp_path / "saved")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["sample", "--model", str(tmp_path / "saved"), *args[3:]]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["samples"] == 256 and first["sampling_seed"] == 5
    assert first["l0_empirical"] == second["l0_empirical"]
    assert first["features"] == second["features"]
    assert first["hierarchy"]["roots"] == 3 and first["correlation"]["rank"] == 3
    assert abs(first["l0_empirical"] - first["l0_expected"]) < 5 * first["l0_se"] + 0.05


def test_model_seed_override(tiny_config, capsys) -> None:
    assert main(["sample", "--config", str(tiny_config), "--model-seed", "9", "--batches", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 9


def test_errors_are_reported_not_raised(tmp_path, capsys) -> None:
    assert main(["sample", "--config", str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--preset", "nope"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["sample", "--batches", "0"])
    assert main([]) == 2


def test_help_explains_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ["--preset", "--config", "--model", "--batch-size", "--batches", "--seed", "--model-seed",
                   "--device", "--save", "--json"]:  # fmt: skip
        assert option in text, option
    sample = build_parser()._subparsers._group_actions[0].choices["sample"]  # type: ignore[union-attr]
    for action in sample._actions:
        assert action.help, action.dest


def test_python_dash_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "synthsae", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0 and "sample" in result.stdout
