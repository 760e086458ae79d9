"""Matching pursuit: atom selection, stopping rules, batching and metrics."""

from __future__ import annotations

import pytest
import torch
from sae_helpers import orthogonal_features

from synthsae.saes.base import TrainStepInput
from synthsae.saes.matching_pursuit import (
    MatchingPursuitSAE,
    MatchingPursuitSAEConfig,
    MatchingPursuitTrainingSAE,
    MatchingPursuitTrainingSAEConfig,
    matching_pursuit_encode,
)

ATOMS = orthogonal_features(8, 8, seed=3)  # an orthonormal dictionary


def _combination(weights: dict[int, float]) -> torch.Tensor:
    return sum(value * ATOMS[index] for index, value in weights.items())


def test_picks_the_right_atoms_for_an_orthogonal_dictionary() -> None:
    x = torch.stack([_combination({2: 3.0, 5: 1.0}), _combination({0: 0.5}), _combination({1: 2.0, 4: 1.5, 7: 1.0})])
    acts = matching_pursuit_encode(x, ATOMS, residual_threshold=1e-4)
    expected = torch.zeros(3, 8)
    expected[0, 2], expected[0, 5] = 3.0, 1.0
    expected[1, 0] = 0.5
    expected[2, 1], expected[2, 4], expected[2, 7] = 2.0, 1.5, 1.0
    torch.testing.assert_close(acts, expected, atol=1e-5, rtol=1e-5)


def test_max_iterations_is_respected() -> None:
    x = _combination({1: 4.0, 3: 3.0, 5: 2.0, 6: 1.0})[None]
    for n in (1, 2, 3):
        acts = matching_pursuit_encode(x, ATOMS, residual_threshold=0.0, max_iterations=n)
        assert int((acts != 0).sum()) == n
        kept = [1, 3, 5][:n]
        torch.testing.assert_close(acts[0, kept], torch.tensor([4.0, 3.0, 2.0][:n]))


def test_default_max_iterations_is_d_in() -> None:
    # Without stopping rules the loop runs d_in times; on an orthonormal basis that
    # recovers every coefficient.
    x = torch.arange(1.0, 9.0) @ ATOMS
    acts = matching_pursuit_encode(x[None], ATOMS, residual_threshold=0.0, stop_on_duplicate_support=False)
    torch.testing.assert_close(acts[0], torch.arange(1.0, 9.0), atol=1e-5, rtol=1e-5)


def test_rows_stop_independently() -> None:
    # row 0 is done after one atom; later iterations of row 1 must not change it
    x = torch.stack([_combination({0: 1.0}), _combination({1: 3.0, 2: 2.0, 3: 1.0})])
    acts = matching_pursuit_encode(x, ATOMS, residual_threshold=1e-4)
    assert (acts[0] != 0).sum() == 1 and (acts[1] != 0).sum() == 3


