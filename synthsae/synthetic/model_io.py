"""Reading and writing :class:`SyntheticModel` directories.

The layout is the reference library's, so directories move both ways:

- ``synthetic_model_config.json``: ``cfg.to_dict()``, indented by 2;
- ``synthetic_model.safetensors``: ``feature_vectors [F, D]``, ``bias [D]``,
  ``firing_probabilities [F]`` (after compensation), and with a correlation
  ``correlation_factor [F, R]`` and ``correlation_diag [F]``; we add
  ``mean_firing_magnitudes [F]`` and ``std_firing_magnitudes [F]`` (ignored by the
  reference, which regenerates magnitudes from the config);
- ``hierarchy.json``: only when the model has a hierarchy (written without indentation).

Saves are atomic: everything is written into a temporary sibling directory that is
then renamed into place (:mod:`synthsae.atomic_files`, so files and folders get the
umask's permissions), and a failed save never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from synthsae.atomic_files import make_temp_dir, replace_dir, restore_plain_modes
from synthsae.synthetic.correlation import LowRankCorrelationMatrix
from synthsae.synthetic.feature_dictionary import FeatureDictionary
from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
from synthsae.synthetic.magnitudes import MagnitudeConfig
from synthsae.synthetic.model_build import build_magnitudes, make_activation_generator
from synthsae.synthetic.model_config import (
    SYNTHETIC_MODEL_CONFIG_FILENAME,
    SYNTHETIC_MODEL_HIERARCHY_FILENAME,
    SYNTHETIC_MODEL_WEIGHTS_FILENAME,
    SyntheticModelConfig,
)

if TYPE_CHECKING:
    from synthsae.synthetic.synthetic_model import SyntheticModel

__all__ = ["load_model_dir", "read_json", "save_model_dir"]

MODEL_FILES = (SYNTHETIC_MODEL_CONFIG_FILENAME, SYNTHETIC_MODEL_WEIGHTS_FILENAME, SYNTHETIC_MODEL_HIERARCHY_FILENAME)
MAGNITUDE_TENSORS = ("std_firing_magnitudes", "mean_firing_magnitudes")


# ---------------------------------------------------------------- writing
def _tensors_of(model: SyntheticModel) -> dict[str, torch.Tensor]:
    ag = model.activation_generator
    fd = model.feature_dict
    tensors = {
        "feature_vectors": fd.feature_vectors,
        "bias": fd.bias,
        "firing_probabilities": ag.firing_probabilities,
    }
    if model.correlation_matrix is not None:
        tensors["correlation_factor"] = model.correlation_matrix.correlation_factor
        tensors["correlation_diag"] = model.correlation_matrix.correlation_diag
    tensors["std_firing_magnitudes"] = ag.std_firing_magnitudes
    tensors["mean_firing_magnitudes"] = ag.mean_firing_magnitudes
    # own, contiguous CPU copies: safetensors refuses views that share storage
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def _write_files(model: SyntheticModel, folder: Path) -> None:
    (folder / SYNTHETIC_MODEL_CONFIG_FILENAME).write_text(json.dumps(model.cfg.to_dict(), indent=2), encoding="utf-8")
    save_file(_tensors_of(model), str(folder / SYNTHETIC_MODEL_WEIGHTS_FILENAME), metadata={"format": "pt"})
    if model.hierarchy is not None:
        # compact: json's C encoder is only used without indentation (the 16k forest is
        # ~1 MB this way, 2.7 MB and several times slower to write indented)
        text = json.dumps(model.hierarchy.to_dict())
        (folder / SYNTHETIC_MODEL_HIERARCHY_FILENAME).write_text(text, encoding="utf-8")
    restore_plain_modes(folder)  # safetensors writes 0600 files


def _only_model_files(path: Path) -> bool:
    return all(entry.name in MODEL_FILES for entry in path.iterdir())


def save_model_dir(model: SyntheticModel, path: Path) -> Path:
    """Write ``model`` to the directory ``path`` atomically and return ``path``.

    A new directory appears whole or not at all. An existing directory that holds
    only model files is swapped out whole (old moved aside, new renamed in, old
    removed). An existing directory with other files keeps them: the new model files
    replace the old ones one by one with atomic renames, and a stale ``hierarchy.json``
    is removed.

    Raises:
        NotADirectoryError: if ``path`` exists and is not a directory.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"cannot save a SyntheticModel to {path}: it exists and is not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(path.parent, path.name)
    try:
        _write_files(model, staging)
        if not path.exists():
            os.replace(staging, path)
        elif path.is_symlink() or not _only_model_files(path):
            for name in MODEL_FILES:
                if (staging / name).exists():
                    os.replace(staging / name, path / name)
                elif name == SYNTHETIC_MODEL_HIERARCHY_FILENAME and (path / name).exists():
                    (path / name).unlink()
        else:
            replace_dir(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path


# ---------------------------------------------------------------- reading
def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file; FileNotFoundError / ValueError name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"corrupt {what} file {path}: {err}") from err


