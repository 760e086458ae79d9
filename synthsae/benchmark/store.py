"""A benchmark's output folder: checked before training, one folder per finished SAE, resume.

Layout::

    benchmark_config.json          written before any training (``--resume DIR`` reads it)
    saes/<run name>/               one per finished SAE, written as soon as it is evaluated:
        sae_weights.safetensors, cfg.json   its inference form (``SAE.load_from_disk``)
        run.json                   its table row, full eval, setup; written last, so a
                                   folder without it is an unfinished run
    leaderboard.md/.csv/.json, leaderboard_runs.csv, plots/, synthetic_model/   at the end

Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CONFIG_FILENAME",
    "RUN_FILENAME",
    "SAES_DIRNAME",
    "RunRecord",
    "prepare_output_dir",
    "read_finished_runs",
    "write_run",
]

CONFIG_FILENAME = "benchmark_config.json"
RUN_FILENAME = "run.json"
SAES_DIRNAME = "saes"


@dataclass
class RunRecord:
    """One finished SAE: its table ``row``, its full ``eval`` (and ``absorption``) as dicts,
    its ``setup``, and its inference weights and config (``None`` once written)."""

    row: dict[str, Any]
    eval: dict[str, Any]
    setup: dict[str, Any]
    absorption: dict[str, Any] | None = None
    weights: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None

    @property
    def name(self) -> str:
        return str(self.row["name"])

    def payload(self) -> dict[str, Any]:
        """What ``run.json`` holds."""
        return {"format_version": 1, "row": self.row, "eval": self.eval, "setup": self.setup,
                "absorption": self.absorption}


def prepare_output_dir(path: str | Path, *, resume: bool, overwrite: bool = False) -> Path:
    """Check the output folder before any training (nothing is built before this).

    A new run needs an empty (or missing) folder; with ``overwrite`` an earlier run's folder
    is cleared (:mod:`synthsae.output_folders` guards what may be cleared). A resumed run
    needs the folder of an earlier benchmark (with its ``benchmark_config.json``). The
    folder must be writable either way.

    Raises:
        OutputFolderExistsError: a non-empty folder without ``resume`` or ``overwrite``.
        OutputNotWritableError: the folder cannot be created or written.
        FileNotFoundError: ``resume`` on a folder that is not a benchmark's.
    """
    from synthsae.output_folders import check_new_output_folder, check_writable, clear_output_folder

    out = Path(path).expanduser()
    if resume:
        if not (out / CONFIG_FILENAME).is_file():
            raise FileNotFoundError(f"cannot resume {out}: it holds no {CONFIG_FILENAME} (not a benchmark folder)")
        _remove_temporaries(out)
    else:
        check_new_output_folder(out, "output_dir", overwrite=overwrite,
                                remedy=f"continue it with resume (--resume {out}) or pass overwrite to clear it")
    check_writable(out, "output_dir")
    if overwrite and not resume:
        clear_output_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _remove_temporaries(out: Path) -> None:
    """Remove the half-written temporaries a killed benchmark left (its process is gone)."""
    from synthsae.atomic_files import remove_stale_temporaries

    remove_stale_temporaries(out)
    saes = out / SAES_DIRNAME
    if saes.is_dir():
        remove_stale_temporaries(saes)
        for folder in saes.iterdir():
            if folder.is_dir():
                remove_stale_temporaries(folder)


def write_run(out: Path, record: RunRecord) -> Path:
    """Write one finished SAE (weights and ``cfg.json``, then ``run.json``); returns its folder."""
    from synthsae.saes.io import save_json_atomic, save_sae_files

    folder = out / SAES_DIRNAME / record.name
    if record.weights is not None:
        state, cfg_dict = record.weights
        save_sae_files(folder, state, cfg_dict)
    save_json_atomic(folder / RUN_FILENAME, record.payload())
    return folder


def read_finished_runs(out: Path) -> dict[str, RunRecord]:
    """Every run whose ``run.json`` and weights are in place, by name (weights not loaded)."""
    found: dict[str, RunRecord] = {}
    root = out / SAES_DIRNAME
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        run_file = folder / RUN_FILENAME
        if not run_file.is_file() or not (folder / "sae_weights.safetensors").is_file():
            continue
        try:
            data = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged record: the run is trained again
        if not isinstance(data, Mapping) or not isinstance(data.get("row"), Mapping):
            continue
        record = RunRecord(dict(data["row"]), dict(data.get("eval") or {}), dict(data.get("setup") or {}),
                           data.get("absorption"))
        found[record.name] = record
    return found
