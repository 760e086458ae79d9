"""Configuration of a benchmark sweep: :class:`BenchmarkConfig`.

Every bad value raises a ``ValueError``/``TypeError`` whose message starts with the
field (``l0_targets``, ``coefficients.standard``, ...) and, when the config came from a
file, the file. Files are YAML (``.yaml``/``.yml``) or JSON holding one mapping of the
fields below; ``--set KEY=VALUE`` overrides use dotted keys (``sae_settings.jumprelu.lr``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from synthsae.config_values import (
    apply_overrides,
    check_bool,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_keys,
    check_str,
    dataclass_values,
    load_config_data,
    write_config_file,
)
from synthsae.synthetic.presets import DEFAULT_PRESET

__all__ = [
    "DEFAULT_ARCHITECTURES",
    "DEFAULT_L0_TARGETS",
    "DEFAULT_PRESET",
    "RANK_METRICS",
    "BenchmarkConfig",
    "apply_dotted_overrides",
]

DEFAULT_ARCHITECTURES = ("topk", "batchtopk", "standard", "jumprelu")
DEFAULT_L0_TARGETS = (5, 10, 20)

RANK_METRICS: dict[str, str] = {
    "mcc": "higher is better",
    "f1": "higher is better",
    "explained_variance": "higher is better",
    "uniqueness": "higher is better",
    "dead_latents": "lower is better",
    "shrinkage": "closer to 1 is better",
}
"""Metrics the leaderboard can rank by, and the direction of each."""


def _check_str_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(f"{key} must be a list of names, got {value!r}")
    if not value:
        raise ValueError(f"{key} must name at least one architecture")
    if len(set(value)) != len(value):
        raise ValueError(f"{key} has duplicates: {list(value)}")
    return list(value)


@dataclass
class BenchmarkConfig:
    """One benchmark: every architecture in ``architectures`` at every L0 in ``l0_targets``.

    The synthetic model is the first of ``model`` (a saved model folder, a hub id
    ``owner/name[:subfolder]`` or a SyntheticModelConfig file), ``model_config`` (an inline
    SyntheticModelConfig dict) and ``preset`` that is given; none given means the
    ``cpu_small`` preset. Giving more than one is an error.

    Training: all ``len(architectures) * len(l0_targets)`` SAEs are trained by one
    :class:`~synthsae.training.trainer.Trainer` on one stream of ``training_samples`` rows
    (``batch_size`` rows per step) at learning rate ``lr`` (``sae_settings[arch]["lr"]``
    overrides it per architecture). ``coefficients[arch]`` lists one sparsity coefficient
    per L0 target for penalty-based architectures (standard, gated, jumprelu); without it
    the rule in :mod:`synthsae.benchmark.sweep` picks them. ``sae_settings[arch]`` holds
    extra fields of that architecture's training config, layered over
    :data:`~synthsae.benchmark.sweep.DEFAULT_SAE_SETTINGS`.

    ``dead_feature_window``: steps without firing after which a latent counts as dead (the
    TopK family's auxiliary loss revives those); ``None`` means an eighth of the run, at most
    1000 steps (:meth:`resolved_dead_feature_window`), so that short runs revive latents too.

    Evaluation: each SAE in its inference form on the same ``eval_samples`` fresh rows.
    Random streams: ``seed`` (SAE initialisation, the same for every SAE), ``seed + 1``
    (training batches), ``seed + 2`` (evals), ``seed + 3`` (the data-scale estimate).
    ``rank_by`` picks the leaderboard's ranking metric (:data:`RANK_METRICS`).

    Outputs go to ``output_dir`` (``None``: nothing is written): the leaderboard files,
    each SAE, the synthetic model (``save_synthetic_model``) and the plots (``plots``).
    """

    preset: str | None = None
    model: str | None = None
    model_config: dict[str, Any] | None = None
    architectures: list[str] = field(default_factory=lambda: list(DEFAULT_ARCHITECTURES))
    l0_targets: list[int] = field(default_factory=lambda: list(DEFAULT_L0_TARGETS))
    d_sae: int = 256
    training_samples: int = 300_000
    batch_size: int = 512
    lr: float = 3e-3
    eval_samples: int = 50_000
    dead_feature_window: int | None = None
    seed: int = 0
    device: str = "cpu"
    output_dir: str | None = None
    coefficients: dict[str, list[float]] = field(default_factory=dict)
    sae_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    rank_by: str = "mcc"
    save_synthetic_model: bool = True
    plots: bool = True
    show_progress: bool = True

    def __post_init__(self) -> None:
        self.preset = check_str("preset", self.preset, optional=True)
        self.model = check_str("model", self.model, optional=True)
        if self.model_config is not None and not isinstance(self.model_config, Mapping):
            raise TypeError(f"model_config must be a SyntheticModelConfig mapping or null, got {self.model_config!r}")
        if self.model_config is not None:
            self.model_config = copy.deepcopy(dict(self.model_config))
        given = [name for name in ("preset", "model", "model_config") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of preset, model and model_config, got {', '.join(given)}")
        if self.preset is not None:
            from synthsae.synthetic.presets import PRESETS

            check_choice("preset", self.preset.replace("-", "_"), PRESETS)
        from synthsae.benchmark.sweep import canonical_architecture, check_architecture

        self.architectures = [canonical_architecture(a) for a in _check_str_list("architectures", self.architectures)]
        if len(set(self.architectures)) != len(self.architectures):
            raise ValueError(f"architectures has duplicates: {self.architectures}")
        for name in self.architectures:
            check_architecture(name)
        self.d_sae = check_int("d_sae", self.d_sae, at_least=2)
        self.l0_targets = self._checked_targets(self.l0_targets)
        self.batch_size = check_int("batch_size", self.batch_size, at_least=1)
        self.training_samples = check_int("training_samples", self.training_samples, at_least=1)
        if self.training_samples < self.batch_size:
            raise ValueError(f"training_samples must be >= batch_size ({self.batch_size}), "
                             f"got {self.training_samples}")
        self.lr = check_float("lr", self.lr, above=0)
        self.eval_samples = check_int("eval_samples", self.eval_samples, at_least=1)
        self.dead_feature_window = check_int("dead_feature_window", self.dead_feature_window, at_least=1, optional=True)
        self.seed = check_int("seed", self.seed, at_least=0)
        self.device = check_device("device", self.device)
        self.output_dir = check_str("output_dir", self.output_dir, optional=True)
        self.coefficients = self._checked_coefficients(self.coefficients)
        self.sae_settings = self._checked_settings(self.sae_settings)
        check_choice("rank_by", self.rank_by, RANK_METRICS)
        check_bool("save_synthetic_model", self.save_synthetic_model)
        check_bool("plots", self.plots)
        check_bool("show_progress", self.show_progress)

    def _checked_targets(self, value: Any) -> list[int]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise TypeError(f"l0_targets must be a non-empty list of integers, got {value!r}")
        out = []
        for i, target in enumerate(value):
            target = check_int(f"l0_targets[{i}]", target, at_least=1)
            if target >= self.d_sae:
                raise ValueError(f"l0_targets[{i}] must be < d_sae ({self.d_sae}), got {target}")
            out.append(target)
        if len(set(out)) != len(out):
            raise ValueError(f"l0_targets has duplicates: {out}")
        return out

    def _checked_coefficients(self, value: Any) -> dict[str, list[float]]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise TypeError(f"coefficients must map an architecture to a list of numbers, got {value!r}")
        from synthsae.benchmark.sweep import canonical_architecture, sparsity_knobs

        knobs, out = sparsity_knobs(), {}
        for name, coefs in value.items():
            arch, key = canonical_architecture(str(name)), f"coefficients.{name}"
            if arch not in self.architectures:
                raise ValueError(f"{key}: {arch!r} is not in architectures {self.architectures}")
            if knobs[arch] not in ("l1_coefficient", "l0_coefficient"):
                raise ValueError(f"{key}: {arch} takes its {knobs[arch]} from the L0 targets, "
                                 "not a coefficient")
            if isinstance(coefs, (int, float)) and not isinstance(coefs, bool):
                coefs = [coefs] * len(self.l0_targets)
            if not isinstance(coefs, (list, tuple)) or len(coefs) != len(self.l0_targets):
                raise ValueError(f"{key} must list one coefficient per L0 target ({len(self.l0_targets)}), "
                                 f"got {coefs!r}")
            out[arch] = [check_float(f"{key}[{i}]", c, above=0) for i, c in enumerate(coefs)]
        return out

    def _checked_settings(self, value: Any) -> dict[str, dict[str, Any]]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise TypeError(f"sae_settings must map an architecture to a mapping of fields, got {value!r}")
        from synthsae.benchmark.sweep import canonical_architecture, sparsity_knobs
        from synthsae.saes.registry import get_sae_architecture

        knobs, out = sparsity_knobs(), {}
        for name, settings in value.items():
            arch = canonical_architecture(str(name))
            if not isinstance(settings, Mapping):
                raise TypeError(f"sae_settings.{arch} must be a mapping of config fields, got {settings!r}")
            settings = dict(settings)
            reserved = sorted({"d_in", "d_sae", "device", "architecture"} & set(settings))
            if reserved:
                raise ValueError(f"sae_settings.{arch}: {', '.join(reserved)} are set by the benchmark")
            if arch in knobs:
                known = sorted({f.name for f in fields(get_sae_architecture(arch).training_cfg_cls) if f.init}
                               - {"d_in", "d_sae", "device"} | {"lr"})
                check_keys(f"sae_settings.{arch}", settings, known)
            if "lr" in settings:
                settings["lr"] = check_float(f"sae_settings.{arch}.lr", settings["lr"], above=0)
            out[arch] = copy.deepcopy(settings)
        return out

    # ------------------------------------------------------------------ derived
    @property
    def total_training_steps(self) -> int:
        return self.training_samples // self.batch_size

    def resolved_dead_feature_window(self) -> int:
        """``dead_feature_window``, or ``min(1000, max(1, steps // 8))`` when it is ``None``."""
        if self.dead_feature_window is not None:
            return self.dead_feature_window
        return min(1000, max(1, self.total_training_steps // 8))

    @property
    def model_label(self) -> str:
        """A short description of the synthetic model source."""
        if self.model is not None:
            return f"model {self.model}"
        if self.model_config is not None:
            return "model from model_config"
        return f"preset {self.preset or DEFAULT_PRESET}"

    # ------------------------------------------------------------------ dicts and files
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly values of every field."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` with suggestions."""
        return cls(**copy.deepcopy(dataclass_values(cls, data, "the benchmark config")))

    @classmethod
    def from_file(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> BenchmarkConfig:
        """Read a YAML/JSON file, apply dotted ``overrides``; errors name the file."""
        data = load_config_data(path)
        try:
            return cls.from_dict(apply_dotted_overrides(data, overrides or {}))
        except (ValueError, TypeError) as err:
            raise type(err)(f"{path}: {err}") from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> BenchmarkConfig:
        """A new config with dotted ``overrides`` applied (``{"sae_settings.gated.lr": 1e-3}``)."""
        return BenchmarkConfig.from_dict(apply_dotted_overrides(self.to_dict(), overrides))

    def to_file(self, path: str | Path) -> Path:
        """Write the config as JSON (or YAML for a ``.yaml``/``.yml`` path)."""
        return write_config_file(path, self.to_dict())


_MODEL_SOURCES = ("preset", "model", "model_config")


def apply_dotted_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with each dotted key set; missing sections are created
    (so ``sae_settings.gated.lr`` works without a ``gated`` entry). Setting one model
    source (``preset``, ``model``, ``model_config``) clears the other two."""
    data = dict(data)
    for dotted, value in overrides.items():
        source = str(dotted).split(".")[0]
        if source in _MODEL_SOURCES and value is not None:
            for other in _MODEL_SOURCES:
                if other != source:
                    data.pop(other, None)
    return apply_overrides(data, overrides, create_sections=True)
