"""The end of a benchmark: summary rows, the probe ceiling, the tables, plots and JSON.

Everything written here is a function of the finished runs' records (and, for the probe,
of the model and the config), so a resumed benchmark writes the same tables as an
uninterrupted one; wall-clock timings go to ``leaderboard.json`` only.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthsae.benchmark.leaderboard import (
    RUN_COLUMNS,
    aggregate,
    summary_columns,
    write_csv,
    write_json,
    write_markdown,
)
from synthsae.benchmark.published import PUBLISHED_MODEL, PUBLISHED_SOURCE, published_row

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.benchmark.config import BenchmarkConfig
    from synthsae.benchmark.run import BenchmarkResult
    from synthsae.benchmark.store import RunRecord
    from synthsae.benchmark.sweep import RunSpec

__all__ = ["finish", "notes", "shows_published", "title"]

PROBE_SEED = 5
"""Sampling seed of the probe ceiling's rows (a stream no training or eval uses)."""


def shows_published(cfg: BenchmarkConfig) -> bool:
    """True when the tables carry the published numbers: the run is on their model."""
    return cfg.preset is not None and cfg.preset.replace("-", "_") == PUBLISHED_MODEL


def title(cfg: BenchmarkConfig) -> str:
    recipe = f", recipe {cfg.recipe}" if cfg.recipe else ""
    return f"SAE benchmark on {cfg.model_label}{recipe}"


def notes(result: BenchmarkResult) -> list[str]:
    cfg = result.config
    true_l0 = f"true L0 {result.true_l0:.2f}; " if result.true_l0 is not None else ""
    lines = [
        f"{true_l0}d_sae {cfg.d_sae}; {cfg.training_samples:,} training samples (batch {cfg.batch_size}, "
        f"lr {cfg.lr:g}); {cfg.eval_samples:,} eval samples; seeds {', '.join(map(str, cfg.seeds))}"
        + (f"; model seeds {', '.join(map(str, cfg.model_seeds))}" if cfg.model_seeds else ""),
        "each cell: mean ± sd over seeds; L0 is the achieved L0 on the eval rows; rows ordered by "
        f"{cfg.rank_by} within each target (targets are never ranked against each other)",
    ]
    if cfg.l0_control:
        lines.append("standard, gated and JumpReLU SAEs are steered to the target L0 by the L0 controller")
    if shows_published(cfg):
        lines.append(f"published: mean ± sd over 5 seeds at width 4096 and 200M samples, from {PUBLISHED_SOURCE}")
    if result.probe is not None:
        lines.append(f"probe ceiling: a supervised logistic probe per true feature (the {result.probe['num_features']} "
                     "most frequent), the F1 an SAE latent could reach")
    return lines


def _probe(cfg: BenchmarkConfig, model: Any) -> dict[str, Any] | None:
    if not cfg.probe_ceiling or model is None:
        return None
    import torch

    from synthsae.evals.probe import probe_ceiling

    gen = model.activation_generator
    saved = gen.generator
    gen.generator = torch.Generator(device=model.device).manual_seed(PROBE_SEED)
    try:
        t0 = time.perf_counter()
        result = probe_ceiling(model.feature_dict, gen, max_features=min(cfg.d_sae, int(model.num_features)),
                               eval_samples=min(cfg.eval_samples, 100_000), show_progress=cfg.show_progress)
    finally:
        gen.generator = saved
    out = result.to_dict()
    out.pop("per_feature_f1")
    out.pop("features")
    out["seconds"] = time.perf_counter() - t0
    return out


def finish(cfg: BenchmarkConfig, specs: list[RunSpec], records: dict[str, RunRecord], timing: dict[str, Any],
           t_start: float, out: Path | None, model_info: dict[str, Any], model: Any, main: bool) -> BenchmarkResult:
    """Aggregate the runs (grid order), measure the probe, write the files (rank 0 with an output)."""
    from synthsae.benchmark.run import BenchmarkResult

    ordered = [records[s.name] for s in specs if s.name in records]
    rows = [r.row for r in ordered]
    summaries = aggregate(rows, published_row if shows_published(cfg) else None)
    true_l0 = float(ordered[0].eval["true_l0"]) if ordered and "true_l0" in ordered[0].eval else None
    probe = _probe(cfg, model) if main else None
    timing["total_seconds"] = time.perf_counter() - t_start
    result = BenchmarkResult(cfg, rows, summaries, ordered, true_l0, probe, timing, model_info=model_info)
    if out is not None:
        try:
            _write(result, out)
        except OSError as err:  # e.g. a full disk: the result (and the SAEs already written) stay
            result.write_errors.append(f"the tables in {out} ({err})")
            warnings.warn(f"the benchmark finished but could not write its tables to {out}: {err}", UserWarning,
                          stacklevel=3)
    return result


def _write(result: BenchmarkResult, out: Path) -> None:
    cfg = result.config
    files: dict[str, Any] = {"saes": {r.name: f"saes/{r.name}" for r in result.records}}
    files["markdown"] = write_markdown(out / "leaderboard.md", result.summaries, cfg.rank_by, title(cfg),
                                       notes(result), result.probe).name
    files["csv"] = write_csv(out / "leaderboard.csv", result.summaries, summary_columns()).name
    files["runs_csv"] = write_csv(out / "leaderboard_runs.csv", result.rows, RUN_COLUMNS).name
    files["plots"] = []
    if cfg.plots and result.summaries:
        try:
            from synthsae.benchmark.plots import plot_leaderboard

            plots = plot_leaderboard(result.summaries, out / "plots", result.true_l0, title(cfg))
            files["plots"] = [str(p.relative_to(out)) for p in plots]
        except ImportError as err:
            warnings.warn(f"benchmark plots skipped: {err}", stacklevel=3)
    payload = {
        "format_version": 2,
        "title": title(cfg),
        "config": cfg.to_dict(),
        "model": {"source": cfg.model_label, "true_l0": result.true_l0, **result.model_info},
        "published_source": PUBLISHED_SOURCE if shows_published(cfg) else None,
        "summaries": result.summaries,
        "runs": [{**r.row, "setup": r.setup, "eval": r.eval, "absorption": r.absorption,
                  "path": files["saes"][r.name]} for r in result.records],
        "probe_ceiling": result.probe,
        "timing": result.timing,
        "files": files,
    }
    files["json"] = write_json(out / "leaderboard.json", payload).name
    result.output_dir, result.files = out, files
