"""Helpers shared by the subcommands: default output folders and ``--set`` options."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["parse_overrides", "timestamped_dir"]


def timestamped_dir(root: str | Path, prefix: str = "") -> Path:
    """A folder under ``root`` that does not exist yet: ``<prefix><YYYYmmdd-HHMMSS>``, with
    ``-2``, ``-3``, ... appended when runs start within the same second."""
    root = Path(root)
    stamp = prefix + time.strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def parse_overrides(texts: Iterable[str]) -> dict[str, Any]:
    """The ``--set KEY=VALUE`` options as ``{dotted key: YAML value}`` (later ones win)."""
    from synthsae.config_values import parse_override

    return dict(parse_override(text) for text in texts)
