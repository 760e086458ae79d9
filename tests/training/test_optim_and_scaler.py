"""The low-overhead Adam and gradient clipping, and the activation scaler."""

import math

import pytest
import torch

from synthsae.training.activation_scaler import ActivationScaler
from synthsae.training.optim import Adam, clip_grad_norm_, clip_scale


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*s, generator=g)) for s in ((5, 3), (3,), (4, 5))]


def _grads(params, step):
    g = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


def _run(opt_ref, ref_params, ours, our_params, steps, reload_at=None):
    for step in range(steps):
        lr = 1e-2 * (step + 1)
        _grads(ref_params, step)
        _grads(our_params, step)
        opt_ref.param_groups[0]["lr"] = lr
        opt_ref.step()
        ours.step(lr)
        if step == reload_at:  # a state round trip mid-way changes nothing
            fresh = Adam(our_params, 0.5, (0.8, 0.99))
            fresh.load_state_dict(ours.state_dict())
            ours = fresh
    return ours


@pytest.mark.parametrize("fused", [True, False])
def test_adam_matches_torch_adam(fused):
    ref_params, our_params = _params(0), _params(0)
    ours = Adam(our_params, 1e-2, (0.8, 0.99))
    if not fused:
        ours.fused = False  # the foreach fallback for devices without the fused kernel
    elif not ours.fused:
        pytest.skip("no fused Adam kernel on this torch/device")
    kw = {"fused": True} if fused else {"foreach": True}
    ref = torch.optim.Adam(ref_params, lr=1e-2, betas=(0.8, 0.99), **kw)
    ours = _run(ref, ref_params, ours, our_params, 6, reload_at=2)
    for a, b in zip(ref_params, our_params):
        assert torch.equal(a, b) if fused else torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    # the state dict has torch's layout: torch's Adam can continue from ours
    state = ours.state_dict()
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"} and float(state["state"][0]["step"]) == 6
    torch_opt = torch.optim.Adam(our_params, lr=1e-2, betas=(0.8, 0.99), **kw)
    torch_opt.load_state_dict(state)
    back = Adam(our_params, 1e-2, (0.8, 0.99))
    back.load_state_dict(torch_opt.state_dict())
    assert float(back.state[our_params[0]]["step"]) == 6


def test_adam_skips_parameters_without_grad_and_checks_state_size():
    params = _params(1)
    opt = Adam(params, 1e-2)
    _grads(params, 0)
    opt.step()
    before = params[1].detach().clone()
    _grads(params, 1)
    params[1].grad = None
    opt.step()
    assert torch.equal(params[1], before)  # skipped, like torch's Adam
    assert float(opt.state[params[1]]["step"]) == 1 and float(opt.state[params[0]]["step"]) == 2
    with pytest.raises(ValueError, match="3 parameters"):
        Adam(params[:2], 1e-2).load_state_dict(opt.state_dict())


def test_clip_matches_torch():
    a, b = _params(2), _params(2)
    for ps in (a, b):
        _grads(ps, 0)
        for p in ps:
            p.grad.mul_(3.0)
    total = clip_grad_norm_(a, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(b, 1.0)
    assert float(total) == pytest.approx(float(expected))
    for x, y in zip(a, b):
        assert torch.allclose(x.grad, y.grad, rtol=1e-6)
    small = _params(3)
    _grads(small, 0)
    for p in small:
        p.grad.mul_(1e-3)
    kept = [p.grad.clone() for p in small]
    clip_grad_norm_(small, 1.0)
    assert all(torch.equal(p.grad, k) for p, k in zip(small, kept))  # below the limit: untouched


def test_activation_scaler(tmp_path):
    rows = torch.randn(4, 256, 9)
    rows = rows / rows.norm(dim=-1, keepdim=True) * 6.0  # every row has norm 6
    scaler = ActivationScaler()
    assert torch.equal(scaler(rows[0]), rows[0])  # identity before estimation
    factor = scaler.estimate_scaling_factor(9, iter(rows), n_batches=3)
    assert factor == pytest.approx(3.0 / 6.0)
    x = rows[3]
    assert torch.allclose(scaler.unscale(scaler.scale(x)), x)
    assert scaler(x).norm(dim=-1).mean().item() == pytest.approx(math.sqrt(9), rel=1e-5)
    scaler.save(tmp_path / "activation_scaler.json")
    assert ActivationScaler().load(tmp_path / "activation_scaler.json").scaling_factor == factor
    with pytest.raises(FileNotFoundError, match="missing.json"):
        ActivationScaler().load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="mean norm"):
        ActivationScaler().estimate_scaling_factor(9, iter(torch.zeros(2, 3, 9)), n_batches=2)


@pytest.mark.parametrize("fused", [True, False])
def test_clip_scale_inside_adam_equals_clip_then_adam(fused):
    ref_params, our_params = _params(4), _params(4)
    ref = torch.optim.Adam(ref_params, lr=1e-2, fused=True) if fused else torch.optim.Adam(ref_params, lr=1e-2)
    ours = Adam(our_params, 1e-2)
    ours.fused = ours.fused and fused
    for step in range(4):
        _grads(ref_params, step)
        _grads(our_params, step)
        for p, q in zip(ref_params, our_params):  # large gradients: clipping is active
            p.grad.mul_(50.0)
            q.grad.mul_(50.0)
        torch.nn.utils.clip_grad_norm_(ref_params, 1.0)
        ref.step()
        scale = clip_scale(our_params, 1.0)
        assert float(scale) > 1.0
        ours.step(grad_scale=scale)
    for a, b in zip(ref_params, our_params):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    small = _params(5)
    for p in small:
        p.grad = torch.full_like(p, 1e-4)
    assert float(clip_scale(small, 1.0)) == 1.0  # below the limit: no scaling
    assert clip_scale([torch.nn.Parameter(torch.zeros(2))], 1.0) is None
