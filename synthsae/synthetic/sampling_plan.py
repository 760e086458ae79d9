"""The sampling engine behind :class:`~synthsae.synthetic.ActivationGenerator`.

A :class:`SamplingPlan` is built once from a generator's settings (probabilities,
magnitudes, correlation, leading hierarchy) on one device, and draws batches as
:class:`~synthsae.synthetic.sparse_batch.SparseBatch` objects:

1. *Free* features (no feature ancestor in the fused hierarchy, or every feature when
   no hierarchy is fused) fire over all rows: independent Bernoulli draws via
   :class:`BucketedBernoulli`, the low-rank copula via :class:`LowRankThinning` given
   the row latents ``eps``, or, for a full correlation matrix, a dense copula draw.
2. Magnitudes ``relu(mean + std * N(0, 1))`` for the firings only; an entry whose
   magnitude is 0 is inactive and dropped.
3. Fused hierarchy, one feature depth at a time: the children of active entries become
   candidates and fire by the same rule (their own probability, or the copula
   probability given the same ``eps_r``); magnitudes; one uniform survivor per
   (row, mutually exclusive group) among active candidates; rescaling by the parent.
   Features that are inactive or lose mutual exclusion spawn no candidates.

This is the reference's distribution: there a child's firing is drawn independently
of its parent's (given ``eps`` for the low-rank copula) and only kept when the parent
survives, so drawing it only where the parent survived changes nothing. Mutual
exclusion in the reference looks at the siblings' sampled values before their own
gating; in rows where the parent is active that is the same set of candidates, and in
other rows every sibling is switched off anyway.
"""

from __future__ import annotations

import torch

from synthsae.synthetic.hierarchy.compiled import CompiledHierarchy
from synthsae.synthetic.sparse_batch import SparseBatch
from synthsae.synthetic.sparse_sampling import (
    BucketedBernoulli,
    LowRankThinning,
    augment_latents,
    augmented_factor,
    choose_one_per_group,
    choose_one_per_run,
    flat_nonzero,
    lowrank_fire_probs,
    normal_cdf,
    stable_argsort,
    take,
    uniform,
    upper_thresholds,
)


