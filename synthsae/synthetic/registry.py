"""A small name -> object mapping used for the config registries.

Config classes (firing probabilities, magnitudes) register themselves under a
short name so that a saved ``to_dict()`` can be turned back into the right class.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Registry(dict[str, V], Generic[V]):
    """A ``dict`` that refuses silent overwrites and explains failed look-ups.

    Args:
        *args: Initial contents, as for ``dict``.
        **kwargs: Initial contents, as for ``dict``.
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
