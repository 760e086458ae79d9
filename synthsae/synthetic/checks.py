"""Argument checks shared by the synthetic-data configs: errors name the argument and the value."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

__all__ = ["non_negative_number", "positive_number", "real_number"]


def real_number(name: str, value: Any) -> float:
    """``value`` as a float; TypeError for non-numbers (bools included), ValueError for NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def positive_number(name: str, value: Any) -> float:
    """A finite float > 0."""
    out = real_number(name, value)
    if out <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return out


def non_negative_number(name: str, value: Any) -> float:
    """A finite float >= 0."""
    out = real_number(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return out
