"""Correlation-matrix and superposition statistics."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from synthsae.synthetic import (
    FeatureDictionary,
    LowRankCorrelationMatrix,
    compute_correlation_matrix_stats,
    compute_low_rank_correlation_matrix_stats,
    compute_superposition_stats,
)


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


# ---------------------------------------------------------------- correlation


def test_correlation_stats_hand_case():
    c = torch.tensor([[1.0, 0.2, -0.4], [0.2, 1.0, 0.6], [-0.4, 0.6, 1.0]])
    stats = compute_correlation_matrix_stats(c)
    # six off-diagonal entries: 0.2, 0.2, -0.4, -0.4, 0.6, 0.6
    assert stats.num_features == 3
    assert stats.mean_correlation == pytest.approx((0.2 - 0.4 + 0.6) / 3)
    assert stats.rms_correlation == pytest.approx(math.sqrt((0.04 + 0.16 + 0.36) / 3))


def test_identity_and_single_feature_give_zero():
    stats = compute_correlation_matrix_stats(torch.eye(5))
    assert (stats.rms_correlation, stats.mean_correlation) == (0.0, 0.0)
    assert compute_correlation_matrix_stats(torch.eye(1)).rms_correlation == 0.0


def test_low_rank_stats_equal_dense_stats_without_building_f_by_f():
    gen = torch.Generator().manual_seed(0)
    factor = torch.randn(300, 6, generator=gen, dtype=torch.float64) * 0.2 + 0.03
    diag = 1 - factor.square().sum(1)
    dense = factor @ factor.T + torch.diag(diag)
    expected = compute_correlation_matrix_stats(dense)
    with _LargestTensor() as mode:
        low = compute_low_rank_correlation_matrix_stats(LowRankCorrelationMatrix(factor, diag))
    assert mode.largest < 300 * 300 / 10
    assert low.num_features == 300
    assert low.rms_correlation == pytest.approx(expected.rms_correlation, rel=1e-10)
    assert low.mean_correlation == pytest.approx(expected.mean_correlation, rel=1e-10)
    # the dense entry point dispatches tuples to the low-rank path
    assert compute_correlation_matrix_stats((factor, diag)) == low


def test_correlation_stats_bad_shape():
    with pytest.raises(ValueError, match="correlation_matrix"):
        compute_correlation_matrix_stats(torch.ones(2, 3))


# -------------------------------------------------------------- superposition


def test_orthogonal_vectors_have_no_overlap():
    stats = compute_superposition_stats(torch.eye(4))
    assert torch.equal(stats.max_abs_cos_sims, torch.zeros(4))
    assert stats.mean_abs_cos_sim == 0.0 and stats.mean_max_abs_cos_sim == 0.0
    assert stats.mean_percentile_abs_cos_sim == {95: 0.0, 99: 0.0}
    assert (stats.num_features, stats.hidden_dim) == (4, 4)


def test_parallel_and_antiparallel_vectors():
    v = torch.tensor([[1.0, 2.0, 2.0], [2.0, 4.0, 4.0], [-0.5, -1.0, -1.0]])
    stats = compute_superposition_stats(v)
    torch.testing.assert_close(stats.max_abs_cos_sims, torch.ones(3))
    assert stats.mean_abs_cos_sim == pytest.approx(1.0)
    for values in stats.percentile_abs_cos_sims.values():
        torch.testing.assert_close(values, torch.ones(3))


def test_known_three_vector_case():
    s = 1 / math.sqrt(2)
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # |cos|: (0,1) = 0, (0,2) = (1,2) = 1/sqrt(2)
    stats = compute_superposition_stats(vectors, percentiles=[0, 50, 95, 100])
    torch.testing.assert_close(stats.max_abs_cos_sims, torch.full((3,), s))
    assert stats.mean_abs_cos_sim == pytest.approx(2 * s / 3)
    assert stats.mean_max_abs_cos_sim == pytest.approx(s)
    # each feature's two "others", sorted: f0 -> [0, s], f1 -> [0, s], f2 -> [s, s];
    # the linear-interpolation p-th percentile of [a, b] is a + p/100 (b - a)
    torch.testing.assert_close(stats.percentile_abs_cos_sims[50], torch.tensor([s / 2, s / 2, s]))
    torch.testing.assert_close(
        stats.percentile_abs_cos_sims[95], torch.tensor([0.95 * s, 0.95 * s, s])
    )
    torch.testing.assert_close(stats.percentile_abs_cos_sims[0], torch.tensor([0.0, 0.0, s]))
    assert stats.mean_percentile_abs_cos_sim[100] == pytest.approx(s)


def _naive(vectors: torch.Tensor, pcts):
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    sims = (unit @ unit.T).abs()
    n = sims.shape[0]
    others = sims[~torch.eye(n, dtype=torch.bool)].reshape(n, n - 1)
    q = torch.quantile(others, torch.tensor(pcts, dtype=sims.dtype) / 100, dim=1)
    return others.max(1).values, q, others.mean()


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1024])
def test_matches_a_naive_computation_for_any_batch_size(batch_size):
    gen = torch.Generator().manual_seed(3)
    vectors = torch.randn(50, 8, generator=gen, dtype=torch.float64)
    stats = compute_superposition_stats(vectors, batch_size=batch_size, percentiles=[10, 95, 99])
    max_abs, q, mean_abs = _naive(vectors, [10, 95, 99])
    torch.testing.assert_close(stats.max_abs_cos_sims, max_abs)
    for i, p in enumerate([10, 95, 99]):
        torch.testing.assert_close(stats.percentile_abs_cos_sims[p], q[i])
    assert stats.mean_abs_cos_sim == pytest.approx(mean_abs.item(), rel=1e-12)


def test_memory_is_bounded_by_batch_size():
    vectors = torch.randn(400, 16)
    with _LargestTensor() as mode:
        compute_superposition_stats(vectors, batch_size=10)
    # the [F, D] unit vectors or a [batch, F] block, never the 400 x 400 matrix
    assert mode.largest <= max(10 * 400, 400 * 16)


def test_accepts_a_feature_dictionary():
    fd = FeatureDictionary(12, 5, initializer=None, seed=0)
    a = compute_superposition_stats(fd)
    b = compute_superposition_stats(fd.feature_vectors.detach())
    assert torch.equal(a.max_abs_cos_sims, b.max_abs_cos_sims)
    assert (a.num_features, a.hidden_dim) == (12, 5)


def test_zero_vector_has_zero_similarity():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    stats = compute_superposition_stats(vectors)
    assert stats.max_abs_cos_sims[1].item() == 0.0
    assert stats.max_abs_cos_sims[0].item() == pytest.approx(1 / math.sqrt(2))


def test_superposition_bad_input():
    with pytest.raises(ValueError, match="num_features=1"):
        compute_superposition_stats(torch.ones(1, 4))
    with pytest.raises(ValueError, match="batch_size"):
        compute_superposition_stats(torch.eye(3), batch_size=0)
    with pytest.raises(ValueError, match="percentiles"):
        compute_superposition_stats(torch.eye(3), percentiles=[101])
