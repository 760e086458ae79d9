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

from synthsae.config_values import (
    check_bool,
    check_device,
    check_float,
    check_int,
    check_str,
    dataclass_values,
    load_config_data,
    parse_override,
    parse_yaml_scalar,
    write_config_file,
)
from synthsae.runs.sae_section import (
    apply_runner_overrides,
    build_sae_config,
    prefixed_error,
    training_config_class,
)
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
        lr, lr_warm_up_steps, lr_decay_steps, lr_scheduler_name, lr_end, n_restart_cycles: the LR schedule (``constant``, ``cosineannealing`` or
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
        target_l0: steer the SAE's L0 to this value. Coefficient-based SAEs (standard,
            gated, JumpReLU with the step or tanh loss) get an
            :class:`~synthsae.training.l0_control.L0Controller`, whose state is checkpointed
            with the trainer's; a quadratic-loss JumpReLU takes it as its own ``target_l0``.
            TopK-style and matching-pursuit SAEs set their L0 through ``k`` /
            ``max_iterations`` instead (a ``ValueError`` says so).
        l0_control: :class:`~synthsae.training.l0_control.L0ControlConfig` fields (all but
            ``target_l0``) for the controller, e.g. ``{"start_step": 1000}``.
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
    target_l0: float | None = None
    l0_control: dict[str, Any] = field(default_factory=dict)
    prefetch_batches: int = 2

    def __post_init__(self) -> None:
        if self.target_l0 is not None:
            self.target_l0 = check_float("target_l0", self.target_l0, above=0)
        self._check_model_and_sae()
        self._check_l0_control()
        self.training_samples = check_int("training_samples", self.training_samples, at_least=1)
        self.batch_size = check_int("batch_size", self.batch_size, at_least=1)
        if self.training_samples < self.batch_size:
            raise ValueError(f"training_samples ({self.training_samples}) must be >= batch_size "
                             f"({self.batch_size}): otherwise there is no training step")
        self.lr = check_float("lr", self.lr, above=0)
        for key in ("lr_warm_up_steps", "lr_decay_steps"):
            setattr(self, key, check_int(key, getattr(self, key), at_least=0))
        self.lr_end = check_float("lr_end", self.lr_end, at_least=0, optional=True)
        self.adam_beta1 = check_float("adam_beta1", self.adam_beta1, at_least=0, below=1)
        self.adam_beta2 = check_float("adam_beta2", self.adam_beta2, at_least=0, below=1)
        self.n_restart_cycles = check_int("n_restart_cycles", self.n_restart_cycles, at_least=1)
        check_str("lr_scheduler_name", self.lr_scheduler_name)
        try:
            LRSchedule(self.lr, self.total_training_steps, self.lr_warm_up_steps, self.lr_decay_steps,
                       self.lr_scheduler_name, self.lr_end, self.n_restart_cycles)
        except ValueError as err:
            raise ValueError(f"lr schedule: {err}") from None
        self.device = check_device("device", self.device)
        for key in ("autocast_sae", "autocast_data", "save_final_checkpoint", "save_synthetic_model",
                    "run_final_eval", "show_progress"):
            check_bool(key, getattr(self, key))
        self.checkpoint_path = check_str("checkpoint_path", self.checkpoint_path, optional=True)
        self.output_path = check_str("output_path", self.output_path, optional=True)
        for key in ("n_checkpoints", "eval_frequency", "eval_samples", "prefetch_batches"):
            setattr(self, key, check_int(key, getattr(self, key), at_least=0))
        for key in ("dead_feature_window", "feature_sampling_window", "n_batches_for_norm_estimate"):
            setattr(self, key, check_int(key, getattr(self, key), at_least=1))
        self.seed = check_int("seed", self.seed, at_least=0, optional=True)
        if isinstance(self.logger, Mapping):
            try:
                self.logger = LoggingConfig.from_dict(dict(self.logger))
            except (ValueError, TypeError) as err:
                raise prefixed_error(err, "logger: ") from None
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
            if self.target_l0 is not None and sae.get("jumprelu_sparsity_loss_mode") == "quadratic":
                sae.setdefault("target_l0", self.target_l0)  # the quadratic loss is built around it
            built = build_sae_config(sae, d_in=hidden)  # validates every field
            self.sae = built if sae.get("d_in") is not None or hidden is not None else sae
        elif not isinstance(self.sae, TrainingSAEConfig):
            raise TypeError(f"sae must be a TrainingSAEConfig or its dict form, got {type(self.sae).__name__}")
        d_in = self.sae_d_in
        if hidden is not None and d_in is not None and d_in != hidden:
            raise ValueError(f"sae.d_in ({d_in}) does not match synthetic_model.hidden_dim ({hidden}); "
                             "set sae.d_in to the model's hidden_dim or leave it out to have it filled in")

    def _check_l0_control(self) -> None:
        from synthsae.training.l0_control import L0ControlConfig, supports_l0_control

        if not isinstance(self.l0_control, Mapping):
            raise TypeError(f"l0_control must be a mapping of L0ControlConfig fields, got {self.l0_control!r}")
        self.l0_control = copy.deepcopy(dict(self.l0_control))
        if "target_l0" in self.l0_control:
            raise ValueError("l0_control: give the target as target_l0, not inside l0_control")
        try:
            L0ControlConfig(target_l0=self.target_l0 or 1.0, **self.l0_control)
        except (TypeError, ValueError) as err:
            raise prefixed_error(err, "l0_control: ") from None
        if self.target_l0 is None:
            return
        sae = self.sae if isinstance(self.sae, TrainingSAEConfig) else None
        values = self.sae if sae is None else {"jumprelu_sparsity_loss_mode": getattr(sae, "jumprelu_sparsity_loss_mode",
                                                                                      None),
                                               "target_l0": getattr(sae, "target_l0", None)}
        if values.get("jumprelu_sparsity_loss_mode") == "quadratic":
            own = values.get("target_l0")
            if own is not None and float(own) != self.target_l0:
                raise ValueError(f"target_l0 ({self.target_l0:g}) differs from sae.target_l0 ({own:g}) of the "
                                 "quadratic JumpReLU loss; give one of them")
            return
        cfg_or_cls = sae if sae is not None else training_config_class(self.architecture)
        if not supports_l0_control(cfg_or_cls):
            knob = getattr(cfg_or_cls, "sparsity_field", None) or "its own config"
            raise ValueError(f"target_l0: a {self.architecture} SAE sets its L0 through {knob} (set it to "
                             f"{self.target_l0:g}); the L0 controller steers SAEs whose sparsity is a loss coefficient")

    def l0_controller(self) -> Any:
        """The :class:`~synthsae.training.l0_control.L0Controller` this run needs, or ``None``."""
        from synthsae.training.l0_control import L0ControlConfig, L0Controller, supports_l0_control

        if self.target_l0 is None:
            return None
        sae = self.sae if isinstance(self.sae, TrainingSAEConfig) else None
        mode = getattr(sae, "jumprelu_sparsity_loss_mode", None) if sae is not None \
            else self.sae.get("jumprelu_sparsity_loss_mode")
        cfg_or_cls = sae if sae is not None else training_config_class(self.architecture)
        if mode == "quadratic" or not supports_l0_control(cfg_or_cls):
            return None
        return L0Controller({0: L0ControlConfig(target_l0=self.target_l0, **self.l0_control)})

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
    def from_dict(cls, d: Mapping[str, Any]) -> SyntheticSAERunnerConfig:
        """Inverse of :meth:`to_dict`; also reads the reference's ``runner_config.json``.

        Raises:
            ValueError: for an unknown or missing key, or a bad value (named in the message).
        """
        return cls(**dataclass_values(cls, d, "the runner config", ignore=_IGNORED_KEYS))

    @classmethod
    def from_file(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> SyntheticSAERunnerConfig:
        """Read a YAML or JSON config file, optionally applying dotted-key ``overrides``.

        Errors name the file and the key.
        """
        path = Path(path).expanduser()
        data = load_config_data(path)
        try:
            if overrides:
                data = apply_runner_overrides(data, overrides)
            return cls.from_dict(data)
        except (ValueError, TypeError) as err:
            raise type(err)(f"{path}: {err}") from None

    def to_file(self, path: str | Path) -> Path:
        """Write the config as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        return write_config_file(path, self.to_dict())

    def with_overrides(self, overrides: Mapping[str, Any]) -> SyntheticSAERunnerConfig:
        """A new config with dotted keys replaced, e.g. ``{"lr": 1e-3, "sae.k": 8}``."""
        return type(self).from_dict(apply_runner_overrides(self.to_dict(), overrides))


def _model_from_mapping(data: Mapping[str, Any]) -> SyntheticModelConfig:
    data = dict(data)
    if data.get("preset", 0) is None:  # --set synthetic_model.preset=null: no preset
        del data["preset"]
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
        raise prefixed_error(err, "synthetic_model: ") from None
