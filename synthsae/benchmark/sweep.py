"""The SAEs of a benchmark: the grid of (model seed, seed, architecture, L0 target) runs.

How an L0 target becomes a sparsity setting:

- ``topk``, ``abstopk``, ``batchtopk``, ``matryoshka_batchtopk``: ``k = target`` (exact for TopK; the
  BatchTopK family hits it on average over a batch, and its inference form, a JumpReLU
  with the learned threshold, close to it).
- ``matching_pursuit``: ``max_iterations = target`` (at most that many atoms per row).
- ``standard`` and ``gated`` (L1 penalty) and ``jumprelu`` (L0 penalty): a starting
  coefficient from ``coefficients[arch]`` when the config gives one, else the recipe's,
  else the rule

  ``l1_coefficient = L1_RULE_SCALE * E||x|| / target ** L1_RULE_POWER`` and
  ``l0_coefficient = L0_RULE_SCALE * (E||x||^2 / d_in) / sqrt(target)``

  (the L1 penalty grows with the latents' size; a JumpReLU's L0 coefficient balances the
  squared error its threshold lets through, which follows the data's variance per
  dimension rather than its whole squared norm; both are measured on a few thousand rows
  of the model before training). The L1 constants were fitted on ``cpu_small``, where
  they land within about a factor of 1.5 of the coefficient the controller ends with; the
  L0 constant on ``cpu_small`` at L0 5, 10 and 20 and on SynthSAEBench-16k at L0 25,
  where it lands within a factor of about 1.5 (the earlier ``E||x||^2 / target`` rule was ten
  times too large on the 16k model: its JumpReLU SAEs collapsed to L0 2 at the start and
  the controller could not settle in a 2,000-step run). With ``l0_control`` (the default) an
  :class:`~synthsae.training.l0_control.L0Controller` then steers the coefficient so that
  the achieved L0 ends within a few percent of the target.

Random streams: seed ``s`` initialises every SAE of the run (``torch.manual_seed(s)`` just
before each is built, so an SAE starts from the same weights whatever else is in the
sweep) and draws its training and eval batches from generators seeded with
:func:`stream_seed` ``(s, purpose)``; the synthetic model's own seed is left alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.benchmark.config import BenchmarkConfig
    from synthsae.saes.base import TrainingSAE
    from synthsae.training.l0_control import L0ControlConfig

__all__ = [
    "ARCHITECTURE_ALIASES",
    "L0_RULE_SCALE",
    "L1_RULE_POWER",
    "L1_RULE_SCALE",
    "DataScale",
    "RunSpec",
    "SweepRun",
    "build_runs",
    "canonical_architecture",
    "check_architecture",
    "deal_runs",
    "estimate_data_scale",
    "needs_data_scale",
    "plan_runs",
    "relative_cost",
    "settings_for",
    "sparsity_knobs",
    "sparsity_setting",
    "stream_seed",
]

L1_RULE_SCALE = 1.9
L1_RULE_POWER = 0.75
L0_RULE_SCALE = 2.1  # geometric mean of the fits: cpu_small L0 5/10/20 (3.0, 1.6, 2.1), 16k L0 25 (2.2)


def sparsity_knobs() -> dict[str, str]:
    """Registered architecture -> the config field its L0 target sets (its config's
    ``sparsity_field``), for every architecture that has one, built-in or user-registered."""
    from synthsae.saes.registry import get_sae_architecture, list_sae_architectures

    out = {}
    for name in list_sae_architectures():
        cfg_cls = get_sae_architecture(name).training_cfg_cls
        if cfg_cls is not None and getattr(cfg_cls, "sparsity_field", None):
            out[name] = cfg_cls.sparsity_field
    return out


ARCHITECTURE_ALIASES: dict[str, str] = {"matryoshka": "matryoshka_batchtopk", "mp": "matching_pursuit"}
"""Short names accepted in ``architectures`` (stored under the registry name)."""

_PENALTY_KNOBS = ("l1_coefficient", "l0_coefficient")

def canonical_architecture(name: str) -> str:
    """The registry name of ``name`` (``matryoshka`` -> ``matryoshka_batchtopk``)."""
    return ARCHITECTURE_ALIASES.get(name, name)


def check_architecture(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a trainable architecture with a sparsity rule."""
    knobs = sparsity_knobs()
    if name not in knobs:
        raise ValueError(f"architectures: no L0 rule for {name!r}; supported: {', '.join(knobs)}")
    from synthsae.saes.registry import get_sae_architecture

    if get_sae_architecture(name).training_cls is None:  # pragma: no cover - built-ins all train
        raise ValueError(f"architectures: {name!r} has no training class")


