"""Output folders: refuse to mix a new run into an old one, clear on request, check writability.

A run (``synthsae train``, ``synthsae bench``, :class:`SyntheticSAERunner`) writes into a
folder. Before any model is built or any step trained, the caller checks every folder it
will write:

* :func:`check_new_output_folder`: a folder that exists and is not empty belongs to an
  earlier run; it is refused (:class:`OutputFolderExistsError`) unless ``overwrite`` is
  set. Nothing is deleted by the check itself; :func:`clear_output_folder` empties it
  later, right before the new run writes its first file.
* :func:`check_writable`: the folder (or, if it does not exist yet, its nearest existing
  parent) must accept a new entry; this is probed by creating and removing a hidden
  temporary, so read-only mounts and missing permissions are found even for root.

``--overwrite`` is guarded: it never clears the current folder, an ancestor of it, the
home folder or the file-system root, nor a folder that holds none of the files synthsae
writes (:data:`RUN_FOLDER_ENTRIES`), so a mistyped path cannot wipe unrelated work.

Foundation module: it imports nothing of synthsae but :mod:`synthsae.atomic_files`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from synthsae.atomic_files import make_temp_dir, make_temp_file

__all__ = [
    "RUN_FOLDER_ENTRIES",
    "OutputFolderExistsError",
    "OutputNotWritableError",
    "check_new_output_folder",
    "check_writable",
    "clear_output_folder",
]

#: Names synthsae writes at the top of a run, bench, checkpoint or model folder; a folder holding
#: one of them (or a checkpoint) may be cleared by ``overwrite``.
RUN_FOLDER_ENTRIES = frozenset({
    "runner_config.json", "run.json", "metrics.jsonl", "cfg.json", "sae_weights.safetensors", "eval_stats.json",
    "sparsity.safetensors", "checkpoints", "synthetic_model", "leaderboard.json", "leaderboard.md",
    "leaderboard.csv", "benchmark_config.json", "saes", "plots", "synthetic_model_config.json", "COMPLETE",
})
_LISTED_ENTRIES = 5  # how many of a folder's entries an error message names


class OutputFolderExistsError(FileExistsError, ValueError):
    """An output folder already holds files and neither overwrite nor resume was asked for.

    ``str(err)`` is the refusal followed by the remedy given at raise time; an interface
    with other switches (the command line) builds its own with :meth:`with_remedy`.
    """

    def __init__(self, refusal: str, path: Path, entries: list[str], remedy: str = "") -> None:
        super().__init__(refusal)
        self.refusal, self.path, self.entries, self.remedy = refusal, path, entries, remedy

    def with_remedy(self, remedy: str) -> str:
        """The refusal followed by ``remedy`` (how to overwrite or resume)."""
        return self.refusal + (f", {remedy}" if remedy else "")

    def __str__(self) -> str:
        return self.with_remedy(self.remedy)


class OutputNotWritableError(PermissionError, ValueError):
    """An output folder cannot be created or written."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


def _entries(path: Path) -> list[str]:
    return sorted(entry.name for entry in path.iterdir())


def _describe(entries: list[str]) -> str:
    shown = ", ".join(entries[:_LISTED_ENTRIES])
    more = len(entries) - _LISTED_ENTRIES
    return shown + (f" and {more} more" if more > 0 else "")


def check_new_output_folder(path: str | Path, what: str, overwrite: bool = False, remedy: str = "") -> None:
    """Refuse ``path`` for a new run if it exists and is not empty (unless ``overwrite``).

    ``what`` names the setting in messages (``"output_path"``); ``remedy`` is appended to
    the refusal (how to overwrite or resume in the caller's interface). With
    ``overwrite``, the folder is checked to be one that :func:`clear_output_folder` may
    clear; nothing is deleted here.

    Raises:
        OutputNotWritableError: if ``path`` exists and is not a folder.
        OutputFolderExistsError: if it holds entries and ``overwrite`` is False.
        ValueError: if ``overwrite`` is True but the folder may not be cleared.
    """
    path = Path(path).expanduser()
    if not path.exists():
        return
    if not path.is_dir():
        raise OutputNotWritableError(f"{what} {str(path)!r} exists and is not a folder", path)
    entries = _entries(path)
    if not entries:
        return
    if overwrite:
        _check_clearable(path, entries, what)
        return
    refusal = (f"{what} {str(path)!r} already holds files of an earlier run ({_describe(entries)}); "
               "refusing to mix two runs in one folder: choose another folder")
    raise OutputFolderExistsError(refusal, path, entries, remedy)


def _protected(path: Path) -> bool:
    """True for the file-system root, the home folder, the current folder and their ancestors."""
    resolved = path.resolve()
    for guarded in (Path.cwd().resolve(), Path.home().resolve()):
        if resolved == guarded or resolved in guarded.parents:
            return True
    return resolved.parent == resolved


def _check_clearable(path: Path, entries: list[str], what: str) -> None:
    if _protected(path):
        raise ValueError(f"overwrite refuses to clear {what} {str(path)!r}: it is the current folder, the home "
                         "folder or one of their parents; name the run's own folder")
    ours = any(name in RUN_FOLDER_ENTRIES or (path / name / "COMPLETE").is_file() for name in entries)
    if not ours:
        raise ValueError(f"overwrite refuses to clear {what} {str(path)!r}: it holds {_describe(entries)}, none of "
                         "which synthsae writes, so it does not look like an earlier run's folder; remove it "
                         "yourself or choose another folder")


def clear_output_folder(path: str | Path) -> None:
    """Remove everything inside ``path`` (the folder itself stays); a missing folder is fine.

    Callers check the folder first with :func:`check_new_output_folder` (``overwrite=True``).
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def check_writable(path: str | Path, what: str) -> None:
    """Check that folder ``path`` can be created (if missing) and written, without leaving a trace.

    Raises:
        OutputNotWritableError: if ``path`` or one of its parents exists and is not a folder, or a
            probe entry cannot be created there.
    """
    path = Path(path).expanduser()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputNotWritableError(f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file, "
                                     "not a folder", path)
    try:
        if existing == path:
            os.unlink(make_temp_file(path, "write-check"))
        else:  # the folder will be created: probe with a folder, as mkdir will need
            os.rmdir(make_temp_dir(existing, "write-check"))
    except OSError as err:
        where = "" if existing == path else f" (it would be created in {str(existing)!r})"
        raise OutputNotWritableError(f"{what} {str(path)!r} is not writable{where}: {err.strerror or err}",
                                     path) from None
