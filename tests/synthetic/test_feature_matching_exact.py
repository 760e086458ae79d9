"""The tiled MCC (a few candidates per row, re-solved where needed) equals the dense optimum."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from torch.utils._python_dispatch import TorchDispatchMode

from synthsae.evals import feature_matching
from synthsae.evals.feature_matching import best_matching_features, match_decoder_to_features

_dense_mean = feature_matching._dense_matching_mean


def _dense_reference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, torch.Tensor]:
    """MCC from the full float64 |cos| matrix and the dense Hungarian solver, plus the argmax."""
    an = a.double() / a.double().norm(dim=1, keepdim=True).clamp_min(1e-8)
    bn = b.double() / b.double().norm(dim=1, keepdim=True).clamp_min(1e-8)
    cos = (an @ bn.T).abs().numpy()
    rows, cols = linear_sum_assignment(-cos)
    return float(cos[rows, cols].mean()), torch.from_numpy(cos.argmax(axis=1))


@pytest.fixture(params=["candidates", "dense"])
def path(request, monkeypatch):
    """Run a test through the candidate rounds (never dense) or the dense solver."""
    if request.param == "candidates":
        monkeypatch.setattr(feature_matching, "_DENSE_ENTRIES", 0)
        monkeypatch.setattr(feature_matching, "_DENSE_FALLBACK_ENTRIES", 0)
    else:
        monkeypatch.setattr(feature_matching, "_DENSE_ENTRIES", 1 << 40)
    return request.param


def _random(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(
    ("n_sae", "n_gt", "dim", "seed"),
    [(40, 300, 6, 0), (64, 64, 5, 1), (200, 900, 4, 2), (300, 40, 6, 3), (7, 3, 3, 4), (1, 1, 2, 5)],
)
def test_equals_dense_hungarian(n_sae, n_gt, dim, seed, path):
    # low dimensions make many latents want the same few features, so the first
    # candidates often do not settle the matching and rows must be re-solved
    sae, gt = _random(n_sae, dim, seed), _random(n_gt, dim, seed + 100)
    expected, argmax = _dense_reference(sae, gt)
    match = match_decoder_to_features(sae, gt, chunk_size=16)
    assert match.mcc == pytest.approx(expected, abs=1e-12)
    assert torch.equal(match.best_match, argmax)
    assert match.uniqueness == pytest.approx(torch.unique(argmax).numel() / n_sae)


def test_duplicated_latents_force_rows_outside_their_candidates(path):
    # 30 copies of one direction share the same top-8 features: at least 22 of them must
    # be matched outside their first candidates
    gt = _random(500, 8, 6)
    sae = torch.cat([gt[:1].repeat(30, 1) + 1e-3 * _random(30, 8, 7), _random(20, 8, 8)])
    expected, _ = _dense_reference(sae, gt)
    assert match_decoder_to_features(sae, gt).mcc == pytest.approx(expected, abs=1e-12)


def test_widening_rounds_are_taken(monkeypatch, path):
    if path == "dense":
        return
    calls = []
    original = feature_matching._scan_rows

    def counting(a, b, k, chunk):
        calls.append(k)
        return original(a, b, k, chunk)

    monkeypatch.setattr(feature_matching, "_scan_rows", counting)
    gt = _random(200, 4, 9)
    sae = gt[:1].repeat(50, 1)
    expected, _ = _dense_reference(sae, gt)
    assert match_decoder_to_features(sae, gt).mcc == pytest.approx(expected, abs=1e-12)
    assert len(calls) >= 2 and max(calls) > calls[0]


def test_float32_inputs_agree_with_float64_reference(path):
    sae, gt = _random(128, 16, 10).float(), _random(1000, 16, 11).float()
    expected, argmax = _dense_reference(sae, gt)
    match = match_decoder_to_features(sae, gt)
    assert match.mcc == pytest.approx(expected, abs=1e-6)  # float32 cosines: ~1e-7 each
    assert (match.best_match == argmax).float().mean() > 0.99  # near-ties may flip in float32


def test_never_builds_the_sae_by_feature_matrix(monkeypatch):
    monkeypatch.setattr(feature_matching, "_TILE_ELEMENTS", 64 * 250)
    monkeypatch.setattr(feature_matching, "_DENSE_ENTRIES", 0)  # big problems take this path
    sae, gt = _random(64, 12, 12).float(), _random(2000, 12, 13).float()

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = [a for a in list(args) + list((kwargs or {}).values()) if isinstance(a, torch.Tensor)]
            seen = {a.untyped_storage().data_ptr() for a in inputs}
            for t in out if isinstance(out, (tuple, list)) else (out,):
                # views (detach, slices) share their input's memory: only new storage counts
                if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in seen:
                    Largest.largest = max(Largest.largest, t.numel())
            return out

    with Largest():
        match = match_decoder_to_features(sae, gt, chunk_size=64)
    # tiles only: 64 x 2,000 |cos| values would be 128,000, a unit copy of the features 24,000
    assert Largest.largest < 2000 * 12
    assert match.mcc == pytest.approx(_dense_reference(sae, gt)[0], abs=1e-6)


def test_best_match_keeps_the_first_of_tied_columns():
    gt = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    sae = torch.tensor([[2.0, 0.0], [0.0, -1.0]])
    assert best_matching_features(sae, gt, chunk_size=1).tolist() == [0, 1]
    np.testing.assert_allclose(match_decoder_to_features(sae, gt).mcc, 1.0, atol=1e-6)


def test_square_problems_that_keep_competing_fall_back_to_the_dense_solver(monkeypatch):
    monkeypatch.setattr(feature_matching, "_DENSE_ENTRIES", 0)
    monkeypatch.setattr(feature_matching, "_MAX_ROUNDS", 1)
    solved = []

    def dense(*args):
        solved.append(1)
        return _dense_mean(*args)

    monkeypatch.setattr(feature_matching, "_dense_matching_mean", dense)
    sae, gt = _random(300, 6, 14), _random(300, 6, 15)  # square and low-dimensional: many ties
    assert match_decoder_to_features(sae, gt).mcc == pytest.approx(_dense_reference(sae, gt)[0], abs=1e-12)
    assert solved == [1]
