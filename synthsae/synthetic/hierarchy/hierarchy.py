"""A forest of feature trees plus the modifier that enforces it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from synthsae.synthetic.hierarchy.compiled import CompiledHierarchy, check_forest
from synthsae.synthetic.hierarchy.node import HierarchyNode


@dataclass
class Hierarchy:
    """A feature forest and its activations modifier.

    Attributes:
        roots: the root nodes, one per tree.
        modifier: the callable applying the forest to activations (normally
            ``hierarchy_modifier(roots)``), or ``None``.
    """

    roots: list[HierarchyNode] = field(default_factory=list)
    modifier: Any = None

    @property
    def feature_indices_used(self) -> set[int]:
        """Every feature index that appears in the forest."""
        used: set[int] = set()
        for root in self.roots:
            used.update(root.get_all_feature_indices())
        return used

    def to_dict(self) -> dict[str, Any]:
        """``{"roots": [node, ...]}`` with node keys ``feature_index``,
        ``mutually_exclusive_children``, ``scale_children_by_parent``, ``feature_id``,
        ``children`` (the ``hierarchy.json`` layout)."""
        return {"roots": [root.to_dict() for root in self.roots]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hierarchy:
        """Rebuild the nodes (and their modifier) from :meth:`to_dict` output."""
        from synthsae.synthetic.hierarchy.modifier import hierarchy_modifier

        if not isinstance(d, dict) or "roots" not in d:
            raise ValueError("a hierarchy dict must have a 'roots' list")
        raw = d["roots"]
        if not isinstance(raw, list):
            raise ValueError(f"hierarchy 'roots' must be a list, got {type(raw).__name__}")
        roots = [HierarchyNode.from_dict(r) for r in raw]
        return cls(roots=roots, modifier=hierarchy_modifier(roots))

    def compute_probability_correction_factors(self, base_firing_probabilities: torch.Tensor) -> torch.Tensor:
        """Multipliers that offset the firings the hierarchy removes.

        For a feature with nearest feature ancestor ``P`` the factor is ``1 / p[P]``
        (``p`` = ``base_firing_probabilities``; nothing when ``P`` is missing or ``p[P] == 0``). Each
        member ``i`` of a mutually exclusive group is further multiplied by
        ``1 + max(0, sum of the other members' p) / p_parent``, where ``p_parent`` is
        the probability of the group's node (its nearest feature ancestor for an
        organisational node, 1 at the top), when that is > 0. Features outside the
        forest get 1. The result has ``base_firing_probabilities``'s dtype and device.
        """
        check_forest(self.roots)
        base = torch.as_tensor(base_firing_probabilities)
        h = CompiledHierarchy.from_roots(self.roots).to(base.device)
        if h.size > base.numel():
            raise ValueError(
                f"base_firing_probabilities has {base.numel()} entries but the hierarchy uses feature index {h.size - 1}"
            )
        p = base[: h.size]
        ones = torch.ones_like(p)
        parent = h.eff_parent
        has_parent = parent >= 0
        parent_prob = torch.where(has_parent, p[parent.clamp(min=0)], ones)
        factor = torch.where(h.in_forest & (parent_prob > 0), 1.0 / parent_prob, ones)
        if h.num_groups:
            member = h.me_group >= 0
            group = h.me_group[member]
            sums = torch.zeros(h.num_groups, dtype=p.dtype, device=p.device).index_add_(0, group, p[member])
            node_prob = parent_prob[member]
            others = torch.clamp(sums[group] - p[member], min=0)
            boost = torch.where(node_prob > 0, 1.0 + others / node_prob, torch.ones_like(node_prob))
            factor[member] = factor[member] * boost
        out = torch.ones_like(base)
        out[: h.size] = factor
        return out
