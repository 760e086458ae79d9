"""Firing statistics: dead mask after a known firing pattern, window frequencies, state."""

import pytest
import torch

from synthsae.training.firing_stats import FiringStats


def acts(*fired: int, rows: int = 4, d_sae: int = 3) -> torch.Tensor:
    """A batch where each latent in ``fired`` is non-zero on the first row only."""
    a = torch.zeros(rows, d_sae)
    for j in fired:
        a[0, j] = 1.5
    return a


def test_dead_mask_after_known_pattern():
    stats = FiringStats(3, dead_feature_window=2, feature_sampling_window=100)
    # latent 0 fires every step, latent 1 only at the first step, latent 2 never
    stats.update(acts(0, 1))
    stats.update(acts(0))
    stats.update(acts(0))
    assert stats.steps_since_fired.tolist() == [0, 2, 3]
    assert stats.dead_mask().tolist() == [False, False, True]  # dead means > window
    stats.update(acts(0))
    assert stats.dead_mask().tolist() == [False, True, True]
    stats.update(acts(1, 2))  # firing revives a latent
    assert stats.steps_since_fired.tolist() == [1, 0, 0]
    assert stats.dead_mask().tolist() == [False, False, False]


def test_negative_values_count_as_firing_and_zeros_do_not():
    stats = FiringStats(3)
    stats.update(torch.tensor([[-0.5, 0.0, 0.0], [0.0, 0.0, 2.0]]))
    assert stats.fire_counts.tolist() == [1, 0, 1]
    assert stats.steps_since_fired.tolist() == [0, 1, 0]


def test_window_frequencies_and_reset():
    stats = FiringStats(3, feature_sampling_window=2)
    stats.update(torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0]]))
    assert not stats.window_full
    stats.update(torch.tensor([[1.0, 0, 0], [0.0, 0, 0]]))
    assert stats.window_full and stats.window_samples == 4
    assert stats.feature_sparsity().tolist() == pytest.approx([0.75, 0.25, 0.0])
    assert stats.log_feature_sparsity().tolist() == pytest.approx([torch.log10(torch.tensor(0.75)).item(), -0.60206, -10.0], abs=1e-4)
    m = stats.window_metrics()
    assert m["sparsity/below_1e-5"] == 1 and m["sparsity/below_1e-6"] == 1
    assert m["metrics/mean_log10_feature_sparsity"] == pytest.approx(stats.log_feature_sparsity().mean().item())
    stats.reset_window()
    assert stats.window_samples == 0 and stats.fire_counts.sum() == 0
    assert stats.steps_since_fired.tolist() == [0, 1, 2]  # kept across windows


def test_sparse_and_3d_inputs_match_dense():
    dense = torch.tensor([[[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]], [[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]])
    a, b = FiringStats(3), FiringStats(3)
    a.update(dense)
    b.update(dense.reshape(4, 3).to_sparse())
    assert a.fire_counts.tolist() == b.fire_counts.tolist() == [1, 2, 0]
    assert a.window_samples == b.window_samples == 4


def test_state_round_trip_and_validation():
    a = FiringStats(3, dead_feature_window=1)
    for _ in range(3):
        a.update(acts(0))
    b = FiringStats(3, dead_feature_window=1)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.steps_since_fired, b.steps_since_fired) and torch.equal(a.fire_counts, b.fire_counts)
    assert b.window_samples == 12 and b.window_steps == 3
    with pytest.raises(ValueError, match="shape"):
        FiringStats(4).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="dead_feature_window"):
        FiringStats(3, dead_feature_window=0)