@dataclass(frozen=True)
class DataScale:
    """Size of the model's activations: ``E||x||`` and ``E||x||^2`` over a sample of
    ``dim``-dimensional rows."""

    mean_norm: float
    mean_sq_norm: float
    dim: int

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"DataScale.dim must be an integer >= 1, got {self.dim!r}")

    @property
    def mean_sq_per_dim(self) -> float:
        """``E||x||^2 / dim``: the activations' second moment per dimension."""
        return self.mean_sq_norm / self.dim

    def to_dict(self) -> dict[str, float]:
        return {"mean_norm": self.mean_norm, "mean_sq_norm": self.mean_sq_norm, "dim": self.dim}


@torch.no_grad()
def estimate_data_scale(model: Any, num_samples: int = 8192, seed: int = 0) -> DataScale:
    """Measure :class:`DataScale` on ``num_samples`` rows drawn with their own ``seed``;
    the model's sampling stream is left as it was."""
    gen = model.activation_generator
    saved = gen.generator
    gen.generator = torch.Generator(device=model.device).manual_seed(seed)
    try:
        x = model.sample(num_samples).float()
    finally:
        gen.generator = saved
    norms = x.norm(dim=-1)
    return DataScale(float(norms.mean()), float((norms**2).mean()), int(x.shape[-1]))


def _takes_float_k(architecture: str) -> bool:
    """BatchTopK-style SAEs take a mean ``k`` (a float); TopK and AbsTopK an integer."""
    from synthsae.saes.batchtopk import BatchTopKTrainingSAEConfig
    from synthsae.saes.registry import get_sae_architecture

    cfg_cls = get_sae_architecture(architecture).training_cfg_cls
    return cfg_cls is not None and issubclass(cfg_cls, BatchTopKTrainingSAEConfig)


def sparsity_setting(architecture: str, target: int, scale: DataScale | None,
                     coefficient: float | None = None) -> tuple[str, float | int]:
    """``(field, value)`` that aims ``architecture`` at L0 ``target`` (see the module docstring).

    ``coefficient`` overrides the rule for penalty-based architectures; ``scale`` is needed
    only when the rule is used.
    """
    check_architecture(architecture)
    knob = sparsity_knobs()[architecture]
    if knob not in _PENALTY_KNOBS:
        return knob, float(target) if knob == "k" and _takes_float_k(architecture) else int(target)
    if coefficient is not None:
        return knob, float(coefficient)
    if scale is None:
        raise ValueError(f"{architecture}: a coefficient or the data scale is needed to aim at L0 {target}")
    if knob == "l1_coefficient":
        return knob, L1_RULE_SCALE * scale.mean_norm / target**L1_RULE_POWER
    return knob, L0_RULE_SCALE * scale.mean_sq_per_dim / target**0.5


TRAIN_STREAM, EVAL_STREAM, SCALE_STREAM, NORM_STREAM = 1, 2, 3, 4
"""The purposes of :func:`stream_seed`: training batches, evals, the data-scale estimate,
the activation-norm estimate."""


def stream_seed(seed: int, purpose: int) -> int:
    """The sampling seed for one purpose of benchmark seed ``seed``: distinct for every
    (seed, purpose) pair (``seed * 16 + purpose``; purposes are below 16)."""
    return int(seed) * 16 + int(purpose)


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: what to train, before anything is built."""

    architecture: str
    target_l0: int
    seed: int
    model_seed: int | None = None

    @property
    def name(self) -> str:
        """The run's folder name, e.g. ``topk_l0-10_seed-0`` (``..._model-42`` with model seeds)."""
        base = f"{self.architecture}_l0-{self.target_l0}_seed-{self.seed}"
        return base if self.model_seed is None else f"{base}_model-{self.model_seed}"


def plan_runs(cfg: BenchmarkConfig) -> list[RunSpec]:
    """Every run of the benchmark in grid order: model seed, seed, architecture, target."""
    model_seeds: list[int | None] = list(cfg.model_seeds) if cfg.model_seeds is not None else [None]
    return [RunSpec(arch, target, seed, model_seed)
            for model_seed in model_seeds for seed in cfg.seeds
            for arch in cfg.architectures for target in cfg.l0_targets]


def relative_cost(spec: RunSpec) -> float:
    """A training step's cost for ``spec`` relative to a BatchTopK SAE of the same width (the
    estimate :func:`deal_runs` balances; it only sets who trains what, never a result)."""
    if spec.architecture == "matching_pursuit":
        # one atom selection (a [batch, d_in] x [d_in, d_sae] product) per iteration, and
        # max_iterations = target: 2.8x BatchTopK at L0 12 on cpu_bench, measured
        return 1.0 + spec.target_l0 / 6
    if spec.architecture == "matryoshka_batchtopk":
        return 1.6  # one decode per nested width: 47 s against BatchTopK's 29 s on cpu_bench
    return 1.0


