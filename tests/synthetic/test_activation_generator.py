"""ActivationGenerator: rates, magnitudes, modifiers, correlation, formats, seeds, validation.

Rates use a 5-sigma binomial bound ``5 * sqrt(p (1 - p) / n)``.
"""

import math

import pytest
import torch

from synthsae.synthetic import (
    ActivationGenerator,
    HierarchyNode,
    LowRankCorrelationMatrix,
    SparseBatch,
    hierarchy_modifier,
)


def within(rates, probs, n, sigmas=5.0):
    probs = torch.as_tensor(probs, dtype=torch.float64)
    return bool(((rates.double() - probs).abs() <= sigmas * torch.sqrt(probs * (1 - probs) / n) + 1e-12).all())


def test_rates_match_probabilities_and_float_broadcast():
    probs = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.001, 0.3])
    gen = ActivationGenerator(6, probs, seed=0)
    n = 50_000
    acts = gen.sample(n)
    assert acts.shape == (n, 6) and acts.dtype == torch.float32
    assert within((acts > 0).double().mean(0), probs, n)
    gen = ActivationGenerator(5, 0.25, seed=0)
    assert torch.equal(gen.firing_probabilities, torch.full((5,), 0.25))
    assert within((gen.sample(n) > 0).double().mean(0), torch.full((5,), 0.25), n)


def test_defaults_fire_with_magnitude_one():
    acts = ActivationGenerator(3, 0.5, seed=1).sample(1000)
    assert set(acts.unique().tolist()) <= {0.0, 1.0}


def test_magnitude_mean_and_std():
    mean = torch.tensor([2.0, 5.0, 1.0])
    std = torch.tensor([0.0, 1.0, 0.3])
    acts = ActivationGenerator(3, 1.0, std, mean, seed=2).sample(40_000)
    assert torch.allclose(acts.mean(0), mean, atol=5 * 1.0 / 200)
    assert torch.allclose(acts.std(0), std, atol=0.02)


def test_clipped_gaussian_never_negative():
    acts = ActivationGenerator(4, 0.9, std_firing_magnitudes=2.0, mean_firing_magnitudes=0.5, seed=3).sample(20_000)
    assert (acts >= 0).all()
    zero_frac = (acts == 0).double().mean()  # 0.1 not fired + 0.9 * P(N(0.5, 2) <= 0)
    expected = 0.1 + 0.9 * 0.5 * math.erfc(0.25 / math.sqrt(2))
    assert abs(zero_frac - expected) < 0.01


def test_modifiers_empty_single_chained_in_order_and_final_relu():
    calls = []

    def add(x):
        calls.append("add")
        return x + 1.0

    def negate_with_generator(x, generator):
        calls.append("neg")
        assert isinstance(generator, ActivationGenerator)
        return -x

    base = ActivationGenerator(3, 1.0, seed=0, modify_activations=[])
    assert torch.equal(base.sample(4), torch.ones(4, 3))
    single = ActivationGenerator(3, 1.0, seed=0, modify_activations=add)
    assert torch.equal(single.sample(4), torch.full((4, 3), 2.0))
    chained = ActivationGenerator(3, 1.0, seed=0, modify_activations=[add, negate_with_generator])
    out = chained.sample(4)
    assert calls[-2:] == ["add", "neg"]
    assert torch.equal(out, torch.zeros(4, 3))  # -2 everywhere, then the final ReLU
    reverse = ActivationGenerator(3, 1.0, seed=0, modify_activations=[negate_with_generator, add])
    assert torch.equal(reverse.sample(4), torch.zeros(4, 3))  # -1 + 1


def test_custom_modifier_from_the_docs_in_sparse_and_dense_mode():
    def my_modifier(activations: torch.Tensor) -> torch.Tensor:
        result = activations.clone()
        mask = activations[:, 1] > 0
        result[mask, 0] = 0
        return result

    gen = ActivationGenerator(16, torch.full((16,), 0.5), modify_activations=my_modifier, seed=0)
    acts = gen.sample(2000)
    assert not ((acts[:, 0] > 0) & (acts[:, 1] > 0)).any()
    batch = gen.sample_sparse(2000)
    dense = batch.to_dense()
    assert not ((dense[:, 0] > 0) & (dense[:, 1] > 0)).any()


