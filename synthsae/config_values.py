"""Text helpers and value checks of the runner config: YAML/JSON files, ``--set KEY=VALUE``
overrides, "did you mean" messages for unknown keys."""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "apply_overrides",
    "check_bool",
    "check_float",
    "check_int",
    "check_optional_str",
    "load_config_data",
    "load_yaml",
    "parse_override",
    "parse_yaml_scalar",
    "unknown_keys_message",
    "write_config_file",
]


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads ``3e-4`` (no dot) as a float, as YAML 1.2 does."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, reading ``3e-4``-style scalars (no dot) as floats (YAML 1.2)."""
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass


def parse_yaml_scalar(text: str) -> Any:
    """Parse a command-line value as YAML: ``8`` -> int, ``1e-3`` -> float, ``null`` -> None,
    ``[16, 64]`` -> list, anything unparsable -> the string itself."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"sae.k=8"`` into ``("sae.k", 8)`` (the value parsed by :func:`parse_yaml_scalar`)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set expects KEY=VALUE (e.g. lr=1e-3 or sae.k=8), got {text!r}")
    return key, parse_yaml_scalar(value.strip())


def load_config_data(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON file holding one mapping."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = load_yaml(text)
        else:
            data = json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot parse the file: {err}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return dict(data)


def check_int(key: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; the error names ``key``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {value!r}")
    return int(value)


def check_float(key: str, value: Any, *, positive: bool = False, low: float | None = None,
           high_exclusive: float | None = None) -> float:
    """``value`` as a finite float within the given bounds; the error names ``key``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{key} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{key} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{key} must be > 0, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{key} must be >= {low}, got {value!r}")
    if high_exclusive is not None and value >= high_exclusive:
        raise ValueError(f"{key} must be < {high_exclusive}, got {value!r}")
    return value


def check_bool(key: str, value: Any) -> bool:
    """``value`` if it is a bool; the error names ``key``."""
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false, got {value!r}")
    return value


def check_optional_str(key: str, value: Any) -> str | None:
    """``value`` as a non-empty string (paths allowed) or None; the error names ``key``."""
    if value is None:
        return None
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} must be a non-empty string or null, got {value!r}")
    return value


def unknown_keys_message(section: str, unknown: list[str], known: list[str]) -> str:
    """``unknown key(s) in <section>: ...; valid keys: ...`` with close-match suggestions."""
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"unknown key(s) in {section}: {', '.join(parts)}; valid keys: {', '.join(known)}"


def apply_overrides(
    data: Mapping[str, Any], overrides: Mapping[str, Any], create_sections: Collection[str] | bool = ("logger",)
) -> dict[str, Any]:
    """A deep copy of ``data`` with each dotted key set (intermediate keys must be mappings).

    A missing intermediate section is created when its name is in ``create_sections``
    (``True``: any name); otherwise setting a key below it is an error naming the key.
    """
    out = copy.deepcopy(dict(data))
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        if any(not p for p in parts):
            raise ValueError(f"--set {dotted}: empty part in the key")
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            creatable = create_sections is True or (create_sections is not False and part in create_sections)
            if child is None and isinstance(node, dict) and creatable:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ValueError(f"--set {dotted}: {where!r} is not a section with keys"
                                 + (f" (it is {child!r})" if child is not None else ""))
            node = child
        node[parts[-1]] = value
    return out


def write_config_file(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write a config dict as YAML (``.yaml``/``.yml``) or JSON (anything else), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    else:
        path.write_text(json.dumps(dict(data), indent=2) + "\n", encoding="utf-8")
    return path
