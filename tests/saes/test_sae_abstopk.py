"""AbsTopK: selection by magnitude with signs kept, and a magnitude-ranked auxiliary loss."""

from __future__ import annotations

import pytest
import torch

from synthsae.saes.abstopk import (
    AbsTopKSAE,
    AbsTopKSAEConfig,
    AbsTopKTrainingSAE,
    AbsTopKTrainingSAEConfig,
    dense_row_abs_topk,
)
from synthsae.saes.base import TrainStepInput
from synthsae.saes.sparse_acts import row_abs_topk, topk_aux_loss
from synthsae.training.firing_stats import FiringStats

H = torch.tensor([[0.5, -2.0, 1.0, -0.1], [-3.0, 0.2, 0.0, 2.5]])


def test_keeps_the_k_largest_magnitudes_with_their_signs() -> None:
    expected = torch.tensor([[0.0, -2.0, 1.0, 0.0], [-3.0, 0.0, 0.0, 2.5]])
    torch.testing.assert_close(dense_row_abs_topk(H, 2), expected)
    torch.testing.assert_close(row_abs_topk(H, 2).to_dense(), expected)


def test_gradient_reaches_the_kept_entries_only() -> None:
    h = H.clone().requires_grad_()
    row_abs_topk(h, 2).to_dense().sum().backward()
    torch.testing.assert_close(h.grad, torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]]))


def _sae(**cfg) -> AbsTopKTrainingSAE:
    torch.manual_seed(0)
    return AbsTopKTrainingSAE(AbsTopKTrainingSAEConfig(d_in=4, d_sae=6, k=2, **cfg))


def test_training_pass_gives_signed_latents_of_the_pre_activations() -> None:
    sae = _sae(rescale_acts_by_decoder_norm=False)
    x = torch.randn(5, 4)
    out = sae.training_forward_pass(TrainStepInput(x, {}, None, 0))
    torch.testing.assert_close(out.feature_acts, dense_row_abs_topk(out.hidden_pre, 2))
    assert (out.feature_acts < 0).any()
    torch.testing.assert_close(out.sae_out, out.feature_acts @ sae.W_dec + sae.b_dec)


def test_inference_encode_matches_training() -> None:
    sae = _sae()
    inference = sae.to_inference_sae()
    assert isinstance(inference, AbsTopKSAE) and isinstance(inference.cfg, AbsTopKSAEConfig)
    x = torch.randn(7, 4)
    torch.testing.assert_close(inference(x), sae(x))


@pytest.mark.parametrize("read_dead_count", [True, False])
def test_aux_loss_ranks_dead_latents_by_magnitude(read_dead_count: bool) -> None:
    dead = torch.tensor([True, True, False, True])
    residual = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    W_dec = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    loss = topk_aux_loss(H, dead, residual, W_dec, None, 2, read_dead_count=read_dead_count, by_magnitude=True)
    # dead columns 0, 1, 3; |h| there: row 0 [0.5, 2.0, 0.1] -> columns 1 (-2.0) and 0 (0.5);
    # row 1 [3.0, 0.2, 2.5] -> columns 0 (-3.0) and 3 (2.5). Scale min(3 dead / k_aux 2, 1) = 1.
    recon = torch.stack([0.5 * W_dec[0] - 2.0 * W_dec[1], -3.0 * W_dec[0] + 2.5 * W_dec[3]])
    expected = min(3 / 2, 1.0) * (recon - residual).pow(2).sum(-1).mean()
    torch.testing.assert_close(loss, expected)


def test_firing_statistics_count_negative_latents_as_firing() -> None:
    stats = FiringStats(3, dead_feature_window=1)
    for _ in range(3):
        stats.update(torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, 0.5]]))
    assert stats.dead_mask().tolist() == [False, True, False]


def test_evals_count_negative_latents_as_firing() -> None:
    from synthsae.synthetic import (
        ActivationGenerator,
        FeatureDictionary,
        eval_sae_on_synthetic_data,
    )

    feature_dict = FeatureDictionary(num_features=8, hidden_dim=4, seed=0)
    generator = ActivationGenerator(num_features=8, firing_probabilities=torch.full((8,), 0.3), seed=0)
    sae = AbsTopKTrainingSAE(AbsTopKTrainingSAEConfig(d_in=4, d_sae=6, k=3))
    with torch.no_grad():
        sae.b_enc.fill_(-5.0)  # every pre-activation strongly negative: all kept latents are < 0
    result = eval_sae_on_synthetic_data(sae, feature_dict, generator, num_samples=512)
    assert result.sae_l0 == 3.0  # k latents per row, all negative, all counted
    assert result.dead_latents == 0
    # no latent is ever positive, so counting only z > 0 would give recall exactly 0
    assert result.classification.recall > 0
