"""Helpers shared by the subcommands: registering one, default output folders, ``--set`` options."""

from __future__ import annotations

import argparse
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["add_command", "parse_overrides", "timestamped_dir"]

_HELP_WIDTH = 90  # columns of the wrapped description, as argparse's own text on a wide terminal


def add_command(subparsers: Any, name: str, summary: str, description: str, epilog: str | None = None) -> Any:
    """Register the subcommand ``name``: ``summary`` in ``synthsae --help``, ``description``
    (one paragraph, wrapped) and ``epilog`` (kept as written: examples) in its own help."""
    return subparsers.add_parser(name, help=summary, description=textwrap.fill(description, width=_HELP_WIDTH),
                                 epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)


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
