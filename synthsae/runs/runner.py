"""SyntheticSAERunner: a full training run on a synthetic model.

``SyntheticSAERunner(cfg).run()`` loads or builds the synthetic model, builds the SAE,
trains it with the shared :class:`~synthsae.training.trainer.Trainer`, evaluates it
every ``eval_frequency`` steps and at the end, writes checkpoints and outputs, and
returns a :class:`SyntheticSAERunnerResult`.

Random streams (all derived from ``cfg.seed``; ``None`` draws a seed and records it):

* ``seed``: SAE initialisation, then the global torch RNG during training (run inside
  ``torch.random.fork_rng``, so the caller's global RNG is left as it was);
* ``seed + 1``: the training batches (the model's private sampling generator);
* ``seed + 2``: every eval. Each eval restarts this stream, so all evals of a run see
  the same samples and evals never shift the training stream.

Resume: a checkpoint holds the trainer state (SAE, Adam, step, firing statistics,
scaler), the data generator's state and every global RNG state. A run resumed from it
performs exactly the remaining steps of the uninterrupted run on the same batches, so
its final weights are identical (bit for bit on the CPU). It continues in the run's own
folders (:mod:`synthsae.runs.run_folders`), its ``metrics.jsonl`` cut back to the
checkpoint, and skips a damaged newest checkpoint (:mod:`synthsae.runs.resume_point`).

Run safety: a non-empty output or checkpoint folder (an earlier run's) is refused before
the model is built unless ``overwrite=True``, and every folder is checked writable then.
SIGINT (Ctrl-C) or SIGTERM during training finishes the step, writes a checkpoint and
raises :class:`~synthsae.training.interrupts.TrainingInterrupted`, which says how to
resume; a second signal stops at once. Outputs that cannot be written after training
are reported (a warning and ``result.write_errors``) without losing the result.

Multi-process training (``torchrun``, see :mod:`synthsae.training.distributed`): when
``RANK``/``WORLD_SIZE`` are set and no process group exists yet, the runner creates one
(NCCL for a CUDA ``device``, gloo otherwise). Every rank builds the same model and SAE
(the seed is rank 0's, also when ``seed=None``); rank ``r`` draws its training batches
with sampling seed ``rank_seed(seed + 1, r)`` (rank 0's stream is the single-process
one). ``batch_size`` is per rank; ``training_samples`` counts all ranks' rows. Only rank
0 writes ``output_path``, ``metrics.jsonl``, wandb and checkpoints, and only it runs
evals; the other ranks wait for it at the next collective or barrier. A checkpoint
also holds every rank's data-generator and RNG state (gathered to rank 0), so a resume
with the same number of ranks is bit-identical too; resuming with a different number
of ranks (or a single-process checkpoint under torchrun) is refused.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import secrets
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthsae.evals.eval_sae import SyntheticDataEvalResult, eval_sae_on_synthetic_data
from synthsae.runs.activation_iterator import SyntheticActivationIterator
from synthsae.runs.prefetch import training_threads
from synthsae.runs.resume_point import ResumePoint, load_resume_point
from synthsae.runs.run_folders import check_run_folders
from synthsae.runs.runner_config import SyntheticSAERunnerConfig
from synthsae.runs.runner_files import (
    EVAL_STATS_FILENAME,
    prepare_run_folders,
    restore_runner_state,
    save_outputs,
    try_write,
    write_runner_checkpoint,
)
from synthsae.runs.runner_hooks import (
    PeriodicEval,
    WandbHistograms,
    warn_if_slow_autocast,
)
from synthsae.saes.base import TrainingSAE
from synthsae.synthetic.synthetic_model import SyntheticModel
from synthsae.training import distributed
from synthsae.training.interrupts import (
    InterruptGuard,
    StopOnInterrupt,
    TrainingInterrupted,
    signal_name,
)
from synthsae.training.logging import MetricsLogger
from synthsae.training.trainer import (
    NonFiniteLossError,
    SampleThresholdCallback,
    Trainer,
    TrainerConfig,
    checkpoint_thresholds,
)

__all__ = ["EVAL_STATS_FILENAME", "SyntheticSAERunner", "SyntheticSAERunnerResult"]

SAMPLING_SEED_OFFSET, EVAL_SEED_OFFSET = 1, 2


def _env_rank() -> int:
    """This process's rank as torchrun announces it (0 outside torchrun), before any process group exists."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


