import pytest
import torch

from synthsae.synthetic import HierarchyNode
from synthsae.synthetic.hierarchy.compiled import CompiledHierarchy


def N(i, *kids, me=False, rs=False):
    return HierarchyNode(i, list(kids), mutually_exclusive_children=me, scale_children_by_parent=rs)


def forest():
    # 0 -> {1 -> {3, 4} (ME), org(rescale) -> {5, 6} (ME)}; org root -> {2, 7} (ME); 9 alone
    return [
        N(0, N(1, N(3), N(4), me=True), N(None, N(5), N(6), me=True, rs=True)),
        N(None, N(2), N(7), me=True),
        N(9),
    ]


def test_flat_tensors_of_a_hand_forest():
    h = CompiledHierarchy.from_roots(forest())
    assert h.size == 10
    assert h.in_forest.tolist() == [True] * 8 + [False, True]
    assert h.eff_parent.tolist() == [-1, 0, -1, 1, 1, 0, 0, -1, -1, -1]
    assert h.level.tolist() == [0, 1, 1, 2, 2, 2, 2, 1, -1, 0]
    assert h.depth.tolist() == [0, 1, 0, 2, 2, 1, 1, 0, 0, 0]
    # the rescale flag comes from the direct (here organisational) parent
    assert h.rescale.tolist() == [False, False, False, False, False, True, True, False, False, False]
    assert h.num_groups == 3 and h.max_depth == 2
    groups = h.me_group.tolist()
    assert groups[3] == groups[4] and groups[5] == groups[6] and groups[2] == groups[7]
    assert len({groups[3], groups[5], groups[2]}) == 3 and groups[0] == groups[1] == groups[9] == -1
    parent_of = {groups[3]: 1, groups[5]: -1, groups[2]: -1}
    assert all(h.group_parent[g].item() == p for g, p in parent_of.items())
    kids = {f: h.child_idx[h.child_ptr[f] : h.child_ptr[f + 1]].tolist() for f in range(10)}
    assert sorted(kids[0]) == [1, 5, 6] and kids[1] == [3, 4] and all(not kids[f] for f in (2, 3, 4, 5, 6, 7, 8, 9))
    assert h.rescaling_parents().tolist() == [0] and h.needs_rescale


def test_children_of_a_parent_are_grouped_by_mutual_exclusion_group():
    tree = N(0, N(1), N(None, N(4), N(2), me=True), N(3), N(None, N(6), N(5), me=True))
    h = CompiledHierarchy.from_roots(tree)
    kids = h.child_idx[h.child_ptr[0] : h.child_ptr[1]]
    groups = h.me_group[kids].tolist()
    assert groups == sorted(groups)
    assert sorted(kids.tolist()) == [1, 2, 3, 4, 5, 6]


def test_padding_and_range_validation():
    h = CompiledHierarchy.from_roots(forest())
    p = h.padded(14)
    assert p.size == 14 and p.eff_parent[10:].tolist() == [-1] * 4 and p.child_ptr.numel() == 15
    assert p.child_ptr[-1] == h.child_ptr[-1]
    h.validate_against(10)
    with pytest.raises(ValueError, match="feature index 9.*num_features=8"):
        h.validate_against(8)


def test_empty_forest():
    h = CompiledHierarchy.from_roots([])
    assert h.is_empty and h.max_depth == 0 and not h.needs_rescale
    assert h.padded(3).eff_parent.tolist() == [-1, -1, -1]


def test_move_to_device_keeps_values():
    h = CompiledHierarchy.from_roots(forest()).to("cpu")
    assert h.device == torch.device("cpu") and h.size == 10
