"""Leaderboard rows: ranking, and the Markdown, CSV and JSON writers.

A row is a flat dict with the keys in :data:`COLUMNS` (one trained SAE). Rows are ranked
by one metric (:data:`~synthsae.benchmark.config.RANK_METRICS` gives its direction);
:func:`architecture_summary` averages each architecture's runs over the L0 targets.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synthsae.atomic_files import atomic_write_text
from synthsae.benchmark.config import RANK_METRICS

__all__ = [
    "COLUMNS",
    "METRICS",
    "architecture_summary",
    "format_markdown",
    "rank_rows",
    "sort_key",
    "write_csv",
    "write_json",
    "write_markdown",
]

METRICS: dict[str, str] = {
    "mcc": "MCC",
    "f1": "F1",
    "explained_variance": "explained variance",
    "uniqueness": "uniqueness",
    "dead_latents": "dead latents",
    "shrinkage": "shrinkage",
}
"""The metrics the leaderboard shows and plots, with their display names."""

COLUMNS: tuple[str, ...] = (
    "rank", "name", "architecture", "target_l0", "l0", "knob", "knob_value",
    "mcc", "f1", "precision", "recall", "explained_variance", "uniqueness",
    "dead_latents", "d_sae", "shrinkage", "train_seconds", "eval_seconds",
)
"""Columns of ``leaderboard.csv`` (and keys of every row). ``l0`` is the achieved L0."""


def sort_key(metric: str, value: float) -> float:
    """A number that is smaller for better values of ``metric`` (NaN sorts last)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    direction = RANK_METRICS[metric]
    if direction.startswith("higher"):
        return -float(value)
    if direction.startswith("lower"):
        return float(value)
    return abs(1.0 - float(value))  # closer to 1


def rank_rows(rows: Sequence[Mapping[str, Any]], rank_by: str = "mcc") -> list[dict[str, Any]]:
    """Copies of ``rows``, best ``rank_by`` first, with ``rank`` set (1 = best; equal values
    share a rank). Ties keep the architecture / target order."""
    if rank_by not in RANK_METRICS:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_METRICS)}, got {rank_by!r}")
    ordered = sorted((dict(r) for r in rows), key=lambda r: sort_key(rank_by, r[rank_by]))
    previous, rank = None, 0
    for i, row in enumerate(ordered, start=1):
        key = sort_key(rank_by, row[rank_by])
        if key != previous:
            rank, previous = i, key
        row["rank"] = rank
    return ordered


def architecture_summary(rows: Sequence[Mapping[str, Any]], rank_by: str = "mcc") -> list[dict[str, Any]]:
    """Per architecture: the mean of each metric over its runs and its best run by ``rank_by``,
    best mean first."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["architecture"], []).append(row)
    out = []
    for arch, runs in groups.items():
        best = min(runs, key=lambda r: sort_key(rank_by, r[rank_by]))
        summary: dict[str, Any] = {"architecture": arch, "runs": len(runs)}
        for metric in METRICS:
            summary[f"mean_{metric}"] = sum(float(r[metric]) for r in runs) / len(runs)
        summary.update(best_name=best["name"], best_l0=best["l0"], best_value=best[rank_by])
        out.append(summary)
    out.sort(key=lambda s: sort_key(rank_by, s[f"mean_{rank_by}"]))
    return out


def _knob(row: Mapping[str, Any]) -> str:
    short = {"l1_coefficient": "l1", "l0_coefficient": "l0 coef", "max_iterations": "max iters"}
    value = row["knob_value"]
    text = f"{value:.3g}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value)}"
    return f"{short.get(row['knob'], row['knob'])}={text}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1)) for w, r in zip(widths, right)) + "|"
    return [line(header), rule, *(line(r) for r in body)]


def format_markdown(rows: Sequence[Mapping[str, Any]], rank_by: str = "mcc", title: str | None = None,
                    notes: Sequence[str] = ()) -> str:
    """The ranked runs and the per-architecture summary as Markdown tables (aligned, so they
    read well in a terminal too)."""
    header = ["Rank", "Architecture", "Target L0", "L0", "Sparsity", "MCC", "F1", "Expl. var.", "Uniqueness",
              "Dead", "Shrinkage", "Train s"]
    body = [[str(r["rank"]), r["architecture"], str(r["target_l0"]), f"{r['l0']:.2f}", _knob(r),
             f"{r['mcc']:.3f}", f"{r['f1']:.3f}", f"{r['explained_variance']:.3f}", f"{r['uniqueness']:.3f}",
             f"{r['dead_latents']}/{r['d_sae']}", f"{r['shrinkage']:.3f}", f"{r['train_seconds']:.1f}"]
            for r in rows]
    right = [True, False, True, True, False] + [True] * 7
    lines = [f"# {title}", ""] if title else []
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    lines += _table(header, body, right)
    summary = architecture_summary(rows, rank_by)
    lines += ["", f"Per architecture (mean over its L0 targets; best run by {METRICS[rank_by]}):", ""]
    header = ["Architecture", "Runs", "MCC", "F1", "Expl. var.", "Uniqueness", "Dead", "Shrinkage",
              f"Best {METRICS[rank_by]} (at L0)"]
    best_fmt = "{:.0f}" if rank_by == "dead_latents" else "{:.3f}"
    body = [[s["architecture"], str(s["runs"]), f"{s['mean_mcc']:.3f}", f"{s['mean_f1']:.3f}",
             f"{s['mean_explained_variance']:.3f}", f"{s['mean_uniqueness']:.3f}", f"{s['mean_dead_latents']:.1f}",
             f"{s['mean_shrinkage']:.3f}", f"{best_fmt.format(s['best_value'])} ({s['best_l0']:.1f})"]
            for s in summary]
    lines += _table(header, body, [False] + [True] * 8)
    return "\n".join(lines) + "\n"


def _write_text(path: str | Path, text: str) -> Path:
    return atomic_write_text(path, text)


def write_markdown(path: str | Path, rows: Sequence[Mapping[str, Any]], rank_by: str = "mcc",
                   title: str | None = None, notes: Sequence[str] = ()) -> Path:
    """Write :func:`format_markdown` to ``path``."""
    return _write_text(path, format_markdown(rows, rank_by, title, notes))


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """One line per run with the :data:`COLUMNS`, in the rows' order."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in COLUMNS})
    return _write_text(path, buffer.getvalue())


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """``data`` as indented JSON (NaN and infinities written as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return _write_text(path, json.dumps(clean(data), indent=2) + "\n")
