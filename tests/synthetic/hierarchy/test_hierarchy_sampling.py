"""The fused lazy sampler against a naive dense implementation of the reference process.

Rates are compared per feature with a 5-sigma bound on the difference of two binomial
proportions, ``5 * sqrt(p (1 - p) (1/n1 + 1/n2))``; mean values with 5 standard errors.
"""

import pytest
import torch
from dense_reference import dense_sample

from synthsae.synthetic import (
    ActivationGenerator,
    HierarchyConfig,
    HierarchyNode,
    LowRankCorrelationMatrix,
    SparseBatch,
    generate_hierarchy,
    hierarchy_modifier,
)
from synthsae.synthetic.sampling_plan import SamplingPlan


def N(i, *kids, me=False, rs=False):
    return HierarchyNode(i, list(kids), mutually_exclusive_children=me, scale_children_by_parent=rs)


def forest():
    """Feature ME groups, an organisational ME group inside a tree, a root-level organisational
    group, rescaling (also through an organisational node), features outside the forest."""
    return [
        N(0, N(1, N(4), N(5), N(6), me=True, rs=True), N(2, N(7)), N(3), me=True, rs=True),
        N(8, N(None, N(9, N(10)), N(11), me=True), rs=True),
        N(None, N(12, N(13)), N(14), me=True),
    ]


F = 17  # features 15 and 16 are outside the forest


def setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = 0.15 + 0.6 * torch.rand(F, generator=g)
    mean = 1.0 + 2.0 * torch.rand(F, generator=g)
    std = 0.8 * torch.rand(F, generator=g)
    std[3] = 4.0  # feature 3 is often clipped to 0: fired but inactive
    factor = 0.15 * torch.randn(F, 3, generator=g)
    factor[:, 0] = 0.55  # strong positive common factor
    factor[1::3, 1] -= 0.45  # and a contrasting one
    factor *= torch.clamp(0.8 / (factor**2).sum(1, keepdim=True), max=1.0).sqrt()
    diag = 1.0 - (factor**2).sum(1)
    assert (diag > 0.05).all()
    return probs, mean, std, factor, diag


def stats(x: torch.Tensor):
    x = x.double()
    on = x > 0
    return on.double().mean(0), x.mean(0), x.var(0), on.sum(1).double()


def assert_same_distribution(a: torch.Tensor, b: torch.Tensor, pairs=((0, 1), (1, 4), (8, 9), (12, 14), (15, 16))):
    ra, ma, va, la = stats(a)
    rb, mb, vb, lb = stats(b)
    na, nb = a.shape[0], b.shape[0]
    p = (ra * na + rb * nb) / (na + nb)
    bound = 5 * torch.sqrt(p * (1 - p) * (1 / na + 1 / nb)) + 1e-12
    assert ((ra - rb).abs() <= bound).all(), f"rates differ:\n{ra}\n{rb}"
    se = torch.sqrt(va / na + vb / nb) + 1e-12
    assert ((ma - mb).abs() <= 5 * se).all(), f"means differ:\n{ma}\n{mb}"
    assert abs(la.mean() - lb.mean()) <= 5 * torch.sqrt(la.var() / na + lb.var() / nb)
    for i, j in pairs:  # co-firing
        ca = ((a[:, i] > 0) & (a[:, j] > 0)).double().mean()
        cb = ((b[:, i] > 0) & (b[:, j] > 0)).double().mean()
        pc = (ca + cb) / 2
        assert abs(ca - cb) <= 5 * torch.sqrt(pc * (1 - pc) * (1 / na + 1 / nb)) + 1e-12, (i, j, ca, cb)


def check_structure(acts: torch.Tensor):
    on = acts > 0
    for child, parent in [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 1), (7, 2), (9, 8), (11, 8), (10, 9), (13, 12)]:
        assert not (on[:, child] & ~on[:, parent]).any(), (child, parent)
    for group in ([1, 2, 3], [4, 5, 6], [9, 11], [12, 14]):
        assert (on[:, group].sum(1) <= 1).all(), group


@pytest.mark.parametrize("corr", ["independent", "low_rank", "low_rank_blocks", "full"])
def test_fused_sampler_matches_naive_reference(corr, monkeypatch):
    if corr == "low_rank_blocks":  # children's copula values from per-parent products, not a dense level product
        monkeypatch.setattr(SamplingPlan, "dense_level_ratio", 0)
        corr = "low_rank"
    probs, mean, std, factor, diag = setup()
    kwargs = {}
    ref_kwargs = {}
    if corr == "low_rank":
        kwargs["correlation_matrix"] = LowRankCorrelationMatrix(factor, diag)
        ref_kwargs = {"factor": factor, "diag": diag}
    elif corr == "full":
        full = factor @ factor.T + torch.diag(diag)
        kwargs["correlation_matrix"] = full
        ref_kwargs = {"corr": full}
    roots = forest()
    gen = ActivationGenerator(F, probs, std, mean, modify_activations=hierarchy_modifier(roots), seed=1, **kwargs)
    n = 60_000
    ours = gen.sample(n)
    check_structure(ours)
    naive = dense_sample(n, probs, mean, std, roots, generator=torch.Generator().manual_seed(2), **ref_kwargs)
    check_structure(naive)
    assert_same_distribution(ours, naive)


