"""Losses of the standard, gated and JumpReLU SAEs against hand computations on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from synthsae.saes.base import TrainStepInput
from synthsae.saes.gated import GatedTrainingSAE, GatedTrainingSAEConfig
from synthsae.saes.jumprelu import (
    JumpReLUFunction,
    JumpReLUTrainingSAE,
    JumpReLUTrainingSAEConfig,
    StepFunction,
)
from synthsae.saes.standard import StandardTrainingSAE, StandardTrainingSAEConfig

# d_in = 2, d_sae = 3; decoder rows have norms 1, 2, 3.
W_ENC = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
W_DEC = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
B_DEC = torch.tensor([0.5, 0.0])
X = torch.tensor([[1.5, 1.0], [0.5, 2.0]])  # x - b_dec = [[1, 1], [0, 2]]


def _set(sae: torch.nn.Module, **tensors: torch.Tensor) -> None:
    with torch.no_grad():
        for name, value in tensors.items():
            getattr(sae, name).copy_(value)


def _step(coefficients: dict[str, float], dead: torch.Tensor | None = None) -> TrainStepInput:
    return TrainStepInput(X, coefficients, dead, n_training_steps=0)


class TestStandard:
    def _sae(self, **cfg) -> StandardTrainingSAE:
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=2, d_sae=3, **cfg))
        _set(sae, W_enc=W_ENC, W_dec=W_DEC, b_dec=B_DEC, b_enc=torch.tensor([0.0, -0.5, 0.0]))
        return sae

    def test_latents_and_mse(self) -> None:
        sae = self._sae()
        out = sae.training_forward_pass(_step({"l1": 0.1}))
        # h = [[1, .5, 1], [0, 1.5, 0]]; x_hat = [[4.5, 1], [.5, 3]]; SSE per row 9 and 1
        torch.testing.assert_close(out.feature_acts, torch.tensor([[1.0, 0.5, 1.0], [0.0, 1.5, 0.0]]))
        torch.testing.assert_close(out.sae_out, torch.tensor([[4.5, 1.0], [0.5, 3.0]]))
        assert out.losses["mse_loss"].item() == pytest.approx(5.0)

    def test_l1_weighted_by_decoder_norms(self) -> None:
        out = self._sae().training_forward_pass(_step({"l1": 0.1}))
        # rows: 1*1 + .5*2 + 1*3 = 5 and 1.5*2 = 3 -> mean 4
        assert out.losses["l1_loss"].item() == pytest.approx(0.4)
        assert out.loss.item() == pytest.approx(5.4)

    def test_lp_norm_two(self) -> None:
        out = self._sae(lp_norm=2.0).training_forward_pass(_step({"l1": 0.1}))
        assert out.losses["l1_loss"].item() == pytest.approx(0.1 * (math.sqrt(11.0) + 3.0) / 2)

    def test_l1_shortcut_has_the_general_formulas_gradients(self) -> None:
        # lp_norm=1 takes a column-sum shortcut (ReLU latents are non-negative); its loss and
        # gradients must equal the written-out p-norm formula on random weights and inputs
        torch.manual_seed(0)
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=6, d_sae=9))
        x = torch.randn(7, 6)
        out = sae.training_forward_pass(TrainStepInput(x, {"l1": 0.3}, None, n_training_steps=0))
        fast = torch.autograd.grad(out.losses["l1_loss"], [sae.W_enc, sae.W_dec, sae.b_enc, sae.b_dec])
        z, _ = sae.encode_with_hidden_pre(x)
        general = 0.3 * torch.linalg.vector_norm(z * sae.W_dec.norm(dim=-1), ord=1, dim=-1).mean()
        torch.testing.assert_close(out.losses["l1_loss"], general)
        for a, b in zip(fast, torch.autograd.grad(general, [sae.W_enc, sae.W_dec, sae.b_enc, sae.b_dec])):
            torch.testing.assert_close(a, b)

    def test_coefficient_comes_from_step_input(self) -> None:
        sae = self._sae(l1_coefficient=7.0, l1_warm_up_steps=10)
        assert sae.get_coefficients()["l1"].value == 7.0
        assert sae.get_coefficients()["l1"].warm_up_steps == 10
        assert sae.training_forward_pass(_step({"l1": 0.0})).losses["l1_loss"].item() == 0.0
        assert sae.training_forward_pass(_step({})).losses["l1_loss"].item() == pytest.approx(28.0)


class TestGated:
    def _sae(self) -> GatedTrainingSAE:
        sae = GatedTrainingSAE(GatedTrainingSAEConfig(d_in=2, d_sae=3))
        _set(
            sae,
            W_enc=W_ENC,
            W_dec=W_DEC,
            b_dec=B_DEC,
            b_gate=torch.tensor([0.0, -1.0, 0.5]),
            r_mag=torch.tensor([0.0, math.log(2.0), 0.0]),
            b_mag=torch.tensor([0.1, 0.0, -2.0]),
        )
        return sae

    def test_latents(self) -> None:
        out = self._sae().training_forward_pass(_step({"l1": 0.1}))
        # pi = [[1,1,1],[0,2,0]]; gate_pre = [[1,0,1.5],[0,1,.5]]; mag_pre = [[1.1,2,-1],[.1,4,-2]]
        torch.testing.assert_close(out.feature_acts, torch.tensor([[1.1, 0.0, 0.0], [0.0, 4.0, 0.0]]))
        torch.testing.assert_close(out.hidden_pre, torch.tensor([[1.1, 2.0, -1.0], [0.1, 4.0, -2.0]]))

    def test_losses(self) -> None:
        out = self._sae().training_forward_pass(_step({"l1": 0.1}))
        # x_hat = [[1.6, 0], [.5, 8]] -> SSE 1.01 and 36
        assert out.losses["mse_loss"].item() == pytest.approx(18.505)
        # ReLU(gate_pre) * norms: 1 + 4.5 = 5.5 and 2 + 1.5 = 3.5 -> mean 4.5
        assert out.losses["l1_loss"].item() == pytest.approx(0.45)
        # gate reconstruction [[6, 0], [2, 2]] -> SSE 21.25 and 2.25
        assert out.losses["auxiliary_reconstruction_loss"].item() == pytest.approx(11.75)
        assert out.loss.item() == pytest.approx(18.505 + 0.45 + 11.75)

    def test_aux_loss_trains_decoder_and_bias(self) -> None:
        sae = self._sae()
        sae.training_forward_pass(_step({"l1": 0.1})).losses["auxiliary_reconstruction_loss"].backward()
        assert sae.W_dec.grad.abs().sum() > 0 and sae.b_dec.grad.abs().sum() > 0
        assert sae.r_mag.grad is None  # the gate path does not use the magnitudes

    def test_calculate_aux_loss_matches_training_pass(self) -> None:
        sae = self._sae()
        step = _step({"l1": 0.1})
        out = sae.training_forward_pass(step)
        again = sae.calculate_aux_loss(step, out.feature_acts, out.hidden_pre, out.sae_out)
        for name, value in again.items():
            torch.testing.assert_close(value, out.losses[name])


class TestJumpReLUStraightThrough:
    H = torch.tensor([[0.48, 0.52, 1.0], [0.51, 0.2, 0.45]])
    THETA = torch.tensor([0.5, 0.5, 0.5])

    def test_jumprelu_forward_backward(self) -> None:
        h = self.H.clone().requires_grad_()
        theta = self.THETA.clone().requires_grad_()
        z = JumpReLUFunction.apply(h, theta, 0.05)
        torch.testing.assert_close(z, torch.tensor([[0.0, 0.52, 1.0], [0.51, 0.0, 0.0]]))
        z.sum().backward()
        torch.testing.assert_close(h.grad, torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
        # (h - t)/eps = [[-.4, .4, 10], [.2, -6, -1]] -> kernel [[1,1,0],[1,0,0]]; -(t/eps) = -10
        torch.testing.assert_close(theta.grad, torch.tensor([-20.0, -10.0, 0.0]))

    def test_step_forward_backward(self) -> None:
        h = self.H.clone().requires_grad_()
        theta = self.THETA.clone().requires_grad_()
        s = StepFunction.apply(h, theta, 0.05)
        torch.testing.assert_close(s, torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
        (s * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
        assert h.grad is None  # no gradient to the pre-activations
        # -(1/eps) = -20, weighted by the upstream gradient of each column
        torch.testing.assert_close(theta.grad, torch.tensor([-40.0, -40.0, 0.0]))

    def test_ste_to_input_sends_the_estimator_to_the_pre_activations(self) -> None:
        h = self.H.clone().requires_grad_()
        theta = self.THETA.clone().requires_grad_()
        JumpReLUFunction.apply(h, theta, 0.05, True).sum().backward()
        # exact part [h > t] plus +(t/eps) K = +10 where the kernel hits ([[1,1,0],[1,0,0]])
        torch.testing.assert_close(h.grad, torch.tensor([[10.0, 11.0, 1.0], [11.0, 0.0, 0.0]]))
        torch.testing.assert_close(theta.grad, torch.tensor([-20.0, -10.0, 0.0]))
        h2 = self.H.clone().requires_grad_()
        theta2 = self.THETA.clone().requires_grad_()
        StepFunction.apply(h2, theta2, 0.05, True).sum().backward()
        torch.testing.assert_close(h2.grad, torch.tensor([[20.0, 20.0, 0.0], [20.0, 0.0, 0.0]]))
        torch.testing.assert_close(theta2.grad, -h2.grad.sum(0))


class TestJumpReLUSAE:
    def _sae(self, **cfg) -> JumpReLUTrainingSAE:
        sae = JumpReLUTrainingSAE(JumpReLUTrainingSAEConfig(d_in=2, d_sae=3, jumprelu_bandwidth=0.5, **cfg))
        _set(
            sae,
            W_enc=W_ENC,
            W_dec=W_DEC,
            b_dec=B_DEC,
            b_enc=torch.tensor([0.0, -0.5, 0.0]),
            threshold=torch.tensor([0.9, 0.4, 1.2]),
        )
        return sae  # h = [[1, .5, 1], [0, 1.5, 0]]

    def test_latents_and_step_l0(self) -> None:
        sae = self._sae()
        out = sae.training_forward_pass(_step({"l0": 0.5}))
        torch.testing.assert_close(out.feature_acts, torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.5, 0.0]]))
        assert out.losses["l0_loss"].item() == pytest.approx(0.5 * (2 + 1) / 2)
        assert "pre_act_loss" not in out.losses

    def test_step_l0_gradient_reaches_the_threshold_only(self) -> None:
        sae = self._sae()
        sae.training_forward_pass(_step({"l0": 1.0})).losses["l0_loss"].backward()
        assert sae.W_enc.grad is None or sae.W_enc.grad.abs().sum() == 0
        # (h - t)/eps: col0 [.2, -1.8], col1 [.2, 2.2], col2 [-.4, -2.4] -> one hit each
        # d loss/d t = -(1/eps)/B per hit = -(1/0.5)/2 = -1 (the threshold is learned directly)
        torch.testing.assert_close(sae.threshold.grad, -torch.ones(3))

    def test_step_l0_gradient_reaches_the_encoder_with_ste_to_input(self) -> None:
        sae = self._sae(jumprelu_ste_to_input=True)
        out = sae.training_forward_pass(_step({"l0": 1.0}))
        out.hidden_pre.retain_grad()
        out.losses["l0_loss"].backward()
        # the kernel hits (0,0), (0,1), (0,2): each gets +(1/eps)/B = +1, the opposite of the threshold's
        torch.testing.assert_close(out.hidden_pre.grad, torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
        torch.testing.assert_close(sae.threshold.grad, -torch.ones(3))

    def test_quadratic_loss_pulls_l0_to_the_target(self) -> None:
        sae = self._sae(jumprelu_sparsity_loss_mode="quadratic", target_l0=1.0)
        out = sae.training_forward_pass(_step({"l0": 0.5}))
        # L0 per row [2, 1]: 2 / 1 * (L0 - 1)^2 = [2, 0]; mean 1, times the coefficient 0.5
        assert out.losses["l0_loss"].item() == pytest.approx(0.5)
        out.losses["l0_loss"].backward()
        # d/dL0 of row 0 = 0.5 * 2 * 2 * (2 - 1) / B = 1, times -(1/eps) = -2 per kernel hit of row 0
        torch.testing.assert_close(sae.threshold.grad, torch.tensor([-2.0, -2.0, -2.0]))

    def test_training_pass_projects_negative_thresholds_to_zero(self) -> None:
        sae = self._sae()
        with torch.no_grad():
            sae.threshold.copy_(torch.tensor([-0.5, 0.4, -1.0]))
        out = sae.training_forward_pass(_step({"l0": 1.0}))
        torch.testing.assert_close(sae.threshold.detach(), torch.tensor([0.0, 0.4, 0.0]))
        # h = [[1, .5, 1], [0, 1.5, 0]]: with thresholds 0 nothing negative passes, and 0 itself does not
        torch.testing.assert_close(out.feature_acts, torch.tensor([[1.0, 0.5, 1.0], [0.0, 1.5, 0.0]]))

    def test_tanh_loss(self) -> None:
        sae = self._sae(jumprelu_sparsity_loss_mode="tanh", jumprelu_tanh_scale=2.0)
        out = sae.training_forward_pass(_step({"l0": 0.5}))
        row0 = math.tanh(2.0 * 1.0 * 1.0) + math.tanh(2.0 * 0.5 * 2.0)
        row1 = math.tanh(2.0 * 1.5 * 2.0)
        assert out.losses["l0_loss"].item() == pytest.approx(0.5 * (row0 + row1) / 2)

    def test_pre_act_loss_on_dead_latents_only(self) -> None:
        sae = self._sae(pre_act_loss_coefficient=0.1)
        dead = torch.tensor([True, False, True])
        out = sae.training_forward_pass(_step({"l0": 1.0}, dead))
        # ReLU(t - h) * norm, dead columns 0 and 2: row0 0 + .2*3; row1 .9*1 + 1.2*3
        expected = 0.1 * ((0.2 * 3) + (0.9 + 1.2 * 3)) / 2
        assert out.losses["pre_act_loss"].item() == pytest.approx(expected)
        no_dead = sae.training_forward_pass(_step({"l0": 1.0}, torch.zeros(3, dtype=torch.bool)))
        assert no_dead.losses["pre_act_loss"].item() == 0.0
        assert sae.training_forward_pass(_step({"l0": 1.0}, None)).losses["pre_act_loss"].item() == 0.0

    def test_threshold_is_a_float32_parameter_at_its_initial_value(self) -> None:
        sae = JumpReLUTrainingSAE(JumpReLUTrainingSAEConfig(d_in=2, d_sae=3, jumprelu_init_threshold=0.02))
        assert isinstance(sae.threshold, torch.nn.Parameter)
        torch.testing.assert_close(sae.threshold.detach(), torch.full((3,), 0.02))
        assert sae.get_coefficients()["l0"].value == 1.0
        half = JumpReLUTrainingSAE(JumpReLUTrainingSAEConfig(d_in=2, d_sae=3, dtype="bfloat16"))
        assert half.W_enc.dtype == torch.bfloat16 and half.threshold.dtype == torch.float32
        assert half.to(torch.bfloat16).threshold.dtype == torch.float32
        assert half.to(torch.float64).threshold.dtype == torch.float32

    def test_old_log_threshold_checkpoints_load_as_their_exponential(self) -> None:
        sae = self._sae()
        state = {k: v.detach().clone() for k, v in sae.state_dict().items()}
        state["log_threshold"] = torch.log(state.pop("threshold"))
        fresh = JumpReLUTrainingSAE(sae.cfg)
        fresh.load_saved_state(state)
        torch.testing.assert_close(fresh.threshold.detach(), torch.tensor([0.9, 0.4, 1.2]))
