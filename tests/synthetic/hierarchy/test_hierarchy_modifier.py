import inspect

import pytest
import torch
from dense_reference import apply_hierarchy_dense

from synthsae.synthetic import ActivationGenerator, HierarchyNode, SparseBatch, hierarchy_modifier


def N(i, *kids, me=False, rs=False):
    return HierarchyNode(i, list(kids), mutually_exclusive_children=me, scale_children_by_parent=rs)


class Means:
    """Stands in for a generator: the modifier only reads ``mean_firing_magnitudes``."""

    def __init__(self, mean):
        self.mean_firing_magnitudes = mean


def forms(mod, acts, gen=None):
    """The modifier applied to the dense, COO and SparseBatch forms, each densified."""
    dense = mod(acts, gen)
    coo = mod(acts.to_sparse(), gen)
    batch = mod(SparseBatch.from_dense(acts), gen)
    assert coo.is_sparse and isinstance(batch, SparseBatch)
    return dense, coo.to_dense(), batch.to_dense()


def test_gating_in_every_form_and_input_untouched():
    mod = hierarchy_modifier(N(0, N(1, N(3)), N(2)))
    acts = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 3.0, 4.0], [1.0, 0.0, 3.0, 4.0], [0.0, 0.0, 0.0, 4.0]])
    before = acts.clone()
    expected = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], [1.0, 0.0, 3.0, 0.0], [0, 0, 0, 0]])
    for out in forms(mod, acts):
        assert torch.equal(out, expected)
    assert torch.equal(acts, before)
    batch = SparseBatch.from_dense(acts)
    values = batch.values.clone()
    mod(batch)
    assert torch.equal(batch.values, values)


def test_organisational_nodes():
    # children of an organisational root are free; under a feature they are gated by it
    mod = hierarchy_modifier([N(None, N(0), N(1)), N(2, N(None, N(3)))])
    acts = torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    for out in forms(mod, acts):
        assert torch.equal(out, torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]]))


def test_deep_cascade_and_features_outside_untouched():
    chain = N(0, N(1, N(2, N(3, N(4)))))
    mod = hierarchy_modifier(chain)
    acts = torch.ones(3, 7)
    acts[1, 2] = 0
    acts[2, 0] = 0
    for out in forms(mod, acts):
        assert torch.equal(out[0], torch.ones(7))
        assert torch.equal(out[1], torch.tensor([1.0, 1, 0, 0, 0, 1, 1]))
        assert torch.equal(out[2], torch.tensor([0.0, 0, 0, 0, 0, 1, 1]))


def test_exactly_one_survivor_and_cascade_of_losers():
    mod = hierarchy_modifier(N(0, N(1, N(4)), N(2, N(5)), N(3), me=True))
    acts = torch.rand(4000, 6) + 0.5
    acts[:1000, 3] = 0  # some rows with only two active siblings
    acts[1000:2000, 0] = 0  # parent off: everything below is off
    for out in forms(mod, acts, None):
        sib = out[:, 1:4] > 0
        assert (sib.sum(1)[acts[:, 0] > 0] == 1).all()
        assert (out[1000:2000] == 0).all()
        assert not ((out[:, 4] > 0) & (out[:, 1] == 0)).any()
        assert not ((out[:, 5] > 0) & (out[:, 2] == 0)).any()
        kept = out[:, 1:4][sib]  # survivors keep their value
        assert torch.equal(kept, acts[:, 1:4][sib])


def test_inactive_siblings_do_not_compete():
    mod = hierarchy_modifier(N(0, N(1), N(2), N(3), me=True))
    acts = torch.tensor([[1.0, 0.0, 2.0, 0.0]]).repeat(50, 1)
    for out in forms(mod, acts):
        assert torch.equal(out, acts)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_winner_uniform_over_active_siblings(k):
    mod = hierarchy_modifier(N(0, *[N(i) for i in range(1, k + 1)], me=True))
    n = 30_000
    acts = torch.ones(n, k + 1)
    acts[:, 1] = 100.0  # magnitude must not matter
    counts = (mod(acts)[:, 1:] > 0).sum(0).double()
    assert counts.sum() == n
    expected = n / k
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    # 99.99th percentile of chi-square with k-1 <= 4 degrees of freedom is < 24
    assert chi2 < 24, counts


def test_root_level_group_applies_in_every_row():
    mod = hierarchy_modifier(N(None, N(0), N(1), N(2), me=True))
    acts = torch.ones(500, 3)
    for out in forms(mod, acts):
        assert ((out > 0).sum(1) == 1).all()


def test_non_contiguous_and_variable_sibling_groups():
    tree = [N(7, N(2), N(9), N(4), me=True), N(5, N(0), N(8), me=True)]
    mod = hierarchy_modifier(tree)
    acts = torch.ones(300, 10)
    out = mod(acts)
    assert ((out[:, [2, 9, 4]] > 0).sum(1) == 1).all()
    assert ((out[:, [0, 8]] > 0).sum(1) == 1).all()
    assert torch.equal(out[:, [1, 3, 5, 6, 7]], acts[:, [1, 3, 5, 6, 7]])


