"""Weight folding, input normalisation and the input pipeline."""

from __future__ import annotations

import math

import pytest
import torch
from sae_helpers import make_sae

from synthsae.saes.base import SAE, TrainStepInput
from synthsae.saes.jumprelu import JumpReLUSAE, JumpReLUSAEConfig
from synthsae.saes.standard import (
    StandardSAE,
    StandardSAEConfig,
    StandardTrainingSAE,
    StandardTrainingSAEConfig,
)
from synthsae.saes.topk import TopKSAE, TopKSAEConfig

FOLDABLE = ("standard", "topk", "jumprelu", "gated")


def _perturb(sae: torch.nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sae.named_parameters():
            if name == "threshold":  # positive, as training keeps it
                param.copy_(0.05 + 0.2 * torch.rand(param.shape, generator=generator))
                continue
            param.add_(0.2 * torch.randn(param.shape, generator=generator))
            if name == "W_dec":  # uneven decoder norms
                param.mul_(torch.linspace(0.5, 3.0, param.shape[0])[:, None])


def _x(n: int = 10, d: int = 16) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(11))


@pytest.mark.parametrize("name", FOLDABLE)
def test_fold_w_dec_norm_keeps_outputs(name: str) -> None:
    sae = make_sae(name)
    _perturb(sae)
    x = _x()
    with torch.no_grad():
        before_acts, before_out = sae.encode(x), sae(x)
        sae.fold_W_dec_norm()
        torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(sae.cfg.d_sae))
        torch.testing.assert_close(sae(x), before_out, atol=1e-5, rtol=1e-5)
        if name != "topk":  # topk latents are already measured in unit-decoder units
            torch.testing.assert_close(sae.encode(x), before_acts * 0 + sae.encode(x))
    assert before_acts.shape == (10, sae.cfg.d_sae)


@pytest.mark.parametrize("name", FOLDABLE)
def test_fold_w_dec_norm_on_inference_saes(name: str) -> None:
    inference = make_sae(name)
    _perturb(inference)
    inference = inference.to_inference_sae()
    _perturb(inference, seed=1)
    x = _x()
    with torch.no_grad():
        before = inference(x)
        inference.fold_W_dec_norm()
        torch.testing.assert_close(inference(x), before, atol=1e-5, rtol=1e-5)


def test_jumprelu_fold_scales_thresholds() -> None:
    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=4, d_sae=3))
    with torch.no_grad():
        sae.W_dec.copy_(torch.tensor([[2.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 0.5, 0]]))
        sae.threshold.copy_(torch.tensor([0.1, 0.2, 0.3]))
    sae.fold_W_dec_norm()
    torch.testing.assert_close(sae.threshold, torch.tensor([0.2, 0.6, 0.15]))


def test_topk_fold_needs_rescaling() -> None:
    with pytest.raises(NotImplementedError, match="rescale_acts_by_decoder_norm"):
        make_sae("topk", rescale_acts_by_decoder_norm=False).fold_W_dec_norm()
    with pytest.raises(NotImplementedError):
        TopKSAE(TopKSAEConfig(d_in=4, d_sae=8, k=2)).fold_W_dec_norm()


@pytest.mark.parametrize("name", FOLDABLE)
def test_fold_activation_norm_scaling_factor(name: str) -> None:
    sae = make_sae(name, normalize_activations="expected_average_only_in")
    _perturb(sae)
    x, s = _x(), 2.5
    with torch.no_grad():
        expected = sae(s * x) / s
        sae.fold_activation_norm_scaling_factor(s)
        torch.testing.assert_close(sae(x), expected, atol=1e-5, rtol=1e-5)
    assert sae.cfg.normalize_activations == "none"


