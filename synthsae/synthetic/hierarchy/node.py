"""Tree nodes that describe parent/child relations between features.

A :class:`HierarchyNode` either stands for a feature (``feature_index`` set) or is
an "organisational" node (``feature_index=None``) that only groups its children.
A child feature can only be active when its nearest feature ancestor is active;
children of a node flagged ``mutually_exclusive_children`` compete so that at most
one of them stays active.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_OPTION_KEYS = {"mutually_exclusive_children", "scale_children_by_parent", "feature_id", "id"}
_EXPLICIT_KEYS = _OPTION_KEYS | {"feature_index", "children"}


def _check_feature_index(value: Any, what: str = "feature_index") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an int >= 0 or None, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < 0:
        raise ValueError(f"{what} must be >= 0 (or None for an organisational node), got {value}")
    return value


class HierarchyNode:
    """One node of a feature hierarchy.

    Args:
        feature_index: the feature this node stands for, or ``None`` for a node that
            only groups its children.
        children: child nodes (a child feature fires only when this node's nearest
            feature ancestor, itself included, is active).
        mutually_exclusive_children: at most one child feature stays active per sample;
            the survivor is drawn uniformly among the children that fired. Needs at
            least two children.
        scale_children_by_parent: a child's activation is multiplied by
            ``parent_activation / mean_firing_magnitude[parent]``.
        feature_id: an optional human-readable label.
    """

    def __init__(
        self,
        feature_index: int | None = None,
        children: Sequence[HierarchyNode] | None = None,
        mutually_exclusive_children: bool = False,
        scale_children_by_parent: bool = False,
        feature_id: str | None = None,
    ) -> None:
        self.feature_index = _check_feature_index(feature_index)
        self.children: list[HierarchyNode] = list(children) if children is not None else []
        for child in self.children:
            if not isinstance(child, HierarchyNode):
                raise TypeError(f"children must be HierarchyNode objects, got {type(child).__name__}: {child!r}")
        self.mutually_exclusive_children = bool(mutually_exclusive_children)
        self.scale_children_by_parent = bool(scale_children_by_parent)
        self.feature_id = feature_id
        if self.mutually_exclusive_children and len(self.children) < 2:
            raise ValueError(
                f"mutually_exclusive_children=True needs at least 2 children, node {self._label()} has "
                f"{len(self.children)}"
            )

    # ----------------------------------------------------------- building
    @classmethod
    def from_dict(cls, tree_dict: Mapping[Any, Any]) -> HierarchyNode:
        """Build a tree from a dictionary, in either of two forms.

        * Explicit: ``{"feature_index": 0, "children": [...], "mutually_exclusive_children":
          False, "scale_children_by_parent": False, "feature_id": None}`` (``"id"`` is
          accepted for ``"feature_id"``); every key is optional and each child is itself a
          dictionary (either form) or a node.
        * Nested: ``{0: {1: {3: {}}, 2: {}}}``, where each key is a feature index (an int
          or a string of digits) and its value holds that node's children (``{}`` or
          ``None`` for a leaf). A value may also carry the option keys above. A single
          top-level key gives that node; several give an organisational node over them.
        """
        if isinstance(tree_dict, HierarchyNode):
            return tree_dict
        if not isinstance(tree_dict, Mapping):
            raise TypeError(f"HierarchyNode.from_dict expects a dict, got {type(tree_dict).__name__}: {tree_dict!r}")
        if "feature_index" in tree_dict or "children" in tree_dict:
            return cls._from_explicit(tree_dict)
        options, kids = cls._split_nested(tree_dict)
        if len(kids) == 1 and not options:
            index, value = next(iter(kids.items()))
            return cls._from_nested(index, value)
        children = [cls._from_nested(index, value) for index, value in kids.items()]
        return cls(None, children, **options)

    @classmethod
    def _from_explicit(cls, data: Mapping[Any, Any]) -> HierarchyNode:
        unknown = [k for k in data if k not in _EXPLICIT_KEYS]
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown!r} in hierarchy node dict {dict(data)!r}; expected keys among "
                f"{sorted(_EXPLICIT_KEYS)}"
            )
        raw_children = data.get("children") or []
        if isinstance(raw_children, Mapping):
            raw_children = [cls.from_dict({k: v}) for k, v in raw_children.items()]
        children = [c if isinstance(c, HierarchyNode) else cls.from_dict(c) for c in raw_children]
        feature_id = data.get("feature_id", data.get("id"))
        return cls(
            feature_index=_check_feature_index(data.get("feature_index"), "feature_index"),
            children=children,
            mutually_exclusive_children=bool(data.get("mutually_exclusive_children", False)),
            scale_children_by_parent=bool(data.get("scale_children_by_parent", False)),
            feature_id=feature_id,
        )

    @staticmethod
    def _split_nested(data: Mapping[Any, Any]) -> tuple[dict[str, Any], dict[int, Any]]:
        options: dict[str, Any] = {}
        kids: dict[int, Any] = {}
        for key, value in data.items():
            if isinstance(key, str) and key in _OPTION_KEYS:
                options["feature_id" if key == "id" else key] = value
            elif isinstance(key, int) and not isinstance(key, bool):
                kids[_check_feature_index(key, "nested hierarchy key")] = value
            elif isinstance(key, str) and key.strip().isdigit():
                kids[int(key)] = value
            else:
                raise ValueError(
                    f"hierarchy dict key {key!r} is neither a feature index (int or digit string) nor one of "
                    f"{sorted(_EXPLICIT_KEYS)}"
                )
        return options, kids

    @classmethod
    def _from_nested(cls, index: int, value: Any) -> HierarchyNode:
        if value is None:
            return cls(index)
        if isinstance(value, HierarchyNode):
            raise TypeError(f"nested hierarchy value for feature {index} must be a dict of children, got a node")
        if not isinstance(value, Mapping):
            raise TypeError(
                f"nested hierarchy value for feature {index} must be a dict of children, got "
                f"{type(value).__name__}: {value!r}"
            )
        options, kids = cls._split_nested(value)
        children = [cls._from_nested(k, v) for k, v in kids.items()]
        return cls(index, children, **options)

    def to_dict(self) -> dict[str, Any]:
        """The explicit dictionary form (keys as in ``hierarchy.json``)."""
        return {
            "feature_index": self.feature_index,
            "mutually_exclusive_children": self.mutually_exclusive_children,
            "scale_children_by_parent": self.scale_children_by_parent,
            "feature_id": self.feature_id,
            "children": [child.to_dict() for child in self.children],
        }

    # ---------------------------------------------------------- traversal
    def iter_nodes(self) -> Iterator[HierarchyNode]:
        """Every node of the tree, depth first, each node object once (safe on cycles)."""
        seen: set[int] = set()
        stack = [self]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            stack.extend(reversed(node.children))

    def get_all_feature_indices(self) -> list[int]:
        """The feature indices of this node and all its descendants (depth-first order)."""
        return [n.feature_index for n in self.iter_nodes() if n.feature_index is not None]

    def validate(self) -> None:
        """Raise ``ValueError`` for a cycle, a node under two parents, or a repeated feature index."""
        from synthsae.synthetic.hierarchy.compiled import check_forest

        check_forest([self])

    # ------------------------------------------------------------- dunder
    def _label(self) -> str:
        name = "org" if self.feature_index is None else str(self.feature_index)
        if self.feature_id is not None:
            name += f" ({self.feature_id})"
        return name

    def _marks(self) -> str:
        return ("x" if self.mutually_exclusive_children else "") + ("R" if self.scale_children_by_parent else "")

    def __repr__(self) -> str:
        lines: list[str] = []
        seen: set[int] = set()
        stack: list[tuple[HierarchyNode, int]] = [(self, 1)]
        while stack:
            node, depth = stack.pop()
            marks = node._marks()
            if id(node) in seen:
                lines.append("  " * depth + node._label() + " (cycle)")
                continue
            seen.add(id(node))
            lines.append("  " * depth + node._label() + (f" {marks}" if marks else ""))
            stack.extend((child, depth + 1) for child in reversed(node.children))
        return "HierarchyNode(\n" + "\n".join(lines) + "\n)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HierarchyNode):
            return NotImplemented
        pairs = [(self, other)]
        seen: set[tuple[int, int]] = set()
        while pairs:
            a, b = pairs.pop()
            if (id(a), id(b)) in seen:
                continue
            seen.add((id(a), id(b)))
            if (
                a.feature_index != b.feature_index
                or a.mutually_exclusive_children != b.mutually_exclusive_children
                or a.scale_children_by_parent != b.scale_children_by_parent
                or a.feature_id != b.feature_id
                or len(a.children) != len(b.children)
            ):
                return False
            pairs.extend(zip(a.children, b.children))
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by structure
