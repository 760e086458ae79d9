"""Where a runner run writes, and where a resume finds its checkpoints.

A run has an output folder (``output_path``) and a checkpoint folder
(``checkpoint_path``; ``synthsae train`` puts it at ``<output>/checkpoints``). The two
point at each other with paths relative to themselves, so a run folder that is moved
or copied elsewhere still resumes into itself:

* ``<output>/run.json`` holds ``checkpoint_path`` relative to the output folder;
* each checkpoint's ``COMPLETE`` marker holds ``output_path`` relative to the checkpoint
  folder, and ``metrics_bytes``, the length of ``metrics.jsonl`` when it was written.

:func:`resume_candidates` accepts one checkpoint, a checkpoint folder or a run folder and
lists the checkpoints to try, newest first (a damaged newest one falls back to the one
before). :func:`check_run_folders` applies the output-folder rules of
:mod:`synthsae.output_folders` to both folders before anything is built.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthsae.atomic_files import atomic_write_json
from synthsae.output_folders import check_new_output_folder, check_writable
from synthsae.training.checkpoint import COMPLETE_MARKER, is_complete_checkpoint, list_checkpoints

__all__ = ["RUN_INFO_FILENAME", "RunFolders", "check_run_folders", "relative_to", "resume_candidates",
           "write_run_info"]

RUN_INFO_FILENAME = "run.json"
DEFAULT_CHECKPOINT_DIRNAME = "checkpoints"  # where `synthsae train` puts them inside the output folder
PYTHON_REMEDY = ("pass overwrite=True to clear it first, or continue that run with "
                 "SyntheticSAERunner.resume(<its folder>)")


@dataclass(frozen=True)
class RunFolders:
    """The folders a resumed run already owns (``None``: not part of the run)."""

    output: Path | None
    checkpoints: Path | None

    def owns(self, path: Path) -> bool:
        """True if ``path`` is one of the run's own folders (which may hold files)."""
        target = _resolved(path)
        return any(own is not None and _resolved(own) == target for own in (self.output, self.checkpoints))

    def inside(self, path: Path) -> list[Path]:
        """The run's own folders that lie inside ``path`` (clearing ``path`` would delete them)."""
        target = _resolved(path)
        return [own for own in (self.output, self.checkpoints)
                if own is not None and (_resolved(own) == target or target in _resolved(own).parents)]


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def relative_to(path: str | Path | None, start: str | Path) -> str | None:
    """``path`` relative to folder ``start`` (``..`` allowed), or ``None`` for ``None``."""
    return None if path is None else os.path.relpath(_resolved(Path(path)), _resolved(Path(start)))


def write_run_info(output: Path, checkpoint_path: str | None) -> None:
    """Write ``<output>/run.json``: where this run's checkpoints are, relative to ``output``."""
    atomic_write_json(output / RUN_INFO_FILENAME, {"format_version": 1,
                                                    "checkpoint_path": relative_to(checkpoint_path, output)})


def check_run_folders(cfg: Any, overwrite: bool = False, own: RunFolders | None = None,
                      remedy: str = PYTHON_REMEDY) -> None:
    """Check ``cfg.output_path`` and ``cfg.checkpoint_path`` before a run builds anything.

    A folder that is not one of ``own`` (a resumed run's own folders) must be empty or
    missing, unless ``overwrite``; every folder must be writable. ``overwrite`` never
    applies to a folder that holds one of ``own``.
    """
    own = own or RunFolders(None, None)
    for what in ("output_path", "checkpoint_path"):
        value = getattr(cfg, what)
        if value is None:
            continue
        path = Path(value)
        if not own.owns(path):
            inside = own.inside(path)
            if overwrite and inside:
                raise ValueError(f"overwrite refuses to clear {what} {value!r}: it holds the run being resumed "
                                 f"({inside[0]})")
            check_new_output_folder(path, what, overwrite=overwrite, remedy=remedy)
        check_writable(path, what)


def resume_candidates(source: str | Path) -> list[Path]:
    """The checkpoints to try for a resume from ``source``, newest first.

    ``source`` may be one checkpoint (only it is tried), a folder of checkpoints, or a
    run's output folder (its ``run.json`` names the checkpoint folder; else
    ``<source>/checkpoints``).

    Raises:
        FileNotFoundError: if ``source`` does not exist or holds no complete checkpoint;
            the message says where it looked.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"cannot resume from {path}: it does not exist")
    if is_complete_checkpoint(path):
        return [path]
    if (path / COMPLETE_MARKER).exists():
        return [path]  # a damaged single checkpoint: loading it reports what is wrong
    roots = [path]
    linked = _linked_checkpoint_folder(path)
    if linked is not None:
        roots.insert(0, linked)
    roots.append(path / DEFAULT_CHECKPOINT_DIRNAME)
    for root in roots:
        found = list_checkpoints(root)
        if found:
            return list(reversed(found))
    looked = ", ".join(dict.fromkeys(str(r) for r in roots))
    raise FileNotFoundError(f"no complete checkpoint in {path} (looked in {looked}); pass a run's output folder, "
                            "its checkpoint folder or one checkpoint (a run stopped before its first checkpoint "
                            "cannot be resumed: start it again, overwriting its folder)")


def _linked_checkpoint_folder(output: Path) -> Path | None:
    info_path = output / RUN_INFO_FILENAME
    if not info_path.is_file():
        return None
    try:
        rel = json.loads(info_path.read_text(encoding="utf-8")).get("checkpoint_path")
    except (ValueError, AttributeError, OSError):
        return None
    return Path(os.path.normpath(output / rel)) if isinstance(rel, str) else None
