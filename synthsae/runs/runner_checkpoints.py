"""Checkpoints of a :class:`~synthsae.runs.runner.SyntheticSAERunner` run: writing one, and
restoring a resumed run's state from one.

A runner checkpoint folder holds the SAE (training form), ``sparsity.safetensors``,
``activation_scaler.json``, ``runner_config.json`` and the pickle-free runner state
(trainer state, every RNG state, the seed; under torchrun each rank's data stream and
RNGs). Its ``COMPLETE`` marker records, besides the step and samples seen, the saved
copy of a built model (relative path), the output folder relative to the checkpoint
folder and the length of ``metrics.jsonl`` at that moment (see
:mod:`synthsae.runs.run_folders`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthsae.runs.resume_point import RUNNER_STATE_STEM
from synthsae.runs.run_folders import relative_to
from synthsae.runs.runner_config import RUNNER_CONFIG_FILENAME
from synthsae.runs.runner_hooks import raise_if_non_finite
from synthsae.saes.io import SPARSITY_FILENAME, save_json_atomic, save_tensors_atomic
from synthsae.training import checkpoint as ckpt
from synthsae.training import distributed
from synthsae.training.logging import MetricsLogger
from synthsae.training.trainer import Trainer

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.runs.runner import SyntheticSAERunner

__all__ = ["MODEL_DIRNAME", "restore_runner_state", "write_runner_checkpoint"]

MODEL_DIRNAME = "synthetic_model"


def write_runner_checkpoint(runner: SyntheticSAERunner, trainer: Trainer, final: bool) -> Path:
    """Write a complete checkpoint of the current state (atomically) and return it.

    Under torchrun every rank calls this (the non-finite check and the gathering of
    each rank's data-generator and RNG state are collectives); rank 0 writes.
    """
    t0 = time.perf_counter()
    raise_if_non_finite(trainer)
    root = Path(runner.cfg.checkpoint_path)  # type: ignore[arg-type]
    name = f"final_{trainer.samples_seen}" if final else str(trainer.samples_seen)
    rng = ckpt.capture_rng_state()
    ranks = None
    if runner.world_size > 1:
        data_state = trainer.data.state_dict() if hasattr(trainer.data, "state_dict") else None
        ranks = distributed.gather_objects({"data": data_state, "rng": rng})
        if runner.rank != 0:
            distributed.barrier()
            runner.paused_seconds += time.perf_counter() - t0
            return root / name
    model_ref = _model_reference(runner, root)
    state: dict[str, Any] = {"trainer": trainer.state_dict(), "rng": rng, "seed": runner.seed}
    if ranks is not None:
        state.update(world_size=runner.world_size, ranks=ranks)
    sparsity = trainer.slots[0].stats.log_feature_sparsity()

    def write(tmp: Path) -> None:
        runner.sae.save_model(tmp)
        save_tensors_atomic(tmp / SPARSITY_FILENAME, {"sparsity": sparsity})
        trainer.activation_scaler.save(tmp / "activation_scaler.json")
        save_json_atomic(tmp / RUNNER_CONFIG_FILENAME, runner._config_dict())
        ckpt.save_state(tmp, state, RUNNER_STATE_STEM)

    info = {"step": trainer.step, "samples_seen": trainer.samples_seen, "final": final,
            "synthetic_model": model_ref, "output_path": relative_to(runner.cfg.output_path, root),
            "metrics_bytes": runner._logger.position() if runner._logger is not None else None}
    path = ckpt.write_checkpoint(root / name, write, info)
    distributed.barrier()
    runner.paused_seconds += time.perf_counter() - t0
    return path


def _model_reference(runner: SyntheticSAERunner, root: Path) -> str | None:
    """Relative path from a checkpoint to a saved copy of a model that ``cfg.synthetic_model``
    does not name (built from a config, or passed in); saved once per checkpoint folder."""
    if isinstance(runner.cfg.synthetic_model, str) and not runner._model_given and runner._model_dir is None:
        return None
    if runner._model_dir is None:
        target = root / MODEL_DIRNAME
        if not (target / "synthetic_model_config.json").is_file():
            runner.synthetic_model.save(target)
        runner._model_dir = target.resolve()
    rel = Path("..") / MODEL_DIRNAME if runner._model_dir == (root / MODEL_DIRNAME).resolve() else runner._model_dir
    return str(rel)


def restore_runner_state(runner: SyntheticSAERunner, trainer: Trainer, data: Any, logger: MetricsLogger) -> int:
    """Load the resumed checkpoint's state into ``trainer`` and ``data``; returns the start step."""
    if runner._resume is None:
        return 0
    state = runner._resume.state
    trainer.load_state_dict(state["trainer"])
    own = state["ranks"][runner.rank] if state.get("ranks") else None
    if own is not None:  # this rank's data stream and RNGs (the trainer state is rank 0's)
        if own["data"] is not None:
            data.load_state_dict(own["data"])
        ckpt.restore_rng_state(own["rng"])
    else:
        ckpt.restore_rng_state(state["rng"])
    for skipped in runner._resume.skipped:
        logger.log({"event": "skipped_damaged_checkpoint", "reason": skipped}, trainer.step)
    logger.log({"event": "resume", "checkpoint": str(runner._resume.checkpoint)}, trainer.step)
    return trainer.step
