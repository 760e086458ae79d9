"""JumpReLU's optional TopK dead-latent loss (``topk_aux_loss_coefficient``, off by default)."""

from __future__ import annotations

import pytest
import torch

from synthsae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
from synthsae.saes.base import TrainStepInput


def _sae(coefficient: float) -> JumpReLUTrainingSAE:
    torch.manual_seed(0)
    cfg = JumpReLUTrainingSAEConfig(d_in=4, d_sae=6, topk_aux_loss_coefficient=coefficient)
    return JumpReLUTrainingSAE(cfg)


def test_off_by_default_and_no_loss_key() -> None:
    assert JumpReLUTrainingSAEConfig(d_in=4, d_sae=6).topk_aux_loss_coefficient == 0.0
    sae = _sae(0.0)
    out = sae.training_forward_pass(TrainStepInput(torch.randn(5, 4), {"l0": 1.0}, torch.ones(6, dtype=torch.bool), 0))
    assert "auxiliary_reconstruction_loss" not in out.losses


def test_the_loss_is_the_dead_latents_reconstruction_of_the_residual() -> None:
    sae = _sae(0.5)
    x = torch.randn(5, 4)
    dead = torch.tensor([True, False, True, True, False, False])
    out = sae.training_forward_pass(TrainStepInput(x, {"l0": 1.0}, dead, 0))
    # by hand: k_aux = d_in // 2 = 2 of the 3 dead latents per row, by largest pre-activation
    # (no ReLU), scaled by min(n_dead / k_aux, 1) = 1
    with torch.no_grad():
        h = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        residual = x - out.sae_out
        masked = torch.where(dead, h, torch.full_like(h, -torch.inf))
        values, idx = masked.topk(2, dim=-1)
        recon = torch.einsum("bk,bkd->bd", values, sae.W_dec[idx])
        expected = 0.5 * (recon - residual).pow(2).sum(-1).mean()
    torch.testing.assert_close(out.losses["auxiliary_reconstruction_loss"], expected)


def test_negative_coefficient_is_refused() -> None:
    with pytest.raises(ValueError, match="topk_aux_loss_coefficient"):
        JumpReLUTrainingSAEConfig(d_in=4, d_sae=6, topk_aux_loss_coefficient=-1.0)
