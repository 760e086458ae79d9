"""Lazy attribute exports for package ``__init__`` files.

Importing ``synthsae`` stays cheap (no matplotlib, huggingface_hub or wandb), and
each public name lives in exactly one module, listed once in its package's table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, Iterable[str]], reexport: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for a package whose names live in submodules.

    ``table`` maps a module to the public names it defines: a path relative to ``package``
    (``"hierarchy.node"``) or an absolute one (``"synthsae.evals.metrics"``). A name equal
    to its module exports the submodule itself (``"presets": ("presets",)``).
    ``reexport`` names other packages whose public names this one passes on as well (each
    imported only when one of its names, ``__all__`` or ``dir()`` is asked for), so a
    public import path can keep names whose code lives in another stage of the data flow
    without listing them twice. ``__all__`` is answered by ``__getattr__`` too.
    """
    where = {name: module for module, names in table.items() for name in names}
    delegates = tuple(reexport)

    def _load(module_name: str) -> ModuleType:
        absolute = module_name.startswith("synthsae.")
        return importlib.import_module(module_name if absolute else f"{package}.{module_name}")

    def __dir__() -> list[str]:
        names = set(where)
        for delegate in delegates:
            names.update(importlib.import_module(delegate).__all__)
        return sorted(names)

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            return __dir__()
        module_name = where.get(name)
        if module_name is not None:
            module = _load(module_name)
            return module if module_name == name else getattr(module, name)
        for delegate in delegates:
            module = importlib.import_module(delegate)
            if name in module.__all__:
                return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, __dir__