def deal_runs(specs: list[RunSpec], world_size: int, rank: int) -> list[RunSpec]:
    """The runs process ``rank`` of ``world_size`` trains, in grid order.

    The processes meet after every (model seed, seed) group, so each group is dealt on its
    own: its runs, costliest first (:func:`relative_cost`, ties in grid order), each to the
    process with the least work so far (ties to the lowest rank). Every process computes the
    same deal. Which process trains a run does not change it (its streams follow its seed).
    """
    for name, value, low in (("world_size", world_size, 1), ("rank", rank, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"deal_runs: {name} must be an integer >= {low}, got {value!r}")
    if rank >= world_size:
        raise ValueError(f"deal_runs: rank {rank} is out of range for {world_size} processes")
    if world_size == 1:
        return list(specs)
    groups: dict[tuple[int | None, int], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault((spec.model_seed, spec.seed), []).append(index)
    mine: list[int] = []
    for indices in groups.values():
        load = [0.0] * world_size
        for index in sorted(indices, key=lambda i: (-relative_cost(specs[i]), i)):
            owner = min(range(world_size), key=lambda r: (load[r], r))
            load[owner] += relative_cost(specs[index])
            if owner == rank:
                mine.append(index)
    return [specs[i] for i in sorted(mine)]


def needs_data_scale(cfg: BenchmarkConfig, specs: list[RunSpec]) -> bool:
    """True when some coefficient of these runs comes from the data-scale rule."""
    knobs = sparsity_knobs()
    return any(knobs[s.architecture] in _PENALTY_KNOBS and s.architecture not in cfg.coefficients
               and knobs[s.architecture] not in settings_for(cfg, s.architecture, s.target_l0)
               for s in specs)


@dataclass
class SweepRun:
    """One SAE of the benchmark and how it was set up."""

    spec: RunSpec
    knob: str
    knob_value: float | int
    lr: float
    sae: TrainingSAE
    control: L0ControlConfig | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def architecture(self) -> str:
        return self.spec.architecture

    @property
    def target_l0(self) -> int:
        return self.spec.target_l0

    def describe(self) -> dict[str, Any]:
        """The run's setup as plain values (no SAE)."""
        return {"name": self.name, "architecture": self.architecture, "target_l0": self.target_l0,
                "seed": self.spec.seed, "model_seed": self.spec.model_seed, "knob": self.knob,
                "knob_value": self.knob_value, "lr": self.lr, "sae_config": self.sae.cfg.to_dict(),
                "l0_control": self.control.to_dict() if self.control is not None else None}


def settings_for(cfg: BenchmarkConfig, architecture: str, target: int) -> dict[str, Any]:
    """The recipe's settings for ``architecture`` at ``target`` with the config's
    ``sae_settings`` on top (key by key)."""
    from synthsae.benchmark.recipes import get_recipe

    merged = get_recipe(cfg.recipe).sae_settings(architecture, target, cfg.total_training_steps, cfg.d_sae)
    merged.update(copy.deepcopy(cfg.sae_settings.get(architecture, {})))
    return merged


def _control(cfg: BenchmarkConfig, architecture: str, target: int, sae: TrainingSAE) -> L0ControlConfig | None:
    from synthsae.benchmark.recipes import get_recipe
    from synthsae.training.l0_control import L0ControlConfig, supports_l0_control

    if not cfg.l0_control or not supports_l0_control(sae):
        return None
    start = get_recipe(cfg.recipe).control_start(architecture, cfg.total_training_steps)
    return L0ControlConfig(target_l0=float(target), start_step=start, **cfg.l0_control_settings)


def build_runs(cfg: BenchmarkConfig, specs: list[RunSpec], d_in: int, scale: DataScale | None = None) -> list[SweepRun]:
    """A training SAE for each spec (see the module docstring for seeds and sparsity)."""
    from synthsae.saes.registry import get_sae_architecture

    runs = []
    for spec in specs:
        arch, target = spec.architecture, spec.target_l0
        settings = settings_for(cfg, arch, target)
        lr = float(settings.pop("lr", cfg.lr))
        coefs = cfg.coefficients.get(arch)
        knob = sparsity_knobs()[arch]
        given = coefs[cfg.l0_targets.index(target)] if coefs is not None else settings.get(knob)
        knob, value = sparsity_setting(arch, target, scale, given if knob in _PENALTY_KNOBS else None)
        fields = {**settings, "d_in": d_in, "d_sae": cfg.d_sae, "device": cfg.device, knob: value}
        if arch == "jumprelu" and fields.get("jumprelu_sparsity_loss_mode") == "quadratic":
            fields.setdefault("target_l0", float(target))  # the quadratic loss is built around the target
        try:
            sae_cfg = get_sae_architecture(arch).training_cfg_cls(**fields)
        except (TypeError, ValueError) as err:
            raise type(err)(f"sae_settings.{arch}: {err}") from None
        torch.manual_seed(spec.seed)
        sae = get_sae_architecture(arch).training_cls(sae_cfg)
        runs.append(SweepRun(spec, knob, value, lr, sae, _control(cfg, arch, target, sae)))
    return runs
