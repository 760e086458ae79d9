"""The files of a :class:`~synthsae.runs.runner.SyntheticSAERunner` run: its folders at the
start, its checkpoints (writing one, restoring a resumed run from one) and its outputs.

At the start, :func:`prepare_run_folders` clears folders on ``overwrite``, removes a killed
run's temporaries and cuts a resumed run's ``metrics.jsonl`` back to its checkpoint. A
runner checkpoint folder holds the SAE (training form), ``sparsity.safetensors``,
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

from synthsae.atomic_files import remove_stale_temporaries
from synthsae.output_folders import clear_output_folder
from synthsae.runs.resume_point import RUNNER_STATE_STEM
from synthsae.runs.run_folders import RunFolders, relative_to, write_run_info
from synthsae.runs.runner_config import RUNNER_CONFIG_FILENAME
from synthsae.saes.io import SPARSITY_FILENAME, save_json_atomic, save_tensors_atomic
from synthsae.training import checkpoint as ckpt
from synthsae.training import distributed
from synthsae.training.logging import MetricsLogger, truncate_metrics
from synthsae.training.trainer import Trainer

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.runs.runner import SyntheticSAERunner

__all__ = ["EVAL_STATS_FILENAME", "MODEL_DIRNAME", "prepare_run_folders", "restore_runner_state", "save_outputs",
           "try_write", "write_runner_checkpoint"]

MODEL_DIRNAME = "synthetic_model"
EVAL_STATS_FILENAME = "eval_stats.json"


def write_runner_checkpoint(runner: SyntheticSAERunner, trainer: Trainer, final: bool) -> Path:
    """Write a complete checkpoint of the current state (atomically) and return it.

    Under torchrun every rank calls this (the non-finite check and the gathering of
    each rank's data-generator and RNG state are collectives); rank 0 writes.
    """
    t0 = time.perf_counter()
    trainer.check_finite()  # refuse to checkpoint a state reached through a NaN/inf loss
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


def prepare_run_folders(runner: SyntheticSAERunner, out: Path | None) -> None:
    """Clear folders on ``overwrite`` (never the resumed run's own), remove a killed run's
    temporaries, cut a resumed run's ``metrics.jsonl`` back to its checkpoint, and write
    ``run.json`` and the config."""
    cfg = runner.cfg
    own = runner._resume.own if runner._resume is not None else RunFolders(None, None)
    for folder in (cfg.output_path, cfg.checkpoint_path):
        if folder is not None:
            if runner.overwrite and not own.owns(Path(folder)):
                clear_output_folder(folder)
            remove_stale_temporaries(folder)  # half-written files of a killed run
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    if runner._resume is not None and own.owns(out) and runner._resume.metrics_bytes is not None:
        truncate_metrics(out, runner._resume.metrics_bytes)
    write_run_info(out, cfg.checkpoint_path)
    save_json_atomic(out / RUNNER_CONFIG_FILENAME, runner._config_dict())


def try_write(runner: SyntheticSAERunner, errors: list[str], what: str, write: Any) -> None:
    """Run ``write()``; in a single process an ``OSError`` is recorded in ``errors`` instead of
    raised, so that a full disk after training still leaves the result (under torchrun it raises:
    the other ranks wait for rank 0 at a barrier)."""
    try:
        write()
    except OSError as err:
        if runner.world_size > 1:
            raise
        errors.append(f"{what} ({err})")


def save_outputs(runner: SyntheticSAERunner, out: Path, final_eval: Any, errors: list[str]) -> None:
    """Write the outputs; each one that fails is added to ``errors`` and the others are still written."""
    try_write(runner, errors, f"the SAE in {out}", lambda: runner.sae.save_inference_model(out))
    if runner.trainer is not None:
        sparsity = runner.trainer.slots[0].stats.log_feature_sparsity()
        try_write(runner, errors, str(out / SPARSITY_FILENAME),
                  lambda: save_tensors_atomic(out / SPARSITY_FILENAME, {"sparsity": sparsity}))
    try_write(runner, errors, str(out / RUNNER_CONFIG_FILENAME),
              lambda: save_json_atomic(out / RUNNER_CONFIG_FILENAME, runner._config_dict()))
    if runner.cfg.save_synthetic_model:
        try_write(runner, errors, str(out / MODEL_DIRNAME), lambda: runner.synthetic_model.save(out / MODEL_DIRNAME))
    if final_eval is not None:
        try_write(runner, errors, str(out / EVAL_STATS_FILENAME),
                  lambda: save_json_atomic(out / EVAL_STATS_FILENAME, final_eval.to_dict()))
