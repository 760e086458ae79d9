"""API reference pages generated from the public packages' export tables.

Every public namespace (``synthsae``, ``synthsae.synthetic``, ``synthsae.benchmark``) answers
``__all__`` from a lazy ``_EXPORTS`` table (defining module -> names; ``synthsae.synthetic``
also passes on the names of the packages in its ``_REEXPORTED_PACKAGES``). One page per
namespace is written from ``__all__``, so a new export gets its reference entry without
editing the docs: one section per defining module, one mkdocstrings directive
(``::: dotted.path``) per name, pointing at the module where the object is defined (griffe
reads source statically and cannot follow the lazy ``__getattr__`` re-exports).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

__all__ = ["NAMESPACES", "ReferenceEntry", "public_names", "reference_entries", "reference_pages"]

UNDOCUMENTED = frozenset({"__version__"})  # public, but a plain string with nothing to document


@dataclass(frozen=True)
class Namespace:
    """A public package and the reference page written for it."""

    package: str
    page: str  # path under docs/
    title: str
    intro: str


NAMESPACES: tuple[Namespace, ...] = (
    Namespace("synthsae", "reference/synthsae.md", "synthsae",
              "The SAE classes, their configs, the architecture registry and `LoggingConfig`."),
    Namespace("synthsae.synthetic", "reference/synthetic.md", "synthsae.synthetic",
              "The synthetic world (features, firing, hierarchy, correlation, models, presets) "
              "and, as in SAELens's `sae_lens.synthetic`, the evaluation and run helpers."),
    Namespace("synthsae.benchmark", "reference/benchmark.md", "synthsae.benchmark",
              "`synthsae bench` from Python: benchmark configs, sweeps, leaderboards and plots."),
)


@dataclass(frozen=True)
class ReferenceEntry:
    """One exported name: where users import it from and where griffe finds its source."""

    namespace: str  # e.g. "synthsae.synthetic"
    name: str  # e.g. "FeatureDictionary"
    module: str  # absolute module the export table names
    target: str  # dotted path handed to mkdocstrings


def _absolute(package: str, module: str) -> str:
    return module if module.startswith("synthsae.") else f"{package}.{module}"


def _table_modules(package_name: str) -> dict[str, str]:
    """Name -> absolute defining module, from the package's export table (in table order)
    and those of the packages whose names it passes on."""
    package = importlib.import_module(package_name)
    out: dict[str, str] = {}
    for module, names in package._EXPORTS.items():
        for name in names:
            out[name] = _absolute(package_name, module)
    for delegate in getattr(package, "_REEXPORTED_PACKAGES", ()):
        out.update(_table_modules(delegate))
    return out


def public_names(package_name: str) -> list[str]:
    """The documented public names: ``__all__`` without :data:`UNDOCUMENTED`."""
    package = importlib.import_module(package_name)
    return [name for name in package.__all__ if name not in UNDOCUMENTED]


def _target(obj: object, name: str, module: str) -> str:
    """The dotted path of the object's definition.

    Classes and functions know their defining module (``saes.base`` re-exports classes
    defined in ``saes.sae``, for example); constants, type aliases and submodules are
    found where the export table says.
    """
    if inspect.ismodule(obj):
        return obj.__name__
    defined_in = getattr(obj, "__module__", None)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and str(defined_in).startswith("synthsae."):
        return f"{defined_in}.{obj.__qualname__}"
    return f"{module}.{name}"


def reference_entries(package_name: str) -> list[ReferenceEntry]:
    """One entry per public name of ``package_name``, grouped in export-table order.

    Raises:
        ValueError: for a public name whose defining module cannot be found.
    """
    package = importlib.import_module(package_name)
    modules = _table_modules(package_name)
    names = public_names(package_name)
    ordered = [n for n in modules if n in set(names)] + sorted(set(names) - set(modules))
    out = []
    for name in ordered:
        obj = getattr(package, name)
        module = modules.get(name) or getattr(obj, "__module__", None) or getattr(obj, "__name__", None)
        if not module:
            raise ValueError(f"{package_name}.{name}: cannot tell which module defines it")
        out.append(ReferenceEntry(package_name, name, module, _target(obj, name, module)))
    return out


def _module_summary(module_name: str) -> str:
    doc = inspect.getdoc(importlib.import_module(module_name)) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def _page(namespace: Namespace) -> str:
    entries = reference_entries(namespace.package)
    lines = [f"# `{namespace.title}`", "", namespace.intro, "",
             f"Import every name below as `from {namespace.package} import NAME`. "
             "This page is generated from the package's export table.", ""]
    by_module: dict[str, list[ReferenceEntry]] = {}
    for entry in entries:
        by_module.setdefault(entry.module, []).append(entry)
    for module, group in by_module.items():
        lines += [f"## `{module}`", "", _module_summary(module), ""]
        for entry in group:
            lines += [f"::: {entry.target}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


def _index() -> str:
    lines = ["# API reference", "",
             "Every public name of the three public namespaces, generated from their export "
             "tables. Names in `synthsae.synthetic` that live in the evaluation and run "
             "packages are re-exported there so that SAELens code keeps one import path.", ""]
    for namespace in NAMESPACES:
        page = namespace.page.split("/", 1)[1]
        lines += [f"## [`{namespace.package}`]({page})", "", namespace.intro, ""]
        names = sorted(e.name for e in reference_entries(namespace.package))
        lines += [", ".join(f"`{n}`" for n in names), ""]
    return "\n".join(lines)


def reference_pages() -> dict[str, str]:
    """``{path under docs/: Markdown}`` for the reference index and one page per namespace."""
    pages = {"reference/index.md": _index()}
    for namespace in NAMESPACES:
        pages[namespace.page] = _page(namespace)
    return pages
