"""Finding and reading the checkpoint a :class:`~synthsae.runs.runner.SyntheticSAERunner`
resumes from, with a fallback past damaged ones.

:func:`load_resume_point` tries the candidates of
:func:`~synthsae.runs.run_folders.resume_candidates` newest first. A checkpoint whose
files are missing, truncated (the sizes its ``COMPLETE`` marker recorded differ) or
unreadable is reported with a warning and the one before it is tried; if none can be
read, one ``ValueError`` lists what was wrong with each.

The resumed run writes into the run's own folders: its checkpoints continue in the
folder the checkpoint was found in, and its outputs go to the output folder recorded
(relative to that folder) in the checkpoint, wherever the run folder now lives.
Explicit ``overrides`` of ``output_path`` / ``checkpoint_path`` win.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthsae.runs.run_folders import RunFolders, resume_candidates
from synthsae.runs.runner_config import RUNNER_CONFIG_FILENAME, SyntheticSAERunnerConfig
from synthsae.training import checkpoint as ckpt

__all__ = ["ResumePoint", "load_resume_point"]

RUNNER_STATE_STEM = "runner_state"


@dataclass
class ResumePoint:
    """A readable checkpoint and the config of the run that continues from it.

    Attributes:
        checkpoint: the checkpoint folder.
        cfg: its saved config with the run's own folders (and any overrides) filled in.
        state: the runner state (trainer, RNGs, seed, ranks).
        info: the ``COMPLETE`` marker's content.
        own: the run's own folders (the resumed run may write into them although they hold files).
        model_dir: the saved copy of a built model the checkpoint refers to, if any.
        skipped: ``"path: reason"`` of each newer checkpoint that could not be read.
    """

    checkpoint: Path
    cfg: SyntheticSAERunnerConfig
    state: dict[str, Any]
    info: dict[str, Any]
    own: RunFolders
    model_dir: Path | None
    skipped: list[str]

    @property
    def metrics_bytes(self) -> int | None:
        """The length of ``metrics.jsonl`` when the checkpoint was written (``None``: not recorded)."""
        size = self.info.get("metrics_bytes")
        return int(size) if size is not None else None


def _read(found: Path) -> tuple[dict[str, Any], SyntheticSAERunnerConfig, dict[str, Any]]:
    ckpt.check_checkpoint_files(found)
    info = ckpt.read_checkpoint_info(found)
    cfg_path = found / RUNNER_CONFIG_FILENAME
    try:
        cfg = SyntheticSAERunnerConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{cfg_path}: {err}") from None
    state = ckpt.load_state(found, RUNNER_STATE_STEM)
    if not isinstance(state, dict) or "trainer" not in state or "seed" not in state:
        raise ValueError(f"{found}: the runner state lacks the trainer state or the seed")
    return info, cfg, state


def _own_folders(found: Path, info: Mapping[str, Any], cfg: SyntheticSAERunnerConfig) -> RunFolders:
    root = found.parent
    rel = info.get("output_path")
    if isinstance(rel, str):
        output: Path | None = Path(os.path.normpath(root / rel))
    elif "output_path" in info:  # recorded as None: the run wrote no outputs
        output = None
    else:  # a checkpoint from before the paths were recorded: the config's path, as saved
        output = Path(cfg.output_path) if cfg.output_path is not None else None
    return RunFolders(output=output, checkpoints=root)


def load_resume_point(source: str | Path, overrides: Mapping[str, Any] | None = None) -> ResumePoint:
    """Read the newest usable checkpoint under ``source`` (see the module docstring).

    Raises:
        FileNotFoundError: if ``source`` holds no complete checkpoint.
        ValueError: if every candidate is damaged (the message lists each reason).
    """
    skipped: list[str] = []
    for found in resume_candidates(source):
        try:
            info, cfg, state = _read(found)
        except (ValueError, OSError, KeyError, TypeError) as err:
            skipped.append(f"{found}: {err}")
            warnings.warn(f"skipping the damaged checkpoint {found}: {err}", UserWarning, stacklevel=3)
            continue
        own = _own_folders(found, info, cfg)
        cfg = dataclasses.replace(cfg, output_path=None if own.output is None else str(own.output),
                                  checkpoint_path=str(own.checkpoints))
        if overrides:
            cfg = cfg.with_overrides(overrides)
        cfg = dataclasses.replace(cfg, seed=int(state["seed"]))
        model_ref = info.get("synthetic_model")
        model_dir = found / model_ref if model_ref else None
        return ResumePoint(found, cfg, state, info, own, model_dir if model_dir and model_dir.is_dir() else None,
                           skipped)
    raise ValueError(f"no usable checkpoint in {source}: " + "; ".join(skipped))
