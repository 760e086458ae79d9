"""The one place for config values: checks, dict forms, YAML/JSON files and ``--set`` overrides.

Every config of synthsae (the synthetic model and its parts, the SAEs, the trainer, the
runner, the benchmark, logging) checks its values with the ``check_*`` functions below.
They share one signature, ``check_x(name, value, ...)``, return the value in its canonical
form, and raise one message style: ``<name> must be <rule>, got <value>`` (``TypeError``
for a wrong kind of value, ``ValueError`` for a wrong value), with "did you mean" where a
close known name exists. ``name`` is what the user wrote: a field (``lr``), a dotted key
(``sae.k``) or a qualified one (``TopKSAEConfig.k``).

Foundation module: imports nothing else of synthsae.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import MISSING, fields
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import torch
import yaml

from synthsae.atomic_files import atomic_write_text

__all__ = [
    "CONFIG_SUFFIXES",
    "apply_overrides",
    "check_bool",
    "check_choice",
    "check_device",
    "check_dtype",
    "check_float",
    "check_int",
    "check_keys",
    "check_probability",
    "check_str",
    "dataclass_values",
    "did_you_mean",
    "load_config_data",
    "load_yaml",
    "parse_override",
    "parse_yaml_scalar",
    "torch_dtype",
    "unknown_keys_message",
    "write_config_file",
]

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
"""File endings a config file may have (YAML for the first two, JSON for the last)."""

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16"}
_CUDA_INSTALL_HINT = "install a CUDA build of torch (https://pytorch.org/get-started/locally/) or use device='cpu'"


# ------------------------------------------------------------------ scalar checks
def did_you_mean(word: Any, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate to ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fmt(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _range_rule(at_least: Any, above: Any, at_most: Any, below: Any) -> str:
    low, low_open = (above, True) if above is not None else (at_least, False)
    high, high_open = (below, True) if below is not None else (at_most, False)
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_fmt(low)}"
    return f"{'<' if high_open else '<='} {_fmt(high)}"


def _check_range(name: str, value: Any, at_least: Any = None, above: Any = None,
                 at_most: Any = None, below: Any = None) -> None:
    if ((at_least is not None and value < at_least) or (above is not None and value <= above)
            or (at_most is not None and value > at_most) or (below is not None and value >= below)):
        raise ValueError(f"{name} must be {_range_rule(at_least, above, at_most, below)}, got {value!r}")


def check_int(name: str, value: Any, *, at_least: int | None = None, at_most: int | None = None,
              optional: bool = False) -> Any:
    """``value`` as an ``int`` in ``[at_least, at_most]`` (``None`` allowed if ``optional``).

    An integral float (``1e5``, as YAML reads it) counts as an integer; ``2.5`` and bools
    do not.
    """
    if value is None and optional:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer{' or null' if optional else ''}, got {value!r}")
    value = int(value)
    _check_range(name, value, at_least=at_least, at_most=at_most)
    return value


def check_float(name: str, value: Any, *, at_least: float | None = None, above: float | None = None,
                at_most: float | None = None, below: float | None = None, optional: bool = False) -> Any:
    """``value`` as a finite ``float`` within the given bounds (``above``/``below`` are strict)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number{' or null' if optional else ''}, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    _check_range(name, value, at_least, above, at_most, below)
    return value


