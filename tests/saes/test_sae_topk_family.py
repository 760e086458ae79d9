"""TopK, BatchTopK and Matryoshka SAEs against straightforward dense re-computations."""

from __future__ import annotations

import warnings

import pytest
import torch
from sae_helpers import make_sae

from synthsae.saes.base import SAE, TrainStepInput
from synthsae.saes.jumprelu import JumpReLUSAE
from synthsae.saes.sparse_acts import batch_topk, row_topk, topk_aux_loss

D_IN, D_SAE = 8, 24


def _randomise(sae: torch.nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in sae.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))


def _inputs(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(seed))


def _dense_aux(h, dead, residual, W_dec_eff, k_aux):
    """The TopK auxiliary loss written out densely (reference formula)."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return residual.new_zeros(())
    k = min(k_aux, n_dead)
    values, indices = torch.where(dead, h, torch.tensor(-torch.inf)).topk(k, dim=-1)
    acts = torch.zeros_like(h).scatter(-1, indices, values)
    recon = acts @ W_dec_eff
    return min(n_dead / k_aux, 1.0) * (recon - residual).pow(2).sum(-1).mean()


def _dense_reference(sae, x, dead, mode):
    """Loss terms computed densely from the SAE's parameters (mode: topk/batchtopk)."""
    cfg = sae.cfg
    norms = sae.W_dec.norm(dim=-1)
    h = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    if cfg.rescale_acts_by_decoder_norm:
        h = h * norms
    if mode == "topk":
        values, indices = h.topk(cfg.k, dim=-1)
        z = torch.zeros_like(h).scatter(-1, indices, values.relu())
    else:
        flat = h.relu().flatten()
        values, indices = flat.topk(int(cfg.k * h.shape[0]))
        z = torch.zeros_like(flat).scatter(0, indices, values).view_as(h)
    W_dec_eff = sae.W_dec / norms[:, None] if cfg.rescale_acts_by_decoder_norm else sae.W_dec
    out = z @ W_dec_eff + sae.b_dec
    mse = (out - x).pow(2).sum(-1).mean()
    aux = torch.zeros(())
    if dead is not None:
        aux = cfg.aux_loss_coefficient * _dense_aux(h, dead, (x - out).detach(), W_dec_eff, D_IN // 2)
    return {"z": z, "out": out, "mse": mse, "aux": aux, "W_dec_eff": W_dec_eff, "h": h}


def _grads(sae, loss) -> dict[str, torch.Tensor]:
    params = dict(sae.named_parameters())
    values = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {name: torch.zeros_like(p) if g is None else g for (name, p), g in zip(params.items(), values)}


DEAD = torch.tensor([i % 3 == 0 for i in range(D_SAE)])


@pytest.mark.parametrize("rescale", [True, False])
@pytest.mark.parametrize("dead", [None, DEAD], ids=["no-dead", "dead"])
@pytest.mark.parametrize("name, mode", [("topk", "topk"), ("batchtopk", "batchtopk")])
def test_training_pass_matches_dense_reference(name, mode, rescale, dead) -> None:
    sae = make_sae(name, d_in=D_IN, d_sae=D_SAE, rescale_acts_by_decoder_norm=rescale, aux_loss_coefficient=0.5)
    _randomise(sae)
    x = _inputs()
    out = sae.training_forward_pass(TrainStepInput(x, {}, dead, 0))
    ref = _dense_reference(sae, x, dead, mode)
    torch.testing.assert_close(out.feature_acts, ref["z"])
    torch.testing.assert_close(out.sae_out, ref["out"])
    torch.testing.assert_close(out.losses["mse_loss"], ref["mse"])
    torch.testing.assert_close(out.losses["auxiliary_reconstruction_loss"], ref["aux"])
    if dead is not None:
        assert ref["aux"] > 0
    mine, theirs = _grads(sae, out.loss), _grads(sae, ref["mse"] + ref["aux"])
    for param in mine:
        torch.testing.assert_close(mine[param], theirs[param], atol=1e-5, rtol=1e-4)


def test_aux_loss_by_hand() -> None:
    h = torch.tensor([[3.0, -1.0, 2.0, 0.5]])
    residual = torch.ones(1, 4)
    W_dec = 2.0 * torch.eye(4)
    half = torch.full((4,), 0.5)  # 1/||W_dec_j||
    for read in (True, False):
        # dead 1, 2, 3 -> top 2 of [-1, 2, .5] = latents 2 and 3; scale min(3/2, 1) = 1
        dead = torch.tensor([False, True, True, True])
        loss = topk_aux_loss(h, dead, residual, W_dec, half, k_aux=2, read_dead_count=read)
        assert loss.item() == pytest.approx(1 + 1 + 1 + 0.25)
        # only latent 1 dead: its negative value is used; scale 1/2
        dead = torch.tensor([False, True, False, False])
        loss = topk_aux_loss(h, dead, residual, W_dec, half, k_aux=2, read_dead_count=read)
        assert loss.item() == pytest.approx(0.5 * (1 + 4 + 1 + 1))
        none_dead = torch.zeros(4, dtype=torch.bool)
        assert topk_aux_loss(h, none_dead, residual, W_dec, half, 2, read_dead_count=read).item() == 0.0
    assert topk_aux_loss(h, None, residual, W_dec, half, 2).item() == 0.0


def test_aux_loss_device_path_equals_cpu_path() -> None:
    generator = torch.Generator().manual_seed(3)
    h = torch.randn(5, D_SAE, generator=generator, requires_grad=True)
    residual = torch.randn(5, D_IN, generator=generator)
    W_dec = torch.randn(D_SAE, D_IN, generator=generator)
    for n_dead in (1, 3, 10, D_SAE):
        dead = torch.zeros(D_SAE, dtype=torch.bool)
        dead[torch.randperm(D_SAE, generator=generator)[:n_dead]] = True
        exact = topk_aux_loss(h, dead, residual, W_dec, None, D_IN // 2, read_dead_count=True)
        masked = topk_aux_loss(h, dead, residual, W_dec, None, D_IN // 2, read_dead_count=False)
        torch.testing.assert_close(masked, exact)
        torch.testing.assert_close(torch.autograd.grad(masked, h)[0], torch.autograd.grad(exact, h)[0])


def test_row_topk_keeps_at_most_k_and_drops_negatives() -> None:
    h = torch.tensor([[5.0, -1.0, -2.0, 3.0], [-1.0, -2.0, -3.0, 0.5]])
    dense = row_topk(h, 2).to_dense()
    torch.testing.assert_close(dense, torch.tensor([[5.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.5]]))


@pytest.mark.parametrize("k, shape", [(2.5, (8,)), (1.0, (2, 4)), (0.75, (8,))])
def test_batchtopk_l0_is_k_per_batch(k: float, shape: tuple[int, ...]) -> None:
    sae = make_sae("batchtopk", d_in=D_IN, d_sae=D_SAE, k=k)
    with torch.no_grad():
        sae.b_enc.fill_(10.0)  # every pre-activation positive
    x = torch.randn(*shape, D_IN)
    out = sae.training_forward_pass(TrainStepInput(x, {}, None, 0))
    assert out.feature_acts.shape == (*shape, D_SAE)
    assert int((out.feature_acts != 0).sum()) == int(k * 8)


def test_batch_topk_helper_orders_rows() -> None:
    h = torch.tensor([[0.1, 4.0, 0.2], [3.0, 0.3, 2.0]])
    acts = batch_topk(h, 1.5)  # keeps the 3 largest: 4, 3, 2
    torch.testing.assert_close(acts.to_dense(), torch.tensor([[0.0, 4.0, 0.0], [3.0, 0.0, 2.0]]))
    assert acts.offsets.tolist() == [0, 1, 3]


def test_threshold_update_formula() -> None:
    sae = make_sae("batchtopk", d_in=D_IN, d_sae=D_SAE, k=3.0, topk_threshold_lr=0.2)
    _randomise(sae)
    assert sae.topk_threshold.dtype == torch.float64 and sae.topk_threshold.item() == 0.0
    expected = 0.0
    for step in range(3):
        out = sae.training_forward_pass(TrainStepInput(_inputs(seed=step), {}, None, step))
        acts = out.feature_acts
        smallest = acts[acts > 0].min().double().item()
        expected = 0.8 * expected + 0.2 * smallest
        assert sae.topk_threshold.item() == pytest.approx(expected, rel=1e-12)
        assert out.metrics["topk_threshold"].item() == pytest.approx(expected, rel=1e-12)


def test_threshold_unchanged_without_positive_activations() -> None:
    sae = make_sae("batchtopk", d_in=D_IN, d_sae=D_SAE, k=3.0)
    with torch.no_grad():
        sae.topk_threshold.fill_(0.7)
        sae.b_enc.fill_(-100.0)
    sae.training_forward_pass(TrainStepInput(_inputs(), {}, None, 0))
    assert sae.topk_threshold.item() == 0.7


def test_threshold_stays_double_when_the_sae_is_cast() -> None:
    sae = make_sae("batchtopk", d_in=D_IN, d_sae=D_SAE).to(torch.float64).to(torch.float32)
    assert sae.topk_threshold.dtype == torch.float64
    assert sae.cfg.dtype == "float32" and "topk_threshold" in sae.state_dict()


@pytest.mark.parametrize("name", ["batchtopk", "matryoshka_batchtopk"])
def test_inference_save_is_jumprelu_with_the_batch_threshold(name: str, tmp_path) -> None:
    sae = make_sae(name, d_in=D_IN, d_sae=D_SAE, k=3.0)
    _randomise(sae)
    x = _inputs(n=10)
    out = sae.training_forward_pass(TrainStepInput(x, {}, None, 0))
    # a threshold between the smallest kept and the largest dropped activation
    ranked = out.hidden_pre.detach().relu().flatten().sort(descending=True).values
    n_kept = int(3.0 * 10)
    with torch.no_grad():
        sae.topk_threshold.fill_(float(ranked[n_kept - 1] + ranked[n_kept]) / 2)
    sae.save_inference_model(tmp_path)
    loaded = SAE.load_from_disk(tmp_path)
    assert isinstance(loaded, JumpReLUSAE)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), out.feature_acts.detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(loaded.decode(out.feature_acts), out.sae_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loaded.threshold, torch.full((D_SAE,), sae.topk_threshold.item()))
    torch.testing.assert_close(loaded.W_dec.norm(dim=-1), torch.ones(D_SAE))


def _matryoshka(widths, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_sae("matryoshka_batchtopk", d_in=D_IN, d_sae=D_SAE, k=3.0, matryoshka_widths=widths, **kwargs)


@pytest.mark.parametrize("dead", [None, DEAD], ids=["no-dead", "dead"])
def test_single_level_matryoshka_equals_batchtopk(dead) -> None:
    plain = make_sae("batchtopk", d_in=D_IN, d_sae=D_SAE, k=3.0, seed=5)
    nested = _matryoshka([D_SAE], seed=5)
    x = _inputs()
    a = plain.training_forward_pass(TrainStepInput(x, {}, dead, 0))
    b = nested.training_forward_pass(TrainStepInput(x, {}, dead, 0))
    assert a.losses.keys() == b.losses.keys()
    torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=0)
    for (name, ga), gb in zip(_grads(plain, a.loss).items(), _grads(nested, b.loss).values()):
        torch.testing.assert_close(ga, gb, rtol=0, atol=0, msg=name)
    assert plain.topk_threshold.item() == nested.topk_threshold.item()


@pytest.mark.parametrize("use_matryoshka_aux", [False, True])
def test_matryoshka_losses_match_dense_reference(use_matryoshka_aux: bool) -> None:
    widths = [4, 10, D_SAE]
    sae = _matryoshka(widths, use_matryoshka_aux_loss=use_matryoshka_aux, aux_loss_coefficient=0.5)
    _randomise(sae)
    x = _inputs()
    out = sae.training_forward_pass(TrainStepInput(x, {}, DEAD, 0))
    ref = _dense_reference(sae, x, DEAD, "batchtopk")
    z, W_eff, h = ref["z"], ref["W_dec_eff"], ref["h"]
    prefixes = [z[:, :w] @ W_eff[:w] + sae.b_dec for w in widths]
    expected = {"mse_loss": ref["mse"]}
    if use_matryoshka_aux:
        aux, low = torch.zeros(()), 0
        for w, prefix in zip(widths, prefixes):
            aux = aux + _dense_aux(h[:, low:w], DEAD[low:w], (x - prefix).detach(), W_eff[low:w], D_IN // 2)
            low = w
        expected["auxiliary_reconstruction_loss"] = 0.5 * aux
    else:
        expected["auxiliary_reconstruction_loss"] = ref["aux"]
    for w, prefix in zip(widths[:-1], prefixes[:-1]):
        expected[f"inner_mse_loss_{w}"] = (prefix - x).pow(2).sum(-1).mean()
    assert list(out.losses) == list(expected)
    for name, value in expected.items():
        torch.testing.assert_close(out.losses[name], value, msg=name)
    total = sum(expected.values())
    torch.testing.assert_close(out.loss, total)
    mine, theirs = _grads(sae, out.loss), _grads(sae, total)
    for name in mine:
        torch.testing.assert_close(mine[name], theirs[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("name, mode", [("topk", "topk"), ("batchtopk", "batchtopk")])
def test_wide_sae_uses_sparse_gradients_exactly(name, mode) -> None:
    # d_sae = 600 with k = 2: under 5% of the pre-activation gradient is non-zero, so the
    # encoder's sparse weight-gradient path runs (without dead latents).
    sae = make_sae(name, d_in=D_IN, d_sae=600, k=2 if mode == "topk" else 2.0)
    _randomise(sae)
    x = _inputs(n=32)
    out = sae.training_forward_pass(TrainStepInput(x, {}, torch.zeros(600, dtype=torch.bool), 0))
    ref = _dense_reference(sae, x, None, mode)
    torch.testing.assert_close(out.loss, ref["mse"])
    mine, theirs = _grads(sae, out.loss), _grads(sae, ref["mse"])
    for param in mine:
        torch.testing.assert_close(mine[param], theirs[param], atol=1e-5, rtol=1e-4, msg=param)


def test_scaling_factor_fold_keeps_the_saved_jumprelu_consistent(tmp_path) -> None:
    sae = make_sae("batchtopk", d_in=D_IN, d_sae=D_SAE, k=3.0, normalize_activations="expected_average_only_in")
    _randomise(sae)
    with torch.no_grad():
        sae.topk_threshold.fill_(0.2)
    s, x = 4.0, _inputs(n=10)
    before = sae.to_inference_sae()
    sae.fold_activation_norm_scaling_factor(s)
    assert sae.topk_threshold.item() == pytest.approx(0.05)
    sae.save_inference_model(tmp_path)
    after = SAE.load_from_disk(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(after.encode(x), before.encode(s * x) / s, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(after(x), before(s * x) / s, atol=1e-5, rtol=1e-5)
