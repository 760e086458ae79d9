"""Empirical statistics of a :class:`SyntheticModel`: L0, firing rates, speed.

Used by ``synthsae sample``. Everything is accumulated from :class:`SparseBatch`
samples, so the cost is ``O(active features)`` per row plus an ``[F]`` counter. The
expected per-feature rates after the hierarchy are computed exactly (for independent
firings) by :func:`expected_firing_rates`.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from synthsae.synthetic.synthetic_model import SyntheticModel

__all__ = [
    "expected_firing_rates",
    "format_statistics",
    "hierarchy_summary",
    "sample_statistics",
    "configured_firing_rates",
]


def configured_firing_rates(model: SyntheticModel) -> torch.Tensor:
    """The rates the config asks for, ``[F]`` float64: the probabilities before the
    hierarchy compensation (which tries, not always successfully, to restore them)."""
    cfg = model.cfg
    if model.hierarchy is not None and cfg.hierarchy is not None and cfg.hierarchy.compensate_probabilities:
        return cfg.firing_probability.generate(cfg.num_features, seed=cfg.seed).double()
    return model.activation_generator.firing_probabilities.detach().double().cpu()


def _mean_inverse_count(q: np.ndarray) -> np.ndarray:
    """``E[1 / (1 + K_i)]`` for each member ``i``, ``K_i`` = number of the others that fire.

    With independent firings ``E[1/(1+K)] = integral_0^1 prod_{j != i} (1 - q_j + q_j t) dt``,
    a polynomial of degree ``len(q) - 1``: Gauss-Legendre quadrature is exact.
    """
    nodes, weights = np.polynomial.legendre.leggauss(len(q) // 2 + 1)
    t = 0.5 * (nodes + 1.0)  # on (0, 1), so every factor is > 0
    log_terms = np.log1p(q[:, None] * (t[None, :] - 1.0))  # [g, m]
    others = np.exp(log_terms.sum(axis=0)[None, :] - log_terms)  # [g, m]
    return others @ (0.5 * weights)


def expected_firing_rates(model: SyntheticModel) -> torch.Tensor:
    """Per-feature probability of a non-zero activation after the hierarchy, ``[F]`` float64.

    Exact for independent firings: a feature fires (with a magnitude > 0) with
    probability ``q = p * P(mean + std * N(0, 1) > 0)``; a child survives when its
    nearest feature ancestor does and, in a mutually exclusive group, wins the uniform
    draw among its firing siblings. With a correlation the marginals are unchanged but
    the joint firing is not, so the values are then an approximation.
    """
    ag = model.activation_generator
    p = ag.firing_probabilities.detach().double().cpu().numpy()
    mean = ag.mean_firing_magnitudes.detach().double().cpu().numpy()
    std = ag.std_firing_magnitudes.detach().double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, mean / np.where(std > 0, std, 1.0), np.where(mean > 0, np.inf, -np.inf))
    positive = 0.5 * (1.0 + np.vectorize(math.erf)(np.clip(z, -40, 40) / math.sqrt(2.0)))
    q = p * positive
    rates = q.copy()
    if model.hierarchy is None:
        return torch.from_numpy(rates)
    stack = [(root, 1.0, q[root.feature_index] if root.feature_index is not None else 1.0) for root in model.hierarchy.roots]
    while stack:
        node, above, own = stack.pop()
        here = above
        if node.feature_index is not None:
            here = above * own
            rates[node.feature_index] = here
        kids = [c for c in node.children if c.feature_index is not None]
        factors = {id(c): q[c.feature_index] for c in kids}
        if node.mutually_exclusive_children and len(kids) >= 2:
            qs = np.array([q[c.feature_index] for c in kids])
            for c, share in zip(kids, qs * _mean_inverse_count(qs)):
                factors[id(c)] = share
        stack.extend((c, here, factors.get(id(c), 1.0)) for c in node.children)
    return torch.from_numpy(rates)


def hierarchy_summary(model: SyntheticModel) -> dict[str, Any] | None:
    """Roots, features, levels and mutually exclusive groups of the model's forest."""
    if model.hierarchy is None:
        return None
    roots = list(model.hierarchy.roots)
    levels = 0
    me_groups = 0
    frontier = [(r, 1) for r in roots]
    while frontier:
        node, depth = frontier.pop()
        levels = max(levels, depth)
        if node.mutually_exclusive_children and len(node.children) >= 2:
            me_groups += 1
        frontier.extend((c, depth + 1) for c in node.children)
    return {
        "roots": len(roots),
        "features": len(model.hierarchy.feature_indices_used),
        "levels": levels,
        "mutually_exclusive_groups": me_groups,
    }


def _feature_row(name: str, index: int, expected: float, configured: float, counts: torch.Tensor, n: int) -> dict[str, Any]:
    empirical = float(counts[index]) / n
    se = math.sqrt(max(expected * (1.0 - expected), 0.0) / n)
    z = (empirical - expected) / se if se > 0 else 0.0
    return {
        "feature": name,
        "index": index,
        "configured": configured,
        "expected": expected,
        "empirical": empirical,
        "se": se,
        "z": z,
    }