def test_constant_norm_rescale_is_scale_invariant() -> None:
    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=16, d_sae=32, normalize_activations="constant_norm_rescale"))
    x = _x()
    acts = sae.encode(x)
    out = sae.decode(acts)
    torch.testing.assert_close(sae.encode(3.0 * x), acts, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sae(3.0 * x), 3.0 * out, atol=1e-5, rtol=1e-5)
    # the SAE sees inputs of norm sqrt(d_in)
    assert sae._normalize_in(x).norm(dim=-1).sub(math.sqrt(16)).abs().max() < 1e-4


def test_layer_norm_round_trip() -> None:
    sae = StandardSAE(StandardSAEConfig(d_in=16, d_sae=32, normalize_activations="layer_norm"))
    x = 5.0 + 2.0 * _x()
    normalised = sae._normalize_in(x)
    torch.testing.assert_close(normalised.mean(-1), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(sae._normalize_out(normalised), x, atol=1e-3, rtol=1e-4)


def test_decode_before_encode_with_runtime_normalisation() -> None:
    sae = StandardSAE(StandardSAEConfig(d_in=4, d_sae=8, normalize_activations="layer_norm"))
    with pytest.raises(RuntimeError, match="call encode"):
        sae.decode(torch.zeros(2, 8))


def test_apply_b_dec_to_input_false() -> None:
    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=4, d_sae=8, apply_b_dec_to_input=False))
    with torch.no_grad():
        sae.b_dec.fill_(3.0)
    x = torch.randn(5, 4)
    torch.testing.assert_close(sae.encode(x), torch.relu(x @ sae.W_enc + sae.b_enc))


def test_encoder_linear_gradients_equal_the_plain_formula() -> None:
    sae = make_sae("standard")
    _perturb(sae)
    x = _x()
    out = sae.training_forward_pass(TrainStepInput(x, {"l1": 0.1}, None, 0))
    plain_h = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    plain_z = plain_h.relu()
    plain_out = plain_z @ sae.W_dec + sae.b_dec
    plain_loss = (plain_out - x).pow(2).sum(-1).mean() + 0.1 * (plain_z * sae.W_dec.norm(dim=-1)).sum(-1).mean()
    torch.testing.assert_close(out.loss, plain_loss)
    params = list(sae.parameters())
    for mine, plain in zip(torch.autograd.grad(out.loss, params), torch.autograd.grad(plain_loss, params)):
        torch.testing.assert_close(mine, plain, atol=1e-5, rtol=1e-5)


def test_hook_z_reshaping_for_inference() -> None:
    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=12, d_sae=8, reshape_activations="hook_z"))
    heads = torch.randn(5, 3, 4)  # [batch, n_heads, d_head]
    out = sae(heads)
    assert out.shape == heads.shape
    torch.testing.assert_close(out.flatten(-2), sae(heads.flatten(-2)))


def test_initialisation() -> None:
    torch.manual_seed(0)
    cfg = StandardTrainingSAEConfig(d_in=64, d_sae=128)
    sae = StandardTrainingSAE(cfg)
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.full((128,), 0.1))
    torch.testing.assert_close(sae.W_enc, sae.W_dec.T)
    assert sae.b_dec.abs().sum() == 0 and sae.b_enc.abs().sum() == 0
    untouched = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=64, d_sae=128, decoder_init_norm=None))
    bound = math.sqrt(6.0 / 64)  # Kaiming-uniform, fan-in d_in, gain sqrt(2)
    assert untouched.W_dec.abs().max() <= bound and untouched.W_dec.abs().max() > 0.9 * bound
    torch.testing.assert_close(untouched.W_enc, untouched.W_dec.T)


def test_to_keeps_the_config_in_step() -> None:
    sae = make_sae("standard").to(torch.float64)
    assert sae.cfg.dtype == "float64" and sae.W_enc.dtype == torch.float64
    sae = sae.float()
    assert sae.cfg.dtype == "float32" and sae.dtype == torch.float32
    assert isinstance(SAE.from_dict(sae.cfg.to_dict()), StandardTrainingSAE)
