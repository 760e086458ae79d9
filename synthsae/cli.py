"""The ``synthsae`` command line.

Each subcommand lives in :mod:`synthsae.commands` as a module with ``add_parser(subparsers)``,
which registers its parser and sets ``handler`` to the function that runs it;
:data:`COMMANDS` lists them. Adding a command means writing such a module and appending its
``add_parser`` there.

A user error (a bad config value, a missing or unreadable file, a device torch cannot use,
a missing optional package) ends the command with exit status 1 and one line on stderr,
``synthsae <command>: error: <message>``; ``synthsae --debug <command>`` lets the exception
and its traceback through instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from synthsae._version import __version__
from synthsae.commands import bench as _bench_command
from synthsae.commands import eval as _eval_command
from synthsae.commands import sample as _sample_command
from synthsae.commands import train as _train_command
from synthsae.commands.arg_types import positive_int

__all__ = ["COMMANDS", "USER_ERRORS", "build_parser", "main"]

COMMANDS: list[Callable[[Any], Any]] = [_sample_command.add_parser, _train_command.add_parser, _eval_command.add_parser,
                                         _bench_command.add_parser]
"""Functions that each register one subcommand (``handler`` set via ``set_defaults``)."""

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError)
"""Exceptions reported as one line (``OSError`` covers missing files, permissions and full disks)."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="synthsae",
        description="Sparse autoencoders on synthetic data with known ground-truth features.",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help="torch CPU threads (default: torch's choice; 1 for the small `synthsae train` demo job, "
        "whose tiny matrices run faster on one thread than on two that wait on each other)",
    )
    parser.add_argument("--version", action="version", version=f"synthsae {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of the one-line message")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synthsae`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(handler(args) or 0)
    except USER_ERRORS as err:
        if args.debug:
            raise
        message = " ".join(str(err).split()) or type(err).__name__  # one line, whatever the message
        print(f"synthsae {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
