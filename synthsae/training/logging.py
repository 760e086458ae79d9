"""Training logs: ``LoggingConfig`` and a metrics writer (local JSON lines, optional wandb).

Every run appends one JSON object per log call to ``<output_dir>/metrics.jsonl``;
nothing there needs an account or a network. Weights & Biases is used only when
``LoggingConfig.log_to_wandb`` is True (it is off by default) and is imported lazily.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from synthsae.config_values import check_bool, check_int, check_str, dataclass_values

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.training.trainer import Trainer

METRICS_FILENAME = "metrics.jsonl"


@dataclass
class LoggingConfig:
    """Where and how often training metrics are logged.

    Attributes:
        log_to_wandb: also send metrics to Weights & Biases (off by default; needs
            ``pip install synthsae[wandb]``).
        log_activations_store_to_wandb / log_optimizer_state_to_wandb: accepted for
            config compatibility with the reference; there is no activation store, and the
            optimizer state is not uploaded.
        log_weights_to_wandb: with ``log_to_wandb``, the run's final SAE goes to wandb as a
            ``model`` artifact holding ``sae_weights.safetensors`` besides ``cfg.json`` and
            ``sparsity.safetensors`` (without it, the artifact holds those two only).
        wandb_project / wandb_entity / wandb_id / run_name: passed to ``wandb.init``
            (``wandb_id`` resumes an existing run).
        wandb_log_frequency: log training metrics every this many steps.
        eval_every_n_wandb_logs: with ``log_to_wandb``, the SAE's weight histograms
            (``weights/*``) go to wandb every ``wandb_log_frequency * eval_every_n_wandb_logs``
            steps (:attr:`eval_frequency_steps`), the reference's cadence for what it logs at
            eval time. The synthetic-data evals follow the runner's ``eval_frequency``.
    """

    log_to_wandb: bool = False
    log_activations_store_to_wandb: bool = False
    log_optimizer_state_to_wandb: bool = False
    log_weights_to_wandb: bool = False
    wandb_project: str = "synthsae"
    wandb_id: str | None = None
    run_name: str | None = None
    wandb_entity: str | None = None
    wandb_log_frequency: int = 10
    eval_every_n_wandb_logs: int = 100

    def __post_init__(self) -> None:
        for name in ("log_to_wandb", "log_activations_store_to_wandb", "log_optimizer_state_to_wandb",
                     "log_weights_to_wandb"):
            check_bool(f"LoggingConfig.{name}", getattr(self, name))
        self.wandb_project = check_str("LoggingConfig.wandb_project", self.wandb_project)
        for name in ("wandb_id", "run_name", "wandb_entity"):
            setattr(self, name, check_str(f"LoggingConfig.{name}", getattr(self, name), optional=True))
        for name in ("wandb_log_frequency", "eval_every_n_wandb_logs"):
            setattr(self, name, check_int(f"LoggingConfig.{name}", getattr(self, name), at_least=1))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoggingConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise a ``ValueError`` naming them."""
        return cls(**dataclass_values(cls, data))

    @property
    def eval_frequency_steps(self) -> int:
        """Steps between weight-histogram uploads: ``wandb_log_frequency * eval_every_n_wandb_logs``."""
        return self.wandb_log_frequency * self.eval_every_n_wandb_logs


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "LoggingConfig(log_to_wandb=True) needs the wandb package: pip install synthsae[wandb]"
        ) from err
    return wandb


def _jsonable(value: Any) -> Any:
    """Plain JSON value: tensors become numbers/lists, non-finite floats become None."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class MetricsLogger:
    """Appends metrics to ``<output_dir>/metrics.jsonl`` and, when enabled, to wandb.

    Each line is ``{"step": int, "sae_index": int | None, <metric key>: value, ...}``,
    flushed as it is written (the file is only ever appended to). It is also a
    trainer callback: pass it in ``Trainer(..., callbacks=[logger])`` and every
    ``on_log`` call is written. With several SAEs in one run, wandb keys are
    prefixed with ``sae{i}/``.

    Args:
        output_dir: folder for ``metrics.jsonl`` (created if missing); ``None`` disables the file.
        logging_cfg: a :class:`LoggingConfig` (defaults: wandb off).
        wandb_config: the run config passed to ``wandb.init(config=...)``.
    """

    def __init__(
        self,
        output_dir: str | Path | None,
        logging_cfg: LoggingConfig | None = None,
        wandb_config: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = logging_cfg or LoggingConfig()
        self.path: Path | None = None
        self._file = None
        self.n_saes = 1
        if output_dir is not None:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            self.path = Path(output_dir) / METRICS_FILENAME
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.wandb_run: Any = None
        if self.cfg.log_to_wandb:
            wandb = _import_wandb()
            self.wandb_run = wandb.init(
                project=self.cfg.wandb_project,
                entity=self.cfg.wandb_entity,
                id=self.cfg.wandb_id,
                name=self.cfg.run_name,
                config=wandb_config,
                resume="allow" if self.cfg.wandb_id else None,
                dir=str(output_dir) if output_dir is not None else None,
            )

    # ------------------------------------------------------------------ writing
    def log(
        self,
        metrics: dict[str, Any],
        step: int,
        sae_index: int | None = None,
        histograms: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Write one record; ``histograms`` (tensors) go to wandb only."""
        if self._file is not None:
            record = {"step": int(step), "sae_index": sae_index, **_jsonable(metrics)}
            self._file.write(json.dumps(record, allow_nan=False) + "\n")
            self._file.flush()
        if self.wandb_run is not None:
            prefix = self._wandb_prefix(sae_index)
            payload: dict[str, Any] = {prefix + k: _jsonable(v) for k, v in metrics.items()}
            payload.update(self._histogram_payload(histograms or {}, prefix))
            # wandb drops rows whose explicit step is not above its last committed one (a final
            # eval shares the last training step), so the step travels as a metric instead
            payload["step"] = int(step)
            self.wandb_run.log(payload)

    def log_histograms(self, histograms: dict[str, torch.Tensor], step: int, sae_index: int | None = None) -> None:
        """Send ``histograms`` (tensors of values) to wandb only; no-op without wandb."""
        if self.wandb_run is not None and histograms:
            payload = self._histogram_payload(histograms, self._wandb_prefix(sae_index))
            self.wandb_run.log({**payload, "step": int(step)})

    def _wandb_prefix(self, sae_index: int | None) -> str:
        return f"sae{sae_index}/" if sae_index is not None and self.n_saes > 1 else ""

    @staticmethod
    def _histogram_payload(histograms: dict[str, torch.Tensor], prefix: str) -> dict[str, Any]:
        if not histograms:
            return {}
        wandb = _import_wandb()
        return {prefix + key: wandb.Histogram(values.detach().float().cpu().numpy())
                for key, values in histograms.items()}

    def log_model_artifact(self, folder: str | Path, name: str, aliases: list[str] | None = None) -> None:
        """Upload a saved SAE folder to wandb as a ``model`` artifact (no-op without wandb).

        The artifact holds ``cfg.json`` and ``sparsity.safetensors`` (when present), plus
        ``sae_weights.safetensors`` when :attr:`LoggingConfig.log_weights_to_wandb` is set.
        ``name`` is made artifact-safe (only letters, digits, ``-``, ``_`` and ``.``).
        """
        if self.wandb_run is None:
            return
        wandb = _import_wandb()
        folder = Path(folder)
        wanted = ["cfg.json", "sparsity.safetensors"]
        if self.cfg.log_weights_to_wandb:
            wanted.insert(0, "sae_weights.safetensors")
        artifact = wandb.Artifact(re.sub(r"[^A-Za-z0-9_.-]", "_", name), type="model")
        for file_name in wanted:
            if (folder / file_name).is_file():
                artifact.add_file(str(folder / file_name))
        self.wandb_run.log_artifact(artifact, aliases=aliases)

    def position(self) -> int | None:
        """Bytes written to ``metrics.jsonl`` so far (every record is flushed), or ``None`` without a file.

        A checkpoint records it, so that a resume can drop the records written after the
        checkpoint (:func:`truncate_metrics`) and the log holds each step once.
        """
        if self._file is None:
            return None
        self._file.flush()
        return os.fstat(self._file.fileno()).st_size  # bytes, unlike a text file's opaque tell()

    def close(self) -> None:
        """Close the file and finish the wandb run (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ callback protocol
    def on_fit_start(self, trainer: Trainer) -> None:
        self.n_saes = len(trainer.saes)

    def on_log(self, step: int, metrics: dict[str, float], sae_index: int) -> None:
        self.log(metrics, step, sae_index)


def truncate_metrics(path: str | Path, size: int) -> int:
    """Cut ``metrics.jsonl`` (or the one in folder ``path``) back to its first ``size`` bytes.

    Used when a run resumes from a checkpoint that recorded ``size``: the records logged
    after that checkpoint (up to the interruption, maybe a half-written last line) are
    dropped, since the resumed run logs those steps again. A missing file, or one shorter
    than ``size`` (not the file the checkpoint saw), is left alone. Returns the number of
    bytes removed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILENAME
    if not path.is_file() or path.stat().st_size < size:
        return 0
    removed = path.stat().st_size - size
    if removed:
        with open(path, "r+b") as handle:
            handle.truncate(size)
    return removed


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Parse a ``metrics.jsonl`` file (or the folder holding one) into a list of records."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILENAME
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
