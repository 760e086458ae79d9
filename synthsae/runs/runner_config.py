"""Configuration of :class:`~synthsae.runs.runner.SyntheticSAERunner`.

:class:`SyntheticSAERunnerConfig` has the reference library's fields and defaults, plus
``seed`` and ``show_progress``. It is checked when it is built: every bad value raises
a ``ValueError``/``TypeError`` whose message starts with the key (``sae.k``,
``batch_size``, ...) and, when the config came from a file, the file.

The ``sae`` section may be a training-SAE config object or its dict form. In the dict
form ``d_in`` may be left out; the runner then fills it in from the synthetic model's
``hidden_dim``. A ``d_in`` that is given and does not match the model is an error.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from synthsae.config_values import (
    apply_overrides,
    load_config_data,
    parse_override,
    parse_yaml_scalar,
    unknown_keys_message,
    write_config_file,
)
from synthsae.config_values import check_bool as _bool
from synthsae.config_values import check_float as _float
from synthsae.config_values import check_int as _int
from synthsae.config_values import check_optional_str as _opt_str
from synthsae.saes.config import TrainingSAEConfig
from synthsae.synthetic.model_config import SyntheticModelConfig
from synthsae.training.logging import LoggingConfig
from synthsae.training.schedules import LRSchedule

__all__ = [
    "RUNNER_CONFIG_FILENAME",
    "SyntheticSAERunnerConfig",
    "load_config_data",
    "parse_override",
    "parse_yaml_scalar",
]

RUNNER_CONFIG_FILENAME = "runner_config.json"

# Keys of the reference's serialised config that we accept and drop.
_IGNORED_KEYS = ("sae_lens_version",)


def _training_cfg_class(architecture: Any) -> type[TrainingSAEConfig]:
    from synthsae.saes.registry import get_sae_architecture, list_sae_architectures

    if not isinstance(architecture, str):
        raise ValueError(f"sae.architecture must be a string, got {architecture!r}")
    try:
        entry = get_sae_architecture(architecture)
    except ValueError:
        trainable = [n for n in list_sae_architectures() if get_sae_architecture(n).training_cls is not None]
        raise ValueError(f"sae.architecture: unknown SAE architecture {architecture!r}; "
                         f"trainable architectures: {', '.join(trainable)}") from None
    if entry.training_cfg_cls is None:
        raise ValueError(f"sae.architecture: {architecture!r} is inference-only and cannot be trained")
    return entry.training_cfg_cls


def _prefixed(err: Exception, prefix: str) -> Exception:
    """The same kind of error with ``prefix`` in front of its message."""
    kind = type(err) if isinstance(err, (ValueError, TypeError)) else ValueError
    message = str(err)
    return kind(message if message.startswith(prefix) else f"{prefix}{message}")


def build_sae_config(data: Mapping[str, Any], d_in: int | None = None) -> TrainingSAEConfig:
    """A training-SAE config from its dict form (``architecture`` selects the class).

    ``d_in`` fills in a missing ``d_in``; keys that are not fields of the class raise a
    ``ValueError`` that names them.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"sae must be a mapping or a TrainingSAEConfig, got {type(data).__name__}")
    values = dict(data)
    if "architecture" not in values:
        raise ValueError("sae.architecture is required (e.g. 'batchtopk', 'topk', 'standard', 'jumprelu')")
    cfg_cls = _training_cfg_class(values["architecture"])
    known = sorted(f.name for f in fields(cfg_cls) if f.init)
    unknown = sorted(set(values) - set(known) - {"architecture"})
    if unknown:
        raise ValueError(unknown_keys_message(f"sae ({values['architecture']})", unknown, known))
    if values.get("d_in") is None:
        values["d_in"] = d_in if d_in is not None else 1  # placeholder: validates the other fields
    try:
        return cfg_cls.from_dict(values)
    except (ValueError, TypeError) as err:
        raise _prefixed(err, "sae: ") from None


