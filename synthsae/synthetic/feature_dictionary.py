"""The ground-truth feature directions and the map from feature activations to hidden vectors.

``FeatureDictionary(acts)`` is ``acts @ feature_vectors + bias``. It takes dense
``[B, F]`` activations, sparse COO tensors, or a :class:`SparseBatch`; the sparse
forms never materialise a ``[B, F]`` tensor and cost ``O(nnz * D)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthsae._tensors import unit_rows
from synthsae.config_values import check_device, check_float, check_int
from synthsae.synthetic.orthogonalize import orthogonal_initializer
from synthsae.synthetic.sparse_batch import SparseBatch

__all__ = ["FeatureDictionary", "FeatureDictionaryInitializer"]

FeatureDictionaryInitializer = Callable[["FeatureDictionary"], None]
"""A callable that adjusts a freshly built :class:`FeatureDictionary` in place."""

_DEFAULT_INITIALIZER: FeatureDictionaryInitializer = orthogonal_initializer()


def _bias_norm(bias: Any) -> float | None:
    """``None`` for no bias, else the requested bias norm."""
    if bias is False or bias is None:
        return None
    if bias is True:
        return 1.0
    return check_float("bias", bias, at_least=0.0)


class FeatureDictionary(nn.Module):
    """``num_features`` unit-norm feature directions in a ``hidden_dim``-dimensional space.

    Args:
        num_features: number of ground-truth features ``F``.
        hidden_dim: dimension ``D`` of the hidden space.
        bias: ``False`` for a frozen zero bias; ``True`` for a trainable random bias of
            norm 1; a number for a random bias of that norm.
        initializer: called with the new dictionary to adjust it in place (by default
            ``orthogonal_initializer()``, 200 steps at lr 0.01); ``None`` keeps the random
            unit vectors.
        device: where the parameters live.
        seed: if given, the vectors and bias come from a private ``torch.Generator`` on
            ``device`` (values therefore depend on the device type) and the global RNG is
            not touched; otherwise the global RNG is used.

    Attributes:
        feature_vectors: ``[F, D]`` parameter with unit-norm rows.
        bias: ``[D]`` parameter.
    """

    def __init__(
        self,
        num_features: int,
        hidden_dim: int,
        bias: bool | float = False,
        initializer: FeatureDictionaryInitializer | None = _DEFAULT_INITIALIZER,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.num_features = check_int("num_features", num_features, at_least=1)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, at_least=1)
        bias_norm = _bias_norm(bias)
        device = torch.device(check_device("device", device))
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device).manual_seed(int(seed))

        vectors = torch.randn(self.num_features, self.hidden_dim, generator=generator, device=device)
        vectors = unit_rows(vectors)
        self.feature_vectors = nn.Parameter(vectors)

        if bias_norm is None:
            self.bias = nn.Parameter(torch.zeros(self.hidden_dim, device=device), requires_grad=False)
        else:
            direction = torch.randn(self.hidden_dim, generator=generator, device=device)
            direction = direction / direction.norm().clamp(min=1e-12)
            self.bias = nn.Parameter(direction * bias_norm)

        if initializer is not None:
            initializer(self)

    def forward(self, feature_activations: torch.Tensor | SparseBatch) -> torch.Tensor:
        """Hidden vectors ``acts @ feature_vectors + bias`` as a dense ``[B, D]`` tensor.

        Args:
            feature_activations: dense ``[B, F]`` (or ``[..., F]``), a 2-D sparse COO
                tensor ``[B, F]``, or a :class:`SparseBatch` with ``num_features == F``.

        Raises:
            ValueError: if the number of features does not match ``num_features``.
        """
        acts = feature_activations
        if isinstance(acts, SparseBatch):
            return self._forward_sparse_batch(acts)
        if not isinstance(acts, torch.Tensor):
            raise TypeError(
                "feature_activations must be a torch.Tensor or a SparseBatch, got "
                f"{type(acts).__name__}"
            )
        if acts.is_sparse:
            if acts.dim() != 2 or acts.shape[1] != self.num_features:
                raise ValueError(
                    f"sparse feature_activations must have shape [batch, {self.num_features}] "
                    f"(num_features), got {tuple(acts.shape)}"
                )
            return self._forward_sparse_batch(SparseBatch.from_sparse_coo(acts))
        if acts.dim() == 0 or acts.shape[-1] != self.num_features:
            raise ValueError(
                f"feature_activations must have last dimension {self.num_features} "
                f"(num_features), got shape {tuple(acts.shape)}"
            )
        weight = self.feature_vectors
        if acts.dtype != weight.dtype:
            # under autocast the matmul picks its own precision whatever the input dtype
            acts = acts.to(weight.dtype)
        return acts @ weight + self.bias

    def _forward_sparse_batch(self, batch: SparseBatch) -> torch.Tensor:
        if batch.num_features != self.num_features:
            raise ValueError(
                f"SparseBatch has num_features={batch.num_features}, but this dictionary has "
                f"num_features={self.num_features}"
            )
        weight = self.feature_vectors
        device = weight.device
        # embedding_bag is not on every autocast list; run it in the weight's own dtype
        with torch.autocast(device_type=device.type, enabled=False):
            out = F.embedding_bag(
                batch.indices.to(device=device, dtype=torch.long),
                weight,
                batch.offsets.to(device=device, dtype=torch.long),
                mode="sum",
                per_sample_weights=batch.values.to(device=device, dtype=weight.dtype),
                include_last_offset=True,
            )
            return out.add_(self.bias)  # in place: saves a [B, D] allocation

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, hidden_dim={self.hidden_dim}"
