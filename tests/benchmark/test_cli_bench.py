"""`synthsae bench` from the command line on a tiny model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from synthsae.cli import build_parser, main
from synthsae.commands.bench import build_config

TINY = {"model_config": {"num_features": 24, "hidden_dim": 12, "seed": 0}, "architectures": ["topk", "jumprelu"],
        "d_sae": 16, "training_samples": 2048, "batch_size": 256, "eval_samples": 1000}


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def write_config(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def test_options_override_set_and_the_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, l0_targets=[2, 3], seeds=[4])
    args = build_parser().parse_args(
        ["bench", "--config", str(config), "--architectures", "topk,matryoshka", "--l0", "2,4", "--samples", "4e3",
         "--set", "seeds=[7]", "--set", "sae_settings.topk.lr=0.01", "--output", str(tmp_path / "o"), "--threads", "1"])
    assert args.bench_threads == 1 and args.handler.__module__ == "synthsae.commands.bench"
    cfg = build_config(args)
    assert cfg.architectures == ["topk", "matryoshka_batchtopk"] and cfg.l0_targets == [2, 4]
    assert cfg.training_samples == 4000 and cfg.seeds == [7] and cfg.sae_settings == {"topk": {"lr": 0.01}}
    seeds = build_config(build_parser().parse_args(["bench", "--config", str(config), "--seeds", "0,1",
                                                    "--model-seeds", "3", "--probe-ceiling"]))
    assert seeds.seeds == [0, 1] and seeds.model_seeds == [3] and seeds.probe_ceiling
    assert build_config(build_parser().parse_args(["bench", "--seed", "5"])).seeds == [5]
    recipe = build_config(build_parser().parse_args(["bench", "--recipe", "synthsaebench", "--samples", "4096",
                                                     "--seeds", "0"]))
    assert recipe.recipe == "synthsaebench" and recipe.d_sae == 4096 and recipe.training_samples == 4096
    assert cfg.model_config == TINY["model_config"] and cfg.output_dir == str(tmp_path / "o")
    preset = build_config(build_parser().parse_args(["bench", "--config", str(config), "--preset", "cpu_medium"]))
    assert preset.preset == "cpu_medium" and preset.model_config is None
    assert preset.output_dir is not None and "bench-" in preset.output_dir  # runs/bench-<timestamp>
    default = build_config(build_parser().parse_args(["bench", "--quiet"]))
    assert default.model_label == "preset cpu_small" and not default.show_progress


def test_bench_runs_and_prints_the_leaderboard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["bench", "--config", str(write_config(tmp_path)), "--l0", "2,4", "--output", str(out), "--quiet",
            "--threads", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "## L0 = 2" in printed and "## L0 = 4" in printed and "jumprelu" in printed
    assert f"outputs: {out}" in printed
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard_runs.csv", "leaderboard.json",
                 "saes/topk_l0-4_seed-0/cfg.json", "saes/topk_l0-4_seed-0/run.json"):
        assert (out / name).is_file(), name
    data = json.loads((out / "leaderboard.json").read_text())
    assert len(data["runs"]) == 4 and data["config"]["l0_targets"] == [2, 4]
    assert torch.get_num_threads() == 1

    json_out = tmp_path / "json"
    assert main(["bench", "--config", str(write_config(tmp_path, architectures=["topk"], l0_targets=[3])),
                 "--output", str(json_out), "--quiet", "--json", "--eval-samples", "500", "--set", "plots=false"]) == 0
    printed = json.loads(capsys.readouterr().out)
    rows = printed["runs"]
    assert len(rows) == 1 and rows[0]["l0"] == pytest.approx(3.0) and rows[0]["seed"] == 0
    assert printed["summaries"][0]["n"] == 1
    assert (json_out / "leaderboard.csv").is_file() and not (json_out / "plots").exists()


def test_resume_takes_the_saved_config_and_refuses_changes(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["bench", "--config", str(write_config(tmp_path, architectures=["topk"], l0_targets=[3])),
            "--output", str(out), "--quiet", "--set", "plots=false"]
    assert main(argv) == 0
    first = (out / "leaderboard.md").read_text()
    (out / "leaderboard.md").unlink()
    capsys.readouterr()
    assert main(["bench", "--resume", str(out), "--quiet"]) == 0  # everything finished: only the tables
    assert (out / "leaderboard.md").read_text() == first
    assert main(["bench", "--resume", str(out), "--l0", "4"]) == 1
    assert "--resume continues the benchmark exactly as it was configured; drop --l0" in capsys.readouterr().err
    assert main(argv) == 1  # the folder is not empty any more
    assert "already holds files" in (err := capsys.readouterr().err) and f"continue it with --resume {out}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--architectures", "topk,bogus"], "no L0 rule for 'bogus'"),
        (["--l0", "4", "--set", "coefficients.jumprelu=[1, 2]"], "coefficients.jumprelu must list one"),
        (["--set", "nope=1"], "unknown key(s) in the benchmark config: 'nope'"),
    ],
)
def test_bad_options_exit_with_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                        message: str) -> None:
    config = write_config(tmp_path, l0_targets=[2])
    assert main(["bench", "--config", str(config), "--output", str(tmp_path / "o"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("synthsae bench: error:") and message in err
    assert not (tmp_path / "o").exists()