def check_probability(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a probability: in ``(0, 1]``, or ``[0, 1]`` with ``allow_zero``."""
    if allow_zero:
        return check_float(name, value, at_least=0.0, at_most=1.0)
    return check_float(name, value, above=0.0, at_most=1.0)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return value


def check_str(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` as a non-empty string (a ``Path`` is turned into one); ``None`` if ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string{' or null' if optional else ''}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Collection[Any], *, optional: bool = False) -> Any:
    """``value`` if it is one of ``choices`` (``None`` allowed if ``optional``)."""
    if (value is None and optional) or value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name} must be one of {listed}, got {value!r}{did_you_mean(value, map(str, choices))}")


def check_dtype(name: str, value: Any) -> str:
    """The canonical name (``"float32"``) of a floating dtype given as a name or ``torch.dtype``.

    ``"torch.float32"``, ``"float"``, ``"double"`` and ``"half"`` are accepted too.
    """
    if isinstance(value, torch.dtype):
        for key, dtype in _DTYPES.items():
            if dtype == value:
                return key
        raise ValueError(f"{name} must be a floating point dtype ({', '.join(_DTYPES)}), got {value}")
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a dtype name such as 'float32', got {value!r}")
    key = value.removeprefix("torch.")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in _DTYPES:
        raise ValueError(f"{name} must be one of {', '.join(_DTYPES)}, got {value!r}{did_you_mean(key, _DTYPES)}")
    return key


def torch_dtype(value: str | torch.dtype, name: str = "dtype") -> torch.dtype:
    """The ``torch.dtype`` of a dtype name (see :func:`check_dtype`)."""
    return _DTYPES[check_dtype(name, value)]


def check_device(name: str, value: Any) -> str:
    """``value`` as a device string that this torch can use (``"cpu"``, ``"cuda:1"``, ...).

    A CUDA device is refused up front, in one line, when this torch has no CUDA support,
    sees no GPU, or sees fewer GPUs than the index asks for.
    """
    if isinstance(value, torch.device):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a device string such as 'cpu' or 'cuda', got {value!r}")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must be a torch device such as 'cpu', 'cuda' or 'cuda:1', got {value!r}") from None
    if device.type == "cuda":
        _check_cuda(name, value, device.index)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}={value!r}: MPS is not available in this torch or on this machine; use device='cpu'")
    return value


def _check_cuda(name: str, value: str, index: int | None) -> None:
    if torch.version.cuda is None and torch.version.hip is None:
        raise ValueError(f"{name}={value!r}: CUDA is not available: this torch {torch.__version__} "
                         f"is a CPU-only build; {_CUDA_INSTALL_HINT}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ValueError(f"{name}={value!r}: CUDA is not available: torch {torch.__version__} has CUDA support "
                         "but sees no GPU (check the driver and CUDA_VISIBLE_DEVICES), or use device='cpu'")
    if index is not None and index >= count:
        raise ValueError(f"{name}={value!r}: torch sees {count} CUDA device(s) (cuda:0..cuda:{count - 1})")


# ------------------------------------------------------------------ dict forms
def unknown_keys_message(where: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """``unknown key(s) in <where>: 'x' (did you mean 'y'?); valid keys: ...``."""
    known = list(known)
    parts = [f"{key!r}{did_you_mean(key, known)}" for key in unknown]
    return f"unknown key(s) in {where}: {', '.join(parts)}; valid keys: {', '.join(known)}"


def check_keys(where: str, data: Any, known: Iterable[str], *, required: Iterable[str] = ()) -> dict[str, Any]:
    """``data`` as a plain dict whose keys are all ``known`` and include every ``required`` one.

    Errors name ``where`` (``"the runner config"``, ``"sae (topk)"``, ...) and the keys.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} must be a mapping of keys to values, got {type(data).__name__}")
    known = list(known)
    unknown = [key for key in data if key not in known]
    if unknown:
        raise ValueError(unknown_keys_message(where, unknown, known))
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"missing required key(s) in {where}: {', '.join(repr(k) for k in missing)}")
    return dict(data)


def _takes_none(annotation: Any) -> bool:
    # annotations are strings under ``from __future__ import annotations``: "int | None", "Optional[str]"
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "None" in text or "Optional" in text or text == "Any"


def dataclass_values(cls: type, data: Any, where: str | None = None, *, ignore: Collection[str] = ()) -> dict[str, Any]:
    """The keyword arguments of ``cls`` (a dataclass) that the dict form ``data`` holds.

    Refuses unknown keys (with suggestions) and missing required ones, naming ``where``
    (default: the class name). A key set to ``None`` (``null``) whose field has a default
    and does not take ``None`` is dropped, so the field keeps its default: ``--set
    key=null`` removes an optional key. Keys in ``ignore`` are dropped silently.
    """
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} must be a mapping of keys to values, got {type(data).__name__}")
    init = [f for f in fields(cls) if f.init]
    required = [f.name for f in init if f.default is MISSING and f.default_factory is MISSING]
    values = {key: value for key, value in data.items() if key not in ignore}
    for f in init:
        if values.get(f.name, 0) is None and f.name not in required and not _takes_none(f.type):
            del values[f.name]
    return check_keys(where, values, [f.name for f in init], required=required)


# ------------------------------------------------------------------ YAML / JSON text and files
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


def load_config_data(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) file holding one mapping.

    Errors name the file: a missing file (``FileNotFoundError``), another ending, text that
    does not parse or that holds something other than a mapping (``ValueError``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ValueError(f"{path}: unknown config file type {suffix or '(no ending)'!r}; "
                         "name it .yaml, .yml (YAML) or .json (JSON)")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if suffix == ".json" else load_yaml(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        message = " ".join(str(err).split())  # YAML errors span several lines
        raise ValueError(f"{path}: cannot parse the file as {'JSON' if suffix == '.json' else 'YAML'}: "
                         f"{message}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return dict(data)


# ------------------------------------------------------------------ --set KEY=VALUE overrides
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


def apply_overrides(
    data: Mapping[str, Any], overrides: Mapping[str, Any], create_sections: Collection[str] | bool = ("logger",)
) -> dict[str, Any]:
    """A deep copy of ``data`` with each dotted key set (intermediate keys must be mappings).

    A missing intermediate section is created when its name is in ``create_sections``
    (``True``: any name); otherwise setting a key below it is an error naming the key.
    A ``None`` value is kept as ``None``: the config's ``from_dict`` decides whether that
    means ``null`` or "use the default" (:func:`dataclass_values`).
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
    if path.suffix.lower() in (".yaml", ".yml"):
        return atomic_write_text(path, yaml.safe_dump(dict(data), sort_keys=False))
    return atomic_write_text(path, json.dumps(dict(data), indent=2) + "\n")
