"""Feature absorption: does a parent's latent go quiet when one of its children fires?

A child feature ``C`` only fires together with its parent ``P``, so an SAE can save a
latent per sample by letting ``C``'s latent write ``P + C`` and silencing ``P``'s latent
whenever ``C`` is present: ``C``'s latent has *absorbed* ``P`` (Chanin et al., "A is for
Absorption"). With the true features known this can be measured exactly.

Definitions (``d_j`` a decoder row, ``p`` the parent's true direction):

* **Pairs** are ``(P, C)`` with ``P`` the nearest *feature* ancestor of ``C``
  (organisational nodes are skipped), or the entries of a ``{parent: [children]}``
  mapping.
* **Parent latent**: for each parent, the latent with the largest ``|cos(d_j, p)|``
  (sign-agnostic like the MCC; ties go to the lowest index).
* A latent **fires** when it is non-zero; a true feature is **active** when its
  activation is positive.
* **Child-active samples** of a pair: both ``C`` and ``P`` are active.
  **Parent-only samples** of a parent: ``P`` is active and none of its children is.
* The parent direction is **carried** in a sample when some firing latent ``j``
  writes along ``+p`` strongly enough: ``sign(z_j) * cos(d_j, p) >= cos_threshold``.
* A child-active sample is **absorbed** when the parent latent does not fire and the
  parent direction is carried (necessarily by another latent). A silent parent latent
  with nothing carrying ``p`` is a plain miss, not absorption; a duplicate of the
  parent latent firing in its place counts as absorption.
* **Pair absorption rate** = absorbed / child-active samples. ``absorption_rate`` is
  its unweighted mean over the pairs with at least one child-active sample.
* Per parent, the samples where the parent and at least one of its children are active
  give ``parent_absorbed`` and the parent latent's recall there
  (``parent_recall_child_active``, mean over parents); its recall on parent-only
  samples is ``parent_recall_parent_only``. A large gap between the two, with a high
  absorption rate, is the signature of absorption.

Undefined means are NaN. Samples are judged in chunks (memory does not grow with
``num_samples``), vectorised over the active entries: nothing of size ``[B, F]``, no
``F x F`` matrix (the cosines are ``num_parents x d_sae``, built in parent chunks).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Union

import torch

from synthsae._progress import progress_bar
from synthsae._tensors import unit_rows
from synthsae.evals.eval_sae import (
    ActivationScalerLike,
    _check_inputs,
    _sample,
    default_eval_batch_size,
)
from synthsae.evals.feature_matching import _DEFAULT_CHUNK
from synthsae.synthetic.hierarchy.compiled import CompiledHierarchy
from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
from synthsae.synthetic.hierarchy.node import HierarchyNode
from synthsae.synthetic.sparse_batch import SparseBatch

__all__ = ["FeatureAbsorptionResult", "compute_feature_absorption", "hierarchy_pairs"]

HierarchyLike = Union[Hierarchy, HierarchyNode, Sequence[HierarchyNode], CompiledHierarchy, Mapping[int, Iterable[int]]]
DEFAULT_COS_THRESHOLD = 0.3
"""Full absorption of equal-magnitude orthogonal features gives ``cos = 1/sqrt(2)``;
0.3 still catches a child 3x as strong as its parent."""

_SCALARS = (
    "absorption_rate", "parent_recall_child_active", "parent_recall_parent_only",
    "num_pairs", "num_pairs_evaluated", "num_samples", "cos_threshold",
)


@dataclass
class FeatureAbsorptionResult:
    """Result of :func:`compute_feature_absorption` (definitions in the module docstring).

    Per-pair tensors are ``[num_pairs]``, sorted by parent then child; per-parent ones
    ``[num_parents]``, by ascending parent feature. Counts are int64 numbers of samples.
    """

    absorption_rate: float  # mean pair absorption rate over evaluated pairs (NaN if none)
    parent_recall_child_active: float  # mean over parents with >= 1 child-active sample
    parent_recall_parent_only: float  # mean over parents with >= 1 parent-only sample
    num_pairs: int
    num_pairs_evaluated: int  # pairs with at least one child-active sample
    num_samples: int
    cos_threshold: float
    pair_parent: torch.Tensor
    pair_child: torch.Tensor
    pair_child_active: torch.Tensor  # child and parent active
    pair_parent_fired: torch.Tensor  # ... and the parent latent fired
    pair_absorbed: torch.Tensor  # ... and the parent latent was silent with p carried
    parent_feature: torch.Tensor
    parent_latent: torch.Tensor
    parent_latent_cos: torch.Tensor  # float64 signed cos(parent latent, p)
    parent_child_active: torch.Tensor  # parent and >= 1 of its children active
    parent_fired_child_active: torch.Tensor
    parent_absorbed: torch.Tensor
    parent_only: torch.Tensor  # parent active, none of its children
    parent_only_fired: torch.Tensor

    def pair_absorption_rates(self) -> torch.Tensor:
        """``[num_pairs]`` float64 absorbed / child-active samples (NaN where none)."""
        return _ratio(self.pair_absorbed, self.pair_child_active)

    def parent_absorption_rates(self) -> torch.Tensor:
        """``[num_parents]`` absorbed / samples with the parent and >= 1 child active."""
        return _ratio(self.parent_absorbed, self.parent_child_active)

    def parent_recall_gap(self) -> torch.Tensor:
        """``[num_parents]`` recall on parent-only minus recall on child-active samples."""
        only = _ratio(self.parent_only_fired, self.parent_only)
        return only - _ratio(self.parent_fired_child_active, self.parent_child_active)

    def to_log_dict(self, prefix: str = "") -> dict[str, float | int]:
        """The scalars as a flat ``{prefix}{name}`` mapping."""
        return {f"{prefix}{name}": getattr(self, name) for name in _SCALARS}

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form: the scalars plus every per-pair / per-parent tensor as a list."""
        items = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in items}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureAbsorptionResult:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for f in fields(cls):
            if f.name not in _SCALARS:
                dtype = torch.float64 if f.name == "parent_latent_cos" else torch.long
                values[f.name] = torch.tensor(values[f.name], dtype=dtype)
        return cls(**values)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, math.nan))


