"""Push a set of unit vectors towards mutual orthogonality by gradient descent.

The objective is the one of the reference implementation,

    L(E) = sum_{i != j} (e_i . e_j)^2 + N * sum_i (|e_i|^2 - 1)^2,

minimised with Adam, one step per pass over all ``N`` rows. The reference forms
the ``N x N`` Gram matrix (in row chunks) and back-propagates through it; here
the gradient is written in closed form through the ``D x D`` matrix
``M = E.T @ E``:

    grad_i = 4 (E M)_i - 4 |e_i|^2 e_i + 4 N (|e_i|^2 - 1) e_i

(``sum_{i,j} (e_i . e_j)^2 = ||E E.T||_F^2 = ||M||_F^2`` has gradient ``4 E M``; the
second term removes the diagonal ``i == j`` part; the third is the norm penalty).
A step costs ``O(N D^2)`` time and ``O(N D + D^2)`` memory.

The steps themselves (cache-sized row blocks, the symmetric half of ``M``, threads,
and the optional bfloat16 products) are in :mod:`synthsae.synthetic.orthogonalize_steps`;
the moments and the iterate are the only ``[N, D]`` tensors, and callers are spared
``torch.optim``'s one-off import cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from synthsae._tensors import unit_rows_
from synthsae.synthetic.orthogonalize_steps import (
    PRECISIONS,
    adam_steps,
    gram_matrix,
    quarter_gradient,
    resolve_precision,
)

if TYPE_CHECKING:
    from synthsae.synthetic.feature_dictionary import FeatureDictionary

__all__ = ["orthogonal_initializer", "orthogonalize_embeddings"]


def _check_args(num_steps: Any, lr: Any, chunk_size: Any, precision: Any = "auto") -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")


def orthogonality_loss_gradient(embeddings: torch.Tensor) -> torch.Tensor:
    """The gradient of the orthogonality loss with respect to ``embeddings`` ``[N, D]``."""
    e = embeddings.detach()
    return quarter_gradient(e, gram_matrix(e), e.shape[0], torch.empty_like(e)).mul_(4.0)


def orthogonalize_embeddings(
    embeddings: torch.Tensor,
    num_steps: int = 200,
    lr: float = 0.01,
    show_progress: bool = False,
    chunk_size: int = 1024,
    *,
    precision: str = "auto",
) -> torch.Tensor:
    """Make the rows of ``embeddings`` ``[N, D]`` as close to orthonormal as possible.

    The rows are unit-normalised, then ``num_steps`` Adam steps (learning rate ``lr``,
    betas (0.9, 0.999), eps 1e-8, as ``torch.optim.Adam``) are taken on the
    orthogonality loss of the module docstring, and the rows are unit-normalised
    again. The input is not modified; the result has its dtype and device. No random
    numbers are drawn.

    Args:
        embeddings: the ``[N, D]`` starting vectors.
        num_steps: number of optimiser steps (each uses the full gradient).
        lr: Adam learning rate.
        show_progress: show a tqdm progress bar.
        chunk_size: accepted for compatibility (the reference computes its ``N x N``
            Gram matrix in blocks of this many rows). Nothing of that size exists
            here, so it is only validated and never changes the result.
        precision: ``"exact"`` forms the two products of every step in the dtype of
            ``embeddings``; ``"bfloat16"`` from bfloat16 copies (about twice as fast
            where the hardware has bfloat16 products, and as good an optimisation: see
            :mod:`synthsae.synthetic.orthogonalize_steps`); ``"auto"`` (default) picks
            bfloat16 for large float32 embeddings (``N * D^2 >= 2**30``) on such
            hardware, else exact. The Adam state
            and the result keep the embeddings' dtype either way.

    Raises:
        ValueError: if ``embeddings`` is not a 2-D floating tensor or an argument is out
            of range.
    """
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2:
        raise ValueError(
            "embeddings must be a 2-D [N, D] tensor, got "
            f"{tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__}"
        )
    if not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be a floating-point tensor, got {embeddings.dtype}")
    _check_args(num_steps, lr, chunk_size, precision)
    e = embeddings.detach().clone()
    _orthogonalize_in_place(e, num_steps, lr, show_progress, precision)
    return e


def _orthogonalize_in_place(e: torch.Tensor, num_steps: int, lr: float, show_progress: bool, precision: str) -> None:
    """:func:`orthogonalize_embeddings` overwriting ``e`` (no second ``[N, D]`` copy)."""
    low_precision = resolve_precision(precision, e)
    with torch.no_grad():
        unit_rows_(e)
        if num_steps > 0 and e.numel() > 0:
            adam_steps(e, num_steps, lr, low_precision, show_progress)
            unit_rows_(e)


def orthogonal_initializer(
    num_steps: int = 200,
    lr: float = 0.01,
    show_progress: bool = False,
    chunk_size: int = 1024,
    *,
    precision: str = "auto",
) -> Callable[[FeatureDictionary], None]:
    """A :class:`FeatureDictionary` initializer that orthogonalises its feature vectors.

    The returned callable replaces ``feature_dict.feature_vectors`` in place with
    :func:`orthogonalize_embeddings` of the current vectors (same arguments).
    """
    _check_args(num_steps, lr, chunk_size, precision)

    def initializer(feature_dict: FeatureDictionary) -> None:
        # in place: a million 768-d vectors are 3 GiB, and the Adam state needs two more copies
        _orthogonalize_in_place(feature_dict.feature_vectors.data, num_steps, lr, show_progress, precision)

    return initializer
