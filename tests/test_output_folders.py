"""Output-folder rules: a non-empty folder is refused unless overwrite (guarded), folders are
probed for writability without leaving a trace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synthsae.output_folders import (
    OutputFolderExistsError,
    OutputNotWritableError,
    check_new_output_folder,
    check_writable,
    clear_output_folder,
)


def test_missing_or_empty_folders_are_fine_and_a_used_one_is_refused_by_name(tmp_path: Path) -> None:
    check_new_output_folder(tmp_path / "missing", "output_path")
    (tmp_path / "empty").mkdir()
    check_new_output_folder(tmp_path / "empty", "output_path")
    used = tmp_path / "used"
    used.mkdir()
    for name in ("metrics.jsonl", "a", "b", "c", "d", "e"):
        (used / name).write_text("x")
    with pytest.raises(OutputFolderExistsError, match=r"output_path '.*used' already holds files .*"
                       r"\(a, b, c, d, e and 1 more\).*choose another folder, do this") as info:
        check_new_output_folder(used, "output_path", remedy="do this")
    assert isinstance(info.value, ValueError) and info.value.path == used  # the command line reports ValueErrors
    assert info.value.with_remedy("or that").endswith("choose another folder, or that")
    assert len(list(used.iterdir())) == 6  # the check deletes nothing


def test_overwrite_clears_only_folders_that_look_like_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    (run / "checkpoints" / "100").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("{}")
    (run / "notes.txt").write_text("x")
    check_new_output_folder(run, "output_path", overwrite=True)
    clear_output_folder(run)
    assert run.is_dir() and list(run.iterdir()) == []
    checkpoints_only = tmp_path / "ck"
    (checkpoints_only / "40").mkdir(parents=True)
    (checkpoints_only / "40" / "COMPLETE").write_text("{}")
    check_new_output_folder(checkpoints_only, "checkpoint_path", overwrite=True)  # a checkpoint folder is ours

    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("x")
    with pytest.raises(ValueError, match="does not look like an earlier run's folder"):
        check_new_output_folder(foreign, "output_path", overwrite=True)
    monkeypatch.chdir(run)
    (run / "metrics.jsonl").write_text("{}")
    for guarded in (run, tmp_path, Path(".")):  # the current folder and its parents are never cleared
        with pytest.raises(ValueError, match="current folder, the home folder"):
            check_new_output_folder(guarded, "output_path", overwrite=True)


def test_writability_is_probed_without_a_trace(tmp_path: Path) -> None:
    check_writable(tmp_path / "a" / "b", "output_path")
    assert list(tmp_path.iterdir()) == []  # nothing created by the probe
    (tmp_path / "exists").mkdir()
    check_writable(tmp_path / "exists", "output_path")
    assert list((tmp_path / "exists").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputNotWritableError, match=r"output_path '.*file/run' cannot be created: .* is a file"):
        check_writable(tmp_path / "file" / "run", "output_path")
    with pytest.raises(OutputNotWritableError, match="exists and is not a folder"):
        check_new_output_folder(tmp_path / "file", "output_path")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_reported(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(OutputNotWritableError, match="is not writable"):
            check_writable(locked, "output_dir")
        with pytest.raises(OutputNotWritableError, match="would be created in"):
            check_writable(locked / "new", "output_dir")
    finally:
        locked.chmod(0o700)


def test_a_refused_probe_is_reported_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # root may write anywhere, so the file system's refusal is simulated (as a read-only mount gives it)
    import synthsae.output_folders as folders

    def refuse(*args: object) -> Path:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(folders, "make_temp_file", refuse)
    monkeypatch.setattr(folders, "make_temp_dir", refuse)
    with pytest.raises(OutputNotWritableError, match=r"'.*' is not writable: Read-only file system"):
        check_writable(tmp_path, "output_dir")
    with pytest.raises(OutputNotWritableError, match=r"not writable \(it would be created in '.*'\)"):
        check_writable(tmp_path / "new", "output_dir")