@pytest.mark.parametrize("kind", ["full", "low_rank_tuple", "low_rank_namedtuple"])
def test_correlation_keeps_marginals_and_correlates_in_the_requested_sign(kind):
    probs = torch.tensor([0.3, 0.3, 0.3, 0.1])
    factor = torch.tensor([[0.8, 0.0], [0.8, 0.0], [-0.8, 0.0], [0.0, 0.5]])
    diag = 1 - (factor**2).sum(1)
    corr = {
        "full": factor @ factor.T + torch.diag(diag),
        "low_rank_tuple": (factor, diag),
        "low_rank_namedtuple": LowRankCorrelationMatrix(factor, diag),
    }[kind]
    n = 60_000
    for sparse in (False, True):
        gen = ActivationGenerator(4, probs, correlation_matrix=corr, use_sparse_tensors=sparse, seed=5)
        acts = gen.sample(n)
        on = ((acts.to_dense() if sparse else acts) > 0).double()
        assert within(on.mean(0), probs, n)
        cov = (on[:, :, None] * on[:, None, :]).mean(0) - on.mean(0)[:, None] * on.mean(0)[None, :]
        assert cov[0, 1] > 0.08 and cov[0, 2] < -0.05 and abs(cov[0, 3]) < 0.01


def test_low_rank_and_equivalent_full_matrix_agree():
    g = torch.Generator().manual_seed(0)
    factor = 0.4 * torch.randn(6, 2, generator=g)
    diag = 1 - (factor**2).sum(1)
    probs = torch.linspace(0.05, 0.5, 6)
    n = 60_000
    a = (ActivationGenerator(6, probs, correlation_matrix=(factor, diag), seed=1).sample(n) > 0).double()
    b = (ActivationGenerator(6, probs, correlation_matrix=factor @ factor.T + torch.diag(diag), seed=2).sample(n) > 0).double()
    ca, cb = (a.T @ a) / n, (b.T @ b) / n
    bound = 5 * torch.sqrt(cb * (1 - cb) * 2 / n)
    assert ((ca - cb).abs() <= bound).all()


def test_dense_coo_and_sparse_batch_agree():
    mod = hierarchy_modifier(HierarchyNode(0, [HierarchyNode(1), HierarchyNode(2)], mutually_exclusive_children=True))
    outs = {}
    for name, sparse in (("dense", False), ("coo", True)):
        gen = ActivationGenerator(5, 0.5, std_firing_magnitudes=0.3, modify_activations=mod, use_sparse_tensors=sparse, seed=9)
        outs[name] = gen.sample(300)
    gen = ActivationGenerator(5, 0.5, std_firing_magnitudes=0.3, modify_activations=mod, seed=9)
    batch = gen.sample_sparse(300)
    assert isinstance(batch, SparseBatch) and batch.shape == (300, 5)
    assert outs["coo"].is_sparse
    assert torch.equal(outs["coo"].to_dense(), outs["dense"])
    assert torch.equal(batch.to_dense(), outs["dense"])
    assert (batch.values > 0).all()


def test_forward_equals_sample_and_edge_batches():
    a, b = ActivationGenerator(4, 0.5, seed=3), ActivationGenerator(4, 0.5, seed=3)
    assert torch.equal(a(50), b.sample(50))
    assert a.sample(0).shape == (0, 4)
    assert a.sample_sparse(0).nnz == 0
    assert ActivationGenerator(4, 0.5, use_sparse_tensors=True).sample(0).shape == (0, 4)
    assert torch.equal(ActivationGenerator(4, 1.0).sample(7), torch.ones(7, 4))


def test_seeds_reproduce_and_leave_global_rng_alone():
    mod = hierarchy_modifier(HierarchyNode(0, [HierarchyNode(1), HierarchyNode(2)], mutually_exclusive_children=True))
    corr = (torch.full((6, 1), 0.5), torch.full((6,), 0.75))
    state = torch.get_rng_state()
    a = ActivationGenerator(6, 0.3, 0.5, modify_activations=mod, correlation_matrix=corr, seed=11)
    b = ActivationGenerator(6, 0.3, 0.5, modify_activations=mod, correlation_matrix=corr, seed=11)
    c = ActivationGenerator(6, 0.3, 0.5, modify_activations=mod, correlation_matrix=corr, seed=12)
    xa, xb, xc = a.sample(500), b.sample(500), c.sample(500)
    assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    assert torch.equal(a.sample_sparse(200).to_dense(), b.sample_sparse(200).to_dense())
    assert torch.equal(torch.get_rng_state(), state)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(ActivationGenerator(6, 0.3, generator=g1).sample(100), ActivationGenerator(6, 0.3, generator=g2).sample(100))


def test_global_rng_used_without_seed():
    torch.manual_seed(0)
    a = ActivationGenerator(8, 0.4).sample(100)
    torch.manual_seed(0)
    b = ActivationGenerator(8, 0.4).sample(100)
    assert torch.equal(a, b)


