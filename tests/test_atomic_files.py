"""Atomic writes respect the umask: every file and folder synthsae writes gets the mode a plain
``open(path, "w")`` / ``mkdir`` would (0o666 / 0o777 minus the umask), and a failed write leaves
nothing behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from synthsae.atomic_files import (
    atomic_write_json,
    atomic_write_text,
    make_temp_dir,
    replace_dir,
    write_files_atomically,
)

UMASKS = (0o022, 0o027)


@pytest.fixture(params=UMASKS, ids=lambda m: f"umask{m:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def assert_plain_modes(root: Path, umask: int) -> int:
    """Every file under ``root`` is 0o666 & ~umask, every folder 0o777 & ~umask; returns the count."""
    entries = [root, *root.rglob("*")]
    for entry in entries:
        expected = (0o777 if entry.is_dir() else 0o666) & ~umask
        assert mode(entry) == expected, f"{entry.relative_to(root.parent)}: {mode(entry):o} != {expected:o}"
    return len(entries)


def test_text_json_and_folders_get_the_umask_modes(tmp_path: Path, umask: int) -> None:
    atomic_write_text(tmp_path / "out" / "a.txt", "hello")
    atomic_write_json(tmp_path / "out" / "b.json", {"x": 1})
    staged = make_temp_dir(tmp_path / "out", "model")
    (staged / "inner.txt").write_text("x")
    replace_dir(staged, tmp_path / "out" / "model")
    assert (tmp_path / "out" / "a.txt").read_text() == "hello"
    assert assert_plain_modes(tmp_path / "out", umask) == 5


def test_a_failed_writer_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "keep.txt", "old")

    def fail(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_files_atomically(tmp_path, {"keep.txt": lambda p: p.write_text("new"), "other.txt": fail})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]  # no temporaries, nothing replaced
    assert (tmp_path / "keep.txt").read_text() == "old"


def test_replace_dir_swaps_a_whole_folder(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.txt").write_text("old")
    new = make_temp_dir(tmp_path, "d")
    (new / "new.txt").write_text("new")
    replace_dir(new, tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["new.txt"]


def test_saved_saes_models_checkpoints_and_configs_get_the_umask_modes(tmp_path: Path, umask: int) -> None:
    tmp_path = tmp_path / "w"  # pytest makes its own folders 0700
    from synthsae import TopKTrainingSAE, TopKTrainingSAEConfig
    from synthsae.config_values import write_config_file
    from synthsae.synthetic import SyntheticModel, SyntheticModelConfig
    from synthsae.training.checkpoint import save_state, write_checkpoint

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=4, d_sae=6, k=2))
    sae.save_model(tmp_path / "sae")
    sae.save_inference_model(tmp_path / "sae_inference")
    model_cfg = SyntheticModelConfig(num_features=8, hidden_dim=4, seed=0)
    model = SyntheticModel(model_cfg)
    model.save(tmp_path / "model")
    model.save(tmp_path / "model")  # replacing an existing model folder keeps the modes too
    write_config_file(tmp_path / "configs" / "model.yaml", model_cfg.to_dict())

    def write(folder: Path) -> None:
        sae.save_model(folder)
        save_state(folder, {"step": 3, "t": torch.ones(2)})

    write_checkpoint(tmp_path / "ck" / "10", write, {"step": 3})
    assert assert_plain_modes(tmp_path, umask) > 15


def test_plots_and_leaderboards_get_the_umask_modes(tmp_path: Path, umask: int) -> None:
    pytest.importorskip("matplotlib")
    tmp_path = tmp_path / "w"  # pytest makes its own folders 0700
    from synthsae import TopKTrainingSAE, TopKTrainingSAEConfig
    from synthsae.benchmark.leaderboard import write_csv, write_json, write_markdown
    from synthsae.benchmark.plots import plot_metric_vs_l0
    from synthsae.synthetic import FeatureDictionary, plot_sae_feature_similarity

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=4, d_sae=3, k=1))
    fig = plot_sae_feature_similarity(sae, FeatureDictionary(3, 4), save_path=tmp_path / "sim.png")
    row = {"name": "topk_l0-2", "architecture": "topk", "target_l0": 2, "l0": 2.0, "mcc": 0.5, "f1": 0.5,
           "precision": 0.5, "recall": 0.5, "explained_variance": 0.5, "uniqueness": 0.5, "dead_latents": 0,
           "d_sae": 3, "shrinkage": 1.0, "train_seconds": 1.0, "eval_seconds": 1.0, "knob": "k", "knob_value": 2,
           "rank": 1}
    plot_metric_vs_l0([row], "mcc", tmp_path / "plots" / "mcc.png")
    write_markdown(tmp_path / "board.md", [row])
    write_csv(tmp_path / "board.csv", [row])
    write_json(tmp_path / "board.json", {"rows": [row]})
    assert fig is not None
    assert assert_plain_modes(tmp_path, umask) == 7


def test_temporaries_of_a_killed_process_are_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from synthsae.atomic_files import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)  # that process has exited
    stale_dir = tmp_path / f".608.tmp-{dead_pid}-0123abcd"
    stale_dir.mkdir()
    (stale_dir / "sae_weights.safetensors").write_text("half")
    stale_file = tmp_path / f".metrics.json.tmp-{dead_pid}-89abcdef"
    stale_file.write_text("half")
    mine = tmp_path / f".cfg.json.tmp-{os.getpid()}-00000000"  # a write in progress in this process
    mine.write_text("")
    other = tmp_path / ".hidden-by-the-user"
    other.write_text("")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([stale_dir, stale_file])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])
