"""Small synthetic models and hierarchy checks shared by the SyntheticModel and hub tests."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from synthsae.synthetic.firing_probabilities import ZipfianFiringProbabilityConfig
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.magnitudes import FoldedNormalMagnitudeConfig, LinearMagnitudeConfig
from synthsae.synthetic.model_config import (
    LowRankCorrelationConfig,
    OrthogonalizationConfig,
    SyntheticModelConfig,
)
from synthsae.synthetic.synthetic_model import SyntheticModel


def small_config(**overrides: object) -> SyntheticModelConfig:
    """64 features in 16 dims with every ingredient (hierarchy, correlation, magnitudes)."""
    base: dict[str, object] = {
        "num_features": 64,
        "hidden_dim": 16,
        "firing_probability": ZipfianFiringProbabilityConfig(
            exponent=0.5, max_prob=0.3, min_prob=0.02
        ),
        "hierarchy": HierarchyConfig(
            total_root_nodes=4,
            branching_factor=3,
            max_depth=2,
            mutually_exclusive_portion=0.5,
            compensate_probabilities=True,
            scale_children_by_parent=True,
        ),
        "orthogonalization": OrthogonalizationConfig(num_steps=5, lr=1e-3),
        "correlation": LowRankCorrelationConfig(rank=4, correlation_scale=0.1),
        "mean_firing_magnitudes": LinearMagnitudeConfig(start=2.0, end=1.0),
        "std_firing_magnitudes": FoldedNormalMagnitudeConfig(mean=0.3, std=0.2),
        "bias": 0.5,
        "seed": 7,
    }
    base.update(overrides)
    return SyntheticModelConfig(**base)  # type: ignore[arg-type]


def iter_parent_child(roots) -> Iterator[tuple[int, int]]:
    """(effective parent feature, child feature) pairs of a forest."""
    stack = [(r, None) for r in roots]
    while stack:
        node, parent = stack.pop()
        below = parent
        if node.feature_index is not None:
            if parent is not None:
                yield parent, node.feature_index
            below = node.feature_index
        stack.extend((c, below) for c in node.children)


def iter_me_groups(roots) -> Iterator[list[int]]:
    """Feature indices of the children of every mutually exclusive node."""
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.mutually_exclusive_children:
            group = [c.feature_index for c in node.children if c.feature_index is not None]
            if len(group) >= 2:
                yield group
        stack.extend(node.children)


def check_hierarchy_invariants(roots, features: torch.Tensor) -> None:
    """Children fire only with their parent; at most one child of an ME node fires."""
    active = features != 0
    for parent, child in iter_parent_child(roots):
        assert not bool((active[:, child] & ~active[:, parent]).any()), (parent, child)
    for group in iter_me_groups(roots):
        assert int(active[:, group].sum(dim=1).max()) <= 1, group


def model_state(model: SyntheticModel) -> dict[str, torch.Tensor]:
    ag = model.activation_generator
    out = {
        "feature_vectors": model.feature_dict.feature_vectors.detach(),
        "bias": model.feature_dict.bias.detach(),
        "firing_probabilities": ag.firing_probabilities,
        "std": ag.std_firing_magnitudes,
        "mean": ag.mean_firing_magnitudes,
    }
    if model.correlation_matrix is not None:
        out["factor"], out["diag"] = model.correlation_matrix
    return out


def assert_same_model(a: SyntheticModel, b: SyntheticModel) -> None:
    sa, sb = model_state(a), model_state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key].cpu(), sb[key].cpu()), key
    assert (a.hierarchy is None) == (b.hierarchy is None)
    if a.hierarchy is not None:
        assert a.hierarchy.to_dict() == b.hierarchy.to_dict()
    assert a.cfg == b.cfg
