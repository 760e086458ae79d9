"""``SAEMetadata``: the free-form ``metadata`` of an SAE config, as the reference keeps it.

A ``dict`` whose keys can also be read and written as attributes; a key that was never
set reads as ``None`` (``metadata.hook_name``, ``metadata["hook_name"]``), while
``"hook_name" in metadata`` and ``metadata.get("hook_name", default)`` see only the keys
that were set. New metadata records ``sae_lens_version`` and
``sae_lens_training_version`` as :data:`SAE_LENS_FORMAT_VERSION` (the reference reads a
``cfg.json`` without a version of 6.0 or later as a pre-6.0 file and converts it, which
fails for training checkpoints, so every file synthsae writes carries the version of the
reference whose file format it follows), and ``synthsae_version`` as synthsae's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The SAELens release whose SAE file format (tensor names, ``cfg.json`` keys) synthsae
#: reads and writes; recorded in new metadata as ``sae_lens_version``.
SAE_LENS_FORMAT_VERSION = "6.54.12"

_VERSION_KEYS = ("sae_lens_version", "sae_lens_training_version")


def _default_versions() -> dict[str, str]:
    from synthsae._version import __version__

    return {**dict.fromkeys(_VERSION_KEYS, SAE_LENS_FORMAT_VERSION), "synthsae_version": __version__}


class SAEMetadata(dict):
    """Metadata of an SAE (model, hook, training details...): a dict with attribute access.

    Missing keys read as ``None`` through ``[]`` and attributes. Built with the version
    keys (``sae_lens_version``, ``sae_lens_training_version``, ``synthsae_version``) set
    unless given.
    """

    def __init__(self, data: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__(_default_versions())
        if data is not None:
            self.update(data)
        self.update(kwargs)

    def __missing__(self, key: str) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        self.pop(name, None)

    def __reduce__(self) -> tuple:
        return (type(self), (dict(self),))

    def __copy__(self) -> SAEMetadata:
        return type(self)(dict(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> SAEMetadata:
        import copy

        return type(self)(copy.deepcopy(dict(self), memo))

    def to_dict(self) -> dict[str, Any]:
        """A plain ``dict`` copy (what ``cfg.json`` stores)."""
        return dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SAEMetadata:
        """Metadata holding ``data``'s keys."""
        return cls(data)

    def __repr__(self) -> str:
        return f"SAEMetadata({dict(self)!r})"
