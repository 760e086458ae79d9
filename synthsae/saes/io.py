"""Reading and writing SAE folders: ``sae_weights.safetensors`` plus ``cfg.json``.

Writes go through :mod:`synthsae.atomic_files`: each file is written under a temporary
name in the same folder (with the umask's permissions) and both files are renamed into
place only after both were written. Loading reads JSON and safetensors only; nothing
is unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from synthsae.atomic_files import write_files_atomically

__all__ = [
    "SAE_CFG_FILENAME", "SAE_WEIGHTS_FILENAME", "SPARSITY_FILENAME", "load_json", "load_sae_config",
    "load_sae_files", "load_tensors", "save_json_atomic", "save_sae_files", "save_tensors_atomic",
    "write_files_atomically",
]

SAE_WEIGHTS_FILENAME = "sae_weights.safetensors"
SAE_CFG_FILENAME = "cfg.json"
SPARSITY_FILENAME = "sparsity.safetensors"


def _json_writer(obj: Any) -> Callable[[Path], None]:
    text = json.dumps(obj, indent=2)  # fails before anything is written if obj is not JSON

    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


def _tensor_writer(tensors: Mapping[str, torch.Tensor]) -> Callable[[Path], None]:
    prepared = {
        name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()
    }

    def write(path: Path) -> None:
        save_file(prepared, str(path))

    return write


def save_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically."""
    path = Path(path)
    write_files_atomically(path.parent, {path.name: _json_writer(obj)})
    return path


def save_tensors_atomic(path: str | Path, tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write ``tensors`` as a safetensors file at ``path`` atomically."""
    path = Path(path)
    write_files_atomically(path.parent, {path.name: _tensor_writer(tensors)})
    return path


def save_sae_files(
    folder: str | Path, state_dict: Mapping[str, torch.Tensor], cfg_dict: Mapping[str, Any]
) -> tuple[Path, Path]:
    """Write ``sae_weights.safetensors`` and ``cfg.json`` into ``folder``; return both paths."""
    folder = Path(folder)
    write_files_atomically(
        folder,
        {
            SAE_WEIGHTS_FILENAME: _tensor_writer(state_dict),
            SAE_CFG_FILENAME: _json_writer(dict(cfg_dict)),
        },
    )
    return folder / SAE_WEIGHTS_FILENAME, folder / SAE_CFG_FILENAME


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"SAE file not found: {path}")


def load_json(path: str | Path) -> Any:
    """Read a JSON file; a missing file raises FileNotFoundError naming it, bad JSON ValueError."""
    path = Path(path)
    _require_file(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def load_sae_config(folder: str | Path) -> dict[str, Any]:
    """Read ``cfg.json`` from ``folder`` (it must hold a JSON object)."""
    path = Path(folder) / SAE_CFG_FILENAME
    cfg = load_json(path)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(cfg).__name__}")
    return cfg


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file onto ``device``; missing or corrupt files raise clear errors."""
    path = Path(path)
    _require_file(path)
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from None


def load_sae_files(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``(cfg_dict, state_dict)`` from an SAE folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"SAE folder not found: {folder} (expected {SAE_CFG_FILENAME})")
    cfg = load_sae_config(folder)
    tensors = load_tensors(folder / SAE_WEIGHTS_FILENAME, device=device)
    return cfg, tensors
