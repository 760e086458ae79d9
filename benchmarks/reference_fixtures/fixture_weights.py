"""Weights for the parity fixtures: the shared perturbation both fixture scripts apply to a
freshly built SAE, so that every parameter (thresholds, decoder norms) is away from its
initial value and a step exercises every term. Runs in the reference's venv."""

from __future__ import annotations

import torch


@torch.no_grad()
def perturb(sae: torch.nn.Module, generator: torch.Generator, topk_threshold: float) -> None:
    """Add noise to every parameter of ``sae`` in place (thresholds redrawn in [0.05, 0.35],
    decoder rows scaled from 0.5 to 2); a BatchTopK ``topk_threshold`` buffer is set to
    ``topk_threshold``."""
    for name, param in sae.named_parameters():
        if name == "threshold":
            param.copy_(0.05 + 0.3 * torch.rand(param.shape, generator=generator))
        elif name == "W_dec":
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
            param.mul_(torch.linspace(0.5, 2.0, param.shape[0])[:, None])
        else:
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    if hasattr(sae, "topk_threshold"):
        sae.topk_threshold.fill_(topk_threshold)
