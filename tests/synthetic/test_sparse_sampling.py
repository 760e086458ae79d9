"""Exactness of the O(active) samplers. Bounds are 5 sigma unless stated otherwise."""

import pytest
import torch

from synthsae.synthetic.sparse_sampling import (
    BucketedBernoulli,
    LowRankThinning,
    bernoulli_segment_positions,
    choose_one_per_group,
    choose_one_per_run,
    flat_nonzero,
    normal_cdf,
    upper_thresholds,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_thresholds_and_cdf():
    p = torch.tensor([1e-6, 5e-4, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64)
    t = upper_thresholds(p)
    assert t[-1] == -float("inf")
    assert torch.allclose(normal_cdf(-t), p, rtol=1e-9)


def test_flat_nonzero_matches_torch():
    mask = torch.rand(37, 53, generator=gen()) > 0.7
    assert torch.equal(flat_nonzero(mask), torch.nonzero(mask.flatten()).flatten())
    assert flat_nonzero(torch.zeros(0, dtype=torch.bool)).numel() == 0


@pytest.mark.parametrize("slack", [6.0, -3.0])  # a negative slack forces the extra rounds
def test_segment_positions_distribution(slack):
    sizes = torch.tensor([1000, 0, 1, 5000, 300, 2000])
    rates = torch.tensor([0.3, 0.5, 1.0, 0.002, 1.0, 0.0])
    reps = 100
    counts = torch.zeros(6, dtype=torch.float64)
    halves = torch.zeros(2, dtype=torch.float64)
    g = gen(1)
    bounds = torch.cumsum(sizes, 0)
    for _ in range(reps):
        pos = bernoulli_segment_positions(sizes, rates, g, slack=slack)
        assert torch.all(pos[1:] > pos[:-1])  # sorted, distinct
        assert pos.numel() == 0 or (pos.min() >= 0 and pos.max() < bounds[-1])
        seg = torch.searchsorted(bounds, pos, right=True)
        counts += torch.bincount(seg, minlength=6).double()
        first = pos[seg == 0]
        halves += torch.stack([(first < 500).sum(), (first >= 500).sum()]).double()
    expected = (sizes * rates).double() * reps
    var = (sizes * rates * (1 - rates)).double() * reps
    assert ((counts - expected).abs() <= 5 * var.sqrt() + 1e-9).all(), (counts, expected)
    assert counts[2] == reps and counts[4] == 300 * reps and counts[5] == 0
    assert abs(halves[0] - halves[1]) <= 5 * (halves.sum() ** 0.5)


def test_bucketed_bernoulli_rates_and_no_duplicates():
    rates = torch.tensor([1.0, 0.9, 0.5, 0.31, 0.3, 0.05, 1e-3, 2e-4, 0.0, 0.12])
    sampler = BucketedBernoulli(rates)
    batch, reps = 2000, 25
    counts = torch.zeros(10, dtype=torch.float64)
    g = gen(2)
    for _ in range(reps):
        rows, feats = sampler.sample(batch, g)
        key = rows * 10 + feats
        assert torch.unique(key).numel() == key.numel()
        assert rows.min() >= 0 and rows.max() < batch
        counts += torch.bincount(feats, minlength=10).double()
    n = batch * reps
    expected = rates.double() * n
    sd = torch.sqrt(rates.double() * (1 - rates.double()) * n)
    assert ((counts - expected).abs() <= 5 * sd + 1e-9).all(), (counts / n, rates)


def test_bucketed_bernoulli_rejects_bad_rates():
    with pytest.raises(ValueError):
        BucketedBernoulli(torch.tensor([0.5, 1.5]))


def low_rank_case():
    g = gen(3)
    f, r = 60, 4
    factor = 0.35 * torch.randn(f, r, generator=g)
    factor[:5] = 0.0  # uncorrelated features
    factor[5:10, 0] = 0.9  # strongly loaded ones
    factor *= torch.clamp(0.95 / (factor**2).sum(1, keepdim=True).clamp(min=1e-12), max=1.0).sqrt()
    diag = 1 - (factor**2).sum(1)
    probs = torch.cat([torch.tensor([1.0, 0.5]), torch.logspace(-3.5, -0.3, f - 2)])
    return factor, diag, probs


def test_low_rank_thinning_is_exact_given_the_latents():
    factor, diag, probs = low_rank_case()
    t = upper_thresholds(probs)
    sampler = LowRankThinning(factor, diag, t, ratio=2.0, chunk_elements=1 << 16)  # several blocks per bucket
    batch = 4096
    eps = torch.randn(batch, factor.shape[1], generator=gen(4))
    eps[:256] = 4.0  # rows far out in the tail: many pairs above their caps
    p = normal_cdf((eps.double() @ factor.double().T - t) / diag.double().sqrt())  # [B, F] exact
    reps = 20
    counts = torch.zeros(batch, factor.shape[0], dtype=torch.float64)
    g = gen(5)
    for _ in range(reps):
        rows, feats = sampler.sample(eps, g)
        key = rows * factor.shape[0] + feats
        assert torch.unique(key).numel() == key.numel()
        counts.view(-1).index_add_(0, key, torch.ones_like(key, dtype=torch.float64))
    # sums of independent Bernoulli(p_ri): per feature over ordinary rows, over tail rows, and per row
    for block in (slice(256, None), slice(0, 256)):
        mean = (p[block] * reps).sum(0)
        sd = (p[block] * (1 - p[block]) * reps).sum(0).sqrt()
        assert ((counts[block].sum(0) - mean).abs() <= 5 * sd + 1e-9).all()
    mean, sd = (p * reps).sum(1), (p * (1 - p) * reps).sum(1).sqrt()
    assert ((counts.sum(1) - mean).abs() <= 5 * sd + 1e-9).all()


def test_low_rank_thinning_marginals_match_probabilities():
    factor, diag, probs = low_rank_case()
    sampler = LowRankThinning(factor, diag, upper_thresholds(probs))
    n = 200_000
    g = gen(6)
    rows, feats = sampler.sample(torch.randn(n, factor.shape[1], generator=g), g)
    rates = torch.bincount(feats, minlength=probs.numel()).double() / n
    sd = torch.sqrt(probs.double() * (1 - probs.double()) / n)
    assert ((rates - probs.double()).abs() <= 5 * sd + 1e-12).all()


def test_low_rank_thinning_empty_batch():
    factor, diag, probs = low_rank_case()
    rows, feats = LowRankThinning(factor, diag, upper_thresholds(probs)).sample(torch.zeros(0, 4))
    assert rows.numel() == 0 and feats.numel() == 0


def test_choose_one_per_run_exactly_one_and_uniform():
    pattern = torch.tensor([0, 0, 0, 1, 2, 2, 3, 3, 3])  # runs of 3, 1, 2 and 3 members
    reps = 6000
    keys = (pattern[None, :] + 4 * torch.arange(reps)[:, None]).flatten()
    win = choose_one_per_run(keys, gen(7)).view(reps, -1)
    assert (win[:, :3].sum(1) == 1).all() and win[:, 3].all()
    assert (win[:, 4:6].sum(1) == 1).all() and (win[:, 6:].sum(1) == 1).all()
    hits = win.double().sum(0)
    for lo, hi in ((0, 3), (4, 6), (6, 9)):
        expected = reps / (hi - lo)
        chi2 = ((hits[lo:hi] - expected) ** 2 / expected).sum()
        assert chi2 < 22  # chi-square with <= 2 degrees of freedom: p < 2e-5
    assert choose_one_per_run(torch.zeros(0, dtype=torch.long)).numel() == 0


def test_choose_one_per_group_unsorted_keys():
    keys = torch.tensor([5, 1, 5, 2, 1, 5])
    for seed in range(20):
        win = choose_one_per_group(keys, gen(seed))
        for k in (1, 2, 5):
            assert win[keys == k].sum() == 1