class SamplingPlan:
    """Precomputed state for sampling on one device (see the module docstring).

    ``dense_level_limit`` / ``dense_level_ratio``: a hierarchy level's copula values are
    computed as one ``[B, n_level]`` product when that has at most ``dense_level_limit``
    entries and at most ``dense_level_ratio`` times as many as there are candidates.

    Args:
        probs: ``[F]`` firing probabilities in (0, 1].
        mean, std: ``[F]`` magnitude parameters (compute dtype).
        factor, diag: low-rank correlation (``[F, R]`` and ``[F]``) or ``None``.
        cholesky: lower Cholesky factor ``[F, F]`` of a full correlation matrix, or ``None``.
        hierarchy: the compiled hierarchy to fuse (padded to ``F``), or ``None``.
    """

    dense_level_limit = 1 << 22
    dense_level_ratio = 60

    def __init__(
        self,
        probs: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        factor: torch.Tensor | None = None,
        diag: torch.Tensor | None = None,
        cholesky: torch.Tensor | None = None,
        hierarchy: CompiledHierarchy | None = None,
    ) -> None:
        self.num_features = probs.numel()
        self.device = probs.device
        self.probs = probs.to(torch.float64)
        self.thresholds = upper_thresholds(probs)
        self.mean = mean
        self.std = std
        self.has_std = bool((std != 0).any())
        self.factor = factor
        self.diag = diag
        self.cholesky = cholesky
        if cholesky is not None and hierarchy is not None:
            raise ValueError("a full correlation matrix cannot be fused with a hierarchy; apply the modifier instead")
        self.hierarchy = hierarchy
        if hierarchy is not None:
            self.free = torch.nonzero(hierarchy.eff_parent < 0).flatten()
            counts = hierarchy.child_ptr[1:] - hierarchy.child_ptr[:-1]
            self.child_count = counts
            self.has_children = counts > 0
            member = hierarchy.me_group[self.free]
            self.free_groups = bool((member >= 0).any())
        else:
            self.free = torch.arange(self.num_features, device=self.device)
            self.free_groups = False
        if factor is not None:
            self.factor_aug = augmented_factor(factor, diag, self.thresholds)
        self.blocks = self._child_blocks() if hierarchy is not None else None
        self.levels = self._level_factors() if hierarchy is not None and factor is not None else None
        self.level_kinds = self._level_kinds() if hierarchy is not None else []
        if factor is not None:
            self.free_sampler: BucketedBernoulli | LowRankThinning | None = LowRankThinning(
                factor[self.free], diag[self.free], self.thresholds[self.free]
            )
        elif cholesky is None:
            self.free_sampler = BucketedBernoulli(self.probs[self.free])
        else:
            self.free_sampler = None

    def _child_blocks(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor] | None:
        """Children of every parent as a padded ``[parents, width]`` block (CSR order).

        Returns ``(slot of each feature, child block, augmented factor block or None, valid mask)``,
        or ``None`` when padding would more than double the work (very uneven branching).
        """
        h = self.hierarchy
        assert h is not None
        parents = flat_nonzero(self.has_children)
        if parents.numel() == 0:
            return None
        counts = take(self.child_count, parents)
        width = int(counts.max())
        if width * parents.numel() > 2 * int(counts.sum()):
            return None
        slot = torch.full((self.num_features,), -1, dtype=torch.long, device=self.device)
        slot[parents] = torch.arange(parents.numel(), device=self.device)
        offsets = torch.arange(width, device=self.device)
        valid = offsets[None, :] < counts[:, None]
        index = (take(h.child_ptr, parents)[:, None] + offsets[None, :]).clamp(max=max(h.child_idx.numel() - 1, 0))
        block = torch.where(valid, h.child_idx[index], torch.zeros_like(index))
        fblock = None
        if self.factor is not None:
            fblock = self.factor_aug[block.flatten()].view(parents.numel(), width, -1)
        return slot, block, fblock, valid

    def _level_kinds(self) -> list[tuple[str, str]]:
        """Per depth: whether none, some or all of its features are in a mutually exclusive
        group, and whether none, some or all are rescaled by their parent (``""`` for none)."""
        h = self.hierarchy
        assert h is not None

        def kind(flags: torch.Tensor) -> str:
            return "" if not bool(flags.any()) else ("all" if bool(flags.all()) else "some")

        kinds = [("", "")]
        for d in range(1, h.max_depth + 1):
            at = h.depth == d
            kinds.append((kind(h.me_group[at] >= 0), kind(h.rescale[at])))
        return kinds

    def _level_factors(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Per hierarchy depth ``d >= 1``: its features' augmented factor rows ``[n_d, R + 1]``,
        and every feature's position within its depth."""
        h = self.hierarchy
        assert h is not None
        position = torch.zeros(self.num_features, dtype=torch.long, device=self.device)
        factors = [self.factor_aug[:0]]
        for d in range(1, h.max_depth + 1):
            feats = flat_nonzero(h.depth == d)
            position[feats] = torch.arange(feats.numel(), device=self.device)
            factors.append(take(self.factor_aug, feats))
        return position, factors

    def _children_values(
        self, prow: torch.Tensor, slot: torch.Tensor, ccol: torch.Tensor, depth: int, eps: torch.Tensor
    ) -> torch.Tensor:
        """``v`` (fire with probability ``Phi(v)``) for every child slot of the given parents.

        Either a dense product of all rows with this depth's features followed by a gather
        (cheaper while ``B * n_depth`` is small next to the number of candidates), or
        per-parent block products.
        """
        assert self.blocks is not None and self.levels is not None
        fblock = self.blocks[2]
        assert fblock is not None
        position, factors = self.levels
        n_level = factors[depth].shape[0]
        batch = eps.shape[0]
        if batch * n_level <= min(self.dense_level_limit, self.dense_level_ratio * ccol.numel()):
            dense = torch.mm(eps, factors[depth].t()).view(-1)
            index = prow[:, None] * n_level + take(position, ccol).view(prow.numel(), -1)
            return take(dense, index.view(-1))
        return torch.bmm(take(fblock, slot), take(eps, prow).unsqueeze(2)).view(-1)

    # ---------------------------------------------------------------- pieces
    def _magnitudes(self, cols: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        vals = take(self.mean, cols)
        if self.has_std:
            noise = torch.randn(cols.numel(), generator=generator, device=self.device, dtype=vals.dtype)
            vals = noise.mul_(take(self.std, cols)).add_(vals)
        return vals.clamp_(min=0) if self.has_std else torch.relu(vals)

    def _fire_free(
        self, batch_size: int, eps: torch.Tensor | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cholesky is not None:  # dense copula, a block of rows at a time
            f = self.num_features
            step = max(1, (1 << 20) // f)
            chol_t = self.cholesky.t()
            t = self.thresholds.to(chol_t.dtype)
            found = []
            for start in range(0, batch_size, step):
                n = min(step, batch_size - start)
                z = torch.randn(n, f, generator=generator, device=self.device, dtype=chol_t.dtype) @ chol_t
                found.append(flat_nonzero(z > t).add_(start * f))
            fired = torch.cat(found) if found else torch.zeros(0, dtype=torch.long, device=self.device)
            rows = torch.div(fired, f, rounding_mode="floor")
            return rows, fired - rows * f
        if eps is not None:
            rows, local = self.free_sampler.sample(eps, generator)  # type: ignore[union-attr]
        else:
            rows, local = self.free_sampler.sample(batch_size, generator)  # type: ignore[union-attr, arg-type]
        return rows, take(self.free, local)

    def _fire_candidates(
        self, rows: torch.Tensor, cols: torch.Tensor, eps: torch.Tensor | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Indices of the (row, feature) candidates that fire."""
        if eps is not None:
            p = lowrank_fire_probs(take(eps, rows), take(self.factor_aug, cols))
        else:
            p = take(self.probs, cols)
        u = uniform(cols.numel(), generator, self.device)
        return flat_nonzero(u < p)

    # ---------------------------------------------------------------- sample
    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> SparseBatch:
        """One batch of active entries (values > 0), rows in ascending order."""
        eps = None
        if self.factor is not None:
            eps = torch.randn(
                batch_size, self.factor.shape[1], generator=generator, device=self.device, dtype=self.factor.dtype
            )
        rows, cols = self._fire_free(batch_size, eps, generator)
        if eps is not None:
            eps = augment_latents(eps)
        vals = self._magnitudes(cols, generator)
        on = flat_nonzero(vals > 0)
        rows, cols, vals = take(rows, on), take(cols, on), take(vals, on)
        h = self.hierarchy
        if h is not None and self.free_groups:
            group = take(h.me_group, cols)
            sel = flat_nonzero(group >= 0)
            winners = choose_one_per_group(take(rows, sel) * h.num_groups + take(group, sel), generator)
            keep = torch.ones(rows.numel(), dtype=torch.bool, device=self.device)
            keep.index_fill_(0, take(sel, flat_nonzero(~winners)), False)
            on = flat_nonzero(keep)
            rows, cols, vals = take(rows, on), take(cols, on), take(vals, on)
        parts = [(rows, cols, vals)]
        if h is not None:
            parts += self._descend(h, rows, cols, vals, eps, generator)
        rows = torch.cat([p[0] for p in parts])
        cols = torch.cat([p[1] for p in parts])
        vals = torch.cat([p[2] for p in parts])
        if rows.numel() > 1 and not bool((rows[1:] >= rows[:-1]).all()):  # dense draws come row-major
            order = stable_argsort(rows, batch_size)
            cols, vals = take(cols, order), take(vals, order)
        offsets = torch.zeros(batch_size + 1, dtype=torch.long, device=self.device)
        torch.cumsum(torch.bincount(rows, minlength=batch_size), 0, out=offsets[1:])
        return SparseBatch(offsets, cols, vals, self.num_features)

    def _descend(
        self,
        h: CompiledHierarchy,
        rows: torch.Tensor,
        cols: torch.Tensor,
        vals: torch.Tensor,
        eps: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Entries of the hierarchy below the given active free entries, depth by depth."""
        parts = []
        has = flat_nonzero(take(self.has_children, cols))
        prow, pcol, pval = take(rows, has), take(cols, has), take(vals, has)
        for depth in range(1, h.max_depth + 1):
            if pcol.numel() == 0:
                break
            parent, ccol = self._candidates(h, prow, pcol, eps, generator, depth)
            cval = self._magnitudes(ccol, generator)
            on = flat_nonzero(cval > 0)
            parent, ccol, cval = take(parent, on), take(ccol, on), take(cval, on)
            grouped, scaled = self.level_kinds[depth]
            if grouped:
                # candidates come parent by parent, each parent's children grouped: runs are contiguous
                group = take(h.me_group, ccol)
                if grouped == "all":
                    on = flat_nonzero(choose_one_per_run(parent * h.num_groups + group, generator))
                else:
                    sel = flat_nonzero(group >= 0)
                    winners = choose_one_per_run(take(parent, sel) * h.num_groups + take(group, sel), generator)
                    keep = torch.ones(ccol.numel(), dtype=torch.bool, device=self.device)
                    on = flat_nonzero(keep.index_fill_(0, take(sel, flat_nonzero(~winners)), False))
                parent, ccol, cval = take(parent, on), take(ccol, on), take(cval, on)
            if scaled:
                ratio = take(pval / take(self.mean, pcol), parent)
                cval = cval * ratio if scaled == "all" else torch.where(take(h.rescale, ccol), cval * ratio, cval)
            crow = take(prow, parent)
            parts.append((crow, ccol, cval))
            has = flat_nonzero(take(self.has_children, ccol))
            prow, pcol, pval = take(crow, has), take(ccol, has), take(cval, has)
        return parts

    def _candidates(
        self,
        h: CompiledHierarchy,
        prow: torch.Tensor,
        pcol: torch.Tensor,
        eps: torch.Tensor | None,
        generator: torch.Generator | None,
        depth: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(parent entry, feature)`` of the children (at ``depth``) of the given entries that fire."""
        if self.blocks is None:
            counts = take(self.child_count, pcol)
            total = int(counts.sum())
            first = take(h.child_ptr, pcol) - (torch.cumsum(counts, 0) - counts)
            parent = torch.repeat_interleave(torch.arange(pcol.numel(), device=self.device), counts, output_size=total)
            ccol = take(h.child_idx, torch.arange(total, device=self.device).add_(take(first, parent)))
            fired = self._fire_candidates(take(prow, parent), ccol, eps, generator)
            return take(parent, fired), take(ccol, fired)
        slot_of, block, _, valid = self.blocks
        slot = take(slot_of, pcol)
        width = block.shape[1]
        ccol = take(block, slot).view(-1)
        if eps is not None:
            p = normal_cdf(self._children_values(prow, slot, ccol, depth, eps))
        else:
            p = take(self.probs, ccol)
        u = uniform(ccol.numel(), generator, self.device)
        fire = u < p
        if not bool(valid.all()):
            fire &= take(valid, slot).view(-1)
        fired = flat_nonzero(fire)
        return torch.div(fired, width, rounding_mode="floor"), take(ccol, fired)
