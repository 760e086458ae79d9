"""Probability correction factors (hand cases) and their statistical purpose."""

import pytest
import torch

from synthsae.synthetic import ActivationGenerator, Hierarchy, HierarchyNode, hierarchy_modifier


def H(*roots):
    return Hierarchy(list(roots), hierarchy_modifier(list(roots)))


def test_parent_child_and_deep_chain():
    p = torch.tensor([0.5, 0.2, 0.1, 0.3])
    h = H(HierarchyNode(0, [HierarchyNode(1, [HierarchyNode(2)])]))
    corr = h.compute_probability_correction_factors(p)
    assert torch.allclose(corr, torch.tensor([1.0, 1 / 0.5, 1 / 0.2, 1.0]))


def test_organisational_nodes_pass_probability_through():
    p = torch.tensor([0.4, 0.2, 0.1])
    h = H(HierarchyNode(0, [HierarchyNode(None, [HierarchyNode(1), HierarchyNode(2)])]), )
    assert torch.allclose(h.compute_probability_correction_factors(p), torch.tensor([1.0, 2.5, 2.5]))
    top = H(HierarchyNode(None, [HierarchyNode(1), HierarchyNode(2)]))
    assert torch.allclose(top.compute_probability_correction_factors(p), torch.ones(3))


def test_several_trees_and_outside_features():
    p = torch.tensor([0.5, 0.25, 0.4, 0.1, 0.3])
    h = H(HierarchyNode(0, [HierarchyNode(1)]), HierarchyNode(2, [HierarchyNode(3)]))
    assert torch.allclose(h.compute_probability_correction_factors(p), torch.tensor([1.0, 2.0, 1.0, 2.5, 1.0]))


def test_zero_and_tiny_parent_probability():
    p = torch.tensor([0.0, 0.3])
    h = H(HierarchyNode(0, [HierarchyNode(1)]))
    assert torch.equal(h.compute_probability_correction_factors(p), torch.tensor([1.0, 1.0]))
    p = torch.tensor([1e-30, 0.3], dtype=torch.float64)
    corr = h.compute_probability_correction_factors(p)
    assert torch.isfinite(corr).all() and corr[1] == pytest.approx(1e30)


def test_mutual_exclusion_two_and_three_siblings():
    p = torch.tensor([0.5, 0.1, 0.2])
    h = H(HierarchyNode(0, [HierarchyNode(1), HierarchyNode(2)], mutually_exclusive_children=True))
    corr = h.compute_probability_correction_factors(p)
    assert torch.allclose(corr, torch.tensor([1.0, 2.0 * (1 + 0.2 / 0.5), 2.0 * (1 + 0.1 / 0.5)]))
    p = torch.tensor([0.5, 0.1, 0.2, 0.05])
    kids = [HierarchyNode(i) for i in (1, 2, 3)]
    h = H(HierarchyNode(0, kids, mutually_exclusive_children=True))
    corr = h.compute_probability_correction_factors(p)
    expected = [1.0] + [2.0 * (1 + (0.35 - p[i].item()) / 0.5) for i in (1, 2, 3)]
    assert torch.allclose(corr, torch.tensor(expected))


def test_root_level_and_nested_mutual_exclusion():
    p = torch.tensor([0.3, 0.2, 0.1, 0.05])
    h = H(HierarchyNode(None, [HierarchyNode(0), HierarchyNode(1)], mutually_exclusive_children=True))
    corr = h.compute_probability_correction_factors(p)
    assert torch.allclose(corr, torch.tensor([1 + 0.2, 1 + 0.3, 1.0, 1.0]))
    nested = HierarchyNode(
        0, [HierarchyNode(1, [HierarchyNode(2), HierarchyNode(3)], mutually_exclusive_children=True), HierarchyNode(4)],
        mutually_exclusive_children=True,
    )
    p = torch.tensor([0.5, 0.2, 0.1, 0.05, 0.3])
    corr = H(nested).compute_probability_correction_factors(p)
    expected = [1.0, 2 * (1 + 0.3 / 0.5), 5 * (1 + 0.05 / 0.2), 5 * (1 + 0.1 / 0.2), 2 * (1 + 0.2 / 0.5)]
    assert torch.allclose(corr, torch.tensor(expected))


def test_dtype_and_device_kept():
    p = torch.tensor([0.5, 0.25], dtype=torch.float64)
    corr = H(HierarchyNode(0, [HierarchyNode(1)])).compute_probability_correction_factors(p)
    assert corr.dtype == torch.float64 and corr[1].item() == 2.0


def test_short_probability_vector_rejected():
    with pytest.raises(ValueError, match="base_firing_probabilities"):
        H(HierarchyNode(0, [HierarchyNode(5)])).compute_probability_correction_factors(torch.full((3,), 0.5))


@pytest.mark.parametrize("exclusive", [False, True])
def test_compensated_probabilities_recover_base_rates(exclusive):
    # Without mutual exclusion compensation is exact: P(child) = p_parent * p_child / p_parent.
    # With it, a sibling survives ME with probability ~1 / (1 + others / p_parent) to first order, so the
    # rates come back only approximately (as in the reference); the bound is looser there.
    base = torch.tensor([0.6, 0.15, 0.1, 0.2, 0.08, 0.3])
    tree = HierarchyNode(
        0,
        [HierarchyNode(1, [HierarchyNode(4)]), HierarchyNode(2), HierarchyNode(3)],
        mutually_exclusive_children=exclusive,
    )
    h = H(tree)
    probs = (base * h.compute_probability_correction_factors(base)).clamp(max=1.0)
    gen = ActivationGenerator(6, probs, modify_activations=h.modifier, seed=0)
    n = 200_000
    rates = (gen.sample(n) > 0).double().mean(0)
    if not exclusive:
        bound = 5 * torch.sqrt(base * (1 - base) / n)  # 5 sigma of a binomial proportion
        assert ((rates - base).abs() < bound).all(), (rates, base)
    else:
        assert torch.allclose(rates, base.double(), rtol=0.15)
        assert rates[0] == pytest.approx(0.6, abs=5 * (0.24 / n) ** 0.5)
