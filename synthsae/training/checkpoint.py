"""Atomic, pickle-free training checkpoints.

A checkpoint is a folder. It is assembled under a hidden temporary name next to its
final place, a ``COMPLETE`` marker (JSON: step, samples seen, the files) is written
last, and only then is the folder renamed into place. A folder without the marker,
or a hidden temporary one, is never returned by :func:`latest_checkpoint`, so a run
killed while writing leaves the previous checkpoint in charge.

Nested training state (trainer state dicts, RNG states) is stored without pickle:
:func:`flatten_state` splits it into a safetensors file (every tensor) and a JSON
skeleton that points at the tensors and keeps the Python structure (int dict keys,
tuples, non-finite floats).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from synthsae.atomic_files import fsync_file, make_temp_dir, replace_dir, restore_plain_modes

__all__ = [
    "COMPLETE_MARKER",
    "TRAINER_STATE_JSON",
    "TRAINER_STATE_TENSORS",
    "capture_rng_state",
    "check_checkpoint_files",
    "flatten_state",
    "is_complete_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_state",
    "read_checkpoint_info",
    "restore_rng_state",
    "save_state",
    "unflatten_state",
    "write_checkpoint",
]

COMPLETE_MARKER = "COMPLETE"
TRAINER_STATE_JSON = "trainer_state.json"
TRAINER_STATE_TENSORS = "trainer_state.safetensors"

_TENSOR, _TUPLE, _ITEMS, _FLOAT, _NDARRAY = "__tensor__", "__tuple__", "__items__", "__float__", "__ndarray__"
_MARKERS = (_TENSOR, _TUPLE, _ITEMS, _FLOAT, _NDARRAY)


# ------------------------------------------------------------------ pickle-free state
def flatten_state(state: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``state`` into ``(json_skeleton, tensors)``; :func:`unflatten_state` inverts it.

    Supported leaves: tensors, numpy arrays, ``None``, bools, ints, floats (NaN/inf
    included), strings; containers: dicts (any hashable scalar keys), lists, tuples.
    Tensors are copied to the CPU and made contiguous.

    Raises:
        TypeError: for any other object (the message gives its path in ``state``).
    """
    tensors: dict[str, torch.Tensor] = {}

    def enc(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = obj.detach().to("cpu").contiguous().clone()
            return {_TENSOR: name}
        if isinstance(obj, np.ndarray):
            wide = obj.astype(np.int64) if obj.dtype.kind == "u" else obj  # torch lacks most unsigned types
            return {_NDARRAY: enc(torch.from_numpy(np.ascontiguousarray(wide)), path), "dtype": str(obj.dtype)}
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {_FLOAT: repr(obj)}
        if isinstance(obj, np.generic):
            return enc(obj.item(), path)
        if isinstance(obj, tuple):
            return {_TUPLE: [enc(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [enc(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, Mapping):
            if all(isinstance(k, str) and k not in _MARKERS for k in obj):
                return {k: enc(v, f"{path}.{k}") for k, v in obj.items()}
            return {_ITEMS: [[enc(k, path), enc(v, f"{path}[{k!r}]")] for k, v in obj.items()]}
        raise TypeError(f"cannot store {type(obj).__name__} at {path or '<root>'} in a checkpoint "
                        "(only tensors, numbers, strings, None and dict/list/tuple of them)")

    return enc(state, ""), tensors


def unflatten_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Rebuild the object that :func:`flatten_state` split."""

    def dec(obj: Any) -> Any:
        if isinstance(obj, list):
            return [dec(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _NDARRAY in obj:
            return dec(obj[_NDARRAY]).numpy().astype(obj["dtype"], copy=True)
        if _TUPLE in obj:
            return tuple(dec(v) for v in obj[_TUPLE])
        if _FLOAT in obj:
            return float(obj[_FLOAT])
        if _ITEMS in obj:
            return {_hashable(dec(k)): dec(v) for k, v in obj[_ITEMS]}
        return {k: dec(v) for k, v in obj.items()}

    return dec(skeleton)


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def save_state(folder: str | Path, state: Any, stem: str = "trainer_state") -> tuple[Path, Path]:
    """Write ``state`` as ``<stem>.json`` + ``<stem>.safetensors`` in ``folder`` (no pickle)."""
    folder = Path(folder)
    skeleton, tensors = flatten_state(state)
    json_path, tensor_path = folder / f"{stem}.json", folder / f"{stem}.safetensors"
    save_file(tensors, str(tensor_path))
    json_path.write_text(json.dumps(skeleton, allow_nan=False), encoding="utf-8")
    for path in (tensor_path, json_path):
        fsync_file(path)
    return json_path, tensor_path


def load_state(folder: str | Path, stem: str = "trainer_state") -> Any:
    """Read a state written by :func:`save_state` (tensors on the CPU)."""
    folder = Path(folder)
    json_path, tensor_path = folder / f"{stem}.json", folder / f"{stem}.safetensors"
    for path in (json_path, tensor_path):
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        skeleton = json.loads(json_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise ValueError(f"unreadable checkpoint file {json_path}: {err}") from None
    try:
        tensors = load_file(str(tensor_path))
    except (ValueError, OSError, SafetensorError) as err:  # safetensors' own error is not a ValueError
        raise ValueError(f"unreadable checkpoint file {tensor_path}: {err}") from None
    return unflatten_state(skeleton, tensors)


# ------------------------------------------------------------------ RNG states
def capture_rng_state(generators: Mapping[str, torch.Generator | None] | None = None) -> dict[str, Any]:
    """Every random state a run depends on: Python ``random``, numpy's global RNG, torch's
    CPU RNG, every initialised CUDA device's RNG, and the named ``generators``."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items() if gen is not None},
    }
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator | None] | None = None) -> None:
    """Inverse of :func:`capture_rng_state`; a named generator missing from ``state`` raises."""
    random.setstate(_as_python_state(state["python"]))
    np_state = state["numpy"]
    keys = np_state["keys"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((np_state["name"], keys.astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch_cpu"])
    if state.get("torch_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    saved = state.get("generators", {})
    for name, gen in (generators or {}).items():
        if gen is None:
            continue
        if name not in saved:
            raise KeyError(f"the checkpoint holds no state for the random generator {name!r}")
        gen.set_state(saved[name])


def _as_python_state(value: Any) -> Any:
    return tuple(_as_python_state(v) for v in value) if isinstance(value, (list, tuple)) else value


# ------------------------------------------------------------------ checkpoint folders
def is_complete_checkpoint(path: str | Path) -> bool:
    """True if ``path`` is a finished checkpoint: a visible folder whose marker and files exist."""
    path = Path(path)
    if not path.is_dir() or path.name.startswith("."):
        return False
    try:
        info = read_checkpoint_info(path)
    except (FileNotFoundError, ValueError):
        return False
    return all((path / name).is_file() for name in info.get("files", []))


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """The JSON content of a checkpoint's ``COMPLETE`` marker."""
    marker = Path(path) / COMPLETE_MARKER
    if not marker.is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {COMPLETE_MARKER} marker)")
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise ValueError(f"unreadable checkpoint marker {marker}: {err}") from None
    if not isinstance(info, dict):
        raise ValueError(f"unreadable checkpoint marker {marker}: not a JSON object")
    return info


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints directly under ``root``, oldest first (by samples seen, then step)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if is_complete_checkpoint(child):
            info = read_checkpoint_info(child)
            found.append(((int(info.get("samples_seen", -1)), int(info.get("step", -1)), child.name), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(root: str | Path) -> Path | None:
    """The most advanced complete checkpoint: ``root`` itself if it is one, else the last of
    :func:`list_checkpoints` (``None`` if there is none). Incomplete ones are ignored."""
    root = Path(root)
    if is_complete_checkpoint(root):
        return root
    found = list_checkpoints(root)
    return found[-1] if found else None


def write_checkpoint(
    path: str | Path,
    write_files: Callable[[Path], None],
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Create checkpoint folder ``path`` atomically and return it.

    ``write_files(tmp)`` writes the content into a temporary sibling folder; the
    ``COMPLETE`` marker (``info`` plus the list of files and their sizes) is written last
    and the folder is renamed to ``path``. An existing checkpoint at ``path`` is replaced
    only after the new one is complete. If ``write_files`` fails, nothing is left behind.
    Folders and files get the umask's permissions (see :mod:`synthsae.atomic_files`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, path.name)
    try:
        write_files(tmp)
        restore_plain_modes(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        for file in files:
            fsync_file(file)
        names = [str(p.relative_to(tmp)) for p in files]
        sizes = {str(p.relative_to(tmp)): p.stat().st_size for p in files}
        marker = tmp / COMPLETE_MARKER
        marker.write_text(json.dumps({**dict(info or {}), "files": names, "sizes": sizes}, indent=2),
                          encoding="utf-8")
        fsync_file(marker)
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def check_checkpoint_files(path: str | Path) -> None:
    """Raise ``ValueError`` naming the first file of checkpoint ``path`` that is missing or whose
    size differs from the one its ``COMPLETE`` marker recorded (a truncated or replaced file)."""
    path = Path(path)
    info = read_checkpoint_info(path)
    sizes = info.get("sizes") or {}
    for name in info.get("files", []):
        file = path / name
        if not file.is_file():
            raise ValueError(f"damaged checkpoint {path}: {name} is missing")
        if name in sizes and file.stat().st_size != int(sizes[name]):
            raise ValueError(f"damaged checkpoint {path}: {name} has {file.stat().st_size} bytes, "
                             f"{int(sizes[name])} were written")
