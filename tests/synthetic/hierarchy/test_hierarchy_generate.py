import json

import pytest

from synthsae.synthetic import (
    Hierarchy,
    HierarchyConfig,
    HierarchyModifier,
    HierarchyNode,
    SyntheticModelConfig,
    generate_hierarchy,
)


def depth_map(hierarchy: Hierarchy) -> dict[int, int]:
    out = {}
    frontier = [(r, 0) for r in hierarchy.roots]
    while frontier:
        nxt = []
        for node, d in frontier:
            out[node.feature_index] = d
            nxt += [(c, d + 1) for c in node.children]
        frontier = nxt
    return out


def all_nodes(hierarchy: Hierarchy):
    for root in hierarchy.roots:
        yield from root.iter_nodes()


def test_root_count_and_modifier():
    h = generate_hierarchy(100, HierarchyConfig(total_root_nodes=5, branching_factor=3, max_depth=1), seed=0)
    assert [r.feature_index for r in h.roots] == [0, 1, 2, 3, 4]
    assert isinstance(h.modifier, HierarchyModifier)
    assert h.feature_indices_used == set(range(20))


def test_synthsaebench_index_ranges():
    cfg = HierarchyConfig(
        total_root_nodes=128,
        branching_factor=4,
        max_depth=3,
        mutually_exclusive_portion=1.0,
        compensate_probabilities=True,
        scale_children_by_parent=True,
    )
    h = generate_hierarchy(16_384, cfg, seed=45)
    depths = depth_map(h)
    by_depth: dict[int, list[int]] = {}
    for f, d in depths.items():
        by_depth.setdefault(d, []).append(f)
    assert sorted(by_depth[0]) == list(range(0, 128))
    assert sorted(by_depth[1]) == list(range(128, 640))
    assert sorted(by_depth[2]) == list(range(640, 2688))
    assert sorted(by_depth[3]) == list(range(2688, 10880))
    assert len(h.feature_indices_used) == 10880
    parents = [n for n in all_nodes(h) if depths[n.feature_index] < 3]
    assert all(n.mutually_exclusive_children and n.scale_children_by_parent for n in parents)
    leaves = [n for n in all_nodes(h) if depths[n.feature_index] == 3]
    assert not any(n.scale_children_by_parent or n.mutually_exclusive_children for n in leaves)


@pytest.mark.parametrize("branching", [3, (2, 4)])
def test_indices_contiguous_by_depth(branching):
    h = generate_hierarchy(500, HierarchyConfig(7, branching, 3), seed=3)
    depths = depth_map(h)
    ordered = sorted(depths)
    assert ordered == list(range(len(ordered)))
    assert [depths[f] for f in ordered] == sorted(depths[f] for f in ordered)
    for node in all_nodes(h):  # children of a node are consecutive indices
        kids = [c.feature_index for c in node.children]
        assert kids == list(range(kids[0], kids[0] + len(kids))) if kids else True


def test_branching_range_respected():
    h = generate_hierarchy(10_000, HierarchyConfig(10, (2, 5), 2), seed=1)
    counts = [len(n.children) for n in all_nodes(h) if depth_map(h)[n.feature_index] < 2]
    assert min(counts) >= 2 and max(counts) <= 5 and len(set(counts)) > 1


def test_runs_out_of_features_mid_level_and_before_all_roots():
    h = generate_hierarchy(10, HierarchyConfig(3, 4, 2), seed=0)
    assert h.feature_indices_used == set(range(10))
    assert [len(r.children) for r in h.roots] == [4, 3, 0]
    h = generate_hierarchy(4, HierarchyConfig(3, 4, 2), seed=0)  # one feature left: one child
    assert [len(r.children) for r in h.roots] == [1, 0, 0]


@pytest.mark.parametrize(("roots", "num_features"), [(100, 16), (16, 16), (5, 2)])
def test_roots_that_use_up_every_feature_are_refused(roots, num_features):
    # the roots would take every feature and the forest would have no child at all (issue 12)
    with pytest.raises(ValueError, match=rf"total_root_nodes \({roots}\) must be < num_features \({num_features}\)"):
        generate_hierarchy(num_features, HierarchyConfig(roots, 4, 2), seed=0)
    with pytest.raises(ValueError, match=rf"hierarchy.total_root_nodes \({roots}\) must be < num_features"):
        SyntheticModelConfig(num_features=num_features, hidden_dim=4, hierarchy=HierarchyConfig(roots, 4, 2))


def test_mutually_exclusive_portion_and_depth_filters():
    cfg = HierarchyConfig(20, 3, 2, mutually_exclusive_portion=0.5)
    h = generate_hierarchy(1000, cfg, seed=0)
    parents = [n for n in all_nodes(h) if n.children]
    assert sum(n.mutually_exclusive_children for n in parents) == int(len(parents) * 0.5)

    cfg = HierarchyConfig(20, 3, 3, mutually_exclusive_portion=1.0, mutually_exclusive_min_depth=1,
                          mutually_exclusive_max_depth=1)
    h = generate_hierarchy(5000, cfg, seed=0)
    depths = depth_map(h)
    me_depths = {depths[n.feature_index] for n in all_nodes(h) if n.mutually_exclusive_children}
    assert me_depths == {1}


def test_seed_determinism():
    cfg = HierarchyConfig(10, (2, 4), 2, mutually_exclusive_portion=0.5)
    a = generate_hierarchy(300, cfg, seed=7)
    b = generate_hierarchy(300, cfg, seed=7)
    c = generate_hierarchy(300, cfg, seed=8)
    assert a.roots == b.roots
    assert a.roots != c.roots


def test_rescale_flag_on_all_parents_including_childless():
    h = generate_hierarchy(6, HierarchyConfig(3, 2, 2, scale_children_by_parent=True), seed=0)
    depths = depth_map(h)
    for node in all_nodes(h):
        assert node.scale_children_by_parent == (depths[node.feature_index] < 2)
    assert any(not n.children and n.scale_children_by_parent for n in all_nodes(h))


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_features"):
        generate_hierarchy(0, HierarchyConfig())
    with pytest.raises(TypeError, match="HierarchyConfig"):
        generate_hierarchy(10, {"total_root_nodes": 2})  # type: ignore[arg-type]


def test_hierarchy_dict_round_trip_uses_feature_id_keys():
    h = generate_hierarchy(40, HierarchyConfig(2, 3, 2, mutually_exclusive_portion=1.0), seed=0)
    h.roots[0].feature_id = "root zero"
    data = json.loads(json.dumps(h.to_dict()))
    assert set(data["roots"][0]) == {
        "feature_index", "mutually_exclusive_children", "scale_children_by_parent", "feature_id", "children"
    }
    restored = Hierarchy.from_dict(data)
    assert restored.roots == h.roots
    assert isinstance(restored.modifier, HierarchyModifier)
    assert restored.feature_indices_used == h.feature_indices_used


def test_hierarchy_from_dict_validates():
    bad = {"roots": [{"feature_index": 0, "children": [{"feature_index": 1}]}, {"feature_index": 1}]}
    with pytest.raises(ValueError, match="feature index 1 appears in more than one tree"):
        Hierarchy.from_dict(bad)
    with pytest.raises(ValueError, match="roots"):
        Hierarchy.from_dict({"trees": []})


def test_feature_indices_used():
    h = Hierarchy([HierarchyNode(3, [HierarchyNode(None, [HierarchyNode(8)])]), HierarchyNode(1)])
    assert h.feature_indices_used == {1, 3, 8}
