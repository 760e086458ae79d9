"""Run a benchmark: the grid of SAEs, seed group by seed group, then the tables and plots.

``run_benchmark(cfg)``:

1. checks the output folder (writable; empty unless resuming or overwriting) and writes
   ``benchmark_config.json`` before any training; with ``resume`` it reads the runs already
   finished there and trains only the others;
2. for each model seed and seed: builds the SAEs of the grid cells still to do, trains them
   with ONE :class:`~synthsae.training.trainer.Trainer` over ONE stream of batches drawn
   with that seed (each batch generated once for all of them), steering the
   coefficient-based ones with an :class:`~synthsae.training.l0_control.L0Controller`;
3. evaluates each SAE's inference form on the seed's eval rows (plus feature absorption on
   hierarchical models) and writes it to ``saes/<name>/`` at once;
4. aggregates every run (mean ± sd over seeds per architecture and target), optionally
   measures the probe ceiling, and writes ``leaderboard.md/.csv/.json``,
   ``leaderboard_runs.csv`` and the plots.

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) each seed group's cells are dealt to the
processes by estimated cost (:func:`~synthsae.benchmark.sweep.deal_runs`), each of which
trains its share with its own trainer (no gradient traffic). An SAE's batches depend on
its seed only, and every SAE computes alone (the L0 controller is elementwise,
initialisation reseeds per SAE, activation norms come from their own stream), so each
trains exactly as in a single-process run. Rank 0 gathers each seed
group's finished SAEs, writes every file and returns the full result; the other ranks
return theirs.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthsae._progress import progress_bar
from synthsae.benchmark.config import DEFAULT_PRESET, BenchmarkConfig
from synthsae.benchmark.leaderboard import format_markdown
from synthsae.benchmark.store import (
    CONFIG_FILENAME,
    RunRecord,
    prepare_output_dir,
    read_finished_runs,
    write_run,
)
from synthsae.benchmark.sweep import (
    EVAL_STREAM,
    NORM_STREAM,
    SCALE_STREAM,
    TRAIN_STREAM,
    RunSpec,
    SweepRun,
    build_runs,
    deal_runs,
    estimate_data_scale,
    needs_data_scale,
    plan_runs,
    stream_seed,
)
from synthsae.training import distributed

__all__ = ["BenchmarkResult", "SharedStream", "load_benchmark_model", "run_benchmark"]


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` returns: every run's row (grid order), the summary rows
    (mean ± sd per architecture and target), the records (rows, evals, setups), the probe
    ceiling, timings and the files written. On ranks other than 0 under torchrun, only
    that rank's runs."""

    config: BenchmarkConfig
    rows: list[dict[str, Any]]
    summaries: list[dict[str, Any]]
    records: list[RunRecord]
    true_l0: float | None
    probe: dict[str, Any] | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    output_dir: Path | None = None
    files: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    write_errors: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The per-L0 tables as Markdown (what ``leaderboard.md`` holds)."""
        from synthsae.benchmark.report import notes, title

        return format_markdown(self.summaries, self.config.rank_by, title(self.config), notes(self), self.probe)


class SharedStream(Iterator[torch.Tensor]):
    """The one data stream of a seed group: counts batches and the time spent generating them."""

    def __init__(self, data: Iterator[torch.Tensor], device: torch.device) -> None:
        self.data, self.device = data, device
        self.batches, self.seconds = 0, 0.0

    def __iter__(self) -> SharedStream:
        return self

    def __next__(self) -> torch.Tensor:
        t0 = time.perf_counter()
        batch = next(self.data)
        _sync(self.device)
        self.seconds += time.perf_counter() - t0
        self.batches += 1
        return batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_benchmark_model(cfg: BenchmarkConfig, model_seed: int | None = None, device: str | None = None) -> Any:
    """The synthetic model the config names (see :class:`BenchmarkConfig`), built with
    ``model_seed`` instead of its own seed when given, on ``device`` (default ``cfg.device``)."""
    import dataclasses

    from synthsae.synthetic.model_config import SyntheticModelConfig
    from synthsae.synthetic.presets import get_preset
    from synthsae.synthetic.synthetic_model import SyntheticModel

    device = device or cfg.device
    if cfg.model is not None:
        path = Path(cfg.model).expanduser()
        if path.is_file():  # a config file (from_file refuses endings other than .yaml/.yml/.json)
            config = SyntheticModelConfig.from_file(path)
        else:
            return SyntheticModel.load_from_source(cfg.model, device=device)
    elif cfg.model_config is not None:
        config = SyntheticModelConfig.from_dict(cfg.model_config)
    else:
        config = get_preset(cfg.preset or DEFAULT_PRESET)
    if model_seed is not None:
        config = dataclasses.replace(config, seed=model_seed)
    return SyntheticModel(config, device=device)


@contextlib.contextmanager
def _sampling_stream(model: Any, seed: int) -> Iterator[None]:
    """Draw from a fresh generator seeded ``seed``; the model's own stream is restored after."""
    gen = model.activation_generator
    saved = gen.generator
    gen.generator = torch.Generator(device=model.device).manual_seed(seed)
    try:
        yield
    finally:
        gen.generator = saved


