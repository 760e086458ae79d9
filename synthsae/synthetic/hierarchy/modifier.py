"""Apply a hierarchy to sampled activations: gating, rescaling and mutual exclusion.

For every feature ``c`` of the forest, with ``P`` its nearest feature ancestor:

* ``c`` is switched off in a sample where ``P`` ended up inactive (value <= 0);
* if ``c``'s direct parent node has ``scale_children_by_parent``, an active ``P``
  multiplies ``c`` by ``P's value / mean_firing_magnitudes[P]``;
* among siblings of a ``mutually_exclusive_children`` node, when several are active
  (> 0) on input, exactly one survives, chosen uniformly at random; the others become 0
  (and their descendants follow, since their parent is now inactive).

The work is done on the stored entries only, one tree level at a time, so a batch
costs O(entries x levels) whatever its number of features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from synthsae.synthetic.hierarchy.compiled import CompiledHierarchy
from synthsae.synthetic.hierarchy.node import HierarchyNode
from synthsae.synthetic.sparse_batch import SparseBatch
from synthsae.synthetic.sparse_sampling import choose_one_per_group


def check_rescaling_means(compiled: CompiledHierarchy, mean: torch.Tensor) -> None:
    """Raise ``ValueError`` if a parent that rescales its children has a mean magnitude <= 0."""
    parents = compiled.rescaling_parents().to(mean.device)
    if parents.numel() == 0:
        return
    bad = parents[~(mean[parents] > 0)]
    if bad.numel():
        f = int(bad[0])
        raise ValueError(
            f"scale_children_by_parent needs mean_firing_magnitudes > 0 for every rescaling parent, but feature "
            f"{f} has mean {float(mean[f])} ({bad.numel()} such parent(s))"
        )


def apply_to_entries(
    compiled: CompiledHierarchy,
    rows: torch.Tensor,
    cols: torch.Tensor,
    vals: torch.Tensor,
    num_features: int,
    mean: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply the hierarchy to the entries ``(rows, cols, vals)`` of a batch.

    ``(row, col)`` pairs must be distinct; missing pairs count as 0. Returns the
    entries sorted by ``(row, col)`` with the new values (zeros are kept, so the
    result aligns with the sorted input). ``mean`` (``[num_features]``) is needed when
    the hierarchy rescales.
    """
    h = compiled
    key = rows * num_features + cols
    key, order = torch.sort(key)
    rows, cols, vals = rows[order], cols[order], vals[order].clone()
    n = key.numel()
    if n == 0 or h.is_empty:
        return rows, cols, vals
    inside = cols < h.size
    c = torch.where(inside, cols, torch.zeros_like(cols))
    inside &= h.in_forest[c]
    depth = torch.where(inside, h.depth[c], -1)
    parent = torch.where(inside, h.eff_parent[c], -1)
    group = torch.where(inside, h.me_group[c], -1)
    rescale = inside & h.rescale[c]
    raw_active = vals > 0
    for d in range(h.max_depth + 1):
        at = depth == d
        if h.num_groups:
            sel = torch.nonzero(at & (group >= 0) & raw_active).flatten()
            if sel.numel():
                winners = choose_one_per_group(rows[sel] * h.num_groups + group[sel], generator)
                vals[sel[~winners]] = 0
        if d == 0:
            continue
        sel = torch.nonzero(at).flatten()
        if sel.numel() == 0:
            continue
        p = parent[sel]
        pkey = rows[sel] * num_features + p
        pos = torch.searchsorted(key, pkey).clamp_(max=n - 1)
        pval = torch.where(key[pos] == pkey, vals[pos], torch.zeros_like(vals[pos]))
        on = pval > 0
        new = torch.where(on, vals[sel], torch.zeros_like(vals[sel]))
        scaled = rescale[sel]
        if mean is not None and bool(scaled.any()):
            factor = torch.where(scaled & on, pval / mean[p].to(vals.dtype), torch.ones_like(pval))
            new = new * factor
        vals[sel] = new
    return rows, cols, vals


