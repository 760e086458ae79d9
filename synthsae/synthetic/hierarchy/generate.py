"""Random forests of features laid out breadth-first (:func:`generate_hierarchy`)."""

from __future__ import annotations

import random

from synthsae.config_values import check_int
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
from synthsae.synthetic.hierarchy.modifier import hierarchy_modifier
from synthsae.synthetic.hierarchy.node import HierarchyNode


class _Draft:
    """A node under construction (children are only known at the end)."""

    __slots__ = ("index", "depth", "children", "is_parent", "exclusive")

    def __init__(self, index: int, depth: int) -> None:
        self.index = index
        self.depth = depth
        self.children: list[_Draft] = []
        self.is_parent = False
        self.exclusive = False


def generate_hierarchy(num_features: int, config: HierarchyConfig, seed: int | None = None) -> Hierarchy:
    """Build a forest over the features ``0..num_features-1``.

    Indices are handed out breadth-first over the whole forest: the roots take
    ``0..R-1``, then every depth-1 node, then every depth-2 node, and so on, until the
    leaves at ``config.max_depth`` or until the features run out (features left over
    stay outside the hierarchy). Randomness (branching ranges, choice of mutually
    exclusive parents) comes from ``random.Random(seed)``.

    Mutual exclusion: parents with ``mutually_exclusive_min_depth <= depth <=
    mutually_exclusive_max_depth`` and at least 2 children are eligible;
    ``int(eligible * mutually_exclusive_portion)`` of them are picked at random.
    With ``scale_children_by_parent`` every node created as a parent gets the flag.
    """
    num_features = check_int("num_features", num_features, at_least=1)
    if not isinstance(config, HierarchyConfig):
        raise TypeError(f"config must be a HierarchyConfig, got {type(config).__name__}")
    config.check_fits("config.total_root_nodes", num_features)
    rng = random.Random(seed)
    next_index = 0
    roots: list[_Draft] = []
    for _ in range(config.total_root_nodes):
        if next_index >= num_features:
            break
        roots.append(_Draft(next_index, 0))
        next_index += 1

    order: list[_Draft] = list(roots)  # every node, breadth-first
    level = list(roots)
    while level and next_index < num_features:
        following: list[_Draft] = []
        for node in level:
            if node.depth >= config.max_depth or next_index >= num_features:
                continue
            bf = config.branching_factor
            count = rng.randint(bf[0], bf[1]) if isinstance(bf, tuple) else bf
            for _ in range(count):
                if next_index >= num_features:
                    break
                child = _Draft(next_index, node.depth + 1)
                next_index += 1
                node.children.append(child)
                following.append(child)
        order.extend(following)
        level = following
    parents = [node for node in order if node.depth < config.max_depth]
    for node in parents:
        node.is_parent = True

    top = config.mutually_exclusive_max_depth
    eligible = [
        p
        for p in parents
        if len(p.children) >= 2
        and p.depth >= config.mutually_exclusive_min_depth
        and (top is None or p.depth <= top)
    ]
    for p in rng.sample(eligible, int(len(eligible) * config.mutually_exclusive_portion)):
        p.exclusive = True

    built: dict[int, HierarchyNode] = {}
    for draft in reversed(order):  # children before their parents
        built[draft.index] = HierarchyNode(
            feature_index=draft.index,
            children=[built[c.index] for c in draft.children],
            mutually_exclusive_children=draft.exclusive,
            scale_children_by_parent=config.scale_children_by_parent and draft.is_parent,
        )
    nodes = [built[r.index] for r in roots]
    return Hierarchy(roots=nodes, modifier=hierarchy_modifier(nodes))
