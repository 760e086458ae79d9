import pytest

from synthsae.synthetic import HierarchyNode


def leaf(i, **kw):
    return HierarchyNode(i, **kw)


def test_construction_defaults():
    node = HierarchyNode()
    assert node.feature_index is None
    assert node.children == []
    assert not node.mutually_exclusive_children and not node.scale_children_by_parent
    assert node.feature_id is None


def test_mutual_exclusion_needs_two_children():
    with pytest.raises(ValueError, match="at least 2 children"):
        HierarchyNode(0, [leaf(1)], mutually_exclusive_children=True)
    HierarchyNode(0, [leaf(1), leaf(2)], mutually_exclusive_children=True)


@pytest.mark.parametrize("bad", [-1, -100])
def test_negative_index_rejected(bad):
    with pytest.raises(ValueError, match=f"feature_index must be >= 0.*{bad}"):
        HierarchyNode(bad)


def test_non_int_index_rejected():
    with pytest.raises(TypeError, match="feature_index"):
        HierarchyNode(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="feature_index"):
        HierarchyNode(True)  # type: ignore[arg-type]


def test_docs_nested_form_builds_documented_tree():
    node = HierarchyNode.from_dict({0: {1: {3: {}}, 2: {}}})
    expected = HierarchyNode(0, [HierarchyNode(1, [HierarchyNode(3)]), HierarchyNode(2)])
    assert node == expected
    assert sorted(node.get_all_feature_indices()) == [0, 1, 2, 3]


def test_nested_form_digit_strings_and_options():
    node = HierarchyNode.from_dict({"0": {"mutually_exclusive_children": True, "1": {}, "2": None}})
    assert node == HierarchyNode(0, [leaf(1), leaf(2)], mutually_exclusive_children=True)


def test_nested_form_several_top_level_keys_give_organisational_root():
    node = HierarchyNode.from_dict({0: {}, 5: {6: {}}})
    assert node.feature_index is None
    assert [c.feature_index for c in node.children] == [0, 5]


def test_explicit_form_with_id_alias_and_feature_id():
    data = {
        "feature_index": 0,
        "mutually_exclusive_children": True,
        "scale_children_by_parent": True,
        "id": "animal",
        "children": [{"feature_index": 1, "feature_id": "dog"}, {"feature_index": 2}],
    }
    node = HierarchyNode.from_dict(data)
    assert node.feature_id == "animal" and node.children[0].feature_id == "dog"
    assert node.mutually_exclusive_children and node.scale_children_by_parent
    assert HierarchyNode.from_dict(node.to_dict()) == node


def test_explicit_organisational_node():
    node = HierarchyNode.from_dict({"feature_index": None, "children": [{"feature_index": 3}]})
    assert node.feature_index is None and node.children[0].feature_index == 3


@pytest.mark.parametrize(
    "bad", [{"feature_index": 0, "kids": []}, {"zero": {}}, {0: {"colour": "red"}}, {0: [1, 2]}]
)
def test_from_dict_rejects_malformed(bad):
    with pytest.raises((ValueError, TypeError)):
        HierarchyNode.from_dict(bad)


def test_get_all_feature_indices_skips_organisational_nodes():
    tree = HierarchyNode(None, [HierarchyNode(4, [leaf(7)]), HierarchyNode(None, [leaf(9)])])
    assert sorted(tree.get_all_feature_indices()) == [4, 7, 9]


def test_repr_marks_mutual_exclusion_and_rescaling():
    tree = HierarchyNode(0, [leaf(1), leaf(2)], mutually_exclusive_children=True, scale_children_by_parent=True)
    text = repr(tree)
    assert "0 xR" in text and "\n    1" in text and "\n    2" in text
    assert " x" not in repr(HierarchyNode(0, [leaf(1)]))


def test_validate_accepts_a_tree():
    HierarchyNode(0, [HierarchyNode(None, [leaf(1), leaf(2)]), leaf(3)]).validate()


def test_validate_rejects_cycles():
    a = HierarchyNode(0)
    b = HierarchyNode(1, [a])
    a.children.append(b)
    with pytest.raises(ValueError, match="cycle"):
        a.validate()
    selfish = HierarchyNode(5)
    selfish.children.append(selfish)
    with pytest.raises(ValueError, match="cycle"):
        selfish.validate()
    deep = HierarchyNode(0)
    tail = deep
    for i in range(1, 6):
        nxt = HierarchyNode(i)
        tail.children.append(nxt)
        tail = nxt
    tail.children.append(deep)
    with pytest.raises(ValueError, match="cycle"):
        deep.validate()


def test_validate_rejects_node_under_two_parents():
    shared = leaf(3)
    tree = HierarchyNode(0, [HierarchyNode(1, [shared]), HierarchyNode(2, [shared])])
    with pytest.raises(ValueError, match="more than once"):
        tree.validate()


def test_validate_rejects_duplicate_index():
    with pytest.raises(ValueError, match="feature index 1 appears twice"):
        HierarchyNode(0, [leaf(1), HierarchyNode(2, [leaf(1)])]).validate()


def test_structural_equality():
    a = HierarchyNode(0, [leaf(1), leaf(2)], mutually_exclusive_children=True)
    b = HierarchyNode(0, [leaf(1), leaf(2)], mutually_exclusive_children=True)
    assert a == b and a is not b
    assert a != HierarchyNode(0, [leaf(1), leaf(2)])
    assert a != HierarchyNode(0, [leaf(2), leaf(1)], mutually_exclusive_children=True)
    assert a != HierarchyNode(0, [leaf(1), leaf(2)], mutually_exclusive_children=True, feature_id="x")
    assert a != "not a node"
