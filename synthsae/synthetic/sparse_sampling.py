"""Samplers whose cost follows the number of firings rather than batch x features.

* :func:`bernoulli_segment_positions`: the successes of independent Bernoulli trials
  laid out in segments, drawn as geometric gaps between successes.
* :class:`BucketedBernoulli`: a ``[batch, K]`` pattern of independent Bernoulli(rate_k)
  draws; features with similar rates share one segment (rate = the largest in the
  bucket) and candidates are thinned down to each feature's own rate.
* :class:`LowRankThinning`: the Gaussian-copula firing pattern of a low-rank
  correlation ``z = eps @ factor.T + eta * sqrt(diag)``, sampled exactly by thinning
  given the per-row latent ``eps`` (see the class docstring); its one dense step is a
  ``[features, R + 1] x [R + 1, batch]`` product compared with per-feature caps, done in
  blocks so that memory stays small.
* :func:`choose_one_per_run`: one uniformly random survivor per run of equal keys.

All randomness comes from an optional ``torch.Generator`` (else the global RNG).
"""

from __future__ import annotations

import math

import numpy as np
import torch

_SQRT2 = math.sqrt(2.0)


def normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Standard normal CDF, accurate in both tails."""
    return 0.5 * torch.erfc(-x / _SQRT2)


def upper_thresholds(probs: torch.Tensor) -> torch.Tensor:
    """``t = Phi^-1(1 - p)``: a standard normal exceeds ``t`` with probability ``p``."""
    p = probs.to(torch.float64)
    return -_SQRT2 * torch.erfinv(2.0 * p - 1.0)


def uniform(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` float32 uniforms in [0, 1): a test ``u < p`` is exact to 2**-24, the resolution
    of the reference's own Bernoulli draws."""
    return torch.rand(n, generator=generator, device=device)


def flat_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """Flat int64 indices of the ``True`` entries of a boolean tensor.

    On CPU this goes through NumPy, several times faster than ``torch.nonzero`` there.
    """
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.contiguous().numpy())).to(torch.long)
    return torch.nonzero(mask.reshape(-1)).flatten()


