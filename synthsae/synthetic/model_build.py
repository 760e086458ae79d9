"""Building the parts of a :class:`SyntheticModel` from its config.

Seeds (the reference's offsets from ``cfg.seed``): the hierarchy uses ``seed + 3``
(Python ``random``), the correlation factor ``seed + 4`` (a torch generator on the
model's device), the feature dictionary and the firing probabilities ``seed``, the
std magnitudes ``seed + 1`` and the mean magnitudes ``seed + 2``. Every random draw
uses its own seeded generator, so building never touches the global RNGs (with
``seed=None`` the global RNGs are used, as in the reference).
"""

from __future__ import annotations

import warnings

import torch

from synthsae.synthetic.activation_generator import ActivationGenerator
from synthsae.synthetic.correlation import (
    LowRankCorrelationMatrix,
    generate_random_low_rank_correlation_matrix,
)
from synthsae.synthetic.feature_dictionary import FeatureDictionary
from synthsae.synthetic.hierarchy.generate import generate_hierarchy
from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
from synthsae.synthetic.magnitudes import generate_magnitudes
from synthsae.synthetic.model_config import SyntheticModelConfig
from synthsae.synthetic.orthogonalize import orthogonal_initializer

__all__ = [
    "build_correlation",
    "build_feature_dict",
    "build_firing_probabilities",
    "build_hierarchy",
    "build_magnitudes",
    "make_activation_generator",
]

STD_SEED_OFFSET = 1
MEAN_SEED_OFFSET = 2
HIERARCHY_SEED_OFFSET = 3
CORRELATION_SEED_OFFSET = 4
# show the orthogonalisation progress bar when a build does more work than this (~flops)
_PROGRESS_WORK = 1e11


def _offset(seed: int | None, offset: int) -> int | None:
    return None if seed is None else seed + offset


def build_hierarchy(cfg: SyntheticModelConfig) -> Hierarchy | None:
    """The random forest of ``cfg.hierarchy`` (``None`` without one or with 0 roots)."""
    hcfg = cfg.hierarchy
    if hcfg is None or hcfg.total_root_nodes == 0:
        return None
    return generate_hierarchy(cfg.num_features, hcfg, seed=_offset(cfg.seed, HIERARCHY_SEED_OFFSET))


def build_correlation(cfg: SyntheticModelConfig, device: str) -> LowRankCorrelationMatrix | None:
    """The low-rank correlation of ``cfg.correlation`` (its own seed if set, else ``seed + 4``)."""
    ccfg = cfg.correlation
    if ccfg is None:
        return None
    seed = ccfg.seed if ccfg.seed is not None else _offset(cfg.seed, CORRELATION_SEED_OFFSET)
    return generate_random_low_rank_correlation_matrix(
        cfg.num_features,
        rank=ccfg.rank,
        correlation_scale=ccfg.correlation_scale,
        seed=seed,
        device=device,
        dtype=cfg.torch_dtype,
    )


def build_feature_dict(cfg: SyntheticModelConfig, device: str) -> FeatureDictionary:
    """Random unit feature vectors and bias from ``cfg.seed``, orthogonalised if configured."""
    ocfg = cfg.orthogonalization
    initializer = None
    if ocfg is not None:
        work = ocfg.num_steps * cfg.num_features * cfg.hidden_dim**2
        initializer = orthogonal_initializer(
            num_steps=ocfg.num_steps, lr=ocfg.lr, chunk_size=ocfg.chunk_size, show_progress=work >= _PROGRESS_WORK
        )
    return FeatureDictionary(
        num_features=cfg.num_features,
        hidden_dim=cfg.hidden_dim,
        bias=cfg.bias,
        initializer=initializer,
        device=device,
        seed=cfg.seed,
    )


def build_firing_probabilities(cfg: SyntheticModelConfig, hierarchy: Hierarchy | None) -> torch.Tensor:
    """The configured probabilities, compensated for the hierarchy when enabled.

    Compensated values are clamped at 1, with a ``UserWarning`` when that happens to a
    feature whose configured probability was below 1.
    """
    base = cfg.firing_probability.generate(cfg.num_features, seed=cfg.seed)
    if hierarchy is None or cfg.hierarchy is None or not cfg.hierarchy.compensate_probabilities:
        return base
    corrected = base * hierarchy.compute_probability_correction_factors(base)
    clamped = (corrected >= 1.0) & (base < 1.0)
    if bool(clamped.any()):
        warnings.warn(
            f"hierarchy probability compensation pushed {int(clamped.sum())} feature(s) to "
            f"probability 1 (largest corrected value {corrected.max().item():.3f}); they are "
            "clamped to 1 and will fire less often than configured. Lower the base "
            "probabilities to avoid this.",
            UserWarning,
            stacklevel=4,
        )
    return corrected.clamp(max=1.0)


def build_magnitudes(cfg: SyntheticModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(std, mean)`` per-feature magnitudes from ``cfg`` (seeds ``seed + 1``, ``seed + 2``)."""
    n = cfg.num_features
    std = generate_magnitudes(n, cfg.std_firing_magnitudes, seed=_offset(cfg.seed, STD_SEED_OFFSET))
    mean = generate_magnitudes(n, cfg.mean_firing_magnitudes, seed=_offset(cfg.seed, MEAN_SEED_OFFSET))
    return std, mean


def make_activation_generator(
    cfg: SyntheticModelConfig,
    firing_probabilities: torch.Tensor,
    std: torch.Tensor,
    mean: torch.Tensor,
    hierarchy: Hierarchy | None,
    correlation_matrix: LowRankCorrelationMatrix | None,
    device: str,
    use_sparse_tensors: bool = False,
    generator: torch.Generator | None = None,
) -> ActivationGenerator:
    """The activation generator of a model with exactly these per-feature tensors."""
    return ActivationGenerator(
        num_features=cfg.num_features,
        firing_probabilities=firing_probabilities.to(device),
        std_firing_magnitudes=std.to(device),
        mean_firing_magnitudes=mean.to(device),
        modify_activations=None if hierarchy is None else hierarchy.modifier,
        correlation_matrix=correlation_matrix,
        device=device,
        dtype=cfg.dtype,
        use_sparse_tensors=use_sparse_tensors,
        generator=generator,
    )