def test_matches_naive_level_by_level_application():
    torch.manual_seed(0)
    roots = [
        N(0, N(1, N(4), N(5), me=True), N(2, N(None, N(6), N(7), me=True)), N(3), me=True, rs=True),
        N(None, N(8, N(9, rs=False)), N(10), me=True),
    ]
    mean = torch.rand(12) + 0.5
    mod = hierarchy_modifier(roots)
    n = 60_000
    acts = torch.rand(n, 12) * (torch.rand(n, 12) < 0.6)
    ours = mod(acts, Means(mean))
    naive = apply_hierarchy_dense(acts.double(), roots, mean.double()).float()
    # features 0 and 11 are never touched; for the others compare rates and the surviving values
    assert torch.equal(ours[:, [0, 11]], acts[:, [0, 11]])
    rate_ours, rate_naive = (ours > 0).double().mean(0), (naive > 0).double().mean(0)
    bound = 5 * torch.sqrt(rate_naive * (1 - rate_naive) * 2 / n) + 1e-9
    assert ((rate_ours - rate_naive).abs() <= bound).all(), (rate_ours, rate_naive)
    both = (ours > 0) & (naive > 0)
    assert torch.allclose(ours[both], naive[both], rtol=1e-5)


def test_rescaling_parent_at_twice_its_mean_doubles_child():
    mod = hierarchy_modifier(N(0, N(1, N(2), rs=True), rs=True))
    means = Means(torch.tensor([2.0, 3.0, 1.0]))
    acts = torch.tensor([[4.0, 3.0, 5.0], [2.0, 1.5, 1.0], [0.0, 3.0, 1.0]])
    expected = torch.tensor([[4.0, 6.0, 10.0], [2.0, 1.5, 0.5], [0.0, 0.0, 0.0]])
    for out in forms(mod, acts, means):
        assert torch.allclose(out, expected)


def test_mixed_rescale_and_binary_children():
    mod = hierarchy_modifier([N(0, N(1), rs=True), N(2, N(3))])
    acts = torch.tensor([[3.0, 1.0, 3.0, 1.0]])
    out = mod(acts, Means(torch.full((4,), 1.5)))
    assert torch.allclose(out, torch.tensor([[3.0, 2.0, 3.0, 1.0]]))


def test_rescaling_needs_generator_and_positive_means():
    mod = hierarchy_modifier(N(0, N(1), rs=True))
    assert mod.needs_generator
    with pytest.raises(ValueError, match="activation_generator"):
        mod(torch.ones(2, 2))
    with pytest.raises(ValueError, match="feature 0 has mean 0"):
        mod(torch.ones(2, 2), Means(torch.tensor([0.0, 1.0])))
    with pytest.raises(ValueError, match="feature 0"):
        ActivationGenerator(2, 0.5, mean_firing_magnitudes=torch.tensor([-1.0, 1.0]), modify_activations=mod)
    gen = ActivationGenerator(2, 0.5, mean_firing_magnitudes=2.0, modify_activations=mod)
    with pytest.raises(ValueError, match="feature 0"):
        gen.mean_firing_magnitudes = torch.tensor([0.0, 1.0])
    assert torch.equal(gen.mean_firing_magnitudes, torch.full((2,), 2.0))


def test_rescaling_through_the_generator_dense_and_sparse():
    mod = hierarchy_modifier(N(0, N(1), rs=True))
    for sparse in (False, True):
        gen = ActivationGenerator(
            2, 1.0, std_firing_magnitudes=torch.tensor([1.0, 0.0]), mean_firing_magnitudes=torch.tensor([3.0, 2.0]),
            modify_activations=mod, use_sparse_tensors=sparse, seed=0,
        )
        acts = gen.sample(2000)
        acts = acts.to_dense() if sparse else acts
        on = acts[:, 0] > 0
        assert torch.allclose(acts[on, 1], 2.0 * acts[on, 0] / 3.0, rtol=1e-5)
        assert (acts[~on, 1] == 0).all()


def test_arity_is_detectable():
    mod = hierarchy_modifier(N(0, N(1)))
    assert len(inspect.signature(mod).parameters) == 2
    assert not mod.needs_generator


def test_empty_input_is_identity():
    mod = hierarchy_modifier([])
    acts = torch.rand(3, 4)
    assert mod(acts) is acts


def test_validation_errors():
    with pytest.raises(ValueError, match="feature index 1 appears in more than one tree"):
        hierarchy_modifier([N(0, N(1)), N(1)])
    shared = N(3)
    with pytest.raises(ValueError, match="more than once"):
        hierarchy_modifier([N(0, shared), N(1, shared)])
    cyc = N(0)
    cyc.children.append(cyc)
    with pytest.raises(ValueError, match="cycle"):
        hierarchy_modifier(cyc)
    mod = hierarchy_modifier(N(0, N(7)))
    with pytest.raises(ValueError, match="feature index 7.*num_features=4"):
        mod(torch.ones(2, 4))
    with pytest.raises(ValueError, match="feature index 7"):
        ActivationGenerator(5, 0.5, modify_activations=mod)


def test_random_choices_follow_the_generator_stream():
    mod = hierarchy_modifier(N(0, N(1), N(2), N(3), me=True))
    acts = torch.ones(200, 4)
    a = mod(acts, ActivationGenerator(4, 0.5, seed=3))
    b = mod(acts, ActivationGenerator(4, 0.5, seed=3))
    c = mod(acts, ActivationGenerator(4, 0.5, seed=4))
    assert torch.equal(a, b) and not torch.equal(a, c)
