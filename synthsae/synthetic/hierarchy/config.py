"""Settings for generating a random feature hierarchy (:func:`generate_hierarchy`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        if isinstance(self.branching_factor, list):
            self.branching_factor = tuple(self.branching_factor)  # type: ignore[assignment]
        if not _is_int(self.total_root_nodes) or self.total_root_nodes <= 0:
            raise ValueError(f"total_root_nodes must be an int > 0, got {self.total_root_nodes!r}")
        bf = self.branching_factor
        if isinstance(bf, tuple):
            if len(bf) != 2 or not all(_is_int(b) for b in bf):
                raise ValueError(f"branching_factor must be an int or a (min, max) pair of ints, got {bf!r}")
            if bf[0] < 2 or bf[0] > bf[1]:
                raise ValueError(f"branching_factor range must satisfy 2 <= min <= max, got {bf!r}")
        elif not _is_int(bf) or bf < 2:
            raise ValueError(f"branching_factor must be an int >= 2 or a (min, max) pair, got {bf!r}")
        if not _is_int(self.max_depth) or self.max_depth < 1:
            raise ValueError(f"max_depth must be an int >= 1, got {self.max_depth!r}")
        portion = self.mutually_exclusive_portion
        if isinstance(portion, bool) or not isinstance(portion, (int, float)) or not 0.0 <= portion <= 1.0:
            raise ValueError(f"mutually_exclusive_portion must be in [0, 1], got {portion!r}")
        if not _is_int(self.mutually_exclusive_min_depth) or self.mutually_exclusive_min_depth < 0:
            raise ValueError(
                f"mutually_exclusive_min_depth must be an int >= 0, got {self.mutually_exclusive_min_depth!r}"
            )
        top = self.mutually_exclusive_max_depth
        if top is not None and (not _is_int(top) or top < self.mutually_exclusive_min_depth):
            raise ValueError(
                f"mutually_exclusive_max_depth must be None or an int >= mutually_exclusive_min_depth "
                f"({self.mutually_exclusive_min_depth}), got {top!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (a branching range becomes a list)."""
        out = asdict(self)
        if isinstance(self.branching_factor, tuple):
            out["branching_factor"] = list(self.branching_factor)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HierarchyConfig:
        """Inverse of :meth:`to_dict` (unknown keys raise ``ValueError``)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown HierarchyConfig key(s) {unknown}; expected among {sorted(known)}")
        values = dict(d)
        if isinstance(values.get("branching_factor"), list):
            values["branching_factor"] = tuple(values["branching_factor"])
        return cls(**values)