def test_fused_and_unfused_paths_agree_with_low_rank_correlation():
    probs, mean, std, factor, diag = setup(seed=5)
    mod = hierarchy_modifier(forest())
    corr = (factor, diag)
    fused = ActivationGenerator(F, probs, std, mean, modify_activations=mod, correlation_matrix=corr, seed=3)
    # a leading plain modifier stops the fusion: dense sample, then the hierarchy modifier on it
    unfused = ActivationGenerator(
        F, probs, std, mean, modify_activations=[lambda x: x, mod], correlation_matrix=corr, seed=4
    )
    assert fused._fused() is mod and unfused._fused() is None
    n = 60_000
    a, b = fused.sample_sparse(n), unfused.sample_sparse(n)
    assert isinstance(a, SparseBatch) and isinstance(b, SparseBatch)
    check_structure(a.to_dense())
    check_structure(b.to_dense())
    assert_same_distribution(a.to_dense(), b.to_dense())


def test_correlation_survives_the_hierarchy():
    probs, mean, std, factor, diag = setup()
    gen = ActivationGenerator(
        F, probs, std, mean, modify_activations=hierarchy_modifier(forest()), correlation_matrix=(factor, diag), seed=0
    )
    on = (gen.sample(40_000) > 0).double()
    plain = ActivationGenerator(F, probs, std, mean, modify_activations=hierarchy_modifier(forest()), seed=0)
    on_plain = (plain.sample(40_000) > 0).double()
    # features 15 and 16 share a strong positive factor: they co-fire more than independent ones
    joint = (on[:, 15] * on[:, 16]).mean()
    assert joint > on[:, 15].mean() * on[:, 16].mean() + 0.02
    joint_plain = (on_plain[:, 15] * on_plain[:, 16]).mean()
    assert abs(joint_plain - on_plain[:, 15].mean() * on_plain[:, 16].mean()) < 0.01


@pytest.mark.slow
def test_generated_hierarchy_fused_matches_naive_at_scale():
    cfg = HierarchyConfig(12, 3, 3, mutually_exclusive_portion=0.7, scale_children_by_parent=True)
    h = generate_hierarchy(300, cfg, seed=0)
    g = torch.Generator().manual_seed(0)
    base = torch.linspace(0.4, 0.01, 300)
    probs = (base * h.compute_probability_correction_factors(base)).clamp(max=1.0)
    mean, std = torch.linspace(5, 4, 300), 0.5 * torch.rand(300, generator=g)
    factor = 0.15 * torch.randn(300, 8, generator=g)
    diag = 1 - (factor**2).sum(1)
    gen = ActivationGenerator(300, probs, std, mean, modify_activations=h.modifier, correlation_matrix=(factor, diag), seed=0)
    n = 40_000
    ours = gen.sample(n)
    naive = dense_sample(n, probs, mean, std, h.roots, factor=factor, diag=diag, generator=torch.Generator().manual_seed(1))
    assert_same_distribution(ours, naive, pairs=((0, 12), (12, 48), (100, 200)))


@pytest.mark.parametrize("uneven", [False, True])
def test_padded_and_compressed_child_layouts(uneven):
    # very uneven branching makes the sampler walk compressed rows instead of padded blocks
    wide = N(0, *[N(i) for i in range(1, 11)], me=True)
    chains = [N(11 + 2 * k, N(12 + 2 * k)) for k in range(9)]
    roots = [wide] + chains if uneven else [wide]
    f = 29 if uneven else 11
    probs = torch.full((f,), 0.4)
    mean, std = torch.full((f,), 2.0), torch.full((f,), 0.5)
    factor = torch.full((f, 1), 0.6)
    diag = 1 - factor[:, 0] ** 2
    gen = ActivationGenerator(f, probs, std, mean, modify_activations=hierarchy_modifier(roots),
                              correlation_matrix=(factor, diag), seed=0)
    assert (gen._get_plan().blocks is None) == uneven
    n = 40_000
    ours = gen.sample(n)
    naive = dense_sample(n, probs, mean, std, roots, factor=factor, diag=diag, generator=torch.Generator().manual_seed(1))
    assert_same_distribution(ours, naive, pairs=((0, 1), (1, 2)))


@pytest.mark.slow
def test_synthsaebench_sized_fused_matches_unfused():
    from synthsae.synthetic import (
        generate_random_low_rank_correlation_matrix,
        zipfian_firing_probabilities,
    )

    f = 16_384
    cfg = HierarchyConfig(128, 4, 3, mutually_exclusive_portion=1.0, compensate_probabilities=True,
                          scale_children_by_parent=True)
    h = generate_hierarchy(f, cfg, seed=45)
    base = zipfian_firing_probabilities(f, exponent=0.5, max_prob=0.4, min_prob=5e-4)
    probs = (base * h.compute_probability_correction_factors(base)).clamp(max=1.0)
    corr = generate_random_low_rank_correlation_matrix(f, 25, 0.1, seed=46)
    mean = torch.linspace(5.0, 4.0, f)
    std = 0.5 * torch.rand(f, generator=torch.Generator().manual_seed(0))
    fused = ActivationGenerator(f, probs, std, mean, modify_activations=h.modifier, correlation_matrix=corr, seed=1)
    unfused = ActivationGenerator(
        f, probs, std, mean, modify_activations=[lambda x: x, h.modifier], correlation_matrix=corr,
        use_sparse_tensors=True, seed=2,
    )
    n = 4096  # the unfused path handles ~7,000 candidate firings per row: slow
    a = torch.cat([fused.sample_sparse(1024).row_counts() for _ in range(n // 1024)]).double()
    batches = [unfused.sample_sparse(1024) for _ in range(n // 1024)]
    b = torch.cat([x.row_counts() for x in batches]).double()
    assert abs(a.mean() - b.mean()) <= 5 * torch.sqrt(a.var() / n + b.var() / n)
    assert abs(a.mean() - 34.45) < 1.5  # the reference's L0 on this model (sd 11.7)
