"""Atomic file and folder writes that respect the umask.

Every file synthsae writes goes through this module: the content is written under a
hidden temporary name in the destination folder and renamed into place, so a reader
(or a crash) never sees a half-written file. The temporaries are created with the
modes a plain ``open(path, "w")`` / ``os.mkdir(path)`` would get (``0o666`` / ``0o777``
minus the process umask), so colleagues who may read a normal file can read ours too.
(:func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` would give ``0600`` / ``0700``,
which the rename would carry into place, and ``safetensors``' ``save_file`` creates its
files ``0600`` whatever the umask; so after a writer has run, the file's mode is set back
to the one the fresh temporary got, :func:`restore_plain_modes` does the same for whole
staging folders.)

Foundation module: it imports nothing else of synthsae.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "fsync_file",
    "make_temp_dir",
    "make_temp_file",
    "plain_file_mode",
    "remove_stale_temporaries",
    "replace_dir",
    "restore_plain_modes",
    "write_files_atomically",
]

#: Modes asked for at creation; the kernel removes the umask's bits, as for any plain write.
FILE_MODE, FOLDER_MODE = 0o666, 0o777
_TEMP_TRIES = 100  # random names collide with probability ~2^-32 each; 100 failures mean something else is wrong
_TEMP_NAME = re.compile(r"^\..+\.(?:tmp|old)-(\d+)-[0-9a-f]{8}$")  # what _temp_name makes


def _temp_name(parent: Path, name: str, kind: str) -> Path:
    return parent / f".{name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries that a killed process left in ``folder`` (hidden names made by this
    module whose process no longer runs on this machine); returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMP_NAME.match(entry.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def make_temp_file(folder: str | Path, name: str) -> Path:
    """Create an empty hidden file next to ``folder/name`` (mode as for a plain write) and return it."""
    folder = Path(folder)
    for _ in range(_TEMP_TRIES):
        temp = _temp_name(folder, name, "tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return temp
    raise FileExistsError(f"could not create a temporary file for {name!r} in {folder}")


def make_temp_dir(parent: str | Path, name: str, kind: str = "tmp") -> Path:
    """Create an empty hidden folder next to ``parent/name`` (mode as for a plain mkdir) and return it."""
    parent = Path(parent)
    for _ in range(_TEMP_TRIES):
        temp = _temp_name(parent, name, kind)
        try:
            os.mkdir(temp, FOLDER_MODE)
        except FileExistsError:
            continue
        return temp
    raise FileExistsError(f"could not create a temporary folder for {name!r} in {parent}")


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777


def plain_file_mode(folder: str | Path) -> int:
    """The permission bits a new file gets in ``folder`` from a plain write (``0o666`` minus the
    umask), found by creating one: reading the umask itself would change it for a moment."""
    probe = make_temp_file(folder, "mode-probe")
    try:
        return _mode(probe)
    finally:
        probe.unlink()


def restore_plain_modes(folder: str | Path) -> None:
    """Give every file under ``folder`` (a staging folder about to be renamed into place) the
    mode of a plain write, undoing writers that create their files ``0600``."""
    folder = Path(folder)
    mode = plain_file_mode(folder)
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and _mode(path) != mode:
            os.chmod(path, mode)


def fsync_file(path: str | Path) -> None:
    """Flush a file's content to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (renames into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def write_files_atomically(folder: str | Path, writers: Mapping[str, Callable[[Path], None]]) -> list[Path]:
    """Run each ``writer(temp_path)``, then rename every temporary to its name in ``folder``.

    ``folder`` is created if missing. Each writer writes (overwrites) the empty temporary
    file it is given. Nothing in ``folder`` changes until every writer has succeeded; if
    one fails, the temporaries are removed and the error propagates. Returns the final paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temps: dict[str, Path] = {}
    try:
        for name, writer in writers.items():
            temp = temps[name] = make_temp_file(folder, name)
            mode = _mode(temp)  # a plain write's mode (the umask applied by the kernel)
            writer(temp)
            if _mode(temp) != mode:  # the writer made its own file (e.g. safetensors: 0600)
                os.chmod(temp, mode)
            fsync_file(temp)
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        raise
    for name, temp in temps.items():
        os.replace(temp, folder / name)
    fsync_dir(folder)
    return [folder / name for name in writers]


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Write one file atomically: ``writer(temp_path)`` fills a temporary that is renamed to ``path``."""
    path = Path(path)
    write_files_atomically(path.parent, {path.name: writer})
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(temp: Path) -> None:
        temp.write_text(text, encoding="utf-8")

    return atomic_write(path, write)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (serialised first: bad input writes nothing)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent))


def replace_dir(new: str | Path, path: str | Path) -> None:
    """Put folder ``new`` in the place of ``path`` (which may exist), atomically for readers.

    An existing ``path`` is moved aside, ``new`` is renamed in, and the old one removed;
    if the rename fails, the old folder is put back.
    """
    new, path = Path(new), Path(path)
    if not path.exists():
        os.replace(new, path)
        fsync_dir(path.parent)
        return
    old = _temp_name(path.parent, path.name, "old")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)
