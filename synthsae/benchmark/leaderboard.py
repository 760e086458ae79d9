"""Benchmark tables as the field reads them: one table per L0 target, mean ± sd over seeds.

A *run row* is a flat dict for one trained SAE (:data:`RUN_COLUMNS`). :func:`aggregate`
groups them by (architecture, L0 target) into *summary rows* holding, for every metric of
:data:`METRICS`, its mean and sample standard deviation over the seeds (``sd`` is ``None``
for a single seed). :func:`format_markdown` prints one table per target, its rows ordered
by one metric (best first): runs at different L0s are never ranked against each other,
since sparsity trades off against every metric.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synthsae.atomic_files import atomic_write_text
from synthsae.benchmark.config import RANK_METRICS

__all__ = [
    "METRICS",
    "RUN_COLUMNS",
    "aggregate",
    "format_markdown",
    "sort_key",
    "summary_columns",
    "write_csv",
    "write_json",
    "write_markdown",
]

METRICS: dict[str, str] = {
    "l0": "L0",
    "f1": "F1",
    "mcc": "MCC",
    "precision": "Precision",
    "recall": "Recall",
    "explained_variance": "Expl. var.",
    "uniqueness": "Uniqueness",
    "dead_latents": "Dead",
    "shrinkage": "Shrinkage",
    "absorption": "Absorption",
}
"""The aggregated metrics (``l0`` is the achieved L0) and their column titles."""

RUN_COLUMNS: tuple[str, ...] = (
    "name", "architecture", "target_l0", "seed", "model_seed", "l0", "f1", "mcc", "precision", "recall",
    "explained_variance", "uniqueness", "dead_latents", "d_sae", "shrinkage", "absorption",
    "knob", "knob_value", "final_coefficient", "train_seconds", "eval_seconds", "samples_per_second",
)
"""Columns of ``leaderboard_runs.csv`` (and keys of every run row)."""


def sort_key(metric: str, value: float | None) -> float:
    """A number that is smaller for better values of ``metric`` (missing / NaN sorts last)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    direction = RANK_METRICS[metric]
    if direction.startswith("higher"):
        return -float(value)
    if direction.startswith("lower"):
        return float(value)
    return abs(1.0 - float(value))  # closer to 1


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def aggregate(rows: Sequence[Mapping[str, Any]], published: Any = None) -> list[dict[str, Any]]:
    """One summary row per (architecture, target) in the rows' first-seen order:
    ``{architecture, target_l0, n, seeds, <metric>_mean, <metric>_sd, ..., published}``.

    ``published(architecture, target)`` returns the published ``{metric: {mean, sd}}`` or
    ``None`` (:func:`synthsae.benchmark.published.published_row`); omitted: none.
    """
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["architecture"], int(row["target_l0"])), []).append(row)
    out = []
    for (arch, target), runs in groups.items():
        summary: dict[str, Any] = {"architecture": arch, "target_l0": target, "n": len(runs),
                                   "seeds": [r.get("seed") for r in runs], "d_sae": runs[0].get("d_sae")}
        for metric in METRICS:
            summary[f"{metric}_mean"], summary[f"{metric}_sd"] = _stats([r.get(metric) for r in runs])
        summary["published"] = published(arch, target) if published is not None else None
        out.append(summary)
    return out


def summary_columns() -> list[str]:
    """Columns of ``leaderboard.csv`` (one line per architecture and target)."""
    cols = ["architecture", "target_l0", "n"]
    for metric in METRICS:
        cols += [f"{metric}_mean", f"{metric}_sd"]
    return cols + ["published_f1", "published_mcc"]


def _cell(mean: float | None, sd: float | None, digits: int = 3) -> str:
    if mean is None:
        return "-"
    text = f"{mean:.{digits}f}"
    return text if sd is None else f"{text} ± {sd:.{digits}f}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join((":" + "-" * (w + 1)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return [line(header), rule, *(line(r) for r in body)]


def _l0_table(summaries: Sequence[Mapping[str, Any]], rank_by: str, probe: Mapping[str, Any] | None) -> list[str]:
    metrics = [m for m in METRICS if any(s.get(f"{m}_mean") is not None for s in summaries)]
    with_published = any(s.get("published") for s in summaries)
    header = ["Architecture", "Seeds", *(METRICS[m] for m in metrics)]
    if with_published:
        header += ["Published F1", "Published MCC"]
    body = []
    for s in sorted(summaries, key=lambda s: sort_key(rank_by, s.get(f"{rank_by}_mean"))):
        cells = [s["architecture"], str(s["n"])]
        for m in metrics:
            digits = 1 if m in ("dead_latents",) else 2 if m == "l0" else 3
            cells.append(_cell(s.get(f"{m}_mean"), s.get(f"{m}_sd"), digits))
        if with_published:
            pub = s.get("published") or {}
            cells += [_cell(pub[k]["mean"], pub[k]["sd"], 3) if k in pub else "-" for k in ("f1", "mcc")]
        body.append(cells)
    if probe is not None:
        cells = ["probe ceiling", "-"] + ["-"] * len(metrics) + (["-", "-"] if with_published else [])
        for key in ("f1", "precision", "recall"):
            if key in metrics:
                cells[2 + metrics.index(key)] = _cell(probe.get(key), None)
        body.append(cells)
    return _table(header, body)


def format_markdown(summaries: Sequence[Mapping[str, Any]], rank_by: str = "f1", title: str | None = None,
                    notes: Sequence[str] = (), probe: Mapping[str, Any] | None = None) -> str:
    """One Markdown table per L0 target (aligned, so it reads in a terminal too): a row per
    architecture with mean ± sd over seeds, best ``rank_by`` first; the published numbers
    beside them when known, and the probe ceiling (``probe``: its F1/precision/recall)."""
    lines = [f"# {title}", ""] if title else []
    lines += [f"- {n}" for n in notes]
    targets: list[int] = []
    for s in summaries:
        if s["target_l0"] not in targets:
            targets.append(s["target_l0"])
    for target in sorted(targets):
        lines += ["", f"## L0 = {target}", ""]
        lines += _l0_table([s for s in summaries if s["target_l0"] == target], rank_by, probe)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_text(path: str | Path, text: str) -> Path:
    return atomic_write_text(path, text)


def write_markdown(path: str | Path, summaries: Sequence[Mapping[str, Any]], rank_by: str = "f1",
                   title: str | None = None, notes: Sequence[str] = (), probe: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`format_markdown` to ``path``."""
    return _write_text(path, format_markdown(summaries, rank_by, title, notes, probe))


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """One line per row with ``columns`` (summary rows also get the published F1/MCC means)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        pub = row.get("published") or {}
        flat = {**row, "published_f1": pub.get("f1", {}).get("mean"), "published_mcc": pub.get("mcc", {}).get("mean")}
        writer.writerow({k: flat.get(k) for k in columns})
    return _write_text(path, buffer.getvalue())


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """``data`` as indented JSON (NaN and infinities written as null)."""
    return _write_text(path, json.dumps(_clean(data), indent=2) + "\n")