class HierarchyModifier:
    """The activations modifier of a hierarchy forest (see the module docstring).

    Call it as ``modifier(acts)`` or ``modifier(acts, activation_generator)``: ``acts``
    may be a dense ``[..., F]`` tensor, a 2-D sparse COO tensor or a
    :class:`~synthsae.synthetic.sparse_batch.SparseBatch`, and the result has the same
    form. The input is never modified. When the forest rescales children
    (``needs_generator``), the generator is required: its ``mean_firing_magnitudes``
    give the parents' means, and its seeded ``generator`` (if any) drives the random
    choices of mutual exclusion.
    """

    def __init__(self, roots: Sequence[HierarchyNode] | HierarchyNode | None = None) -> None:
        if roots is None:
            roots = []
        elif isinstance(roots, HierarchyNode):
            roots = [roots]
        self.roots: list[HierarchyNode] = list(roots)
        self.compiled = CompiledHierarchy.from_roots(self.roots)
        self.needs_generator: bool = self.compiled.needs_rescale
        self._by_device: dict[str, CompiledHierarchy] = {}

    def compiled_on(self, device: torch.device | str) -> CompiledHierarchy:
        """The compiled forest with its tensors on ``device`` (cached)."""
        key = str(torch.device(device))
        if key not in self._by_device:
            self._by_device[key] = self.compiled.to(device)
        return self._by_device[key]

    def __repr__(self) -> str:
        return f"HierarchyModifier(roots={len(self.roots)}, features={int(self.compiled.in_forest.sum())})"

    def _means(self, generator: Any, num_features: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
        if not self.needs_generator:
            return None
        if generator is None or not hasattr(generator, "mean_firing_magnitudes"):
            raise ValueError(
                "this hierarchy rescales children by their parent (scale_children_by_parent=True), so the modifier "
                "must be called as modifier(acts, activation_generator) to read mean_firing_magnitudes"
            )
        mean = torch.as_tensor(generator.mean_firing_magnitudes, device=device)
        mean = mean.to(torch.float64 if dtype == torch.float64 else torch.float32).expand(num_features)
        check_rescaling_means(self.compiled_on(device), mean)
        return mean

    @staticmethod
    def _rng(generator: Any, device: torch.device) -> torch.Generator | None:
        rng = getattr(generator, "generator", None)
        if isinstance(rng, torch.Generator) and rng.device.type == device.type:
            return rng
        return None

    def __call__(self, acts: Any, generator: Any = None) -> Any:
        """Apply the hierarchy to ``acts`` (dense tensor, sparse COO tensor or SparseBatch)."""
        if self.compiled.is_empty:
            return acts
        if isinstance(acts, SparseBatch):
            return self._apply_batch(acts, generator)
        if not isinstance(acts, torch.Tensor):
            raise TypeError(f"acts must be a torch.Tensor or SparseBatch, got {type(acts).__name__}")
        if acts.is_sparse:
            if acts.dim() != 2:
                raise ValueError(f"sparse acts must be 2-D [batch, features], got shape {tuple(acts.shape)}")
            out = self._apply_batch(SparseBatch.from_sparse_coo(acts), generator)
            return out.to_sparse_coo()
        if acts.dim() < 1:
            raise ValueError("acts must have a feature dimension")
        flat = acts.reshape(-1, acts.shape[-1])
        num_features = flat.shape[1]
        self.compiled.validate_against(num_features)
        h = self.compiled_on(flat.device)
        mean = self._means(generator, num_features, flat.device, flat.dtype)
        rows, cols = torch.nonzero(flat, as_tuple=True)
        rows, cols, vals = apply_to_entries(
            h, rows, cols, flat[rows, cols], num_features, mean, self._rng(generator, flat.device)
        )
        out = flat.clone()
        out[rows, cols] = vals
        return out.reshape(acts.shape)

    def _apply_batch(self, batch: SparseBatch, generator: Any) -> SparseBatch:
        self.compiled.validate_against(batch.num_features)
        h = self.compiled_on(batch.device)
        mean = self._means(generator, batch.num_features, batch.device, batch.dtype)
        rows, cols, vals = apply_to_entries(
            h,
            batch.row_ids(),
            batch.indices,
            batch.values,
            batch.num_features,
            mean,
            self._rng(generator, batch.device),
        )
        keep = vals != 0
        return SparseBatch.from_rows(rows[keep], cols[keep], vals[keep], batch.batch_size, batch.num_features)


def hierarchy_modifier(roots: Sequence[HierarchyNode] | HierarchyNode | None) -> HierarchyModifier:
    """Validate a forest and return its :class:`HierarchyModifier`.

    ``roots`` is one node or a sequence of nodes (``[]`` gives the identity).
    Raises ``ValueError`` for cycles, shared nodes or a feature used twice.
    """
    return HierarchyModifier(roots)