def take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[index]`` along the first dimension (``index_select``, much faster on CPU)."""
    return values.index_select(0, index)


def stable_argsort(keys: torch.Tensor, max_key: int) -> torch.Tensor:
    """Stable argsort of non-negative integer keys ``<= max_key`` (narrow dtypes sort faster)."""
    if max_key < 2**15:
        keys = keys.to(torch.int16)
    elif max_key < 2**31:
        keys = keys.to(torch.int32)
    return torch.argsort(keys, stable=True)


def bernoulli_segment_positions(
    sizes: torch.Tensor, rates: torch.Tensor, generator: torch.Generator | None = None, slack: float = 6.0
) -> torch.Tensor:
    """Successes of independent Bernoulli trials laid out in consecutive segments.

    Segment ``s`` covers positions ``[sum(sizes[:s]), sum(sizes[:s + 1]))``, each a trial
    succeeding with probability ``rates[s]``. The gaps between successes are geometric,
    ``floor(log U / log(1 - q))``, so a segment costs about ``sizes[s] * rates[s] + slack *
    sd + 8`` draws. When those draws end before the segment does (probability about
    ``1e-9`` per segment with the default slack) the rest of the segment is sampled by
    another round.

    Returns the sorted int64 positions of the successes.
    """
    device = sizes.device
    sizes = sizes.to(torch.long)
    rates = rates.to(device=device, dtype=torch.float64)
    ends_all = torch.cumsum(sizes, 0)
    start = ends_all - sizes  # first position still to be sampled, per segment
    live = flat_nonzero((rates > 0) & (sizes > 0))
    found: list[torch.Tensor] = []
    while live.numel():
        first, limit, q = take(start, live), take(ends_all, live), take(rates, live)
        n = limit - first
        mean = n.to(torch.float64) * q
        extra = torch.ceil(mean + slack * torch.sqrt(mean * (1.0 - q)) + 8.0)
        m = torch.minimum(extra.clamp(max=2.0**62).to(torch.long), n + 1)
        total = int(m.sum())
        # steps between successes: 1 + geometric, capped (a larger step leaves the segment anyway)
        steps = torch.rand(total, dtype=torch.float64, generator=generator, device=device)
        inv_log = torch.repeat_interleave(1.0 / torch.log1p(-q), m, output_size=total)
        steps = torch.log1p(steps.neg_()).mul_(inv_log).floor_()
        steps = steps.clamp_(max=float(n.max()) + 1.0).add_(1.0)
        csum = torch.cumsum(steps, 0)  # exact integers in float64
        last = torch.cumsum(m, 0) - 1
        before = torch.cat([csum.new_zeros(1), take(csum, last[:-1])])
        shift = (first.to(torch.float64) - before - 1.0).repeat_interleave(m, output_size=total)
        pos = csum.add_(shift)
        keep = flat_nonzero(pos < limit.to(torch.float64).repeat_interleave(m, output_size=total))
        found.append(take(pos, keep).to(torch.long))
        reached = take(pos, last).to(torch.long)
        short = reached < limit - 1
        if not bool(short.any()):
            break
        live = live[short]
        start[live] = reached[short] + 1
    if not found:
        return torch.zeros(0, dtype=torch.long, device=device)
    if len(found) == 1:
        return found[0]
    return torch.sort(torch.cat(found)).values


class BucketedBernoulli:
    """Sparse sampler of a ``[batch, K]`` pattern of independent Bernoulli(``rates``).

    Features are sorted by decreasing rate and grouped into buckets whose rates lie
    within a factor ``ratio``. A bucket is one segment of ``batch * K_b`` trials at its
    largest rate; each candidate is then kept with probability ``rate / bucket_rate``
    (>= ``1 / ratio``), so the cost is at most ``ratio`` times the expected number of
    firings. Rates of 0 never fire.

    Buckets at rates of ``dense_rate`` or more are drawn instead as a plain ``[batch, K]``
    block of uniforms compared with each feature's rate: when at least one trial in eight
    succeeds, one float32 uniform per trial is cheaper than a geometric gap per success.
    """

    def __init__(self, rates: torch.Tensor, ratio: float = 2.0, dense_rate: float = 0.125) -> None:
        rates = rates.to(torch.float64).flatten()
        if bool(((rates < 0) | (rates > 1) | torch.isnan(rates)).any()):
            raise ValueError("BucketedBernoulli rates must lie in [0, 1]")
        order = torch.argsort(rates, descending=True, stable=True)
        live = int((rates > 0).sum())
        self.members = order[:live]  # feature of each slot
        self.slot_rate = take(rates, self.members)
        bucket = torch.floor(-torch.log(self.slot_rate) / math.log(ratio))
        _, counts = torch.unique_consecutive(bucket, return_counts=True)
        self.bucket_size = counts.to(torch.long)
        first = torch.cumsum(self.bucket_size, 0) - self.bucket_size
        self.bucket_rate = take(self.slot_rate, first)
        self.slot_bucket_rate = torch.repeat_interleave(self.bucket_rate, self.bucket_size)
        # buckets come in decreasing rate: the dense ones are a prefix of the slots
        n_dense = int((self.bucket_rate >= dense_rate).sum())
        self.dense_slots = int(self.bucket_size[:n_dense].sum())
        self.dense_rate = self.slot_rate[:self.dense_slots].to(torch.float32)
        self.sparse_size, self.sparse_rate = self.bucket_size[n_dense:], self.bucket_rate[n_dense:]
        self.uniform = bool((self.slot_rate == self.slot_bucket_rate)[self.dense_slots:].all())

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, features)`` of the firings of a ``[batch_size, K]`` pattern.

        Firings of the dense buckets come first, in row-major order; those of the others
        follow, feature by feature.
        """
        rows_parts, slot_parts = [], []
        k = self.dense_slots
        if k:
            u = torch.rand(batch_size, k, generator=generator, device=self.dense_rate.device)
            flat = flat_nonzero(u < self.dense_rate)
            rows = torch.div(flat, k, rounding_mode="floor")
            rows_parts.append(rows)
            slot_parts.append(flat - rows * k)
        if self.sparse_size.numel():
            pos = bernoulli_segment_positions(self.sparse_size * batch_size, self.sparse_rate, generator)
            slot = torch.div(pos, batch_size, rounding_mode="floor")
            rows = pos - slot * batch_size
            slot += k
            if not self.uniform:
                u = uniform(pos.numel(), generator, pos.device)
                keep = flat_nonzero(u.mul_(take(self.slot_bucket_rate, slot)) < take(self.slot_rate, slot))
                rows, slot = take(rows, keep), take(slot, keep)
            rows_parts.append(rows)
            slot_parts.append(slot)
        if len(rows_parts) != 1:
            empty = [torch.zeros(0, dtype=torch.long, device=self.members.device)]
            rows_parts = [torch.cat(rows_parts)] if rows_parts else empty
            slot_parts = [torch.cat(slot_parts)] if slot_parts else empty
        return rows_parts[0], take(self.members, slot_parts[0])


