"""Helpers for the SAE tests: tiny configs of every built-in architecture and toy data."""

from __future__ import annotations

import warnings

import torch

from synthsae.saes.registry import get_sae_architecture

ARCHITECTURES = (
    "standard",
    "topk",
    "batchtopk",
    "matryoshka_batchtopk",
    "jumprelu",
    "gated",
    "matching_pursuit",
    "abstopk",
)


def training_config(name: str, d_in: int = 16, d_sae: int = 32, **overrides):
    """A small training config of architecture ``name`` with sensible sparsity settings."""
    defaults = {
        "standard": {"l1_coefficient": 0.05},
        "topk": {"k": 4},
        "batchtopk": {"k": 4.0},
        "matryoshka_batchtopk": {"k": 4.0, "matryoshka_widths": [d_sae // 4, d_sae]},
        "jumprelu": {"l0_coefficient": 0.01},
        "gated": {"l1_coefficient": 0.05},
        "matching_pursuit": {},
        "abstopk": {"k": 4},
    }[name]
    cfg_cls = get_sae_architecture(name).training_cfg_cls
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cfg_cls(d_in=d_in, d_sae=d_sae, **{**defaults, **overrides})


def make_sae(name: str, seed: int = 0, **kwargs):
    """A training SAE of architecture ``name`` built after seeding torch."""
    torch.manual_seed(seed)
    cfg = training_config(name, **kwargs)
    return get_sae_architecture(name).training_cls(cfg)


def orthogonal_features(n_features: int = 16, dim: int = 32, seed: int = 0) -> torch.Tensor:
    """``[n_features, dim]`` orthonormal rows."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, n_features, generator=generator))
    return q.T.contiguous()


def toy_batch(
    features: torch.Tensor, batch_size: int, p: float = 0.25, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sparse non-negative combinations of ``features`` (each fires with probability ``p``)."""
    n_features = features.shape[0]
    fires = torch.rand(batch_size, n_features, generator=generator) < p
    magnitudes = 0.5 + torch.rand(batch_size, n_features, generator=generator)
    return (fires * magnitudes) @ features
