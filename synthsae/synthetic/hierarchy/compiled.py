"""A hierarchy forest flattened into per-feature index tensors.

The samplers and the hierarchy modifier never walk node objects on the hot path.
They use a :class:`CompiledHierarchy`, built once from the forest:

* ``eff_parent[f]``: the nearest ancestor of feature ``f`` that is itself a feature
  (organisational nodes are skipped), or -1;
* ``level[f]``: the tree depth of ``f``'s node (organisational nodes count), -1 outside;
* ``depth[f]``: the number of feature ancestors of ``f`` (0 for "free" features);
* ``rescale[f]``: the ``scale_children_by_parent`` flag of ``f``'s *direct* parent node;
* ``me_group[f]``: the mutually exclusive group of ``f`` or -1; ``group_parent[g]`` is
  the feature of the node that defines group ``g``, or -1 for an organisational node;
* ``child_ptr`` / ``child_idx``: compressed rows listing, for every feature, the features
  whose effective parent it is, members of one group next to each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from synthsae.synthetic.hierarchy.node import HierarchyNode


def check_forest(roots: Sequence[HierarchyNode]) -> None:
    """Raise ``ValueError`` unless ``roots`` is a proper forest.

    Rejected: a node that is its own ancestor (cycle), a node object reached twice
    (a node under two parents, or a root repeated), and a feature index used by two
    nodes (within one tree or across trees).
    """
    seen_nodes: dict[int, int] = {}
    index_owner: dict[int, int] = {}
    for tree, root in enumerate(roots):
        if not isinstance(root, HierarchyNode):
            raise TypeError(f"hierarchy roots must be HierarchyNode objects, got {type(root).__name__}: {root!r}")
        # iterative depth-first walk keeping the current path to detect cycles
        on_path: set[int] = set()
        stack: list[tuple[HierarchyNode, bool]] = [(root, True)]
        while stack:
            node, entering = stack.pop()
            if not entering:
                on_path.discard(id(node))
                continue
            if id(node) in on_path:
                raise ValueError(f"hierarchy has a cycle: node {node._label()} is its own ancestor")
            if id(node) in seen_nodes:
                raise ValueError(
                    f"hierarchy node {node._label()} appears more than once (a node may have only one parent)"
                )
            seen_nodes[id(node)] = tree
            if node.feature_index is not None:
                other = index_owner.get(node.feature_index)
                if other is not None:
                    where = "twice in one tree" if other == tree else f"in more than one tree (roots {other} and {tree})"
                    raise ValueError(f"feature index {node.feature_index} appears {where} of the hierarchy")
                index_owner[node.feature_index] = tree
            on_path.add(id(node))
            stack.append((node, False))
            for child in reversed(node.children):
                if id(child) in on_path:
                    raise ValueError(f"hierarchy has a cycle: node {child._label()} is its own ancestor")
                stack.append((child, True))


def _as_roots(roots: Sequence[HierarchyNode] | HierarchyNode | None) -> list[HierarchyNode]:
    if roots is None:
        return []
    if isinstance(roots, HierarchyNode):
        return [roots]
    return list(roots)


@dataclass
class CompiledHierarchy:
    """Flat index tensors describing a validated forest (see the module docstring).

    Per-feature tensors have length ``size`` (largest feature index + 1); use
    :meth:`padded` for a longer feature range and :meth:`validate_against` to check
    that the forest fits a given number of features.
    """

    size: int
    in_forest: torch.Tensor  # [size] bool
    eff_parent: torch.Tensor  # [size] int64
    level: torch.Tensor  # [size] int64
    depth: torch.Tensor  # [size] int64
    rescale: torch.Tensor  # [size] bool
    me_group: torch.Tensor  # [size] int64
    group_parent: torch.Tensor  # [num_groups] int64
    child_ptr: torch.Tensor  # [size + 1] int64
    child_idx: torch.Tensor  # [num_children] int64
    max_depth: int
    num_groups: int

    @classmethod
    def from_roots(cls, roots: Sequence[HierarchyNode] | HierarchyNode | None) -> CompiledHierarchy:
        """Validate the forest (:func:`check_forest`) and flatten it."""
        roots = _as_roots(roots)
        check_forest(roots)
        nodes: list[tuple[HierarchyNode, int, int, bool]] = []  # node, level, eff parent, rescale flag
        frontier = [(root, 0, -1, False) for root in roots]
        while frontier:
            nodes.extend(frontier)
            nxt = []
            for node, lvl, eff, _ in frontier:
                below = node.feature_index if node.feature_index is not None else eff
                nxt.extend((child, lvl + 1, below, node.scale_children_by_parent) for child in node.children)
            frontier = nxt
        size = max((n.feature_index + 1 for n, *_ in nodes if n.feature_index is not None), default=0)
        eff_parent = [-1] * size
        level = [-1] * size
        rescale = [False] * size
        me_group = [-1] * size
        in_forest = [False] * size
        group_parent: list[int] = []
        for node, lvl, eff, flag in nodes:
            f = node.feature_index
            if f is not None:
                in_forest[f], eff_parent[f], level[f], rescale[f] = True, eff, lvl, flag
        for node, *_ in nodes:  # groups numbered in breadth-first order
            members = [c.feature_index for c in node.children if c.feature_index is not None]
            if node.mutually_exclusive_children and len(members) >= 2:
                for m in members:
                    me_group[m] = len(group_parent)
                group_parent.append(node.feature_index if node.feature_index is not None else -1)
        depth = [0] * size
        for node, *_ in nodes:  # breadth-first, so a parent's depth is known before its children
            f = node.feature_index
            if f is not None and eff_parent[f] >= 0:
                depth[f] = depth[eff_parent[f]] + 1
        kids: list[list[int]] = [[] for _ in range(size)]
        for f in range(size):
            if eff_parent[f] >= 0:
                kids[eff_parent[f]].append(f)
        ptr = [0]
        flat: list[int] = []
        for lst in kids:
            flat.extend(sorted(lst, key=lambda c: (me_group[c], c)))
            ptr.append(len(flat))
        long = torch.long
        return cls(
            size=size,
            in_forest=torch.tensor(in_forest, dtype=torch.bool),
            eff_parent=torch.tensor(eff_parent, dtype=long),
            level=torch.tensor(level, dtype=long),
            depth=torch.tensor(depth, dtype=long),
            rescale=torch.tensor(rescale, dtype=torch.bool),
            me_group=torch.tensor(me_group, dtype=long),
            group_parent=torch.tensor(group_parent, dtype=long),
            child_ptr=torch.tensor(ptr, dtype=long),
            child_idx=torch.tensor(flat, dtype=long),
            max_depth=max(depth, default=0),
            num_groups=len(group_parent),
        )

    # ------------------------------------------------------------ queries
    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def needs_rescale(self) -> bool:
        """Whether some feature is rescaled by its (feature) parent."""
        return bool((self.rescale & (self.eff_parent >= 0)).any())

    def rescaling_parents(self) -> torch.Tensor:
        """Sorted feature indices whose children are rescaled by them."""
        mask = self.rescale & (self.eff_parent >= 0)
        return torch.unique(self.eff_parent[mask])

    def feature_indices(self) -> torch.Tensor:
        """Sorted feature indices that appear in the forest."""
        return torch.nonzero(self.in_forest).flatten()

    def validate_against(self, num_features: int) -> None:
        """Raise ``ValueError`` if a feature index of the forest is ``>= num_features``."""
        if self.size > num_features:
            bad = self.feature_indices()
            bad = bad[bad >= num_features]
            raise ValueError(
                f"hierarchy uses feature index {int(bad.max())} (and {bad.numel()} index(es) >= num_features in "
                f"all), but num_features={num_features}; valid indices are 0..{num_features - 1}"
            )

    def padded(self, num_features: int) -> CompiledHierarchy:
        """The same hierarchy with per-feature tensors extended to ``num_features`` entries."""
        self.validate_against(num_features)
        extra = num_features - self.size
        if extra == 0:
            return self

        def pad(t: torch.Tensor, value: int | bool) -> torch.Tensor:
            return torch.cat([t, torch.full((extra,), value, dtype=t.dtype, device=t.device)])

        last = self.child_ptr[-1:].expand(extra)
        return CompiledHierarchy(
            size=num_features,
            in_forest=pad(self.in_forest, False),
            eff_parent=pad(self.eff_parent, -1),
            level=pad(self.level, -1),
            depth=pad(self.depth, 0),
            rescale=pad(self.rescale, False),
            me_group=pad(self.me_group, -1),
            group_parent=self.group_parent,
            child_ptr=torch.cat([self.child_ptr, last]),
            child_idx=self.child_idx,
            max_depth=self.max_depth,
            num_groups=self.num_groups,
        )

    def to(self, device: torch.device | str) -> CompiledHierarchy:
        """A copy with every tensor on ``device``."""
        moved = {
            name: (value.to(device) if isinstance(value, torch.Tensor) else value)
            for name, value in self.__dict__.items()
        }
        return CompiledHierarchy(**moved)

    @property
    def device(self) -> torch.device:
        return self.eff_parent.device