def test_probabilities_settable_after_construction():
    corr = (torch.full((3, 1), 0.6), torch.full((3,), 0.64))
    gen = ActivationGenerator(3, 0.5, correlation_matrix=corr, seed=0)
    gen.sample(10)
    gen.firing_probabilities = torch.tensor([0.05, 0.9, 1.0])
    n = 40_000
    assert within((gen.sample(n) > 0).double().mean(0), [0.05, 0.9, 1.0], n)
    with pytest.raises(ValueError, match="firing_probabilities"):
        gen.firing_probabilities = torch.tensor([0.5, 0.5, 1.5])
    gen.mean_firing_magnitudes = 3.0
    assert gen.sample(5).max() == 3.0


def test_arity_detection():
    seen = []
    gen = ActivationGenerator(2, 1.0, seed=0, modify_activations=[lambda x: x, lambda x, g: seen.append(g) or x])
    gen.sample(3)
    assert seen == [gen]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_features": 0}, "num_features"),
        ({"num_features": -3}, "num_features"),
        ({"firing_probabilities": 1.5}, r"firing_probabilities.*\(0, 1\].*1.5"),
        ({"firing_probabilities": 0.0}, "firing_probabilities"),
        ({"firing_probabilities": float("nan")}, "firing_probabilities.*nan"),
        ({"firing_probabilities": torch.tensor([0.1, -0.2, 0.3, 0.4])}, "feature 1"),
        ({"firing_probabilities": torch.full((3,), 0.5)}, r"firing_probabilities must have shape \(4,\)"),
        ({"std_firing_magnitudes": -1.0}, "std_firing_magnitudes"),
        ({"mean_firing_magnitudes": torch.ones(5)}, "mean_firing_magnitudes"),
        ({"correlation_matrix": torch.eye(3)}, "correlation_matrix"),
        ({"correlation_matrix": torch.eye(4) * 2}, "diagonal"),
        ({"correlation_matrix": torch.ones(4, 4)}, "positive definite"),
        ({"correlation_matrix": (torch.zeros(3, 2), torch.ones(4))}, "correlation_factor"),
        ({"correlation_matrix": (torch.zeros(4, 2), torch.zeros(4))}, "correlation_diag"),
        ({"dtype": "int64"}, "dtype"),
    ],
)
def test_validation_errors(kwargs, match):
    args = {"num_features": 4, "firing_probabilities": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        ActivationGenerator(**args)


def test_seed_and_generator_are_exclusive():
    with pytest.raises(ValueError, match="seed or generator"):
        ActivationGenerator(3, 0.5, seed=1, generator=torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        ActivationGenerator(3, 0.5, generator=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        ActivationGenerator(3, 0.5).sample(-1)


def test_sampling_ignores_autocast():
    corr = (torch.full((40, 2), 0.4), torch.full((40,), 0.68))
    a, b = (ActivationGenerator(40, 0.1, 0.5, 3.0, correlation_matrix=corr, seed=2) for _ in range(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = a.sample(500)
    assert x.dtype == torch.float32 and torch.equal(x, b.sample(500))


def test_sampling_threads_setting_does_not_change_the_stream():
    a, b = ActivationGenerator(30, 0.3, 0.5, seed=8), ActivationGenerator(30, 0.3, 0.5, seed=8)
    b.sampling_threads = None
    assert torch.equal(a.sample(300), b.sample(300))


def test_dtype_and_device_agnostic_outputs():
    gen = ActivationGenerator(4, 0.5, dtype=torch.float64, seed=0)
    assert gen.sample(3).dtype == torch.float64 and gen.sample_sparse(3).dtype == torch.float64
    assert ActivationGenerator(4, 0.5, dtype="bfloat16").sample(3).dtype == torch.bfloat16


@pytest.mark.gpu
def test_cuda_sampling():
    mod = hierarchy_modifier(HierarchyNode(0, [HierarchyNode(1), HierarchyNode(2)], mutually_exclusive_children=True))
    gen = ActivationGenerator(
        64, 0.2, 0.3, 2.0, modify_activations=mod, correlation_matrix=(torch.full((64, 2), 0.3), torch.full((64,), 0.82)),
        device="cuda", seed=0,
    )
    batch = gen.sample_sparse(4096)
    assert batch.device.type == "cuda"
    n = 4096 * 10
    rates = torch.cat([gen.sample(4096) for _ in range(10)]).gt(0).double().mean(0).cpu()
    assert within(rates[3:], torch.full((61,), 0.2), n)