def test_duplicate_support_stops_rows_early() -> None:
    # With unit atoms each pursuit step lowers ||r||^2 by v^2, so running on after a
    # repeated atom can only reduce the residual: the duplicate rule stops earlier.
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    atoms = torch.nn.functional.normalize(torch.randn(12, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    stopped = matching_pursuit_encode(x, atoms, residual_threshold=0.0, max_iterations=50)
    running = matching_pursuit_encode(
        x, atoms, residual_threshold=0.0, max_iterations=50, stop_on_duplicate_support=False
    )
    stopped_residual = (x - stopped @ atoms).norm(dim=-1)
    running_residual = (x - running @ atoms).norm(dim=-1)
    assert (stopped_residual >= running_residual - 1e-6).all()
    assert (stopped_residual > running_residual + 1e-3).any()


def test_residual_threshold_stops_rows() -> None:
    x = _combination({1: 3.0, 2: 0.001})[None]
    acts = matching_pursuit_encode(x, ATOMS, residual_threshold=0.01, stop_on_duplicate_support=False)
    assert acts.count_nonzero() == 1


def test_device_style_checking_does_not_change_results() -> None:
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    atoms = torch.nn.functional.normalize(torch.randn(12, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    every = matching_pursuit_encode(x, atoms, 1e-2, check_every=1)
    sparse = matching_pursuit_encode(x, atoms, 1e-2, check_every=8)
    torch.testing.assert_close(every, sparse)


def test_three_dimensional_inputs() -> None:
    sae = MatchingPursuitSAE(MatchingPursuitSAEConfig(d_in=8, d_sae=8))
    with torch.no_grad():
        sae.W_dec.copy_(ATOMS)
    x = torch.randn(2, 3, 8)
    flat = sae.encode(x.reshape(6, 8))
    acts = sae.encode(x)
    assert acts.shape == (2, 3, 8)
    torch.testing.assert_close(acts.reshape(6, 8), flat)
    assert sae.decode(acts).shape == (2, 3, 8)


def test_tied_weights_and_decode_bias() -> None:
    sae = MatchingPursuitTrainingSAE(MatchingPursuitTrainingSAEConfig(d_in=4, d_sae=6))
    assert "W_enc" not in dict(sae.named_parameters())
    assert set(sae.state_dict()) == {"W_dec", "b_dec"}
    torch.testing.assert_close(sae.W_enc, sae.W_dec.T)
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(6))  # decoder_init_norm = 1
    no_bias = MatchingPursuitSAE(MatchingPursuitSAEConfig(d_in=4, d_sae=6, apply_b_dec_to_input=False))
    with torch.no_grad():
        no_bias.b_dec.fill_(5.0)
    torch.testing.assert_close(no_bias.decode(torch.zeros(1, 6)), torch.zeros(1, 4))


def test_metrics_only_on_logging_steps() -> None:
    torch.manual_seed(0)
    sae = MatchingPursuitTrainingSAE(MatchingPursuitTrainingSAEConfig(d_in=8, d_sae=12))
    x = torch.randn(10, 8)
    quiet = sae.training_forward_pass(TrainStepInput(x, {}, None, 0, is_logging_step=False))
    assert quiet.metrics == {} and set(quiet.losses) == {"mse_loss"}
    logged = sae.training_forward_pass(TrainStepInput(x, {}, None, 0, is_logging_step=True))
    assert set(logged.metrics) == {"max_l0", "min_l0", "residual_norm", "residual_threshold_converged_portion"}
    l0 = (logged.feature_acts != 0).sum(-1).float()
    assert logged.metrics["max_l0"].item() == l0.max().item()
    assert logged.metrics["min_l0"].item() == l0.min().item()
    residual = (x - logged.sae_out).norm(dim=-1)
    assert logged.metrics["residual_norm"].item() == pytest.approx(residual.mean().item())


def test_gradients_reach_the_dictionary() -> None:
    torch.manual_seed(0)
    sae = MatchingPursuitTrainingSAE(MatchingPursuitTrainingSAEConfig(d_in=8, d_sae=12, max_iterations=3))
    out = sae.training_forward_pass(TrainStepInput(torch.randn(10, 8), {}, None, 0))
    out.loss.backward()
    assert sae.W_dec.grad.abs().sum() > 0 and sae.b_dec.grad.abs().sum() > 0


def test_fold_w_dec_norm_is_not_available() -> None:
    for sae in (
        MatchingPursuitSAE(MatchingPursuitSAEConfig(d_in=4, d_sae=6)),
        MatchingPursuitTrainingSAE(MatchingPursuitTrainingSAEConfig(d_in=4, d_sae=6)),
    ):
        with pytest.raises(NotImplementedError):
            sae.fold_W_dec_norm()


def test_fold_activation_scaling_factor() -> None:
    torch.manual_seed(0)
    sae = MatchingPursuitSAE(MatchingPursuitSAEConfig(d_in=8, d_sae=8, residual_threshold=0.0))
    with torch.no_grad():
        sae.W_dec.copy_(ATOMS)
        sae.b_dec.copy_(torch.randn(8))
    x = torch.randn(4, 8)
    scaled_out = sae(2.0 * x) / 2.0
    scaled_acts = sae.encode(2.0 * x)
    sae.fold_activation_norm_scaling_factor(2.0)
    torch.testing.assert_close(sae(x), scaled_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sae.encode(x), scaled_acts / 2.0, atol=1e-5, rtol=1e-5)
