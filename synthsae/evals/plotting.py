"""Heatmaps of SAE latents against the true features, and latent orderings.

matplotlib is an optional dependency (``pip install 'synthsae[plot]'``); it is
imported only when a figure is drawn. Figures are built as plain
``matplotlib.figure.Figure`` objects, independent of pyplot's global state and
of the active backend, so nothing needs a display or a browser.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from synthsae.atomic_files import atomic_write
from synthsae.evals.metrics import best_matching_features

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DEFAULT_TITLE = "Cosine similarity with true features"
_PX_PER_INCH = 100
_MAX_VALUE_CELLS = 4096
_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def _signed_cosine(rows: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``[n_rows, F]`` signed cosine similarities (zero rows give 0)."""
    a = rows.detach().float().cpu()
    b = features.detach().float().cpu()
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-8)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-8)
    return a @ b.T


def find_best_feature_ordering(
    sae_features: torch.Tensor, true_features: torch.Tensor
) -> torch.Tensor:
    """Permutation of the SAE latents that sorts them by their best-matching true feature.

    Args:
        sae_features: ``[S, D]`` latent directions (decoder rows).
        true_features: ``[F, D]`` ground-truth feature vectors.

    Returns:
        ``[S]`` long tensor: ``sae_features[ordering]`` lists first the latents whose
        max-|cos| feature is 0, then those matching feature 1, and so on (ties keep
        the latent order).
    """
    best = best_matching_features(sae_features, true_features).cpu()
    return torch.argsort(best, stable=True)


def find_best_feature_ordering_from_sae(sae: Any, feature_dict: Any) -> torch.Tensor:
    """:func:`find_best_feature_ordering` for ``sae.W_dec`` and ``feature_dict.feature_vectors``."""
    return find_best_feature_ordering(sae.W_dec, feature_dict.feature_vectors)


def find_best_feature_ordering_across_saes(saes: Sequence[Any], feature_dict: Any) -> torch.Tensor:
    """The latent ordering of whichever SAE lines up best with the true features.

    For each SAE the signed decoder/feature cosine matrix (rounded to 0.01) is
    reordered with :func:`find_best_feature_ordering` and scored by the mean of its
    diagonal, ``cos[ordering[j], j]`` for ``j < min(S, F)``. The ordering of the
    highest-scoring SAE is returned (the first one on ties). Useful for plotting
    several SAEs of the same width with a common latent order.

    Raises:
        ValueError: if ``saes`` is empty.
    """
    saes = list(saes)
    if not saes:
        raise ValueError("saes must contain at least one SAE")
    best_score, best_ordering = -math.inf, None
    for sae in saes:
        cos = torch.round(_signed_cosine(sae.W_dec, feature_dict.feature_vectors), decimals=2)
        ordering = find_best_feature_ordering(sae.W_dec, feature_dict.feature_vectors)
        n = min(cos.shape[0], cos.shape[1])
        score = float(cos[ordering[:n], torch.arange(n)].mean()) if n else -math.inf
        if best_ordering is None or score > best_score:
            best_score, best_ordering = score, ordering
    assert best_ordering is not None
    return best_ordering


def _require_matplotlib() -> Any:
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "plot_sae_feature_similarity needs matplotlib; install it with `pip install 'synthsae[plot]'`"
        ) from err
    return Figure


def _resolve_ordering(
    reorder: bool | torch.Tensor, sae: Any, feature_dict: Any
) -> torch.Tensor | None:
    if isinstance(reorder, torch.Tensor):
        ordering = reorder.detach().cpu()
        if ordering.dim() != 1 or ordering.is_floating_point() or ordering.dtype == torch.bool:
            raise ValueError(
                f"a latent ordering must be a 1-D integer tensor, got {ordering.dtype} {tuple(ordering.shape)}"
            )
        d_sae = sae.W_dec.shape[0]
        if ordering.numel() and (int(ordering.min()) < 0 or int(ordering.max()) >= d_sae):
            raise ValueError(f"the latent ordering holds indices outside [0, {d_sae})")
        return ordering.long()
    if reorder:
        return find_best_feature_ordering_from_sae(sae, feature_dict)
    return None


def _ticks(n: int, dtick: int, max_ticks: int) -> list[int]:
    """Tick positions every ``dtick`` cells, widened to a 1-2-5 step so at most
    ``max_ticks`` fit."""
    step = max(int(dtick), 1)
    if n > step * max_ticks:
        raw = n / max_ticks
        base = 10 ** math.floor(math.log10(raw))
        step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
        step = max(int(step), int(dtick), 1)
    return list(range(0, n, step))


def _draw_panel(
    ax: Any,
    sim: torch.Tensor,
    latent_ids: torch.Tensor,
    title: str | None,
    dtick: int,
    show_values: bool,
    max_ticks: tuple[int, int],
) -> Any:
    image = ax.imshow(sim.numpy(), cmap="RdBu", vmin=-1.0, vmax=1.0, aspect="auto")
    n_rows, n_cols = sim.shape
    xt, yt = _ticks(n_cols, dtick, max_ticks[0]), _ticks(n_rows, dtick, max_ticks[1])
    ax.set_xticks(xt, [str(i) for i in xt])
    ax.set_yticks(yt, [str(int(latent_ids[i])) for i in yt])
    ax.set_xlabel("True feature")
    ax.set_ylabel("SAE latent")
    if title:
        ax.set_title(title)
    if show_values:
        for i in range(n_rows):
            for j in range(n_cols):
                value = float(sim[i, j])
                color = "white" if abs(value) > 0.6 else "black"
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=10, color=color)
    return image


