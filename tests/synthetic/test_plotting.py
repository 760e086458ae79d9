"""Latent orderings and the similarity heatmaps (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from synthsae.evals.plotting import (
    find_best_feature_ordering,
    find_best_feature_ordering_across_saes,
    find_best_feature_ordering_from_sae,
    plot_sae_feature_similarity,
)

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


class TinySAE(nn.Module):
    def __init__(self, w_dec: torch.Tensor, with_encoder: bool = True) -> None:
        super().__init__()
        self.W_dec = nn.Parameter(w_dec.clone())
        if with_encoder:
            self.W_enc = nn.Parameter(
                w_dec.T.clone() + 0.05 * torch.randn(w_dec.shape[1], w_dec.shape[0])
            )
        self.b_dec = nn.Parameter(torch.zeros(w_dec.shape[1]))


class Dict:
    def __init__(self, vectors: torch.Tensor) -> None:
        self.feature_vectors = vectors


def _features(n: int = 6, d: int = 8) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0)))
    return q[:n].contiguous()


def _is_permutation(ordering: torch.Tensor, n: int) -> bool:
    return ordering.dtype == torch.long and torch.equal(
        torch.sort(ordering).values, torch.arange(n)
    )


def test_ordering_aligns_permuted_features() -> None:
    gt = _features()
    perm = torch.tensor([4, 1, 5, 0, 3, 2])
    sae_features = gt[perm] * torch.tensor([[1.0], [-2.0], [0.5], [1.0], [-1.0], [3.0]])
    ordering = find_best_feature_ordering(sae_features, gt)
    assert _is_permutation(ordering, 6)
    # latent ordering[j] is the latent that matches feature j
    assert torch.equal(perm[ordering], torch.arange(6))


def test_ordering_with_more_latents_than_features() -> None:
    gt = _features(3)
    sae_features = gt[[2, 0, 2, 1, 0]]
    ordering = find_best_feature_ordering(sae_features, gt)
    assert _is_permutation(ordering, 5)
    assert ordering.tolist() == [1, 4, 3, 0, 2]  # stable: ties keep latent order


def test_ordering_from_sae_uses_decoder() -> None:
    gt = _features()
    perm = torch.tensor([2, 0, 1, 5, 4, 3])
    ordering = find_best_feature_ordering_from_sae(TinySAE(gt[perm]), Dict(gt))
    assert torch.equal(perm[ordering], torch.arange(6))


def test_across_saes_picks_best_and_raises_on_empty() -> None:
    gt = _features()
    g = torch.Generator().manual_seed(1)
    noisy = TinySAE(gt + 0.8 * torch.randn(6, 8, generator=g))
    perm = torch.tensor([3, 5, 0, 1, 4, 2])
    clean = TinySAE(gt[perm])
    ordering = find_best_feature_ordering_across_saes([noisy, clean], Dict(gt))
    assert torch.equal(ordering, find_best_feature_ordering_from_sae(clean, Dict(gt)))
    ordering = find_best_feature_ordering_across_saes([clean, noisy], Dict(gt))
    assert torch.equal(perm[ordering], torch.arange(6))
    with pytest.raises(ValueError, match="at least one"):
        find_best_feature_ordering_across_saes([], Dict(gt))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"title": "custom", "reorder_features": True},
        {"reorder_sae_latents": True},
        {"reorder_features": torch.tensor([5, 4, 3, 2, 1, 0])},
        {"decoder_only": True, "show_values": True},
        {"show_values": True, "height": 300, "width": 500, "dtick": 2, "scale": 2.0},
    ],
)
def test_every_option_renders(kwargs: dict) -> None:
    gt = _features()
    fig = plot_sae_feature_similarity(TinySAE(gt[[1, 0, 2, 4, 3, 5]]), Dict(gt), **kwargs)
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "True feature"]
    assert len(panels) == (1 if kwargs.get("decoder_only") else 2)
    assert all(ax.get_ylabel() in ("SAE latent", "") for ax in panels)
    if not kwargs.get("decoder_only"):
        assert [ax.get_title() for ax in panels] == ["SAE encoder", "SAE decoder"]
    image = panels[-1].get_images()[0]
    assert image.get_clim() == (-1.0, 1.0)
    width, height = kwargs.get("width", 800), kwargs.get("height", 400)
    assert tuple(fig.get_size_inches() * fig.dpi) == pytest.approx((width, height))


def test_show_plot_calls_pyplot_show_and_leaves_nothing_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import matplotlib.pyplot as plt

    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(plt.get_fignums()))
    monkeypatch.setattr(plt, "get_backend", lambda: "agg")
    gt = _features()
    before = plt.get_fignums()
    fig = plot_sae_feature_similarity(TinySAE(gt), Dict(gt), show_plot=True)
    assert len(calls) == 1 and len(calls[0]) == len(before) + 1  # the figure was open when shown
    assert plt.get_fignums() == before  # and closed afterwards under a non-interactive backend
    assert isinstance(fig, Figure)
    # without show_plot nothing is registered with pyplot
    plot_sae_feature_similarity(TinySAE(gt), Dict(gt))
    assert plt.get_fignums() == before and len(calls) == 1


def test_reordering_puts_matches_on_the_diagonal() -> None:
    gt = _features()
    perm = torch.tensor([3, 5, 0, 1, 4, 2])
    fig = plot_sae_feature_similarity(
        TinySAE(gt[perm]), Dict(gt), reorder_sae_latents=True, decoder_only=True
    )
    data = fig.axes[0].get_images()[0].get_array()
    assert torch.allclose(torch.as_tensor(data).float(), torch.eye(6), atol=0.01)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [str(i) for i in torch.argsort(perm).tolist()]


def test_signed_values_and_matching_pursuit_sae() -> None:
    gt = _features()
    sae = TinySAE(-gt, with_encoder=False)
    fig = plot_sae_feature_similarity(sae, Dict(gt))
    enc, dec = (ax.get_images()[0].get_array() for ax in fig.axes[:2])
    assert float(dec.min()) == pytest.approx(-1.0) and torch.equal(
        torch.as_tensor(enc), torch.as_tensor(dec)
    )


def test_option_errors_and_large_show_values_warning() -> None:
    gt = _features()
    with pytest.raises(ValueError, match="either"):
        plot_sae_feature_similarity(
            TinySAE(gt), Dict(gt), reorder_features=True, reorder_sae_latents=True
        )
    with pytest.raises(ValueError, match="ordering"):
        plot_sae_feature_similarity(TinySAE(gt), Dict(gt), reorder_features=torch.tensor([0, 99]))
    big = torch.randn(80, 8)
    with pytest.warns(UserWarning, match="show_values"):
        plot_sae_feature_similarity(TinySAE(big), Dict(torch.randn(70, 8)), show_values=True)


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_save_creates_parent_dirs(tmp_path: Path, suffix: str) -> None:
    gt = _features()
    path = tmp_path / "a" / "b" / f"plot.{suffix}"
    plot_sae_feature_similarity(TinySAE(gt), Dict(gt), save_path=path, height=200, width=300)
    data = path.read_bytes()
    magic = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[suffix]
    assert data.startswith(magic)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left


def test_save_scale_and_bad_suffix(tmp_path: Path) -> None:
    from matplotlib.image import imread

    gt = _features()
    path = tmp_path / "scaled.png"
    plot_sae_feature_similarity(
        TinySAE(gt), Dict(gt), save_path=path, height=200, width=300, scale=2
    )
    assert imread(path).shape[:2] == (400, 600)
    with pytest.raises(ValueError, match="format"):
        plot_sae_feature_similarity(TinySAE(gt), Dict(gt), save_path=tmp_path / "x.notaformat")


def test_missing_matplotlib_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    gt = _features()
    with pytest.raises(ImportError, match=r"synthsae\[plot\]"):
        plot_sae_feature_similarity(TinySAE(gt), Dict(gt))
    # the orderings need no matplotlib
    assert _is_permutation(find_best_feature_ordering(gt, gt), 6)
