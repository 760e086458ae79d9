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

The Adam update (default betas and eps of ``torch.optim.Adam``) is written out with a
few in-place whole-tensor ops: the moments and a single scratch buffer are the only
``[N, D]`` allocations, and callers are spared ``torch.optim``'s one-off import cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from synthsae._tensors import unit_rows

if TYPE_CHECKING:
    from synthsae.synthetic.feature_dictionary import FeatureDictionary

__all__ = ["orthogonal_initializer", "orthogonalize_embeddings"]


def _check_args(num_steps: Any, lr: Any, chunk_size: Any) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")


# Adam's default hyper-parameters (Kingma & Ba), as in torch.optim.Adam
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


def _quarter_gradient(e: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write a quarter of the loss gradient, ``E M + (N (|e_i|^2 - 1) - |e_i|^2) e_i``, to ``out``."""
    n = e.shape[0]
    torch.mm(e, e.T @ e, out=out)
    sq_norm = torch.linalg.vector_norm(e, dim=1, keepdim=True).square_()
    coeff = sq_norm.sub(1.0).mul_(n).sub_(sq_norm)
    return out.addcmul_(e, coeff)


def orthogonality_loss_gradient(embeddings: torch.Tensor) -> torch.Tensor:
    """The gradient of the orthogonality loss with respect to ``embeddings`` ``[N, D]``."""
    e = embeddings.detach()
    return _quarter_gradient(e, torch.empty_like(e)).mul_(4.0)


def orthogonalize_embeddings(
    embeddings: torch.Tensor,
    num_steps: int = 200,
    lr: float = 0.01,
    show_progress: bool = False,
    chunk_size: int = 1024,
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
    _check_args(num_steps, lr, chunk_size)

    with torch.no_grad():
        e = unit_rows(embeddings)
        if num_steps == 0 or e.numel() == 0:
            return e
        exp_avg = torch.zeros_like(e)
        exp_avg_sq = torch.zeros_like(e)
        buf = torch.empty_like(e)  # the (quarter) gradient, then Adam's denominator
        steps: Any = range(1, num_steps + 1)
        if show_progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="orthogonalizing", total=num_steps)
        for step in steps:
            grad = _quarter_gradient(e, buf)
            # Adam on g / 4 with eps / 4 takes exactly the step Adam takes on g with eps:
            # both moments scale by powers of two, which floating point represents exactly.
            # The bias corrections are folded into the step size and eps:
            #   (m / c1) / (sqrt(v / c2) + eps) = (sqrt(c2) / c1) m / (sqrt(v) + sqrt(c2) eps)
            c2_sqrt = (1.0 - _BETA2**step) ** 0.5
            step_size = lr * c2_sqrt / (1.0 - _BETA1**step)
            exp_avg.lerp_(grad, 1.0 - _BETA1)
            exp_avg_sq.mul_(_BETA2).addcmul_(grad, grad, value=1.0 - _BETA2)
            denom = torch.sqrt(exp_avg_sq, out=buf).add_(c2_sqrt * _EPS / 4.0)
            e.addcdiv_(exp_avg, denom, value=-step_size)
        return unit_rows(e)


def orthogonal_initializer(
    num_steps: int = 200,
    lr: float = 0.01,
    show_progress: bool = False,
    chunk_size: int = 1024,
) -> Callable[[FeatureDictionary], None]:
    """A :class:`FeatureDictionary` initializer that orthogonalises its feature vectors.

    The returned callable replaces ``feature_dict.feature_vectors`` in place with
    :func:`orthogonalize_embeddings` of the current vectors (same arguments).
    """
    _check_args(num_steps, lr, chunk_size)

    def initialize(feature_dict: FeatureDictionary) -> None:
        vectors = feature_dict.feature_vectors
        new = orthogonalize_embeddings(
            vectors.detach(),
            num_steps=num_steps,
            lr=lr,
            show_progress=show_progress,
            chunk_size=chunk_size,
        )
        with torch.no_grad():
            vectors.copy_(new)

    return initialize
