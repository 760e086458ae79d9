"""BatchTopK SAE: the batch as a whole keeps ``k`` latents per row on average (``"batchtopk"``).

Each training pass keeps the ``int(k * batch)`` largest ReLU activations of the whole
batch and then moves the scalar ``topk_threshold`` (float64 buffer) towards the smallest
kept positive value: ``t <- (1 - lr) t + lr * min(kept > 0)``. Inference saves are JumpReLU
SAEs with that threshold for every latent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from synthsae.config_values import check_float
from synthsae.saes.base import TrainStepOutput
from synthsae.saes.jumprelu import JumpReLUSAE, JumpReLUSAEConfig
from synthsae.saes.registry import register_sae_architecture
from synthsae.saes.sparse_acts import Gather, SparseActivations, batch_topk
from synthsae.saes.topk import TopKTrainingSAE, TopKTrainingSAEConfig


class BatchTopK(nn.Module):
    """Activation keeping the ``int(k * rows)`` largest ReLU values of the whole batch."""

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        return batch_topk(flat, self.k).to_dense().view(x.shape)


@dataclass
class BatchTopKTrainingSAEConfig(TopKTrainingSAEConfig):
    """Training config of the BatchTopK SAE.

    ``k`` (a float) is the mean number of kept latents per row; ``topk_threshold_lr`` is
    the step size of the threshold's moving average.
    """

    k: float = 100  # type: ignore[assignment]
    topk_threshold_lr: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        self.topk_threshold_lr = check_float(self.qualified("topk_threshold_lr"), self.topk_threshold_lr, at_least=0, at_most=1.0)

    def _check_k(self) -> None:
        self.k = check_float(self.qualified("k"), self.k, above=0)
        if self.k > self.d_sae:
            raise ValueError(f"{type(self).__name__}.k must be <= d_sae ({self.d_sae}), got {self.k}")

    @classmethod
    def architecture(cls) -> str:
        """``"batchtopk"``."""
        return "batchtopk"


class BatchTopKTrainingSAE(TopKTrainingSAE):
    """BatchTopK SAE for training; saved for inference as a :class:`JumpReLUSAE`."""

    cfg: BatchTopKTrainingSAEConfig
    topk_threshold: torch.Tensor

    def __init__(self, cfg: BatchTopKTrainingSAEConfig, use_error_term: bool = False):
        super().__init__(cfg, use_error_term)
        self.register_buffer(
            "topk_threshold", torch.zeros((), dtype=torch.float64, device=self.W_dec.device)
        )

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> BatchTopKTrainingSAE:
        result = super()._apply(fn, *args, **kwargs)
        threshold = self._buffers.get("topk_threshold")
        if threshold is not None and threshold.dtype != torch.float64:
            self._buffers["topk_threshold"] = threshold.to(torch.float64)  # stays double
        return result

    def get_activation_fn(self) -> nn.Module:
        """:class:`BatchTopK` with this SAE's ``k``."""
        return BatchTopK(self.cfg.k)

    def select(self, hidden_pre: torch.Tensor, gather: Gather | None = None) -> SparseActivations:
        """The batch's ``int(k * rows)`` largest ReLU activations (values from ``gather`` if given)."""
        return batch_topk(hidden_pre, self.cfg.k, gather)

    def after_training_step(self, acts: SparseActivations, output: TrainStepOutput) -> None:
        """Update ``topk_threshold`` and report it as ``metrics["topk_threshold"]``."""
        self.update_topk_threshold(acts)
        output.metrics["topk_threshold"] = self.topk_threshold.detach().clone()

    @torch.no_grad()
    def update_topk_threshold(self, acts_topk: SparseActivations | torch.Tensor) -> None:
        """Move the threshold towards the smallest positive kept activation (skipped if none).

        Works on the device, without reading anything back to the host.
        """
        if isinstance(acts_topk, SparseActivations):
            smallest = acts_topk.min_positive()
        else:
            smallest = torch.where(acts_topk > 0, acts_topk, torch.full_like(acts_topk, torch.inf)).min()
        smallest = smallest.detach().to(torch.float64)
        lr = self.cfg.topk_threshold_lr
        updated = (1.0 - lr) * self.topk_threshold + lr * smallest
        self.topk_threshold.copy_(torch.where(torch.isfinite(smallest), updated, self.topk_threshold))

    @torch.no_grad()
    def fold_activation_norm_scaling_factor(self, scaling_factor: float) -> None:
        """Base folding; with decoder-norm rescaling the latents shrink by ``1/s``, so the
        threshold does too (otherwise the saved JumpReLU threshold would be ``s`` times
        too large)."""
        super().fold_activation_norm_scaling_factor(scaling_factor)
        if self.cfg.rescale_acts_by_decoder_norm:
            self.topk_threshold.div_(scaling_factor)

    def process_state_dict_for_saving_inference(self, state_dict: dict[str, torch.Tensor]) -> None:
        """TopK folding, then ``threshold = topk_threshold * ones(d_sae)`` (JumpReLU form)."""
        super().process_state_dict_for_saving_inference(state_dict)
        theta = state_dict.pop("topk_threshold")
        state_dict["threshold"] = torch.ones_like(state_dict["b_enc"]) * theta.to(state_dict["b_enc"].dtype)


register_sae_architecture(
    "batchtopk", BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig, JumpReLUSAE, JumpReLUSAEConfig
)