def _save(fig: Figure, save_path: str | os.PathLike[str], scale: float) -> None:
    path = Path(save_path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"save_path {str(path)!r} has unsupported format {fmt!r}; use one of {sorted(supported)}"
        )
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=_PX_PER_INCH * scale))


def plot_sae_feature_similarity(
    sae: Any,
    feature_dict: Any,
    title: str | None = None,
    reorder_features: bool | torch.Tensor = False,
    decoder_only: bool = False,
    show_values: bool = False,
    height: int = 400,
    width: int = 800,
    save_path: str | os.PathLike[str] | None = None,
    show_plot: bool = False,
    dtick: int = 1,
    scale: float = 1.0,
    *,
    reorder_sae_latents: bool | torch.Tensor | None = None,
) -> Figure:
    """Heatmaps of the signed cosine similarity between SAE latents and true features.

    Rows are SAE latents (y axis "SAE latent"), columns true features (x axis
    "True feature"); the diverging red-white-blue colour map spans [-1, 1]. Two
    panels, "SAE encoder" (columns of ``W_enc``) and "SAE decoder" (rows of
    ``W_dec``), share one colour bar; ``decoder_only`` keeps just the decoder.
    An SAE without ``W_enc`` (matching pursuit) encodes with its decoder, so its
    encoder panel shows ``W_dec``.

    Args:
        sae: object with ``W_dec`` ``[d_sae, d_in]`` and optionally ``W_enc``.
        feature_dict: has ``feature_vectors`` ``[F, d_in]``.
        title: figure title; defaults to "Cosine similarity with true features".
        reorder_features: ``True`` sorts latents by their best-matching feature
            (:func:`find_best_feature_ordering`); a 1-D index tensor gives the rows
            explicitly. Tick labels always show the original latent index.
        decoder_only: draw only the decoder panel.
        show_values: print each similarity with two decimals (only for matrices of
            at most 4,096 cells; larger ones warn and skip the numbers).
        height, width: figure size in pixels (at 100 pixels per inch).
        save_path: write the figure there; the format follows the suffix (``.png``,
            ``.svg``, ``.pdf``, ...; none means PNG). Parent folders are created.
        show_plot: also hand the figure to pyplot and call ``plt.show()``. Off by
            default: the figure is returned, and a notebook displays a returned
            figure by itself. Under a non-interactive backend (e.g. Agg) showing is
            a silent no-op.
        dtick: spacing of the axis ticks (in cells); widened automatically to a
            1-2-5 step when the labels would not fit the figure.
        scale: resolution multiplier for raster output (``dpi = 100 * scale``).
        reorder_sae_latents: keyword alias of ``reorder_features`` (the name the
            user docs use); pass one or the other.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    if reorder_sae_latents is not None:
        if not (isinstance(reorder_features, bool) and reorder_features is False):
            raise ValueError("pass either reorder_features or reorder_sae_latents, not both")
        reorder_features = reorder_sae_latents
    if height <= 0 or width <= 0 or scale <= 0:
        raise ValueError(
            f"height, width and scale must be positive, got {height}, {width}, {scale}"
        )
    figure_cls = _require_matplotlib()

    gt = feature_dict.feature_vectors
    w_dec = sae.W_dec
    ordering = _resolve_ordering(reorder_features, sae, feature_dict)
    latent_ids = ordering if ordering is not None else torch.arange(w_dec.shape[0])
    panels: list[tuple[str, torch.Tensor]] = []
    if not decoder_only:
        w_enc = getattr(sae, "W_enc", None)
        enc_rows = w_enc.T if w_enc is not None else w_dec
        panels.append(("SAE encoder", _signed_cosine(enc_rows, gt)))
    panels.append(("SAE decoder", _signed_cosine(w_dec, gt)))
    panels = [(name, torch.round(sim[latent_ids], decimals=2)) for name, sim in panels]

    if show_values and panels[0][1].numel() > _MAX_VALUE_CELLS:
        warnings.warn(
            f"show_values skipped: {panels[0][1].numel()} cells per panel is more than {_MAX_VALUE_CELLS}",
            stacklevel=2,
        )
        show_values = False

    fig = _new_figure(
        figure_cls,
        show_plot,
        figsize=(width / _PX_PER_INCH, height / _PX_PER_INCH),
        dpi=_PX_PER_INCH,
        layout="constrained",
    )
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    image = None
    # roughly one x tick per 40 px of panel width and one y tick per 16 px of height
    max_ticks = (max(2, int(0.8 * width / len(panels)) // 40), max(2, int(0.75 * height) // 16))
    for ax, (name, sim) in zip(axes, panels):
        title_i = name if len(panels) > 1 else None
        image = _draw_panel(ax, sim, latent_ids, title_i, dtick, show_values, max_ticks)
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.colorbar(image, ax=list(axes), label="cosine similarity")
    fig.suptitle(title if title is not None else _DEFAULT_TITLE)

    if save_path is not None:
        _save(fig, save_path, scale)
    if show_plot:
        _show(fig)
    return fig


def _new_figure(figure_cls: Any, for_pyplot: bool, **kwargs: Any) -> Figure:
    """A standalone figure, or one registered with pyplot when it is to be shown."""
    if not for_pyplot:
        return figure_cls(**kwargs)
    import matplotlib.pyplot as plt

    return plt.figure(**kwargs)


def _show(fig: Figure) -> None:
    """``plt.show()``; under a non-interactive backend, quietly drop the figure from pyplot."""
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*")
        plt.show()
    if plt.get_backend().lower() in _NON_INTERACTIVE:
        plt.close(fig)
