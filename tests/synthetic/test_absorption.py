"""compute_feature_absorption: constructed SAEs with known answers, a dense reference,
batching, input forms and errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from synthetic_model_helpers import iter_parent_child, small_config
from torch import nn

from synthsae.synthetic import FeatureAbsorptionResult, compute_feature_absorption
from synthsae.synthetic.activation_generator import ActivationGenerator
from synthsae.synthetic.feature_dictionary import FeatureDictionary
from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
from synthsae.synthetic.hierarchy.modifier import hierarchy_modifier
from synthsae.synthetic.hierarchy.node import HierarchyNode as N
from synthsae.synthetic.sparse_batch import SparseBatch
from synthsae.synthetic.synthetic_model import SyntheticModel

NUM_FEATURES = 8
COIN = 6  # a free feature firing with probability 0.5, used as a fair coin


def _orthonormal_dict(num_features: int = NUM_FEATURES, hidden_dim: int = NUM_FEATURES) -> FeatureDictionary:
    fd = FeatureDictionary(num_features, hidden_dim, initializer=None, seed=0)
    q, _ = torch.linalg.qr(torch.randn(hidden_dim, hidden_dim, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        fd.feature_vectors.copy_(q[:num_features])
    return fd


def _hierarchy() -> Hierarchy:
    """Pairs (0, 1), (2, 3), (2, 4); 5, 6, 7 are free."""
    roots = [N(0, [N(1)]), N(2, [N(3), N(4)])]
    return Hierarchy(roots, hierarchy_modifier(roots))


def _generator(hierarchy: Hierarchy, seed: int = 0) -> ActivationGenerator:
    probs = torch.tensor([0.5, 0.5, 0.4, 0.5, 0.3, 0.2, 0.5, 0.2])
    return ActivationGenerator(
        NUM_FEATURES, probs, std_firing_magnitudes=0.2, modify_activations=hierarchy.modifier, seed=seed
    )


class HandSAE(nn.Module):
    """Reads the true activations ``a = x V^T`` (exact for an orthonormal, bias-free
    dictionary ``V``, up to round-off), fires ``z = rule(a)`` and decodes with ``W_dec``."""

    def __init__(
        self,
        feature_vectors: torch.Tensor,
        w_dec: torch.Tensor | None = None,
        rule: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("V", feature_vectors.detach().clone())
        self.W_dec = nn.Parameter(self.V.clone() if w_dec is None else w_dec.clone())
        self.rule = rule

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        a = x @ self.V.T
        a = torch.where(a > 1e-4, a, torch.zeros_like(a))  # drop round-off from the projection
        return self.rule(a) if self.rule is not None else a

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec


def _absorbing_dec(v: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    """Decoder equal to the features except latent 1, which writes ``sign * (v0 + v1)/sqrt(2)``."""
    w = v.clone()
    w[1] = sign * (v[0] + v[1]) / math.sqrt(2)
    return w


def _silence_parent(when: Callable[[torch.Tensor], torch.Tensor], child_sign: float = 1.0):
    def rule(a: torch.Tensor) -> torch.Tensor:
        z = a.clone()
        z[:, 0] = torch.where(when(a), torch.zeros_like(a[:, 0]), a[:, 0])
        z[:, 1] = child_sign * a[:, 1]
        return z

    return rule


def _run(sae: nn.Module, **kwargs) -> FeatureAbsorptionResult:
    h = _hierarchy()
    fd = _orthonormal_dict()
    kwargs.setdefault("num_samples", 4000)
    return compute_feature_absorption(sae, fd, _generator(h), h, **kwargs)


def _v() -> torch.Tensor:
    return _orthonormal_dict().feature_vectors.detach()


# ------------------------------------------------------------ known answers
def test_exact_sae_has_no_absorption() -> None:
    r = _run(HandSAE(_v()))
    assert r.pair_parent.tolist() == [0, 2, 2] and r.pair_child.tolist() == [1, 3, 4]
    assert r.parent_feature.tolist() == [0, 2] and r.parent_latent.tolist() == [0, 2]
    assert r.parent_latent_cos.tolist() == pytest.approx([1.0, 1.0])
    assert r.num_pairs == r.num_pairs_evaluated == 3 and r.num_samples == 4000
    assert r.absorption_rate == 0.0 and r.pair_absorbed.sum() == 0
    assert r.parent_recall_child_active == 1.0 and r.parent_recall_parent_only == 1.0
    assert torch.equal(r.pair_parent_fired, r.pair_child_active)
    assert (r.pair_child_active > 250).all() and (r.parent_only > 250).all()


def test_fully_absorbing_pair() -> None:
    v = _v()
    r = _run(HandSAE(v, _absorbing_dec(v), _silence_parent(lambda a: a[:, 1] > 0)))
    assert r.pair_absorption_rates().tolist() == [1.0, 0.0, 0.0]
    assert r.absorption_rate == pytest.approx(1 / 3)
    assert r.parent_absorption_rates().tolist() == [1.0, 0.0]
    assert r.pair_parent_fired[0] == 0
    # parent 0 is silent on every child-active sample and fires on every parent-only one
    assert r.parent_recall_gap().tolist() == [1.0, 0.0]
    assert r.parent_recall_child_active == pytest.approx(0.5)
    assert r.parent_recall_parent_only == 1.0
    # 1/sqrt(2) ~ 0.707 is below a 0.8 threshold: then nothing carries the parent
    assert _run(HandSAE(v, _absorbing_dec(v), _silence_parent(lambda a: a[:, 1] > 0)),
                cos_threshold=0.8).absorption_rate == 0.0


def test_silent_parent_without_carrier_is_a_miss_not_absorption() -> None:
    r = _run(HandSAE(_v(), None, _silence_parent(lambda a: a[:, 1] > 0)))
    assert r.pair_absorbed.sum() == 0 and r.pair_parent_fired[0] == 0
    assert r.parent_recall_gap()[0] == 1.0


def test_carrier_sign_is_that_of_its_contribution() -> None:
    v = _v()
    # negative activation on a -(v0 + v1) decoder writes +v0: absorbed
    neg = _run(HandSAE(v, _absorbing_dec(v, -1.0), _silence_parent(lambda a: a[:, 1] > 0, -1.0)))
    assert neg.pair_absorption_rates()[0] == 1.0
    # positive activation on the same decoder writes -v0: not carried
    anti = _run(HandSAE(v, _absorbing_dec(v, -1.0), _silence_parent(lambda a: a[:, 1] > 0)))
    assert anti.pair_absorbed.sum() == 0


def test_partial_absorption_on_half_the_samples() -> None:
    v = _v()
    rule = _silence_parent(lambda a: (a[:, 1] > 0) & (a[:, COIN] > 0))
    r = _run(HandSAE(v, _absorbing_dec(v), rule), num_samples=8000)
    n = int(r.pair_child_active[0])
    # about 8000 * 0.5 * 0.5 = 2000 child-active samples and an independent p = 0.5 coin:
    # the binomial std is sqrt(0.25 / 2000) ~ 0.011, so 0.05 is a ~4.5 sigma tolerance
    assert n > 1500
    assert float(r.pair_absorption_rates()[0]) == pytest.approx(0.5, abs=0.05)
    assert int(r.pair_absorbed[0]) + int(r.pair_parent_fired[0]) == n


# ------------------------------------------------------------ dense reference
class RandomSAE(nn.Module):
    def __init__(self, d_in: int, d_sae: int, threshold: float = 0.3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.W_dec = nn.Parameter(torch.randn(d_sae, d_in, generator=g))
        self.W_enc = nn.Parameter(torch.randn(d_in, d_sae, generator=g) / d_in**0.5)
        self.threshold = threshold

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = x @ self.W_enc
        return torch.where(pre.abs() > self.threshold, pre, torch.zeros_like(pre))  # signed latents

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec


class ReplayGenerator:
    """Serves consecutive rows of a fixed dense pool."""

    def __init__(self, pool: torch.Tensor, sparse: bool = True) -> None:
        self.pool, self.pos = pool, 0
        if sparse:
            self.sample_sparse = lambda b: SparseBatch.from_dense(self.sample(b))

    def sample(self, batch_size: int) -> torch.Tensor:
        rows = torch.arange(self.pos, self.pos + batch_size) % self.pool.shape[0]
        self.pos += batch_size
        return self.pool[rows]


def _reference(sae: RandomSAE, fd: FeatureDictionary, pool: torch.Tensor, pairs: list[tuple[int, int]], tau: float):
    """Loop-over-pairs dense computation of the per-pair counts."""
    z = sae.encode(fd(pool))
    dec = sae.W_dec.detach()
    out = []
    for p, c in pairs:
        vp = fd.feature_vectors.detach()[p]
        cos = (dec @ vp) / (dec.norm(dim=1) * vp.norm())
        latent = int(cos.abs().argmax())
        mask = (pool[:, p] > 0) & (pool[:, c] > 0)
        fired = z[:, latent] != 0
        carried = (torch.sign(z) * cos >= tau).any(dim=1)
        out.append((int(mask.sum()), int((mask & fired).sum()), int((mask & ~fired & carried).sum())))
    return out


def test_matches_dense_reference_and_batching() -> None:
    roots = [N(0, [N(None, [N(1), N(2)], mutually_exclusive_children=True), N(3, [N(4)])]), N(5, [N(6)])]
    h = Hierarchy(roots, hierarchy_modifier(roots))
    probs = torch.tensor([0.6, 0.6, 0.6, 0.5, 0.5, 0.3, 0.7, 0.2, 0.2, 0.2])
    gen = ActivationGenerator(10, probs, std_firing_magnitudes=0.3, modify_activations=h.modifier, seed=4)
    pool = gen.sample(3000)
    fd = FeatureDictionary(10, 6, seed=2)
    sae = RandomSAE(6, 12)
    pairs = [(0, 1), (0, 2), (0, 3), (3, 4), (5, 6)]
    ref = _reference(sae, fd, pool, pairs, tau=0.25)
    results = [
        compute_feature_absorption(sae, fd, ReplayGenerator(pool, sparse), hierarchy, num_samples=3000,
                                   batch_size=bs, cos_threshold=0.25)
        for sparse, hierarchy, bs in [
            (True, h, None), (True, roots, 701), (False, {0: [1, 2, 3], 3: [4], 5: [6]}, 1000),
        ]
    ]
    first = results[0]
    assert list(zip(first.pair_parent.tolist(), first.pair_child.tolist())) == pairs
    got = list(zip(first.pair_child_active.tolist(), first.pair_parent_fired.tolist(), first.pair_absorbed.tolist()))
    assert got == ref
    assert sum(a for *_, a in ref) > 0 and sum(a for a, *_ in ref) > 0  # the test exercises absorption
    for other in results[1:]:
        assert other.to_dict() == first.to_dict()


# ------------------------------------------------------------ models and output
def test_synthetic_model_convenience_and_serialisation() -> None:
    model = SyntheticModel(small_config(), sampling_seed=0)
    sae = RandomSAE(16, 32)
    sae.train()
    r = compute_feature_absorption(sae, model, num_samples=2000, batch_size=512)
    assert sae.training  # mode restored
    pairs = sorted(iter_parent_child(model.hierarchy.roots))
    assert list(zip(r.pair_parent.tolist(), r.pair_child.tolist())) == pairs
    assert 0 < r.num_pairs_evaluated <= r.num_pairs == len(pairs)
    log = r.to_log_dict("eval/absorption/")
    assert set(log) == {f"eval/absorption/{k}" for k in (
        "absorption_rate", "parent_recall_child_active", "parent_recall_parent_only",
        "num_pairs", "num_pairs_evaluated", "num_samples", "cos_threshold")}
    assert 0.0 <= log["eval/absorption/absorption_rate"] <= 1.0
    back = FeatureAbsorptionResult.from_dict(r.to_dict())
    assert back.to_dict() == r.to_dict()
    assert (r.pair_absorbed <= r.pair_child_active - r.pair_parent_fired).all()


def test_undefined_means_are_nan() -> None:
    # feature 1 never fires, so pair (0, 1) has no child-active sample
    roots = [N(0, [N(1)])]
    gen = ActivationGenerator(8, torch.tensor([0.5, 1e-9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]), seed=0,
                              modify_activations=hierarchy_modifier(roots))
    r = compute_feature_absorption(HandSAE(_v()), _orthonormal_dict(), gen, roots, num_samples=500)
    assert r.num_pairs_evaluated == 0
    assert math.isnan(r.absorption_rate) and math.isnan(r.parent_recall_child_active)
    assert r.parent_recall_parent_only == 1.0


# ------------------------------------------------------------ errors
def test_errors() -> None:
    fd, h = _orthonormal_dict(), _hierarchy()
    gen, sae = _generator(h), HandSAE(_v())
    with pytest.raises(ValueError, match="no hierarchy"):
        compute_feature_absorption(sae, SyntheticModel(small_config(hierarchy=None)))
    with pytest.raises(ValueError, match="activation_generator is required"):
        compute_feature_absorption(sae, fd, hierarchy=h)
    with pytest.raises(ValueError, match="hierarchy is required"):
        compute_feature_absorption(sae, fd, gen)
    with pytest.raises(ValueError, match="d_in"):
        compute_feature_absorption(HandSAE(torch.eye(4)), fd, gen, h)
    with pytest.raises(ValueError, match="num_samples"):
        compute_feature_absorption(sae, fd, gen, h, num_samples=0)
    with pytest.raises(ValueError, match="batch_size"):
        compute_feature_absorption(sae, fd, gen, h, batch_size=0)
    for bad in (0.0, 1.5, True, "0.3"):
        with pytest.raises(ValueError, match="cos_threshold"):
            compute_feature_absorption(sae, fd, gen, h, cos_threshold=bad)
    with pytest.raises(ValueError, match="no parent/child"):
        compute_feature_absorption(sae, fd, gen, [N(0), N(1)])
    with pytest.raises(ValueError, match="feature index 9"):
        compute_feature_absorption(sae, fd, gen, {0: [9]})
    with pytest.raises(ValueError, match="two parents"):
        compute_feature_absorption(sae, fd, gen, {0: [2], 1: [2]})
    with pytest.raises(ValueError, match="own child"):
        compute_feature_absorption(sae, fd, gen, {0: [0]})
    with pytest.raises(ValueError, match="lists of child"):
        compute_feature_absorption(sae, fd, gen, {0: {1: {}}})
    with pytest.raises(TypeError, match="hierarchy must be"):
        compute_feature_absorption(sae, fd, gen, 3)
    with pytest.raises(TypeError, match="encode"):
        compute_feature_absorption(nn.Linear(8, 8), fd, gen, h)
    other = ActivationGenerator(9, 0.5, seed=0)
    with pytest.raises(ValueError, match="9 features"):
        compute_feature_absorption(sae, fd, other, h, num_samples=10)
