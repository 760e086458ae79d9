"""Per-feature values of an :class:`~synthsae.synthetic.activation_generator.ActivationGenerator`:
a float or a ``[F]`` tensor turned into a checked ``[F]`` tensor, and the error that names
the first bad feature."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["first_bad", "per_feature"]


def per_feature(name: str, value: Any, num_features: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """A float or a ``[F]`` tensor/sequence as a ``[F]`` tensor (ValueError otherwise)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a float or a tensor of shape ({num_features},), got {value!r}")
    if isinstance(value, (int, float)):
        return torch.full((num_features,), float(value), dtype=dtype, device=device)
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a float or a tensor of shape ({num_features},), got {value!r}") from err
    if tensor.dim() == 0:
        tensor = tensor.expand(num_features)
    if tuple(tensor.shape) != (num_features,):
        raise ValueError(f"{name} must have shape ({num_features},) for num_features={num_features}, got {tuple(tensor.shape)}")
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    return tensor.detach().to(device=device, dtype=dtype).clone()


def first_bad(name: str, tensor: torch.Tensor, bad: torch.Tensor, expected: str) -> None:
    """Raise a ValueError naming the first feature where ``bad`` holds (none if it holds nowhere)."""
    if bool(bad.any()):
        i = int(torch.nonzero(bad).flatten()[0])
        raise ValueError(
            f"{name} must be {expected}; got {float(tensor[i])} at feature {i} ({int(bad.sum())} invalid value(s))"
        )