def _timed(slot: Any, times: list[float], index: int, device: torch.device) -> None:
    """Make ``slot.train_step`` add its wall time to ``times[index]`` (per-SAE training time)."""
    step = slot.train_step

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = step(*args, **kwargs)
        _sync(device)
        times[index] += time.perf_counter() - t0
        return out

    slot.train_step = timed


def _norm_factor(cfg: BenchmarkConfig, model: Any, seed: int, n_batches: int) -> float:
    """The ``expected_average_only_in`` scaling factor, ``sqrt(d_in) / E||x||``, from the
    seed's own norm stream (never the training stream, which every SAE of the group shares)."""
    from synthsae.runs.activation_iterator import SyntheticActivationIterator
    from synthsae.training.activation_scaler import ActivationScaler

    with _sampling_stream(model, stream_seed(seed, NORM_STREAM)):
        data = SyntheticActivationIterator(model.feature_dict, model.activation_generator, cfg.batch_size)
        return ActivationScaler().estimate_scaling_factor(int(model.hidden_dim), data, n_batches)


def _train(cfg: BenchmarkConfig, model: Any, runs: list[SweepRun], seed: int, device: str) -> dict[str, Any]:
    from synthsae.runs.activation_iterator import SyntheticActivationIterator
    from synthsae.training.l0_control import L0Controller
    from synthsae.training.trainer import Trainer, TrainerConfig

    dev = torch.device(device)
    model.feature_dict.eval()
    cfgs = [TrainerConfig(total_training_samples=cfg.training_samples, batch_size=cfg.batch_size, lr=run.lr,
                          device=device, log_frequency=100, show_progress=cfg.show_progress,
                          dead_feature_window=cfg.resolved_dead_feature_window(), autocast=cfg.autocast)
            for run in runs]
    controlled = {i: run.control for i, run in enumerate(runs) if run.control is not None}
    controller = L0Controller(controlled) if controlled else None
    with _sampling_stream(model, stream_seed(seed, TRAIN_STREAM)):
        stream = SharedStream(SyntheticActivationIterator(model.feature_dict, model.activation_generator,
                                                          cfg.batch_size, autocast=cfg.autocast), dev)
        trainer = Trainer([run.sae for run in runs], stream, cfgs, [controller] if controller else [],
                          data_parallel=False)
        normalised = [s for s in trainer.slots if s.sae.cfg.normalize_activations == "expected_average_only_in"]
        if normalised:
            factor = _norm_factor(cfg, model, seed, cfgs[0].n_batches_for_norm_estimate)
            for slot in normalised:
                slot.scaler.scaling_factor = factor
        times = [0.0] * len(runs)
        for i, slot in enumerate(trainer.slots):
            _timed(slot, times, i, dev)
        t0 = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - t0
    multipliers = controller.multipliers() if controller else {}
    return {"times": times, "wall": wall, "data_seconds": stream.seconds, "batches": stream.batches,
            "multipliers": [multipliers.get(i) for i in range(len(runs))]}


