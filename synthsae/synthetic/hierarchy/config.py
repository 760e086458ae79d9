"""Settings for generating a random feature hierarchy (:func:`generate_hierarchy`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from synthsae.config_values import check_bool, check_float, check_int, dataclass_values


@dataclass
class HierarchyConfig:
    """Shape of a generated forest.

    Attributes:
        total_root_nodes: number of trees (> 0).
        branching_factor: children per parent, or an inclusive ``(min, max)`` range drawn
            per parent (each >= 2, min <= max).
        max_depth: depth of the leaves; roots are at depth 0 (>= 1).
        mutually_exclusive_portion: fraction in [0, 1] of eligible parents whose children
            are mutually exclusive.
        mutually_exclusive_min_depth / mutually_exclusive_max_depth: depths of the parents
            eligible for mutual exclusion (``None``: no upper limit).
        compensate_probabilities: raise the firing probabilities of features inside the
            hierarchy to offset the firings it removes (see
            :meth:`Hierarchy.compute_probability_correction_factors`).
        scale_children_by_parent: children's activations are scaled by
            ``parent / mean magnitude of the parent``.
    """

    total_root_nodes: int = 100
    branching_factor: int | tuple[int, int] = 100
    max_depth: int = 2
    mutually_exclusive_portion: float = 0.0
    mutually_exclusive_min_depth: int = 0
    mutually_exclusive_max_depth: int | None = None
    compensate_probabilities: bool = False
    scale_children_by_parent: bool = False

    def __post_init__(self) -> None:
        self.total_root_nodes = check_int("total_root_nodes", self.total_root_nodes, at_least=1)
        bf = self.branching_factor
        if isinstance(bf, (list, tuple)):
            if len(bf) != 2:
                raise ValueError(f"branching_factor must be an int or a (min, max) pair of ints, got {bf!r}")
            bf = (check_int("branching_factor[0]", bf[0], at_least=2), check_int("branching_factor[1]", bf[1], at_least=2))
            if bf[0] > bf[1]:
                raise ValueError(f"branching_factor range must satisfy 2 <= min <= max, got {bf!r}")
        else:
            bf = check_int("branching_factor", bf, at_least=2)
        self.branching_factor = bf
        self.max_depth = check_int("max_depth", self.max_depth, at_least=1)
        self.mutually_exclusive_portion = check_float(
            "mutually_exclusive_portion", self.mutually_exclusive_portion, at_least=0.0, at_most=1.0)
        low = self.mutually_exclusive_min_depth = check_int(
            "mutually_exclusive_min_depth", self.mutually_exclusive_min_depth, at_least=0)
        self.mutually_exclusive_max_depth = check_int(
            "mutually_exclusive_max_depth", self.mutually_exclusive_max_depth, at_least=low, optional=True)
        check_bool("compensate_probabilities", self.compensate_probabilities)
        check_bool("scale_children_by_parent", self.scale_children_by_parent)

    def check_fits(self, name: str, num_features: int) -> None:
        """Refuse a forest whose roots alone use up ``num_features`` (no feature left for a child).

        Roots take the first indices; with ``total_root_nodes >= num_features`` every root
        would be childless and the "hierarchy" would change nothing. ``name`` is how the
        error calls ``total_root_nodes``.
        """
        if self.total_root_nodes >= num_features:
            raise ValueError(
                f"{name} ({self.total_root_nodes}) must be < num_features ({num_features}): the roots take the "
                "first features and the children the next ones, so this forest would have no child at all")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (a branching range becomes a list)."""
        out = asdict(self)
        if isinstance(self.branching_factor, tuple):
            out["branching_factor"] = list(self.branching_factor)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HierarchyConfig:
        """Inverse of :meth:`to_dict` (unknown keys raise ``ValueError``)."""
        return cls(**dataclass_values(cls, data))
