"""Run a benchmark: one Trainer, one data stream, every SAE of the sweep; then evals and files.

``run_benchmark(cfg)`` loads or builds the synthetic model, builds the sweep
(:func:`~synthsae.benchmark.sweep.build_sweep`), trains every SAE with ONE
:class:`~synthsae.training.trainer.Trainer` over ONE
:class:`~synthsae.runs.activation_iterator.SyntheticActivationIterator` (each batch is generated
once and shared), evaluates each SAE's inference form on the same fresh samples with
:func:`~synthsae.evals.eval_sae.eval_sae_on_synthetic_data` (streamed), and, when
``cfg.output_dir`` is set, writes::

    leaderboard.md, leaderboard.csv, leaderboard.json, benchmark_config.json
    plots/<metric>.png, plots/overview.png      (when cfg.plots; needs matplotlib)
    saes/<architecture>_l0-<target>/            (save_inference_model: weights + cfg.json)
    synthetic_model/                            (when cfg.save_synthetic_model)
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthsae._progress import progress_bar
from synthsae.benchmark.config import DEFAULT_PRESET, BenchmarkConfig
from synthsae.benchmark.leaderboard import (
    architecture_summary,
    format_markdown,
    rank_rows,
    write_csv,
    write_json,
    write_markdown,
)
from synthsae.benchmark.sweep import (
    DataScale,
    SweepRun,
    build_sweep,
    estimate_data_scale,
    sparsity_knobs,
)
from synthsae.output_folders import check_new_output_folder, check_writable, clear_output_folder
from synthsae.training import distributed

__all__ = ["BenchmarkResult", "SharedStream", "load_benchmark_model", "run_benchmark"]

TRAIN_SEED_OFFSET, EVAL_SEED_OFFSET, SCALE_SEED_OFFSET = 1, 2, 3


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` returns: ranked ``rows``, the trained ``runs`` (SAEs in
    training form), each run's ``evals`` (same order as ``runs``), timings and files."""

    config: BenchmarkConfig
    rows: list[dict[str, Any]]
    runs: list[SweepRun]
    evals: list[Any]
    true_l0: float
    timing: dict[str, float]
    data_batches: int
    output_dir: Path | None = None
    files: dict[str, Any] = field(default_factory=dict)
    write_errors: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The leaderboard as Markdown (what ``leaderboard.md`` holds)."""
        return format_markdown(self.rows, self.config.rank_by, _title(self.config), _notes(self))


class SharedStream(Iterator[torch.Tensor]):
    """The one data stream of a benchmark: wraps the iterator, counts batches and the time
    spent generating them, and passes ``state_dict``/``load_state_dict`` through."""

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

    def state_dict(self) -> dict[str, Any]:
        return self.data.state_dict()  # type: ignore[attr-defined]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.load_state_dict(state)  # type: ignore[attr-defined]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_benchmark_model(cfg: BenchmarkConfig) -> Any:
    """The synthetic model the config names (see :class:`BenchmarkConfig`), on ``cfg.device``."""
    from synthsae.synthetic.model_config import SyntheticModelConfig
    from synthsae.synthetic.presets import get_preset
    from synthsae.synthetic.synthetic_model import SyntheticModel

    if cfg.model_config is not None:
        return SyntheticModel(SyntheticModelConfig.from_dict(cfg.model_config), device=cfg.device)
    if cfg.model is not None:
        path = Path(cfg.model).expanduser()
        if path.is_file():  # a config file (from_file refuses endings other than .yaml/.yml/.json)
            return SyntheticModel(SyntheticModelConfig.from_file(path), device=cfg.device)
        return SyntheticModel.load_from_source(cfg.model, device=cfg.device)
    return SyntheticModel(get_preset(cfg.preset or DEFAULT_PRESET), device=cfg.device)


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


def _timed_train_step(slot: Any, times: list[float], index: int, device: torch.device) -> None:
    """Make ``slot.train_step`` add its wall time to ``times[index]`` (per-SAE training time)."""
    step = slot.train_step

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = step(*args, **kwargs)
        _sync(device)
        times[index] += time.perf_counter() - t0
        return out

    slot.train_step = timed


def _train(cfg: BenchmarkConfig, model: Any, runs: list[SweepRun]) -> tuple[list[float], SharedStream, float]:
    from synthsae.runs.activation_iterator import SyntheticActivationIterator
    from synthsae.training.trainer import Trainer, TrainerConfig

    device = torch.device(cfg.device)
    model.feature_dict.eval()
    cfgs = [TrainerConfig(total_training_samples=cfg.training_samples, batch_size=cfg.batch_size, lr=run.lr,
                          device=cfg.device, log_frequency=100, show_progress=cfg.show_progress,
                          dead_feature_window=cfg.resolved_dead_feature_window())
            for run in runs]
    with _sampling_stream(model, cfg.seed + TRAIN_SEED_OFFSET):
        stream = SharedStream(SyntheticActivationIterator(model.feature_dict, model.activation_generator,
                                                          cfg.batch_size), device)
        trainer = Trainer([run.sae for run in runs], stream, cfgs)
        times = [0.0] * len(runs)
        for i, slot in enumerate(trainer.slots):
            _timed_train_step(slot, times, i, device)
        t0 = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - t0
    return times, stream, wall


def _evaluate(cfg: BenchmarkConfig, model: Any, run: SweepRun) -> Any:
    from synthsae.evals.eval_sae import eval_sae_on_synthetic_data

    sae = run.sae.to_inference_sae()
    with _sampling_stream(model, cfg.seed + EVAL_SEED_OFFSET):  # every SAE sees the same eval rows
        return eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                          num_samples=cfg.eval_samples, show_progress=cfg.show_progress)


def _row(run: SweepRun, result: Any, train_s: float, eval_s: float) -> dict[str, Any]:
    c = result.classification
    return {"rank": None, "name": run.name, "architecture": run.architecture, "target_l0": run.target_l0,
            "l0": result.sae_l0, "knob": run.knob, "knob_value": run.knob_value, "mcc": result.mcc,
            "f1": c.f1_score, "precision": c.precision, "recall": c.recall,
            "explained_variance": result.explained_variance, "uniqueness": result.uniqueness,
            "dead_latents": result.dead_latents, "d_sae": int(run.sae.cfg.d_sae), "shrinkage": result.shrinkage,
            "train_seconds": train_s, "eval_seconds": eval_s}


def run_benchmark(cfg: BenchmarkConfig, model: Any = None, *, overwrite: bool = False) -> BenchmarkResult:
    """Train, evaluate and rank every SAE of ``cfg`` (see the module docstring).

    ``model``: a ready :class:`~synthsae.synthetic.synthetic_model.SyntheticModel` to use
    instead of the one ``cfg`` names (its sampling stream is left as it was). The global
    torch RNG is left as it was too.

    ``cfg.output_dir`` is checked before anything is built: a folder holding files (an
    earlier benchmark's) is refused unless ``overwrite`` (then it is cleared), and it must
    be writable. If writing the outputs fails after training, the error is recorded in
    ``result.write_errors`` (with a warning) and the result is still returned.

    Raises:
        OutputFolderExistsError, OutputNotWritableError: (both ValueErrors) see above.
    """
    if distributed.is_distributed():
        raise RuntimeError("run_benchmark runs in a single process: launch `synthsae bench` without torchrun "
                           f"(found a process group of {distributed.world_size()} ranks)")
    if cfg.output_dir is not None:
        check_new_output_folder(cfg.output_dir, "output_dir", overwrite=overwrite,
                                remedy="pass overwrite=True to clear it first")
        check_writable(cfg.output_dir, "output_dir")
        if overwrite:
            clear_output_folder(cfg.output_dir)
    t_start = time.perf_counter()
    cuda = [torch.device(cfg.device).index or 0] if torch.device(cfg.device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        if model is None:
            model = load_benchmark_model(cfg)
        build_s = time.perf_counter() - t_start
        knobs = sparsity_knobs()
        needs_rule = any(knobs[a].endswith("_coefficient") and a not in cfg.coefficients
                         for a in cfg.architectures)
        scale = estimate_data_scale(model, seed=cfg.seed + SCALE_SEED_OFFSET) if needs_rule else None
        runs = build_sweep(cfg, int(model.hidden_dim), scale)
        train_times, stream, train_wall = _train(cfg, model, runs)
        evals, rows = [], []
        t_eval = time.perf_counter()
        for run, seconds in zip(progress_bar(runs, desc="Evaluating SAEs", unit="SAE", show=cfg.show_progress),
                                train_times):
            t0 = time.perf_counter()
            result = _evaluate(cfg, model, run)
            evals.append(result)
            rows.append(_row(run, result, seconds, time.perf_counter() - t0))
        eval_s = time.perf_counter() - t_eval
    timing = {"model_build_seconds": build_s, "train_wall_seconds": train_wall, "data_seconds": stream.seconds,
              "sae_train_seconds": sum(train_times), "eval_seconds": eval_s}
    result = BenchmarkResult(cfg, rank_rows(rows, cfg.rank_by), runs, evals,
                             true_l0=float(evals[0].true_l0), timing=timing, data_batches=stream.batches)
    timing["total_seconds"] = time.perf_counter() - t_start  # model, training and evals (not the files)
    if cfg.output_dir is not None:
        try:
            _write_outputs(result, model, scale)
        except OSError as err:  # e.g. a full disk: keep the trained SAEs and the table
            result.write_errors.append(f"the outputs in {cfg.output_dir} ({err})")
            warnings.warn(f"the benchmark finished but could not write its outputs to {cfg.output_dir}: {err}",
                          UserWarning, stacklevel=2)
    return result


def _title(cfg: BenchmarkConfig) -> str:
    return f"SAE benchmark on {cfg.model_label}"


def _notes(result: BenchmarkResult) -> list[str]:
    cfg, t = result.config, result.timing
    n = len(result.runs)
    return [
        f"true L0 {result.true_l0:.2f}; d_sae {cfg.d_sae}; {cfg.training_samples:,} training samples "
        f"(batch {cfg.batch_size}); {cfg.eval_samples:,} eval samples; seed {cfg.seed}",
        f"ranked by {cfg.rank_by}; L0 is the achieved L0 on the eval samples",
        f"{n} SAEs trained by one Trainer on one shared stream: {result.data_batches:,} batches generated "
        f"once ({t['data_seconds']:.1f} s), training {t['train_wall_seconds']:.1f} s in all",
    ]


def _write_outputs(result: BenchmarkResult, model: Any, scale: DataScale | None) -> None:
    cfg = result.config
    out = Path(cfg.output_dir)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {"saes": {}}
    for run in result.runs:
        run.sae.save_inference_model(out / "saes" / run.name)
        files["saes"][run.name] = str(Path("saes") / run.name)
    if cfg.save_synthetic_model:
        model.save(out / "synthetic_model")
        files["synthetic_model"] = "synthetic_model"
    cfg.to_file(out / "benchmark_config.json")
    title, notes = _title(cfg), _notes(result)
    files["markdown"] = write_markdown(out / "leaderboard.md", result.rows, cfg.rank_by, title, notes).name
    files["csv"] = write_csv(out / "leaderboard.csv", result.rows).name
    files["plots"] = []
    if cfg.plots:
        try:
            from synthsae.benchmark.plots import plot_leaderboard

            order = {run.name: i for i, run in enumerate(result.runs)}  # line colours follow the config order
            rows = sorted(result.rows, key=lambda r: order[r["name"]])
            plots = plot_leaderboard(rows, out / "plots", result.true_l0, title)
            files["plots"] = [str(p.relative_to(out)) for p in plots]
        except ImportError as err:
            warnings.warn(f"leaderboard plots skipped: {err}", stacklevel=3)
    by_name = {run.name: (run, ev) for run, ev in zip(result.runs, result.evals)}
    payload = {
        "format_version": 1,
        "title": title,
        "config": cfg.to_dict(),
        "model": {"source": cfg.model_label, "num_features": int(model.num_features),
                  "hidden_dim": int(model.hidden_dim), "true_l0": result.true_l0},
        "data_scale": scale.to_dict() if scale is not None else None,
        "rank_by": cfg.rank_by,
        "timing": result.timing,
        "data_batches": result.data_batches,
        "runs": [{**row, "setup": by_name[row["name"]][0].describe(), "eval": by_name[row["name"]][1].to_dict(),
                  "path": files["saes"][row["name"]]} for row in result.rows],
        "architectures": architecture_summary(result.rows, cfg.rank_by),
        "files": files,
    }
    files["json"] = write_json(out / "leaderboard.json", payload).name
    result.output_dir, result.files = out, files
