"""The one table of built-in SAE architectures.

Adding an architecture to synthsae is: write its module in ``synthsae/saes/`` (the classes,
their config with ``architecture()`` and ``sparsity_field``, and a
``register_sae_architecture`` call), then add one row below. Everything else is derived from
this table: the registry imports the modules listed here, ``synthsae`` and ``synthsae.saes``
export the classes named here, and ``synthsae bench`` and the command line offer the
architectures registered from here. This module holds plain data only, so the package
``__init__`` files can read it without importing torch.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BUILTIN_ARCHITECTURES", "BuiltinArchitecture", "class_exports"]


class BuiltinArchitecture(NamedTuple):
    """One row of the table.

    ``module`` is the file in ``synthsae/saes/`` that defines and registers the classes.
    ``class_stem`` names the exported classes: ``<stem>TrainingSAE`` and
    ``<stem>TrainingSAEConfig``, plus ``<stem>SAE`` and ``<stem>SAEConfig`` when
    ``inference_classes`` is true (an architecture without them saves as another
    architecture's inference form, as BatchTopK saves as JumpReLU).
    """

    name: str
    module: str
    class_stem: str
    inference_classes: bool = True


BUILTIN_ARCHITECTURES: tuple[BuiltinArchitecture, ...] = (
    BuiltinArchitecture("standard", "standard", "Standard"),
    BuiltinArchitecture("topk", "topk", "TopK"),
    BuiltinArchitecture("batchtopk", "batchtopk", "BatchTopK", inference_classes=False),
    BuiltinArchitecture("matryoshka_batchtopk", "matryoshka", "MatryoshkaBatchTopK", inference_classes=False),
    BuiltinArchitecture("jumprelu", "jumprelu", "JumpReLU"),
    BuiltinArchitecture("gated", "gated", "Gated"),
    BuiltinArchitecture("matching_pursuit", "matching_pursuit", "MatchingPursuit"),
)


def class_exports(module_prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Defining module (``module_prefix`` + the row's module) -> its public class names, for
    every row (the form of the package export tables, see :mod:`synthsae._lazy`)."""
    out: dict[str, tuple[str, ...]] = {}
    for row in BUILTIN_ARCHITECTURES:
        kinds = ("Training", "") if row.inference_classes else ("Training",)
        out[module_prefix + row.module] = tuple(
            f"{row.class_stem}{kind}SAE{suffix}" for kind in kinds for suffix in ("", "Config"))
    return out
