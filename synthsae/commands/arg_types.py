"""argparse ``type=`` converters shared by the subcommands (errors become usage messages)."""

from __future__ import annotations

import argparse

__all__ = ["non_negative_int", "positive_int"]


def _integer(text: str) -> int:
    """An integer, also written in scientific notation (``1e6``)."""
    try:
        return int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (``"1e6"`` allowed)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (``"1e6"`` allowed)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value