@dataclass
class SyntheticSAERunnerResult:
    """What :meth:`SyntheticSAERunner.run` returns.

    Attributes:
        sae: the trained SAE (training form).
        synthetic_model: the model the SAE was trained on.
        final_eval: the final evaluation, or ``None`` if it was disabled.
        output_path: the output folder, or ``None`` if nothing was written.
        train_seconds: wall time of training (data generation included, evals and
            checkpoint writes excluded) in this process.
        samples_per_second: rows trained per second over ``train_seconds``.
        write_errors: the outputs that could not be written after training (each
            ``"what (error)"``); the run itself succeeded.
    """

    sae: TrainingSAE
    synthetic_model: SyntheticModel
    final_eval: SyntheticDataEvalResult | None
    output_path: Path | None
    train_seconds: float | None = None
    samples_per_second: float | None = None
    write_errors: list[str] = field(default_factory=list)


class SyntheticSAERunner:
    """Trains one SAE on a synthetic model (see the module docstring).

    Args:
        cfg: the run configuration.
        override_synthetic_model: train on this model instead of ``cfg.synthetic_model``.
        override_sae: train this SAE instead of building one from ``cfg.sae``.
        overwrite: clear a non-empty ``output_path`` / ``checkpoint_path`` when the run
            starts. Without it such a folder (an earlier run's) is refused at
            construction, before the model is built; the reference's runner wrote into it
            silently, mixing the two runs' files.

    Raises:
        ValueError: if the SAE's ``d_in`` differs from the model's ``hidden_dim``.
        FileNotFoundError: if ``cfg.synthetic_model`` names a missing local model.
        OutputFolderExistsError: (a ``ValueError``) if an output folder holds an earlier
            run and ``overwrite`` is False.
        OutputNotWritableError: (a ``ValueError``) if an output folder cannot be written.
    """

    def __init__(
        self,
        cfg: SyntheticSAERunnerConfig,
        override_synthetic_model: SyntheticModel | None = None,
        override_sae: TrainingSAE | None = None,
        *,
        overwrite: bool = False,
        _folders_checked: bool = False,
    ) -> None:
        if not isinstance(cfg, SyntheticSAERunnerConfig):
            raise TypeError(f"cfg must be a SyntheticSAERunnerConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.overwrite = bool(overwrite)
        if not _folders_checked and _env_rank() == 0:  # before the model is built (resume() checks itself)
            check_run_folders(cfg, overwrite=self.overwrite)
        # under torchrun: join (or create) the process group before anything touches the device
        distributed.init_distributed_from_env("nccl" if torch.device(cfg.device).type == "cuda" else "gloo")
        self.world_size = distributed.world_size() if distributed.is_distributed() else 1
        self.rank = distributed.rank() if self.world_size > 1 else 0
        seed = cfg.seed if cfg.seed is not None else secrets.randbelow(2**31)
        self.seed = distributed.broadcast_object(seed) if self.world_size > 1 else seed
        self._model_given = override_synthetic_model is not None
        if override_synthetic_model is not None:
            self.synthetic_model = override_synthetic_model
        else:
            try:
                self.synthetic_model = SyntheticModel.load_from_source(cfg.synthetic_model, device=cfg.device)
            except FileNotFoundError as err:
                raise FileNotFoundError(f"synthetic_model: {err}") from None
        hidden = self.synthetic_model.hidden_dim
        if override_sae is not None:
            if override_sae.cfg.d_in != hidden:
                raise ValueError(f"override_sae has d_in={override_sae.cfg.d_in}, but the synthetic model's "
                                 f"hidden_dim is {hidden}")
            self.sae = override_sae
        else:
            sae_cfg = copy.deepcopy(cfg.sae_config(hidden))
            from synthsae.saes.registry import get_sae_architecture

            sae_cls = get_sae_architecture(sae_cfg.architecture()).training_cls
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.sae = sae_cls(sae_cfg)
        self.sae.to(cfg.device)
        warn_if_slow_autocast(cfg)
        self._resume: ResumePoint | None = None
        self._logger: MetricsLogger | None = None
        self._model_dir: Path | None = None  # where checkpoints find the model (built models only)
        self.trainer: Trainer | None = None
        self.paused_seconds = 0.0  # time spent in evals and checkpoint writes, not counted as training
        self._eval_threads: int | None = None  # torch threads for evals (those of the caller)

    # ------------------------------------------------------------------ resume
    @classmethod
    def resume(
        cls,
        checkpoint_dir: str | Path,
        overrides: Mapping[str, Any] | None = None,
        override_synthetic_model: SyntheticModel | None = None,
        *,
        overwrite: bool = False,
    ) -> SyntheticSAERunner:
        """A runner that continues from a checkpoint; call :meth:`run` on it.

        ``checkpoint_dir`` is a run's output folder, its checkpoint folder (the most
        advanced readable checkpoint is used; unfinished ones are ignored, damaged ones
        reported and skipped) or one checkpoint. The run continues in its own folders
        (found relative to the checkpoint, so a moved run folder resumes into itself)
        and ``metrics.jsonl`` is cut back to the checkpoint, so it holds each step once.
        ``overrides`` (dotted keys) may change where things go (``output_path``,
        ``checkpoint_path``, ``logger.*``, evals); a new folder they name must be empty
        unless ``overwrite``. Changing training keys breaks the equality with an
        uninterrupted run.
        """
        point = load_resume_point(checkpoint_dir, overrides)
        if _env_rank() == 0:  # before the model is loaded: a bad folder fails fast
            check_run_folders(point.cfg, overwrite=overwrite, own=point.own)
        model = override_synthetic_model
        if model is None and point.model_dir is not None:
            model = SyntheticModel.load_from_disk(point.model_dir, device=point.cfg.device)
        runner = cls(point.cfg, override_synthetic_model=model, overwrite=overwrite, _folders_checked=True)
        saved_world = int(point.state.get("world_size", 1))
        if saved_world != runner.world_size:
            raise ValueError(f"{point.checkpoint} was written by a run with {saved_world} process(es); resume it "
                             f"with the same number (this run has {runner.world_size}): each rank restores its own "
                             "data stream, and the step count and LR schedule depend on the number of ranks")
        runner._resume = point
        runner._model_dir = point.model_dir.resolve() if point.model_dir is not None else None
        return runner

    @property
    def resume_point(self) -> ResumePoint | None:
        """The checkpoint this runner continues from (:meth:`resume`), ``None`` for a fresh run."""
        return self._resume

    # ------------------------------------------------------------------ run
    def run(self) -> SyntheticSAERunnerResult:
        """Train, evaluate and save; see the module docstring.

        Raises:
            TrainingInterrupted: (a ``KeyboardInterrupt``) after SIGINT/SIGTERM: the step
                in progress was finished and checkpointed; the exception names the
                checkpoint and how to resume. A second signal stops at once
                (``KeyboardInterrupt``).
        """
        cfg = self.cfg
        out = Path(cfg.output_path) if cfg.output_path is not None else None
        main = self.rank == 0  # only rank 0 writes files, logs and evaluates
        if main:
            prepare_run_folders(self, out)
        logging_cfg = dataclasses.replace(cfg.logger, run_name=cfg.logger.run_name or cfg.default_run_name())
        if not main:
            logging_cfg = dataclasses.replace(logging_cfg, log_to_wandb=False)
        logger = self._logger = MetricsLogger(out if main else None, logging_cfg, wandb_config=cfg.to_dict())
        device = torch.device(cfg.device)
        cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=cuda):
                result = self._run(out, logger)
        finally:
            logger.close()
        distributed.barrier()  # every rank returns once rank 0's outputs are written
        return result

    def _run(self, out: Path | None, logger: MetricsLogger) -> SyntheticSAERunnerResult:
        cfg, model = self.cfg, self.synthetic_model
        model.set_sampling_seed(distributed.rank_seed(self.seed + SAMPLING_SEED_OFFSET, self.rank))
        torch.manual_seed(self.seed)
        data = SyntheticActivationIterator(model.feature_dict, model.activation_generator, cfg.batch_size,
                                           autocast=cfg.autocast_data, prefetch=cfg.prefetch_batches)
        self.paused_seconds = 0.0  # seconds spent in evals and checkpoint writes
        callbacks: list[Any] = [logger]
        if self.rank == 0:  # the other ranks wait for its evals at the next gradient all_reduce
            callbacks += [PeriodicEval(self, logger), WandbHistograms(self, logger)]
        if cfg.checkpoint_path is not None and cfg.n_checkpoints > 0:
            thresholds = checkpoint_thresholds(cfg.training_samples, cfg.n_checkpoints)
            callbacks.append(SampleThresholdCallback(thresholds, lambda t: self._checkpoint(t, final=False)))
        guard = InterruptGuard("finishing this step and writing a checkpoint (press Ctrl-C again to stop at once)")
        trainer_cfg = self._trainer_config(logger)
        controller = cfg.l0_controller()  # steers the sparsity coefficient to cfg.target_l0 (checkpointed)
        if controller is not None:
            callbacks.insert(0, controller)
        callbacks.append(StopOnInterrupt(guard, sync_every=trainer_cfg.log_frequency))  # last: after the step's work
        trainer = self.trainer = Trainer(self.sae, data, trainer_cfg, callbacks)
        start_step = restore_runner_state(self, trainer, data, logger)
        if self.world_size > 1:
            logger.log({"event": "distributed", "world_size": self.world_size,
                        "global_batch_size": cfg.batch_size * self.world_size}, start_step)
        start_samples, t0 = trainer.samples_seen, time.perf_counter()
        self._eval_threads = torch.get_num_threads()
        with guard:
            try:
                with training_threads(cfg.device, cfg.prefetch_batches > 0):
                    trainer.fit()
            except NonFiniteLossError as err:
                logger.log({"event": "non_finite_loss", "error": str(err),
                            **{f"losses/{k}": v for k, v in err.losses.items()}}, err.step)
                raise
            except TrainingInterrupted as stop:
                self._stop(stop, trainer, logger)
            finally:
                data.close()  # the background producer, if any: training is over (or stopped)
        train_s = time.perf_counter() - t0 - self.paused_seconds
        rate = (trainer.samples_seen - start_samples) / train_s if train_s > 0 else None
        errors: list[str] = []
        if cfg.save_final_checkpoint and cfg.checkpoint_path is not None:
            try_write(self, errors, f"the final checkpoint in {cfg.checkpoint_path}",
                      lambda: self._checkpoint(trainer, final=True))
        final_eval = None
        if cfg.run_final_eval and cfg.eval_samples > 0 and self.rank == 0:
            final_eval = self.evaluate(scaled=False)
            logger.log(final_eval.to_log_dict(prefix="final/"), trainer.step,
                       histograms=self.histograms() if logger.wandb_run is not None else None)
        logger.log({"final/train_seconds": train_s, "final/samples_per_second": rate,
                    "final/steps": trainer.step - start_step}, trainer.step)
        if out is not None and self.rank == 0:
            save_outputs(self, out, final_eval, errors)
            logger.log_model_artifact(out, logger.cfg.run_name or cfg.default_run_name(), aliases=["final"])
        if errors:
            warnings.warn("the run finished but could not write " + "; ".join(errors)
                          + " (the result holds the trained SAE and its metrics)", UserWarning, stacklevel=3)
        return SyntheticSAERunnerResult(self.sae, model, final_eval, out, train_s, rate, errors)

    def _stop(self, stop: TrainingInterrupted, trainer: Trainer, logger: MetricsLogger) -> None:
        """After SIGINT/SIGTERM: checkpoint the finished step, then re-raise ``stop`` with where it went."""
        logger.log({"event": "interrupted", "signal": signal_name(stop.signum)}, trainer.step)
        if self.cfg.checkpoint_path is not None:
            stop.checkpoint = self._checkpoint(trainer, final=False)
            stop.resume_from = self.cfg.output_path if self.cfg.output_path is not None else self.cfg.checkpoint_path
        raise stop

    def _trainer_config(self, logger: MetricsLogger) -> TrainerConfig:
        cfg = self.cfg
        return TrainerConfig(
            total_training_samples=cfg.training_samples, batch_size=cfg.batch_size, lr=cfg.lr, lr_end=cfg.lr_end,
            lr_scheduler_name=cfg.lr_scheduler_name, lr_warm_up_steps=cfg.lr_warm_up_steps,
            lr_decay_steps=cfg.lr_decay_steps, n_restart_cycles=cfg.n_restart_cycles, adam_beta1=cfg.adam_beta1,
            adam_beta2=cfg.adam_beta2, dead_feature_window=cfg.dead_feature_window,
            feature_sampling_window=cfg.feature_sampling_window, device=cfg.device, autocast=cfg.autocast_sae,
            log_frequency=logger.cfg.wandb_log_frequency, n_batches_for_norm_estimate=cfg.n_batches_for_norm_estimate,
            show_progress=cfg.show_progress,
        )

    def _config_dict(self) -> dict[str, Any]:
        """The config as saved: the SAE section with its resolved ``d_in`` and the seed used."""
        d = self.cfg.to_dict()
        d["sae"] = {**self.sae.cfg.to_dict(), "device": self.cfg.device}
        d["seed"] = self.seed
        return d

    # ------------------------------------------------------------------ evals
    @contextlib.contextmanager
    def _eval_stream(self) -> Iterator[None]:
        gen = self.synthetic_model.activation_generator
        data = self.trainer.data if self.trainer is not None else None
        with data.paused() if hasattr(data, "paused") else contextlib.nullcontext():  # the sampler is shared
            saved, threads = gen.generator, torch.get_num_threads()
            gen.generator = torch.Generator(device=self.synthetic_model.device).manual_seed(self.seed + EVAL_SEED_OFFSET)
            torch.set_num_threads(self._eval_threads or threads)  # the producer is paused: evals get its core
            try:
                yield
            finally:
                gen.generator = saved
                torch.set_num_threads(threads)

    def evaluate(self, scaled: bool = True, num_samples: int | None = None) -> SyntheticDataEvalResult:
        """Evaluate the SAE on the eval stream (``scaled``: through the trainer's activation scaler)."""
        scaler = self.trainer.activation_scaler if scaled and self.trainer is not None else None
        with self._eval_stream():
            return eval_sae_on_synthetic_data(
                self.sae, self.synthetic_model.feature_dict, self.synthetic_model.activation_generator,
                num_samples=num_samples or self.cfg.eval_samples, batch_size=self.cfg.batch_size,
                activation_scaler=scaler if scaler is not None and scaler.scaling_factor is not None else None,
                show_progress=self.cfg.show_progress,
            )

    def histograms(self) -> dict[str, torch.Tensor]:
        """The SAE's weight histograms for wandb (``weights/W_dec_norms``, ...)."""
        hist = getattr(self.sae, "log_histograms", None)
        return {k: torch.as_tensor(v) for k, v in hist().items()} if callable(hist) else {}

    # ------------------------------------------------------------------ checkpoints and outputs
    def _checkpoint(self, trainer: Trainer, final: bool) -> Path:
        """Write a complete checkpoint of the current state (atomically) and return it
        (see :func:`~synthsae.runs.runner_files.write_runner_checkpoint`)."""
        return write_runner_checkpoint(self, trainer, final)
