"""A deliberately naive dense sampler written straight from the reference semantics.

Used by the tests as an independent oracle: it draws the whole ``[B, F]`` firing pattern
(independent, full-matrix copula or low-rank copula), the magnitudes, then applies a
hierarchy level by level with Python loops over levels and groups (gating, rescaling,
mutual exclusion before the siblings' own gating), then a ReLU.
"""

from __future__ import annotations

import math

import torch

from synthsae.synthetic.hierarchy.node import HierarchyNode


def _levels(roots: list[HierarchyNode]) -> list[list[tuple[HierarchyNode, int, bool]]]:
    """Per tree level: (node, effective parent feature or -1, direct parent's rescale flag)."""
    out = []
    frontier = [(r, -1, False) for r in roots]
    while frontier:
        out.append(frontier)
        nxt = []
        for node, eff, _ in frontier:
            below = node.feature_index if node.feature_index is not None else eff
            nxt += [(c, below, node.scale_children_by_parent) for c in node.children]
        frontier = nxt
    return out


def apply_hierarchy_dense(
    acts: torch.Tensor, roots: list[HierarchyNode], mean: torch.Tensor | None = None, generator=None
) -> torch.Tensor:
    """Level-by-level application exactly as described in the reference semantics."""
    acts = acts.clone()
    for level in _levels(roots):
        for node, eff, rescale in level:  # gating of this level's features
            f = node.feature_index
            if f is None or eff < 0:
                continue
            parent = acts[:, eff]
            if rescale:
                acts[:, f] = torch.where(parent > 0, acts[:, f] * parent / mean[eff], torch.zeros_like(parent))
            else:
                acts[:, f] = acts[:, f] * (parent > 0)
        for node, _, _ in level:  # mutual exclusion of groups whose parent node is at this level
            members = [c.feature_index for c in node.children if c.feature_index is not None]
            if not node.mutually_exclusive_children or len(members) < 2:
                continue
            rows = acts[:, node.feature_index] > 0 if node.feature_index is not None else torch.ones(
                acts.shape[0], dtype=torch.bool
            )
            sib = acts[:, members]
            active = sib > 0
            scores = torch.rand(sib.shape, generator=generator).masked_fill(~active, -1.0)
            winner = scores.argmax(dim=1)
            keep = torch.zeros_like(active)
            keep[torch.arange(sib.shape[0]), winner] = True
            apply = rows & (active.sum(1) > 1)
            new = torch.where(apply[:, None] & active & ~keep, torch.zeros_like(sib), sib)
            acts[:, members] = new
    return acts


def dense_sample(
    batch_size: int,
    probs: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    roots: list[HierarchyNode] | None = None,
    factor: torch.Tensor | None = None,
    diag: torch.Tensor | None = None,
    corr: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The whole reference pipeline on dense tensors (float64 internally)."""
    f = probs.numel()
    p = probs.double()
    t = math.sqrt(2.0) * torch.erfinv(1.0 - 2.0 * p)
    if factor is not None:
        eps = torch.randn(batch_size, factor.shape[1], generator=generator, dtype=torch.float64)
        z = eps @ factor.double().T + torch.randn(batch_size, f, generator=generator, dtype=torch.float64) * diag.double().sqrt()
        fired = z > t
    elif corr is not None:
        chol = torch.linalg.cholesky(corr.double())
        fired = torch.randn(batch_size, f, generator=generator, dtype=torch.float64) @ chol.T > t
    else:
        fired = torch.rand(batch_size, f, generator=generator, dtype=torch.float64) < p
    mags = torch.relu(mean.double() + std.double() * torch.randn(batch_size, f, generator=generator, dtype=torch.float64))
    acts = torch.where(fired, mags, torch.zeros_like(mags))
    if roots:
        acts = torch.relu(apply_hierarchy_dense(acts, roots, mean.double(), generator))
    return acts
