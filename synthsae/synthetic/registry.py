"""Registered recipe configs: a name -> class mapping and the one base of the recipe families.

Firing-probability and magnitude recipes are both :class:`GeneratorConfig` families: small
dataclasses that generate a float32 vector ``[num_features]``, register themselves under a
short name and serialise to a dict with a ``"generator_name"`` key, so that a saved
``to_dict()`` is turned back into the right class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch

V = TypeVar("V")


class Registry(dict[str, V], Generic[V]):
    """A ``dict`` that refuses silent overwrites and explains failed look-ups.

    Args:
        *args, **kwargs: Initial contents, as for ``dict``.
        kind: A human-readable label for the things stored (used in error messages).
    """

    def __init__(self, *args: Any, kind: str = "entry", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind

    def register(self, name: str, value: V) -> V:
        """Store ``value`` under ``name``.

        Raises:
            ValueError: if ``name`` is already registered.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self:
            raise ValueError(
                f"{self.kind} name {name!r} is already registered (to {self[name]!r}); "
                "choose a different name"
            )
        self[name] = value
        return value

    def get_or_raise(self, name: str) -> V:
        """Return the value stored under ``name``.

        Raises:
            ValueError: if ``name`` is unknown; the message lists the registered names.
        """
        try:
            return self[name]
        except (KeyError, TypeError):
            available = ", ".join(repr(k) for k in sorted(self)) or "(none)"
            raise ValueError(
                f"unknown {self.kind} name {name!r}; available names: {available}"
            ) from None


def config_from_dict(
    registry: Registry[Any], data: dict[str, Any], base: type, key: str = "generator_name"
) -> Any:
    """Rebuild a registered config from its ``to_dict()`` form.

    ``data[key]`` selects the class in ``registry``; the remaining entries are passed
    to its constructor. The looked-up class must be a subclass of ``base``.

    Raises:
        TypeError: if ``data`` is not a mapping, or has fields the class does not take.
        ValueError: if ``key`` is missing or names no registered class.
    """
    if not isinstance(data, dict):
        raise TypeError(f"expected a dict from to_dict(), got {type(data).__name__}")
    if key not in data:
        raise ValueError(
            f"cannot rebuild a {base.__name__} from {data!r}: the {key!r} entry is missing"
        )
    fields = dict(data)
    cls = registry.get_or_raise(fields.pop(key))
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"registry entry {data[key]!r} is {cls!r}, not a {base.__name__} subclass")
    try:
        return cls(**fields)
    except TypeError as err:
        raise TypeError(f"cannot build {cls.__name__} from {fields!r}: {err}") from err


@dataclass
class GeneratorConfig(ABC):
    """Base of a family of registered recipes (e.g. :class:`FiringProbabilityConfig`).

    A family base sets the class attribute ``registry``; its subclasses are dataclasses
    that check their fields in ``__post_init__``, name themselves through
    :meth:`generator_name` and are registered with :meth:`register`, so that the family's
    :meth:`from_dict` rebuilds any of them.
    """

    registry: ClassVar[Registry[Any]]

    @classmethod
    @abstractmethod
    def generator_name(cls) -> str:
        """The registry key of this class (stored as ``"generator_name"``)."""

    @abstractmethod
    def generate(self, num_features: int, seed: int | None = None) -> torch.Tensor:
        """A float32 vector ``[num_features]``."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict, plus ``"generator_name"``."""
        return {"generator_name": self.generator_name(), **asdict(self)}

    @classmethod
    def family(cls) -> type[GeneratorConfig]:
        """The family base of ``cls`` (the class in its MRO that defines ``registry``)."""
        return next(c for c in cls.__mro__ if "registry" in c.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild a config written by :meth:`to_dict`, whatever its class in the family.

        Raises:
            ValueError: if ``"generator_name"`` is missing or not registered.
        """
        return config_from_dict(cls.registry, data, cls.family())

    @classmethod
    def register(family, name: str, cls: type) -> None:  # ``cls``: the class being registered
        """Make ``cls`` (a class of this family) rebuildable by :meth:`from_dict` under ``name``.

        Raises:
            TypeError: if ``cls`` is not in this family.
            ValueError: if ``name`` is already registered.
        """
        base = family.family()
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"cls must be a {base.__name__} subclass, got {cls!r}")
        family.registry.register(name, cls)