def _read_config(path: Path) -> SyntheticModelConfig:
    config_path = path / SYNTHETIC_MODEL_CONFIG_FILENAME
    if not path.is_dir():
        raise FileNotFoundError(
            f"no SyntheticModel directory at {path}: {SYNTHETIC_MODEL_CONFIG_FILENAME} not found"
        )
    data = read_json(config_path, SYNTHETIC_MODEL_CONFIG_FILENAME)
    try:
        return SyntheticModelConfig.from_dict(data)
    except (ValueError, TypeError) as err:
        raise ValueError(f"invalid config in {config_path}: {err}") from err


def _read_tensors(path: Path, cfg: SyntheticModelConfig, device: str) -> dict[str, torch.Tensor]:
    weights_path = path / SYNTHETIC_MODEL_WEIGHTS_FILENAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"{SYNTHETIC_MODEL_WEIGHTS_FILENAME} file not found: {weights_path}")
    try:
        tensors = load_file(str(weights_path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"corrupt {SYNTHETIC_MODEL_WEIGHTS_FILENAME} file {weights_path}: {err}") from err
    f, d = cfg.num_features, cfg.hidden_dim
    expected: dict[str, tuple[int, ...] | None] = {
        "feature_vectors": (f, d),
        "bias": (d,),
        "firing_probabilities": (f,),
    }
    if cfg.correlation is not None or "correlation_factor" in tensors or "correlation_diag" in tensors:
        expected["correlation_factor"] = None  # [F, R]; checked below
        expected["correlation_diag"] = (f,)
    for name in MAGNITUDE_TENSORS:
        if name in tensors:
            expected[name] = (f,)
    for name, shape in expected.items():
        if name not in tensors:
            raise ValueError(f"tensor {name!r} missing from {weights_path}")
        actual = tuple(tensors[name].shape)
        if shape is not None and actual != shape:
            raise ValueError(f"tensor {name!r} in {weights_path} has shape {actual}, expected {shape}")
    if "correlation_factor" in tensors:
        factor = tensors["correlation_factor"]
        if factor.dim() != 2 or factor.shape[0] != f:
            raise ValueError(
                f"tensor 'correlation_factor' in {weights_path} has shape {tuple(factor.shape)}, expected ({f}, rank)"
            )
    return tensors


def _read_hierarchy(path: Path, cfg: SyntheticModelConfig) -> Hierarchy | None:
    hierarchy_path = path / SYNTHETIC_MODEL_HIERARCHY_FILENAME
    if not hierarchy_path.exists():
        if cfg.hierarchy is not None and cfg.hierarchy.total_root_nodes > 0:
            raise FileNotFoundError(
                f"{SYNTHETIC_MODEL_HIERARCHY_FILENAME} file not found: {hierarchy_path} "
                "(the config declares a hierarchy)"
            )
        return None
    data = read_json(hierarchy_path, SYNTHETIC_MODEL_HIERARCHY_FILENAME)
    try:
        return Hierarchy.from_dict(data)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"invalid hierarchy in {hierarchy_path}: {err}") from err


def load_model_dir(cls: type[SyntheticModel], path: Path, device: str) -> SyntheticModel:
    """Rebuild a model from directory ``path`` with exactly the saved tensors."""
    path = Path(path).expanduser()
    cfg = _read_config(path)
    tensors = _read_tensors(path, cfg, device)
    hierarchy = _read_hierarchy(path, cfg)
    correlation = None
    if "correlation_factor" in tensors:
        correlation = LowRankCorrelationMatrix(tensors["correlation_factor"], tensors["correlation_diag"])

    # a seeded throw-away draw keeps the global RNG untouched; the values are overwritten
    feature_dict = FeatureDictionary(
        num_features=cfg.num_features,
        hidden_dim=cfg.hidden_dim,
        bias=cfg.bias,
        initializer=None,
        device=device,
        seed=0 if cfg.seed is None else cfg.seed,
    )
    with torch.no_grad():
        feature_dict.feature_vectors.data = tensors["feature_vectors"]
        feature_dict.bias.data = tensors["bias"]

    if all(name in tensors for name in MAGNITUDE_TENSORS):
        std, mean = tensors["std_firing_magnitudes"], tensors["mean_firing_magnitudes"]
    else:
        if cfg.seed is None and any(
            isinstance(m, MagnitudeConfig) for m in (cfg.std_firing_magnitudes, cfg.mean_firing_magnitudes)
        ):
            warnings.warn(
                f"{path} has no saved magnitudes and its config has no seed: the per-feature "
                "magnitudes are regenerated at random and may differ from the saved model's",
                UserWarning,
                stacklevel=3,
            )
        std, mean = build_magnitudes(cfg)

    generator = make_activation_generator(
        cfg, tensors["firing_probabilities"], std, mean, hierarchy=hierarchy, correlation_matrix=correlation, device=device
    )
    return cls(
        cfg,
        feature_dict=feature_dict,
        activation_generator=generator,
        hierarchy=hierarchy,
        correlation_matrix=correlation,
        device=device,
    )