def augmented_factor(factor: torch.Tensor, diag: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``[factor / sqrt(d), -t / sqrt(d)]``: with latents ``[eps, 1]`` a row of this gives
    ``v = (eps . factor - t) / sqrt(d)``, and the feature fires with probability ``Phi(v)``.

    Thresholds are clipped to [-40, 40] (a probability of 1 gives ``-inf``), which changes
    no probability representable in floating point.
    """
    scale = diag.to(torch.float64).rsqrt()[:, None]
    t = thresholds.to(torch.float64).clamp(-40.0, 40.0)[:, None]
    return torch.cat([factor.to(torch.float64) * scale, -t * scale], dim=1).to(factor.dtype).contiguous()


def augment_latents(eps: torch.Tensor) -> torch.Tensor:
    """``[eps, 1]``, the latents matching :func:`augmented_factor`."""
    return torch.cat([eps, eps.new_ones(eps.shape[0], 1)], dim=1)


def lowrank_fire_probs(eps_aug_rows: torch.Tensor, factor_aug_rows: torch.Tensor) -> torch.Tensor:
    """``P(z > t | eps) = Phi(v)`` for (row, feature) pairs given their augmented rows."""
    v = torch.bmm(eps_aug_rows.unsqueeze(1), factor_aug_rows.unsqueeze(2)).view(-1)
    return normal_cdf(v)


def _exceeding(values: torch.Tensor, limits: torch.Tensor) -> torch.Tensor:
    """Flat indices where ``values [n, B] > limits [n, 1]``."""
    if values.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(values.numpy() > limits.numpy())).to(torch.long)
    return flat_nonzero(values > limits)


class LowRankThinning:
    """Exact sparse sampler for the low-rank Gaussian copula, given the row latents.

    Feature ``i`` fires in row ``r`` when ``s_ri + eta_ri * sqrt(d_i) > t_i`` with
    ``s_ri = eps_r . factor_i``; given ``eps`` this happens independently with
    probability ``p_ri = Phi(v_ri)``, ``v_ri = (s_ri - t_i) / sqrt(d_i)``. With a cap
    ``kappa_i`` per feature:

    * pairs with ``v_ri <= kappa_i`` have ``p_ri <= q_i = Phi(kappa_i)``: candidates are
      drawn at a rate ``q >= q_i`` (shared by a block of features with similar ``q_i``)
      and kept with probability ``p_ri / q``;
    * pairs with ``v_ri > kappa_i`` are left out of the candidates and drawn directly
      with probability ``p_ri``.

    Every pair therefore fires with probability exactly ``p_ri``, independently. The
    values ``v`` come from a matrix product over blocks of features (at most
    ``chunk_elements`` values at a time), which serves both to find the pairs above
    their cap and to read ``v`` at the candidates. The cap is ``s = k_i * ||factor_i||``
    with ``k_i`` chosen to minimise the expected work ``q_i + weight * P(s_ri > cap)``.
    """

    def __init__(
        self,
        factor: torch.Tensor,
        diag: torch.Tensor,
        thresholds: torch.Tensor,
        weight: float = 0.4,
        ratio: float = 1.25,
        chunk_elements: int = 1 << 18,
    ) -> None:
        f64 = torch.float64
        t = thresholds.to(f64).clamp(-40.0, 40.0)
        sqrt_diag = diag.to(f64).sqrt()
        sd = factor.to(f64).norm(dim=1)
        grid = torch.linspace(0.0, 6.0, 61, dtype=f64, device=factor.device)
        kappa = (sd[:, None] * grid[None, :] - t[:, None]) / sqrt_diag[:, None]
        q = normal_cdf(kappa)
        tail = torch.where(sd[:, None] > 0, normal_cdf(-grid)[None, :], torch.zeros_like(kappa))
        best = torch.argmin(q + weight * tail, dim=1, keepdim=True)
        kappa = kappa.gather(1, best).squeeze(1)
        q = q.gather(1, best).squeeze(1)
        # slots: features by decreasing candidate rate; blocks never straddle a rate bucket
        self.perm = torch.argsort(q, descending=True, stable=True)
        self.factor = take(augmented_factor(factor, diag, thresholds), self.perm)
        self.kappa = take(kappa, self.perm).to(factor.dtype)
        self.cand_rates = take(q, self.perm)
        self._kappa_col = self.kappa[:, None].contiguous()
        bucket = torch.where(self.cand_rates > 0, torch.floor(-torch.log(self.cand_rates) / math.log(ratio)), 1e9)
        _, counts = torch.unique_consecutive(bucket, return_counts=True)
        self._bucket_ends = torch.cumsum(counts, 0).tolist()
        self.chunk_elements = chunk_elements
        self._layouts: dict[int, tuple[list[tuple[int, int]], torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _layout(self, batch: int) -> tuple[list[tuple[int, int]], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Blocks of slots for a batch size, with their segment sizes, rates and per-slot rate."""
        if batch not in self._layouts:
            width = max(1, self.chunk_elements // max(batch, 1))
            chunks, start = [], 0
            for end in self._bucket_ends:
                chunks += [(a, min(a + width, end)) for a in range(start, end, width)]
                start = end
            device = self.factor.device
            firsts = torch.tensor([a for a, _ in chunks], dtype=torch.long, device=device)
            widths = torch.tensor([b - a for a, b in chunks], dtype=torch.long, device=device)
            rates = take(self.cand_rates, firsts) if chunks else self.cand_rates[:0]
            self._layouts[batch] = (chunks, widths * batch, rates, torch.repeat_interleave(rates, widths))
        return self._layouts[batch]

    def sample(
        self, eps: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, features)`` that fire, for row latents ``eps`` of shape ``[B, R]``."""
        batch = eps.shape[0]
        device = eps.device
        chunks, sizes, rates, slot_rate = self._layout(batch)
        if batch == 0 or not chunks:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty.clone()
        pos = bernoulli_segment_positions(sizes, rates, generator)
        bounds = torch.tensor([a * batch for a, _ in chunks[1:]], dtype=torch.long, device=device)
        counts = torch.diff(
            torch.searchsorted(pos, bounds), prepend=pos.new_zeros(1), append=pos.new_full((1,), pos.numel())
        )
        per_chunk = torch.split(pos, counts.tolist())
        eps_t = augment_latents(eps.to(self.factor.dtype)).t().contiguous()
        over_idx, over_val, cand_val = [], [], []
        for (a, b), cand in zip(chunks, per_chunk):
            v = torch.mm(self.factor[a:b], eps_t)
            over = _exceeding(v, self._kappa_col[a:b])
            v = v.view(-1)
            over_val.append(take(v, over))
            over_idx.append(over.add_(a * batch))
            cand_val.append(take(v, cand - a * batch))
        # pairs above their cap fire with probability p directly ...
        rows_a, slots_a = self._accept(torch.cat(over_idx), torch.cat(over_val), None, batch, generator)
        # ... candidates below it are thinned from their block's rate down to p
        value = torch.cat(cand_val)
        below = flat_nonzero(value <= take(self.kappa, torch.div(pos, batch, rounding_mode="floor")))
        rows_b, slots_b = self._accept(take(pos, below), take(value, below), slot_rate, batch, generator)
        return torch.cat([rows_a, rows_b]), take(self.perm, torch.cat([slots_a, slots_b]))

    @staticmethod
    def _accept(
        flat: torch.Tensor,
        v: torch.Tensor,
        slot_rate: torch.Tensor | None,
        batch: int,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        slot = torch.div(flat, batch, rounding_mode="floor")
        u = uniform(flat.numel(), generator, flat.device)
        if slot_rate is not None:
            u = u.mul_(take(slot_rate, slot))
        keep = flat_nonzero(u < normal_cdf(v))
        slot = take(slot, keep)
        return take(flat, keep) - slot * batch, slot


def choose_one_per_run(keys: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A mask with exactly one ``True`` per run of equal consecutive ``keys``.

    The survivor of each run is uniform among the run's members.
    """
    n = keys.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=keys.device)
    new = torch.ones(n, dtype=torch.bool, device=keys.device)
    torch.ne(keys[1:], keys[:-1], out=new[1:])
    starts = flat_nonzero(new)
    counts = torch.diff(starts, append=starts.new_full((1,), n))
    u = torch.rand(starts.numel(), dtype=torch.float64, generator=generator, device=keys.device)
    pick = torch.minimum(u.mul_(counts).to(torch.long), counts - 1)
    return torch.zeros(n, dtype=torch.bool, device=keys.device).index_fill_(0, starts + pick, True)


def choose_one_per_group(keys: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Like :func:`choose_one_per_run` for keys in any order (equal keys form one group)."""
    order = torch.sort(keys, stable=True).indices
    winners_sorted = choose_one_per_run(take(keys, order), generator)
    return torch.empty_like(winners_sorted).index_copy_(0, order, winners_sorted)