def _evaluate(cfg: BenchmarkConfig, model: Any, run: SweepRun) -> tuple[Any, Any]:
    from synthsae.evals.eval_sae import eval_sae_on_synthetic_data

    sae = run.sae.to_inference_sae()
    with _sampling_stream(model, stream_seed(run.spec.seed, EVAL_STREAM)):  # the seed's SAEs share eval rows
        result = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                            num_samples=cfg.eval_samples, show_progress=cfg.show_progress)
        absorption = None
        if cfg.absorption and getattr(model, "hierarchy", None) is not None:
            from synthsae.evals.absorption import compute_feature_absorption

            # a tenth of the eval rows, at least 20k: the rate averages over every parent/child pair
            rows = min(cfg.eval_samples, max(20_000, cfg.eval_samples // 10))
            absorption = compute_feature_absorption(sae, model, num_samples=rows)
    return result, absorption


def _record(run: SweepRun, result: Any, absorption: Any, train_s: float, eval_s: float,
            multiplier: float | None, cfg: BenchmarkConfig) -> RunRecord:
    c = result.classification
    absorption_rate = float(absorption.absorption_rate) if absorption is not None else None
    final = run.knob_value * multiplier if multiplier is not None else run.knob_value
    row = {"name": run.name, "architecture": run.architecture, "target_l0": run.target_l0, "seed": run.spec.seed,
           "model_seed": run.spec.model_seed, "l0": result.sae_l0, "f1": c.f1_score, "mcc": result.mcc,
           "precision": c.precision, "recall": c.recall, "explained_variance": result.explained_variance,
           "uniqueness": result.uniqueness, "dead_latents": result.dead_latents, "d_sae": int(run.sae.cfg.d_sae),
           "shrinkage": result.shrinkage, "absorption": absorption_rate, "knob": run.knob,
           "knob_value": run.knob_value, "final_coefficient": final, "train_seconds": train_s,
           "eval_seconds": eval_s, "samples_per_second": cfg.training_samples / train_s if train_s > 0 else None}
    state = run.sae._state_dict_copy()
    run.sae.process_state_dict_for_saving_inference(state)
    return RunRecord(row, result.to_dict(), run.describe(),
                     absorption.to_dict() if absorption is not None else None,
                     ({k: v.detach().cpu() for k, v in state.items()}, run.sae.cfg.get_inference_sae_cfg_dict()))


def _group_records(cfg: BenchmarkConfig, model: Any, specs: list[RunSpec], seed: int, device: str,
                   scale: Any, on_record: Any) -> tuple[list[RunRecord], dict[str, Any]]:
    """Train and evaluate one seed group's specs; ``on_record`` receives each as it finishes."""
    if not specs:
        return [], {}
    runs = build_runs(cfg, specs, int(model.hidden_dim), scale)
    for run in runs:
        run.sae.to(device)
    trained = _train(cfg, model, runs, seed, device)
    records = []
    for i, run in enumerate(progress_bar(runs, desc="Evaluating SAEs", unit="SAE", show=cfg.show_progress)):
        t0 = time.perf_counter()
        result, absorption = _evaluate(cfg, model, run)
        record = _record(run, result, absorption, trained["times"][i], time.perf_counter() - t0,
                         trained["multipliers"][i], cfg)
        on_record(record)
        records.append(record)
    return records, trained


def _rank_device(cfg: BenchmarkConfig) -> str:
    """``cfg.device``; under torchrun, ``cuda`` becomes this rank's GPU."""
    if distributed.is_distributed() and cfg.device == "cuda":
        return f"cuda:{distributed.local_rank()}"
    return cfg.device


def run_benchmark(cfg: BenchmarkConfig, model: Any = None, *, resume: bool = False,
                  overwrite: bool = False) -> BenchmarkResult:
    """Train, evaluate and tabulate every SAE of ``cfg`` (see the module docstring).

    ``model``: a ready :class:`~synthsae.synthetic.synthetic_model.SyntheticModel` to use
    instead of the one ``cfg`` names (not with ``model_seeds``). ``resume``: continue the
    benchmark in ``cfg.output_dir``, skipping its finished runs (the final tables are the
    same as an uninterrupted run's). ``overwrite``: write into a non-empty output folder.
    The global torch RNG and the model's sampling stream are left as they were.
    """
    if model is not None and cfg.model_seeds is not None:
        raise ValueError("model_seeds rebuilds the model per seed: pass no model")
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        distributed.init_distributed_from_env("gloo")  # only objects travel between the ranks
    rank = distributed.rank()
    main = rank == 0
    out = Path(cfg.output_dir) if cfg.output_dir is not None else None
    finished: dict[str, RunRecord] = {}
    failure: Exception | None = None
    if out is not None and main:
        try:
            prepare_output_dir(out, resume=resume, overwrite=overwrite)
            if resume:
                finished = read_finished_runs(out)
            cfg.to_file(out / CONFIG_FILENAME)
        except (OSError, ValueError) as err:
            failure = err
    shared = distributed.broadcast_object({"finished": sorted(finished), "failure": str(failure or "")})
    if failure is not None:
        raise failure
    if shared["failure"]:  # the other ranks stop with rank 0 instead of waiting for it
        raise RuntimeError(f"rank 0 could not prepare the output folder: {shared['failure']}")
    finished_names = shared["finished"]
    t_start = time.perf_counter()
    device = _rank_device(cfg)
    all_specs = plan_runs(cfg)
    todo = [s for s in all_specs if s.name not in finished_names]
    mine = deal_runs(todo, distributed.world_size(), rank)
    records: dict[str, RunRecord] = dict(finished)
    write_errors: list[str] = []
    timing: dict[str, Any] = {"groups": []}
    model_info: dict[str, Any] = {}
    cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        for model_seed in (cfg.model_seeds if cfg.model_seeds is not None else [None]):
            t0 = time.perf_counter()
            group_model = model if model is not None else load_benchmark_model(cfg, model_seed, device)
            build_s = time.perf_counter() - t0
            specs = [s for s in mine if s.model_seed == model_seed]
            scale = None
            if needs_data_scale(cfg, specs):
                scale = estimate_data_scale(group_model, seed=stream_seed(0, SCALE_STREAM))
            model_info = {"num_features": int(group_model.num_features), "hidden_dim": int(group_model.hidden_dim)}
            for seed in cfg.seeds:
                group = [s for s in specs if s.seed == seed]

                def keep(record: RunRecord) -> None:
                    if main and out is not None:
                        try:
                            write_run(out, record)
                            record.weights = None
                        except OSError as err:  # e.g. a full disk: keep the SAE in memory, report it
                            write_errors.append(f"SAE {record.name} ({err})")
                            warnings.warn(f"could not write SAE {record.name}: {err}", UserWarning, stacklevel=2)
                    records[record.name] = record

                new, trained = _group_records(cfg, group_model, group, seed, device, scale, keep)
                timing["groups"].append(_group_timing(model_seed, seed, new, trained, build_s))
                if distributed.is_distributed():
                    gathered = distributed.gather_objects(new)
                    for other in (gathered or [])[1:]:
                        for record in other:
                            keep(record)
                    for record in new:
                        record.weights = None  # rank 0 holds them now
                    distributed.barrier()
            if main and out is not None and cfg.save_synthetic_model:
                folder = "synthetic_model" if model_seed is None else f"synthetic_model_{model_seed}"
                group_model.save(out / folder)
        from synthsae.benchmark.report import finish

        result = finish(cfg, all_specs, records, timing, t_start, out if main else None, model_info,
                        group_model if main else None, main)
    result.write_errors[:0] = write_errors
    return result


def _group_timing(model_seed: int | None, seed: int, records: list[RunRecord], trained: dict[str, Any],
                  build_s: float) -> dict[str, Any]:
    return {"model_seed": model_seed, "seed": seed, "saes": len(records), "model_build_seconds": build_s,
            "train_wall_seconds": trained.get("wall"), "data_seconds": trained.get("data_seconds"),
            "batches": trained.get("batches"), "sae_train_seconds": sum(trained.get("times", []))}