def _nanmean(x: torch.Tensor) -> float:
    return float(torch.nanmean(x))  # NaN when every entry is NaN


# ------------------------------------------------------------------ hierarchy
def hierarchy_pairs(hierarchy: HierarchyLike, num_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(parents, children)`` int64 tensors of the (effective parent, child) pairs, sorted
    by ``(parent, child)``, of a :class:`Hierarchy`, root node(s), a
    :class:`CompiledHierarchy` or a ``{parent: [child, ...]}`` mapping (one parent per child)."""
    if isinstance(hierarchy, Mapping):
        parents, children = _mapping_pairs(hierarchy)
    else:
        if isinstance(hierarchy, CompiledHierarchy):
            compiled = hierarchy.to("cpu")
        else:
            roots = hierarchy.roots if isinstance(hierarchy, Hierarchy) else hierarchy
            if not isinstance(roots, (HierarchyNode, Sequence)) or isinstance(roots, str):
                raise TypeError(f"hierarchy must be a Hierarchy, HierarchyNode(s), CompiledHierarchy or {{parent: [children]}} mapping, got {type(hierarchy).__name__}")
            compiled = CompiledHierarchy.from_roots(roots)
        children = torch.nonzero(compiled.eff_parent >= 0).flatten()
        parents = compiled.eff_parent[children]
    if parents.numel() == 0:
        raise ValueError("hierarchy has no parent/child feature pairs; absorption needs at least one")
    top = int(torch.maximum(parents, children).max())
    if top >= num_features:
        raise ValueError(f"hierarchy uses feature index {top}, but the feature dictionary has {num_features} features")
    order = torch.argsort(parents * num_features + children)
    return parents[order], children[order]


def _isin_sorted(values: torch.Tensor, sorted_set: torch.Tensor) -> torch.Tensor:
    """``torch.isin`` for a sorted ``sorted_set`` (binary search, much faster on a CPU)."""
    if sorted_set.numel() == 0:
        return torch.zeros_like(values, dtype=torch.bool)
    pos = torch.searchsorted(sorted_set, values).clamp_max_(sorted_set.numel() - 1)
    return sorted_set[pos] == values


def _index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{what} must be an int >= 0, got {value!r}")
    return int(value)


def _mapping_pairs(mapping: Mapping[Any, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    parent_of: dict[int, int] = {}
    for key, kids in mapping.items():
        parent = _index(key, "hierarchy mapping key")
        if isinstance(kids, Mapping) or not isinstance(kids, Iterable):
            raise ValueError(f"hierarchy mapping values must be lists of child feature indices, got {kids!r} for parent {parent} (build nested dicts with HierarchyNode.from_dict)")
        for kid in kids:
            child = _index(kid, f"child of feature {parent}")
            if child == parent:
                raise ValueError(f"feature {parent} is listed as its own child")
            if parent_of.setdefault(child, parent) != parent:
                raise ValueError(f"feature {child} has two parents ({parent_of[child]} and {parent})")
    children = torch.tensor(list(parent_of), dtype=torch.long)
    return torch.tensor(list(parent_of.values()), dtype=torch.long), children


# ------------------------------------------------------------------- counting
_PAIR_COUNTS = ("pair_child_active", "pair_parent_fired", "pair_absorbed")
_PARENT_COUNTS = ("parent_child_active", "parent_fired_child_active", "parent_absorbed", "parent_only", "parent_only_fired")


class _AbsorptionCounter:
    """Parent latents, carrier lists and the streaming per-pair / per-parent counters.

    A ``(row, parent slot)`` pair is encoded as the key ``row * num_parents + slot``.
    """

    def __init__(self, w_dec: torch.Tensor, gt_vectors: torch.Tensor, parents: torch.Tensor, children: torch.Tensor, cos_threshold: float) -> None:
        device, num_features = w_dec.device, gt_vectors.shape[0]
        self.num_features, self.tau = num_features, cos_threshold
        self.pair_parent, self.pair_child = parents.to(device), children.to(device)
        self.parents, self.pair_slot = torch.unique(self.pair_parent, return_inverse=True)
        n_pairs, self.np_ = self.pair_parent.numel(), self.parents.numel()
        self.slot_of_feature = torch.full((num_features,), -1, dtype=torch.long, device=device)
        self.slot_of_feature[self.parents] = torch.arange(self.np_, device=device)
        self.pair_of_feature = torch.full((num_features,), -1, dtype=torch.long, device=device)
        self.pair_of_feature[self.pair_child] = torch.arange(n_pairs, device=device)
        self._match(w_dec, gt_vectors[self.parents.to(gt_vectors.device)])
        sizes = dict.fromkeys(_PAIR_COUNTS, n_pairs) | dict.fromkeys(_PARENT_COUNTS, self.np_)
        self.counts = {k: torch.zeros(n, dtype=torch.long, device=device) for k, n in sizes.items()}

    def _match(self, w_dec: torch.Tensor, parent_vectors: torch.Tensor) -> None:
        """Parent latents (max |cos|) and, per parent, the latents with |cos| >= tau (CSR),
        from ``[chunk, d_sae]`` blocks of the cosine matrix."""
        dtype = torch.float64 if torch.float64 in (w_dec.dtype, parent_vectors.dtype) else torch.float32
        dec_t = unit_rows(w_dec, dtype).T
        par = unit_rows(parent_vectors.to(w_dec.device), dtype)
        parts = []
        for start in range(0, self.np_, _DEFAULT_CHUNK):
            sim = torch.mm(par[start : start + _DEFAULT_CHUNK], dec_t).nan_to_num_(nan=0.0)
            idx = sim.abs().argmax(dim=1)
            s, j = torch.nonzero(sim.abs() >= self.tau, as_tuple=True)  # row-major: sorted by slot
            parts.append((idx, sim.gather(1, idx[:, None]).squeeze(1), s + start, j, sim[s, j]))
        best, best_cos, slots, self.carrier_latent, self.carrier_cos = (torch.cat(t) for t in zip(*parts))
        self.parent_latent, self.parent_latent_cos = best, best_cos
        self.carrier_ptr = torch.zeros(self.np_ + 1, dtype=torch.long, device=w_dec.device)
        torch.cumsum(torch.bincount(slots, minlength=self.np_), 0, out=self.carrier_ptr[1:])

    def _fired(self, z: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return z[keys // self.np_, self.parent_latent[keys % self.np_]] != 0

    def _carried(self, z: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Whether some firing latent has ``sign(z) * cos >= tau`` with the key's parent."""
        row, slot = keys // self.np_, keys % self.np_
        start = self.carrier_ptr[slot]
        count = self.carrier_ptr[slot + 1] - start
        query = torch.repeat_interleave(torch.arange(keys.numel(), device=z.device), count)
        first = torch.cumsum(count, 0) - count
        k = start[query] + torch.arange(query.numel(), device=z.device) - first[query]
        sign = torch.sign(z[row[query], self.carrier_latent[k]]).to(self.carrier_cos.dtype)
        carried = torch.zeros(keys.numel(), dtype=torch.bool, device=z.device)
        carried[query[sign * self.carrier_cos[k] >= self.tau]] = True
        return carried

    def add_batch(self, z: torch.Tensor, gt: SparseBatch) -> None:
        active = gt.values > 0
        rows, feats = gt.row_ids()[active], gt.indices[active]
        slot = self.slot_of_feature[feats]
        parent_keys = torch.sort(rows[slot >= 0] * self.np_ + slot[slot >= 0]).values
        pair = self.pair_of_feature[feats]
        rows, pair = rows[pair >= 0], pair[pair >= 0]
        child_keys = rows * self.np_ + self.pair_slot[pair]
        both = _isin_sorted(child_keys, parent_keys)  # the parent is active too
        pair, child_keys = pair[both], child_keys[both]
        keys, inverse = torch.unique(child_keys, return_inverse=True)
        fired = self._fired(z, keys)
        absorbed = ~fired & self._carried(z, keys)
        only_keys = parent_keys[~_isin_sorted(parent_keys, keys)]
        slots, only_slots = keys % self.np_, only_keys % self.np_
        for name, idx in (
            ("pair_child_active", pair), ("pair_parent_fired", pair[fired[inverse]]),
            ("pair_absorbed", pair[absorbed[inverse]]), ("parent_child_active", slots),
            ("parent_fired_child_active", slots[fired]), ("parent_absorbed", slots[absorbed]),
            ("parent_only", only_slots), ("parent_only_fired", only_slots[self._fired(z, only_keys)]),
        ):
            self.counts[name] += torch.bincount(idx, minlength=self.counts[name].numel())

    def result(self, num_samples: int) -> FeatureAbsorptionResult:
        c = {k: v.cpu() for k, v in self.counts.items()}
        return FeatureAbsorptionResult(
            absorption_rate=_nanmean(_ratio(c["pair_absorbed"], c["pair_child_active"])),
            parent_recall_child_active=_nanmean(_ratio(c["parent_fired_child_active"], c["parent_child_active"])),
            parent_recall_parent_only=_nanmean(_ratio(c["parent_only_fired"], c["parent_only"])),
            num_pairs=self.pair_parent.numel(),
            num_pairs_evaluated=int((c["pair_child_active"] > 0).sum()),
            num_samples=num_samples,
            cos_threshold=self.tau,
            pair_parent=self.pair_parent.cpu(),
            pair_child=self.pair_child.cpu(),
            parent_feature=self.parents.cpu(),
            parent_latent=self.parent_latent.cpu(),
            parent_latent_cos=self.parent_latent_cos.cpu().double(),
            **c,
        )


# ------------------------------------------------------------------- entry point
def compute_feature_absorption(
    sae: Any,
    feature_dict: Any,
    activation_generator: Any = None,
    hierarchy: HierarchyLike | None = None,
    num_samples: int = 100_000,
    batch_size: int | None = None,
    activation_scaler: ActivationScalerLike | None = None,
    *,
    cos_threshold: float = DEFAULT_COS_THRESHOLD,
    show_progress: bool = False,
) -> FeatureAbsorptionResult:
    """Measure feature absorption of ``sae`` on every parent/child pair of a hierarchy.

    Call it as ``compute_feature_absorption(sae, model)`` with a :class:`SyntheticModel`
    (anything with ``feature_dict``, ``activation_generator`` and ``hierarchy``; further
    arguments override its parts) or as ``(sae, feature_dict, activation_generator,
    hierarchy)``. Sampling, encoding, ``batch_size`` (``None``: :func:`default_eval_batch_size`),
    ``activation_scaler`` and ``show_progress`` work as in :func:`eval_sae_on_synthetic_data`.

    Args:
        sae: any object with ``W_dec`` ``[d_sae, d_in]``, ``encode`` and ``decode``.
        hierarchy: a :class:`Hierarchy`, root node(s), a :class:`CompiledHierarchy` or a
            ``{parent: [children]}`` mapping.
        cos_threshold: in (0, 1]; how closely a firing latent must point along the parent
            direction to count as carrying it.

    Raises:
        ValueError: a model without a hierarchy, a hierarchy without pairs or with indices
            outside the dictionary, mismatched ``d_in``, a bad ``num_samples``,
            ``batch_size`` or ``cos_threshold``, or a missing generator / hierarchy.
        TypeError: an SAE without ``W_dec`` / ``encode`` / ``decode``.
    """
    if hasattr(feature_dict, "feature_dict") and hasattr(feature_dict, "activation_generator"):
        model, feature_dict = feature_dict, feature_dict.feature_dict
        activation_generator = model.activation_generator if activation_generator is None else activation_generator
        hierarchy = getattr(model, "hierarchy", None) if hierarchy is None else hierarchy
        if hierarchy is None:
            raise ValueError("the model has no hierarchy, so no parent/child features to measure absorption on; build it with a HierarchyConfig or pass hierarchy=")
    if activation_generator is None:
        raise ValueError("activation_generator is required when feature_dict is not a SyntheticModel")
    if hierarchy is None:
        raise ValueError("hierarchy is required when feature_dict is not a SyntheticModel")
    _check_inputs(sae, feature_dict, num_samples, batch_size)
    if isinstance(cos_threshold, bool) or not isinstance(cos_threshold, (int, float)) or not 0 < cos_threshold <= 1:
        raise ValueError(f"cos_threshold must be a number in (0, 1], got {cos_threshold!r}")
    w_dec, gt_vectors = sae.W_dec.detach(), feature_dict.feature_vectors.detach()
    if w_dec.shape[0] == 0:
        raise ValueError("the SAE has no latents (W_dec has 0 rows)")
    gen_features = getattr(activation_generator, "num_features", None)
    if isinstance(gen_features, int) and gen_features != gt_vectors.shape[0]:
        raise ValueError(f"the activation generator has {gen_features} features but the feature dictionary has {gt_vectors.shape[0]}")
    parents, children = hierarchy_pairs(hierarchy, gt_vectors.shape[0])
    counter = _AbsorptionCounter(w_dec, gt_vectors, parents, children, float(cos_threshold))
    if batch_size is None:
        dense_gt = not callable(getattr(activation_generator, "sample_sparse", None))
        batch_size = default_eval_batch_size(w_dec.shape[0], w_dec.shape[1], gt_vectors.shape[0], dense_gt)

    was_training = getattr(sae, "training", None)
    if callable(getattr(sae, "eval", None)):
        sae.eval()
    try:
        bar = progress_bar(total=num_samples, show=show_progress, desc="absorption", unit="sample")
        with torch.no_grad(), bar:
            for start in range(0, num_samples, batch_size):
                b = min(batch_size, num_samples - start)
                gt, x = _sample(feature_dict, activation_generator, b)
                x = x.to(w_dec.device)
                sae_in = activation_scaler.scale(x) if activation_scaler is not None else x
                if sae_in.is_floating_point() and sae_in.dtype != w_dec.dtype:
                    sae_in = sae_in.to(w_dec.dtype)
                z = sae.encode(sae_in).reshape(b, -1)
                if not isinstance(gt, SparseBatch):
                    gt = SparseBatch.from_dense(gt.detach().reshape(b, -1))
                counter.add_batch(z, gt.to(w_dec.device))
                bar.update(b)
    finally:
        if was_training is not None and callable(getattr(sae, "train", None)):
            sae.train(was_training)
    return counter.result(num_samples)
