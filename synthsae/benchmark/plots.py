"""Leaderboard plots: each metric against the achieved L0, one line per architecture.

matplotlib is optional (``pip install 'synthsae[plot]'``) and imported only here, when a
figure is drawn. Figures are plain ``matplotlib.figure.Figure`` objects saved as PNG,
so nothing touches pyplot's global state or needs a display.
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

__all__ = ["OVERVIEW_FILENAME", "plot_leaderboard", "plot_metric_vs_l0"]

OVERVIEW_FILENAME = "overview.png"
_MARKERS = "osD^v<>ph*"


def _figure_cls() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'synthsae[plot]'") from None
    return Figure


def _series(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[str, tuple[list[float], list[float]]]:
    """``{architecture: (achieved L0s, values)}``, sorted by L0, in the rows' first-seen order."""
    out: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        out.setdefault(row["architecture"], []).append((float(row["l0"]), float(row[metric])))
    return {arch: ([p[0] for p in sorted(pts)], [p[1] for p in sorted(pts)]) for arch, pts in out.items()}


def _draw(ax: Axes, rows: Sequence[Mapping[str, Any]], metric: str, true_l0: float | None,
          d_sae: int | None, legend: bool) -> None:
    for i, (arch, (xs, ys)) in enumerate(_series(rows, metric).items()):
        ax.plot(xs, ys, marker=_MARKERS[i % len(_MARKERS)], label=arch, linewidth=1.5, markersize=5)
    if true_l0 is not None:
        ax.axvline(true_l0, color="grey", linestyle="--", linewidth=1, label=f"true L0 ({true_l0:.1f})")
    if metric == "shrinkage":
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ylabel = METRICS[metric] + (f" (of {d_sae})" if metric == "dead_latents" and d_sae else "")
    ax.set_xlabel("achieved L0")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{METRICS[metric]} vs L0")
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize="small")


def plot_metric_vs_l0(rows: Sequence[Mapping[str, Any]], metric: str, save_path: str | Path | None = None,
                      true_l0: float | None = None) -> Figure:
    """One metric (a key of :data:`~synthsae.benchmark.leaderboard.METRICS`) against the
    achieved L0, one line per architecture, a dashed line at the true L0; saved to
    ``save_path`` (PNG) when given."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    fig = _figure_cls()(figsize=(6, 4.2), layout="constrained")
    d_sae = rows[0].get("d_sae") if rows else None
    _draw(fig.add_subplot(), rows, metric, true_l0, d_sae, legend=True)
    if save_path is not None:
        fmt = Path(save_path).suffix.lstrip(".").lower() or "png"  # the temporary name has no useful suffix
        atomic_write(save_path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110))
    return fig


def plot_leaderboard(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, true_l0: float | None = None,
                     title: str | None = None) -> list[Path]:
    """Write ``<metric>.png`` for every metric and an ``overview.png`` grid into ``out_dir``;
    returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric in METRICS:
        path = out / f"{metric}.png"
        plot_metric_vs_l0(rows, metric, path, true_l0)
        paths.append(path)
    fig = _figure_cls()(figsize=(15, 8.5), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    d_sae = rows[0].get("d_sae") if rows else None
    for i, (ax, metric) in enumerate(zip(axes, METRICS)):
        _draw(ax, rows, metric, true_l0, d_sae, legend=i == 0)
    if title:
        fig.suptitle(title)
    atomic_write(out / OVERVIEW_FILENAME, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    paths.append(out / OVERVIEW_FILENAME)
    return paths