# ------------------------------------------------------------------ the config
@dataclass
class SyntheticSAERunnerConfig:
    """Everything a :class:`~synthsae.runs.runner.SyntheticSAERunner` run needs.

    Attributes:
        synthetic_model: a :class:`SyntheticModelConfig` (a fresh model is built), or a
            string: a local model directory or a hub id (``"owner/name[:subfolder]"``).
            In the dict form, ``{"preset": "cpu_small"}`` names a preset.
        sae: a training-SAE config of any registered architecture, or its dict form
            (``architecture`` plus fields; ``d_in`` may be omitted and is then taken
            from the model).
        training_samples: rows to train on; ``training_samples // batch_size`` steps.
        batch_size: rows per step.
        lr, lr_warm_up_steps, lr_decay_steps, lr_scheduler_name, lr_end,
        n_restart_cycles: the LR schedule (``constant``, ``cosineannealing`` or
            ``cosineannealingwarmrestarts``; ``lr_end=None`` means ``lr / 10``).
        adam_beta1, adam_beta2: Adam betas.
        device: where the model samples and the SAE trains (``"cpu"``, ``"cuda"``...).
        autocast_sae, autocast_data: bf16 autocast of the SAE step / of data generation.
        n_checkpoints: evenly spaced checkpoints during training (resumable).
        checkpoint_path: folder of the checkpoints (``None``: no checkpoints).
        save_final_checkpoint: also checkpoint the end of training.
        output_path: folder of the outputs (``None``: nothing is written).
        save_synthetic_model: also save the model into ``output_path/synthetic_model``.
        eval_frequency: evaluate every this many steps (0: no periodic evals).
        eval_samples: samples per eval (0 disables every eval).
        run_final_eval: evaluate once more after training.
        dead_feature_window, feature_sampling_window: firing-statistics windows (steps).
        n_batches_for_norm_estimate: batches used to estimate the activation scale
            (only for ``normalize_activations="expected_average_only_in"``).
        logger: a :class:`LoggingConfig` (wandb off by default).
        seed: seeds the SAE initialisation and the sampling stream; ``None`` draws one.
        show_progress: show the training progress bar.
        prefetch_batches: chunks of training batches drawn ahead on a background thread
            while the SAE trains (0: draw each one when it is needed). The batches are the
            same either way.
    """

    synthetic_model: SyntheticModelConfig | str
    sae: TrainingSAEConfig | dict[str, Any]
    training_samples: int = 100_000_000
    batch_size: int = 1024
    lr: float = 3e-4
    lr_warm_up_steps: int = 0
    lr_decay_steps: int = 0
    lr_scheduler_name: str = "constant"
    lr_end: float | None = None
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    n_restart_cycles: int = 1
    device: str = "cpu"
    autocast_sae: bool = False
    autocast_data: bool = False
    n_checkpoints: int = 0
    checkpoint_path: str | None = "checkpoints"
    save_final_checkpoint: bool = False
    output_path: str | None = "output"
    save_synthetic_model: bool = False
    eval_frequency: int = 0
    eval_samples: int = 500_000
    run_final_eval: bool = True
    dead_feature_window: int = 1000
    feature_sampling_window: int = 2000
    n_batches_for_norm_estimate: int = 1000
    logger: LoggingConfig = field(default_factory=LoggingConfig)
    seed: int | None = 42
    show_progress: bool = True
    prefetch_batches: int = 2

    def __post_init__(self) -> None:
        self._check_model_and_sae()
        self.training_samples = _int("training_samples", self.training_samples, 1)
        self.batch_size = _int("batch_size", self.batch_size, 1)
        if self.training_samples < self.batch_size:
            raise ValueError(f"training_samples ({self.training_samples}) must be >= batch_size "
                             f"({self.batch_size}): otherwise there is no training step")
        self.lr = _float("lr", self.lr, positive=True)
        self.lr_warm_up_steps = _int("lr_warm_up_steps", self.lr_warm_up_steps, 0)
        self.lr_decay_steps = _int("lr_decay_steps", self.lr_decay_steps, 0)
        if self.lr_end is not None:
            self.lr_end = _float("lr_end", self.lr_end, low=0.0)
        self.adam_beta1 = _float("adam_beta1", self.adam_beta1, low=0.0, high_exclusive=1.0)
        self.adam_beta2 = _float("adam_beta2", self.adam_beta2, low=0.0, high_exclusive=1.0)
        self.n_restart_cycles = _int("n_restart_cycles", self.n_restart_cycles, 1)
        if not isinstance(self.lr_scheduler_name, str):
            raise TypeError(f"lr_scheduler_name must be a string, got {self.lr_scheduler_name!r}")
        try:
            LRSchedule(self.lr, self.total_training_steps, self.lr_warm_up_steps, self.lr_decay_steps,
                       self.lr_scheduler_name, self.lr_end, self.n_restart_cycles)
        except ValueError as err:
            raise ValueError(f"lr schedule: {err}") from None
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be a torch device string such as 'cpu' or 'cuda', got {self.device!r}") from None
        for key in ("autocast_sae", "autocast_data", "save_final_checkpoint", "save_synthetic_model",
                    "run_final_eval", "show_progress"):
            _bool(key, getattr(self, key))
        self.n_checkpoints = _int("n_checkpoints", self.n_checkpoints, 0)
        self.checkpoint_path = _opt_str("checkpoint_path", self.checkpoint_path)
        self.output_path = _opt_str("output_path", self.output_path)
        self.eval_frequency = _int("eval_frequency", self.eval_frequency, 0)
        self.eval_samples = _int("eval_samples", self.eval_samples, 0)
        self.dead_feature_window = _int("dead_feature_window", self.dead_feature_window, 1)
        self.feature_sampling_window = _int("feature_sampling_window", self.feature_sampling_window, 1)
        self.n_batches_for_norm_estimate = _int("n_batches_for_norm_estimate", self.n_batches_for_norm_estimate, 1)
        self.prefetch_batches = _int("prefetch_batches", self.prefetch_batches, 0)
        if self.seed is not None:
            self.seed = _int("seed", self.seed, 0)
        if isinstance(self.logger, Mapping):
            try:
                self.logger = LoggingConfig.from_dict(dict(self.logger))
            except (ValueError, TypeError) as err:
                raise _prefixed(err, "logger: ") from None
        if not isinstance(self.logger, LoggingConfig):
            raise TypeError(f"logger must be a LoggingConfig or its dict form, got {type(self.logger).__name__}")

    def _check_model_and_sae(self) -> None:
        sm = self.synthetic_model
        if isinstance(sm, Mapping):
            sm = _model_from_mapping(sm)
        elif isinstance(sm, Path):
            sm = str(sm)
        if not isinstance(sm, (SyntheticModelConfig, str)) or sm == "":
            raise TypeError("synthetic_model must be a SyntheticModelConfig, its dict form, a local path or a "
                            f"hub id, got {self.synthetic_model!r}")
        self.synthetic_model = sm
        hidden = sm.hidden_dim if isinstance(sm, SyntheticModelConfig) else None
        if isinstance(self.sae, Mapping):
            sae = dict(self.sae)
            built = build_sae_config(sae, d_in=hidden)  # validates every field
            self.sae = built if sae.get("d_in") is not None or hidden is not None else sae
        elif not isinstance(self.sae, TrainingSAEConfig):
            raise TypeError(f"sae must be a TrainingSAEConfig or its dict form, got {type(self.sae).__name__}")
        d_in = self.sae_d_in
        if hidden is not None and d_in is not None and d_in != hidden:
            raise ValueError(f"sae.d_in ({d_in}) does not match synthetic_model.hidden_dim ({hidden}); "
                             "set sae.d_in to the model's hidden_dim or leave it out to have it filled in")

    # ------------------------------------------------------------ derived values
    @property
    def total_training_steps(self) -> int:
        """``training_samples // batch_size``."""
        return self.training_samples // self.batch_size

    @property
    def architecture(self) -> str:
        """Registry name of the SAE architecture."""
        return self.sae.architecture() if isinstance(self.sae, TrainingSAEConfig) else str(self.sae["architecture"])

    @property
    def sae_d_in(self) -> int | None:
        """The SAE's ``d_in`` if it is known yet (``None`` until filled in from the model)."""
        return self.sae.d_in if isinstance(self.sae, TrainingSAEConfig) else self.sae.get("d_in")

    def sae_config(self, d_in: int) -> TrainingSAEConfig:
        """The SAE config for a model of hidden dimension ``d_in``.

        Raises:
            ValueError: if the config's own ``d_in`` is set and differs.
        """
        own = self.sae_d_in
        if own is not None and own != d_in:
            raise ValueError(f"sae.d_in ({own}) does not match the synthetic model's hidden_dim ({d_in}); "
                             "set sae.d_in to it or leave sae.d_in out to have it filled in")
        if isinstance(self.sae, TrainingSAEConfig):
            return self.sae
        return build_sae_config(self.sae, d_in=d_in)

    def default_run_name(self) -> str:
        """``synthetic-<architecture>-<d_sae>-LR-<lr>`` (the reference's default run name)."""
        d_sae = self.sae.d_sae if isinstance(self.sae, TrainingSAEConfig) else self.sae.get("d_sae")
        return f"synthetic-{self.architecture}-{d_sae}-LR-{self.lr}"

    # ------------------------------------------------------------ dicts and files
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: the model as a dict or string, ``sae`` and ``logger`` as dicts."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "synthetic_model":
                value = value.to_dict() if isinstance(value, SyntheticModelConfig) else str(value)
            elif f.name == "sae":
                value = value.to_dict() if isinstance(value, TrainingSAEConfig) else copy.deepcopy(value)
            elif f.name == "logger":
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyntheticSAERunnerConfig:
        """Inverse of :meth:`to_dict`; also reads the reference's ``runner_config.json``.

        Raises:
            ValueError: for an unknown or missing key, or a bad value (named in the message).
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"a runner config must be a mapping, got {type(data).__name__}")
        values = {k: v for k, v in data.items() if k not in _IGNORED_KEYS}
        known = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in known]
        if unknown:
            raise ValueError(unknown_keys_message("the runner config", unknown, known))
        missing = [k for k in ("synthetic_model", "sae") if k not in values]
        if missing:
            raise ValueError(f"missing required key(s): {', '.join(missing)}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> SyntheticSAERunnerConfig:
        """Read a YAML or JSON config file, optionally applying dotted-key ``overrides``.

        Errors name the file and the key.
        """
        path = Path(path).expanduser()
        data = load_config_data(path)
        try:
            if overrides:
                data = apply_overrides(data, overrides)
            return cls.from_dict(data)
        except (ValueError, TypeError) as err:
            raise type(err)(f"{path}: {err}") from None

    def to_file(self, path: str | Path) -> Path:
        """Write the config as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        return write_config_file(path, self.to_dict())

    def with_overrides(self, overrides: Mapping[str, Any]) -> SyntheticSAERunnerConfig:
        """A new config with dotted keys replaced, e.g. ``{"lr": 1e-3, "sae.k": 8}``."""
        return type(self).from_dict(apply_overrides(self.to_dict(), overrides))


def _model_from_mapping(data: Mapping[str, Any]) -> SyntheticModelConfig:
    data = dict(data)
    if "preset" in data:  # {"preset": name, <fields overriding the preset's>}
        from synthsae.synthetic.presets import get_preset

        try:
            base = get_preset(data.pop("preset")).to_dict()
        except ValueError as err:
            raise ValueError(f"synthetic_model.preset: {err}") from None
        data = {**base, **data}
    try:
        return SyntheticModelConfig.from_dict(data)
    except (ValueError, TypeError) as err:
        raise _prefixed(err, "synthetic_model: ") from None
