"""AbsTopK SAE: each row keeps the ``k`` pre-activations of largest magnitude, signs and
all (architecture ``"abstopk"``).

There is no ReLU, so a latent can fire in either direction: ``z_j`` is ``h_j`` when
``|h_j|`` is among the row's ``k`` largest, else 0. Everything else is the TopK SAE
(decoder-norm rescaling, inference folding), except that the dead-latent auxiliary loss
also picks dead latents by ``|h|`` and uses their signed pre-activations. Downstream,
a latent fires when it is non-zero (not when it is positive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from synthsae.saes.registry import register_sae_architecture
from synthsae.saes.sparse_acts import Gather, SparseActivations, row_abs_topk
from synthsae.saes.topk import TopKSAE, TopKSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig


def dense_row_abs_topk(hidden_pre: torch.Tensor, k: int) -> torch.Tensor:
    """Dense latents keeping each row's ``k`` entries of largest magnitude, signed (others 0)."""
    indices = torch.topk(hidden_pre.detach().abs(), k, dim=-1, sorted=False).indices
    return torch.zeros_like(hidden_pre).scatter(-1, indices, hidden_pre.gather(-1, indices))


class AbsTopK(nn.Module):
    """Activation keeping each row's ``k`` entries of largest magnitude, signed (others 0)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense_row_abs_topk(x, self.k)


@dataclass
class AbsTopKSAEConfig(TopKSAEConfig):
    """Config of the inference :class:`AbsTopKSAE` (the TopK fields)."""

    @classmethod
    def architecture(cls) -> str:
        """``"abstopk"``."""
        return "abstopk"


class AbsTopKSAE(TopKSAE):
    """Inference AbsTopK SAE: per row, the ``k`` largest-magnitude pre-activations, signed."""

    cfg: AbsTopKSAEConfig

    def get_activation_fn(self) -> nn.Module:
        """:class:`AbsTopK` with this SAE's ``k`` (``encode`` applies it: signed latents)."""
        return AbsTopK(self.cfg.k)


@dataclass
class AbsTopKTrainingSAEConfig(TopKTrainingSAEConfig):
    """Training config of the AbsTopK SAE: the TopK fields (``use_sparse_activations`` is
    accepted and, as for TopK, does not change the result)."""

    @classmethod
    def architecture(cls) -> str:
        """``"abstopk"``."""
        return "abstopk"


class AbsTopKTrainingSAE(TopKTrainingSAE):
    """AbsTopK SAE for training, with a magnitude-selected dead-latent auxiliary loss."""

    cfg: AbsTopKTrainingSAEConfig
    dead_latents_by_magnitude: ClassVar[bool] = True  # calculate_aux_loss ranks dead latents by |h|

    def get_activation_fn(self) -> nn.Module:
        """:class:`AbsTopK` with this SAE's ``k``."""
        return AbsTopK(self.cfg.k)

    def select(self, hidden_pre: torch.Tensor, gather: Gather | None = None) -> SparseActivations:
        """Each row's ``k`` largest-magnitude pre-activations, signed (values from ``gather`` if given)."""
        return row_abs_topk(hidden_pre, self.cfg.k, gather)

    def calculate_abstopk_aux_loss(
        self,
        sae_in: torch.Tensor,
        sae_out: torch.Tensor,
        hidden_pre: torch.Tensor,
        dead_neuron_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """The TopK auxiliary loss with dead latents ranked by ``|h|`` (signed values used),
        times ``aux_loss_coefficient``."""
        return self._dead_latent_loss(sae_in, sae_out, hidden_pre, dead_neuron_mask, by_magnitude=True)


register_sae_architecture("abstopk", AbsTopKTrainingSAE, AbsTopKTrainingSAEConfig, AbsTopKSAE, AbsTopKSAEConfig)
