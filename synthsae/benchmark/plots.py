"""Pareto plots: each metric against the achieved L0, one line per architecture, error bars.

Each point is one (architecture, L0 target) summary row: its mean achieved L0 and mean
metric, with error bars of one standard deviation over the seeds in both directions.
matplotlib is optional (``pip install 'synthsae[plot]'``) and imported only here; figures
are plain ``matplotlib.figure.Figure`` objects saved as PNG, so nothing touches pyplot's
global state or needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthsae.atomic_files import atomic_write
from synthsae.benchmark.leaderboard import METRICS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["OVERVIEW_FILENAME", "PLOT_METRICS", "plot_leaderboard", "plot_metric_vs_l0"]

OVERVIEW_FILENAME = "overview.png"
PLOT_METRICS = ("f1", "mcc", "precision", "recall", "explained_variance", "uniqueness", "dead_latents",
                "shrinkage", "absorption")
"""The metrics that get a plot (every one of :data:`METRICS` but the L0 itself)."""
_MARKERS = "osD^v<>ph*"


def _figure_cls() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'synthsae[plot]'") from None
    return Figure


def _series(summaries: Sequence[Mapping[str, Any]], metric: str) -> dict[str, list[tuple[float, ...]]]:
    """``{architecture: [(L0, L0 sd, value, value sd), ...]}`` sorted by L0, first-seen order."""
    out: dict[str, list[tuple[float, ...]]] = {}
    for s in summaries:
        if s.get(f"{metric}_mean") is None or s.get("l0_mean") is None:
            continue
        out.setdefault(s["architecture"], []).append(
            (s["l0_mean"], s.get("l0_sd") or 0.0, s[f"{metric}_mean"], s.get(f"{metric}_sd") or 0.0))
    return {arch: sorted(points) for arch, points in out.items()}


def _draw(ax: Axes, summaries: Sequence[Mapping[str, Any]], metric: str, true_l0: float | None,
          legend: bool) -> None:
    for i, (arch, points) in enumerate(_series(summaries, metric).items()):
        xs, xerr, ys, yerr = (list(col) for col in zip(*points))
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, marker=_MARKERS[i % len(_MARKERS)], label=arch,
                    linewidth=1.5, markersize=5, capsize=3)
    if true_l0 is not None:
        ax.axvline(true_l0, color="grey", linestyle="--", linewidth=1, label=f"true L0 ({true_l0:.1f})")
    if metric == "shrinkage":
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("achieved L0 (mean ± sd over seeds)")
    ax.set_ylabel(METRICS[metric])
    ax.set_title(f"{METRICS[metric]} vs L0")
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize="small")


def plot_metric_vs_l0(summaries: Sequence[Mapping[str, Any]], metric: str, save_path: str | Path | None = None,
                      true_l0: float | None = None) -> Figure:
    """One metric (a key of :data:`PLOT_METRICS`) against the achieved L0 from summary rows
    (:func:`synthsae.benchmark.leaderboard.aggregate`), one line per architecture; saved to
    ``save_path`` (PNG) when given."""
    if metric not in PLOT_METRICS:
        raise ValueError(f"metric must be one of {', '.join(PLOT_METRICS)}, got {metric!r}")
    fig = _figure_cls()(figsize=(6, 4.2), layout="constrained")
    _draw(fig.add_subplot(), summaries, metric, true_l0, legend=True)
    if save_path is not None:
        fmt = Path(save_path).suffix.lstrip(".").lower() or "png"  # the temporary name has no useful suffix
        atomic_write(save_path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110))
    return fig


def plot_leaderboard(summaries: Sequence[Mapping[str, Any]], out_dir: str | Path, true_l0: float | None = None,
                     title: str | None = None) -> list[Path]:
    """Write ``<metric>.png`` for every metric the summaries have and an ``overview.png`` grid
    into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = [m for m in PLOT_METRICS if any(s.get(f"{m}_mean") is not None for s in summaries)]
    paths = []
    for metric in metrics:
        path = out / f"{metric}.png"
        plot_metric_vs_l0(summaries, metric, path, true_l0)
        paths.append(path)
    cols = 3
    rows = max(1, -(-len(metrics) // cols))
    fig = _figure_cls()(figsize=(15, 4.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i < len(metrics):
            _draw(ax, summaries, metrics[i], true_l0, legend=i == 0)
        else:
            ax.set_visible(False)
    if title:
        fig.suptitle(title)
    atomic_write(out / OVERVIEW_FILENAME, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    paths.append(out / OVERVIEW_FILENAME)
    return paths