def sample_statistics(model: SyntheticModel, batch_size: int = 1024, batches: int = 20) -> dict[str, Any]:
    """Draw ``batches`` batches and summarise them (a JSON-friendly dict)."""
    f = model.num_features
    counts = torch.zeros(f, dtype=torch.float64)
    l0_sum = 0.0
    l0_sq = 0.0
    sample_s = 0.0
    for _ in range(batches):
        start = time.perf_counter()
        _, feats = model.sample_with_sparse_features(batch_size)
        sample_s += time.perf_counter() - start
        fired = feats.values != 0
        counts += torch.bincount(feats.indices[fired].cpu(), minlength=f).double()
        per_row = torch.zeros(feats.batch_size, dtype=torch.float64)
        per_row.index_add_(0, feats.row_ids()[fired].cpu(), torch.ones(int(fired.sum()), dtype=torch.float64))
        l0_sum += float(per_row.sum())
        l0_sq += float(per_row.square().sum())
    n = batch_size * batches
    l0 = l0_sum / n
    l0_sd = math.sqrt(max(l0_sq / n - l0 * l0, 0.0))
    expected = expected_firing_rates(model)
    configured = configured_firing_rates(model)
    order = torch.argsort(expected, descending=True, stable=True)
    picks = [("most frequent", int(order[0])), ("median", int(order[f // 2])), ("rarest", int(order[-1]))]
    rows = [_feature_row(name, i, float(expected[i]), float(configured[i]), counts, n) for name, i in picks]
    se_all = (expected * (1 - expected) / n).sqrt().clamp(min=1e-12)
    z_all = (counts / n - expected) / se_all
    corr = model.cfg.correlation
    return {
        "num_features": f,
        "hidden_dim": model.hidden_dim,
        "seed": model.cfg.seed,
        "sampling_seed": model.sampling_seed,
        "samples": n,
        "batch_size": batch_size,
        "batches": batches,
        "l0_empirical": l0,
        "l0_se": l0_sd / math.sqrt(n),
        "l0_sd": l0_sd,
        "l0_expected": float(expected.sum()),
        "l0_configured": float(configured.sum()),
        "expected_is_exact": model.correlation_matrix is None,
        "l0_before_hierarchy": float(model.activation_generator.firing_probabilities.double().sum()),
        "features_off_by_4se": int((z_all.abs() > 4).sum()),
        "features": rows,
        "hierarchy": hierarchy_summary(model),
        "correlation": None if model.correlation_matrix is None else {
            "rank": int(model.correlation_matrix.correlation_factor.shape[1]),
            "scale": None if corr is None else corr.correlation_scale,
        },
        "sample_s": sample_s,
        "samples_per_s": n / sample_s if sample_s > 0 else float("inf"),
    }


def format_statistics(stats: dict[str, Any]) -> str:
    """A plain-text table of :func:`sample_statistics` output (plus source and build time)."""
    lines = [
        f"synthetic model: {stats.get('source', '?')} on {stats.get('device', '?')}",
        f"  features            {stats['num_features']:,}",
        f"  hidden dims         {stats['hidden_dim']:,}",
        f"  build seed          {stats['seed']}",
        f"  sampling seed       {stats['sampling_seed']}",
    ]
    if "build_s" in stats:
        lines.append(f"  build time          {stats['build_s']:.2f} s")
    lines += [
        f"  samples             {stats['samples']:,} ({stats['batches']} x {stats['batch_size']:,})",
        f"  sampling speed      {stats['samples_per_s']:,.0f} samples/s ({stats['sample_s']:.2f} s)",
        f"  true L0 empirical   {stats['l0_empirical']:.3f} +- {stats['l0_se']:.3f} (sd {stats['l0_sd']:.2f})",
        f"  true L0 expected    {stats['l0_expected']:.3f} (from the probabilities and the hierarchy"
        f"{'' if stats['expected_is_exact'] else ', ignoring the correlation'})",
        f"  true L0 configured  {stats['l0_configured']:.3f} (sum of the configured probabilities)",
        f"  L0 before hierarchy {stats['l0_before_hierarchy']:.3f} (sum of sampled probabilities)",
    ]
    h = stats["hierarchy"]
    if h is None:
        lines.append("  hierarchy           none")
    else:
        lines.append(
            f"  hierarchy           {h['roots']:,} roots, {h['features']:,} features, {h['levels']} levels, "
            f"{h['mutually_exclusive_groups']:,} mutually exclusive groups"
        )
    c = stats["correlation"]
    lines.append("  correlation         none" if c is None else f"  correlation         low rank {c['rank']}, scale {c['scale']}")
    lines.append(
        f"  rates off by >4 se  {stats['features_off_by_4se']:,} of {stats['num_features']:,} features "
        "(empirical vs expected)"
    )
    lines.append("")
    lines.append(f"  {'feature':<15}{'index':>7}{'configured':>12}{'expected':>11}{'empirical':>11}{'s.e.':>10}{'z':>7}")
    for row in stats["features"]:
        lines.append(
            f"  {row['feature']:<15}{row['index']:>7}{row['configured']:>12.5f}{row['expected']:>11.5f}"
            f"{row['empirical']:>11.5f}{row['se']:>10.5f}{row['z']:>7.2f}"
        )
    if "saved_to" in stats:
        lines.append(f"\n  saved to {stats['saved_to']}")
    return "\n".join(lines)
