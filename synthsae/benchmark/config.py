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
    "f1": "higher is better",
    "mcc": "higher is better",
    "explained_variance": "higher is better",
    "uniqueness": "higher is better",
    "dead_latents": "lower is better",
    "shrinkage": "closer to 1 is better",
}
"""Metrics a table's rows (one L0 target) can be ordered by, and the direction of each."""


def _check_int_list(key: str, value: Any, minimum: int) -> list[int]:
    """A non-empty list of distinct integers >= ``minimum`` (a single integer is a list of one)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f"{key} must be a non-empty list of integers, got {value!r}")
    out = [check_int(f"{key}[{i}]", v, at_least=minimum) for i, v in enumerate(value)]
    if len(set(out)) != len(out):
        raise ValueError(f"{key} has duplicates: {out}")
    return out


def _check_control_settings(value: Any) -> dict[str, Any]:
    """L0ControlConfig fields (all but ``target_l0`` and ``start_step``, which the sweep sets)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"l0_control_settings must be a mapping of L0ControlConfig fields, got {value!r}")
    from synthsae.training.l0_control import L0ControlConfig

    known = sorted({f.name for f in fields(L0ControlConfig)} - {"target_l0", "start_step"})
    check_keys("l0_control_settings", value, known)
    try:
        L0ControlConfig(target_l0=1.0, **value)
    except (TypeError, ValueError) as err:
        raise type(err)(f"l0_control_settings: {err}") from None
    return copy.deepcopy(dict(value))


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
    """One benchmark: every architecture in ``architectures`` at every L0 in ``l0_targets``,
    once per seed in ``seeds`` (and per model seed in ``model_seeds``).

    The synthetic model is the first of ``model`` (a saved model folder, a hub id
    ``owner/name[:subfolder]`` or a SyntheticModelConfig file), ``model_config`` (an inline
    SyntheticModelConfig dict) and ``preset`` that is given; none given means the
    ``cpu_small`` preset. Giving more than one is an error. ``model_seeds`` rebuilds a
    preset / ``model_config`` model with each of these seeds (``None``: the model as it is).

    ``recipe`` names the protocol whose per-architecture settings the SAEs get
    (:mod:`synthsae.benchmark.recipes`; ``None``: the default one);
    :meth:`from_recipe` also takes the recipe's budget, grid and seeds as defaults.

    Training: for each (model seed, seed) one :class:`~synthsae.training.trainer.Trainer`
    trains all its ``len(architectures) * len(l0_targets)`` SAEs on one stream of
    ``training_samples`` rows (``batch_size`` rows per step) at learning rate ``lr``
    (``sae_settings[arch]["lr"]`` overrides it), under bf16 autocast when ``autocast``.
    TopK-style SAEs get ``k = target`` and matching pursuit ``max_iterations = target``.
    Standard, gated and JumpReLU SAEs start from ``coefficients[arch]`` (one per target), the
    recipe's coefficient or a rule scaled by the data (:mod:`synthsae.benchmark.sweep`), and
    with ``l0_control`` an :class:`~synthsae.training.l0_control.L0Controller` steers them to
    the target (``l0_control_settings`` holds L0ControlConfig fields for all of them).
    ``sae_settings[arch]`` holds extra fields of that architecture's training config, over
    the recipe's.

    ``dead_feature_window``: steps without firing after which a latent counts as dead (the
    TopK family's auxiliary loss revives those); ``None`` means an eighth of the run, at most
    1000 steps (:meth:`resolved_dead_feature_window`), so that short runs revive latents too.

    Evaluation: each SAE in its inference form on ``eval_samples`` fresh rows (the same rows
    for every SAE of a seed), plus feature absorption when the model has a hierarchy and
    ``absorption`` is on; with ``probe_ceiling`` a supervised linear probe per true feature
    gives the F1 an SAE latent could reach. Seed ``s`` sets the SAE initialisation and the
    training and eval streams (:func:`synthsae.benchmark.sweep.stream_seed`), never the model.
    Tables show one row per architecture and L0 target (mean and standard deviation over
    the seeds), ordered by ``rank_by`` within each target; runs of different L0s are never
    ranked against each other.

    Outputs go to ``output_dir`` (``None``: nothing is written): each SAE and its metrics as
    soon as it is evaluated, then the tables, the plots (``plots``) and the synthetic model
    (``save_synthetic_model``).
    """

    preset: str | None = None
    model: str | None = None
    model_config: dict[str, Any] | None = None
    recipe: str | None = None
    architectures: list[str] = field(default_factory=lambda: list(DEFAULT_ARCHITECTURES))
    l0_targets: list[int] = field(default_factory=lambda: list(DEFAULT_L0_TARGETS))
    seeds: list[int] = field(default_factory=lambda: [0])
    model_seeds: list[int] | None = None
    d_sae: int = 256
    # 600k: the L0 controller needs ~1,200 steps to settle JumpReLU within 3% of the target on
    # cpu_small (300k left it 5% off at L0 5); the default sweep takes about 85 s
    training_samples: int = 600_000
    batch_size: int = 512
    lr: float = 3e-3
    eval_samples: int = 50_000
    dead_feature_window: int | None = None
    device: str = "cpu"
    autocast: bool = False
    output_dir: str | None = None
    coefficients: dict[str, list[float]] = field(default_factory=dict)
    sae_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    l0_control: bool = True
    l0_control_settings: dict[str, Any] = field(default_factory=dict)
    rank_by: str = "f1"
    absorption: bool = True
    probe_ceiling: bool = False
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
        self.seeds = _check_int_list("seeds", self.seeds, minimum=0)
        if self.model_seeds is not None:
            self.model_seeds = _check_int_list("model_seeds", self.model_seeds, minimum=0)
            if self.model is not None:
                raise ValueError("model_seeds: a saved model cannot be rebuilt with other seeds; "
                                 "give a preset or model_config")
        if self.recipe is not None:
            from synthsae.benchmark.recipes import get_recipe

            self.recipe = get_recipe(self.recipe).name
        self.device = check_device("device", self.device)
        self.output_dir = check_str("output_dir", self.output_dir, optional=True)
        self.coefficients = self._checked_coefficients(self.coefficients)
        self.sae_settings = self._checked_settings(self.sae_settings)
        self.l0_control_settings = _check_control_settings(self.l0_control_settings)
        check_choice("rank_by", self.rank_by, RANK_METRICS)
        for name in ("autocast", "l0_control", "absorption", "probe_ceiling"):
            check_bool(name, getattr(self, name))
        check_bool("save_synthetic_model", self.save_synthetic_model)
        check_bool("plots", self.plots)
        check_bool("show_progress", self.show_progress)

    def _checked_targets(self, value: Any) -> list[int]:
        out = _check_int_list("l0_targets", value, minimum=1)
        for i, target in enumerate(out):
            if target >= self.d_sae:
                raise ValueError(f"l0_targets[{i}] must be < d_sae ({self.d_sae}), got {target}")
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
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` with suggestions. With a
        ``recipe``, the recipe's defaults fill the keys that are not given."""
        values = copy.deepcopy(dataclass_values(cls, data, "the benchmark config"))
        if values.get("recipe") is not None:
            from synthsae.benchmark.recipes import get_recipe

            source_given = any(values.get(name) is not None for name in _MODEL_SOURCES)
            for key, value in get_recipe(values["recipe"]).defaults.items():
                if not (key in _MODEL_SOURCES and source_given):
                    values.setdefault(key, copy.deepcopy(value))
        return cls(**values)

    @classmethod
    def from_recipe(cls, name: str | None, overrides: Mapping[str, Any] | None = None) -> BenchmarkConfig:
        """The recipe's defaults (:mod:`synthsae.benchmark.recipes`) with dotted ``overrides`` on top
        (``from_dict`` fills every key a config with a ``recipe`` does not give from the recipe)."""
        return cls.from_dict(apply_dotted_overrides({"recipe": name}, overrides or {}))

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
