import json

import pytest

from synthsae.synthetic import HierarchyConfig


def test_defaults():
    cfg = HierarchyConfig()
    assert cfg.total_root_nodes == 100 and cfg.branching_factor == 100 and cfg.max_depth == 2
    assert cfg.mutually_exclusive_portion == 0.0 and cfg.mutually_exclusive_min_depth == 0
    assert cfg.mutually_exclusive_max_depth is None
    assert not cfg.compensate_probabilities and not cfg.scale_children_by_parent


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"total_root_nodes": 0}, "total_root_nodes"),
        ({"branching_factor": 1}, "branching_factor"),
        ({"branching_factor": (1, 3)}, "branching_factor"),
        ({"branching_factor": (4, 3)}, "branching_factor"),
        ({"max_depth": 0}, "max_depth"),
        ({"mutually_exclusive_portion": 1.5}, "mutually_exclusive_portion"),
        ({"mutually_exclusive_portion": -0.1}, "mutually_exclusive_portion"),
        ({"mutually_exclusive_min_depth": -1}, "mutually_exclusive_min_depth"),
        ({"mutually_exclusive_min_depth": 2, "mutually_exclusive_max_depth": 1}, "mutually_exclusive_max_depth"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HierarchyConfig(**kwargs)


def test_dict_round_trip_with_tuple_branching():
    cfg = HierarchyConfig(total_root_nodes=3, branching_factor=(2, 5), mutually_exclusive_max_depth=2)
    data = cfg.to_dict()
    assert data["branching_factor"] == [2, 5]
    restored = HierarchyConfig.from_dict(json.loads(json.dumps(data)))
    assert restored == cfg and restored.branching_factor == (2, 5)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown"):
        HierarchyConfig.from_dict({"total_root_nodes": 2, "depth": 3})
