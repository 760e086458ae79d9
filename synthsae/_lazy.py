"""Lazy attribute exports for package ``__init__`` files.

Importing ``synthsae`` stays cheap (no matplotlib, huggingface_hub or wandb), and
each public name lives in exactly one module, listed once in its package's table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, table: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for a package whose names live in submodules.

    ``table`` maps a public name to the module that defines it: a path relative to
    ``package`` (``"hierarchy.node"``) or an absolute one (``"synthsae.evals.metrics"``), so a
    package can re-export names whose code lives in another stage of the data flow.
    """

    def __getattr__(name: str) -> Any:
        module_name = table.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        absolute = module_name.startswith("synthsae.")
        module = importlib.import_module(module_name if absolute else f"{package}.{module_name}")
        if module_name == name:  # the export is the submodule itself (e.g. ``presets``)
            return module
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__
