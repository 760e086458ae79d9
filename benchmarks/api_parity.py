"""Compare synthsae's public API with the installed reference's and print every difference.

Usage::

    python benchmarks/api_parity.py [--reference-python PATH] [--docs docs/coming-from-saelens.md]
                                    [--reference-dump FILE] [--save-reference-dump FILE] [--all]

The tool describes both libraries the same way: every name in ``sae_lens.synthetic.__all__``
(as ``synthetic.<name>``) and the SAE classes and configs ``sae_lens`` exports for the
architectures that train on synthetic data (plus the base classes and ``LoggingConfig``).
For each name it records its kind; a function's parameters (name, kind, default); a
class's ``__init__`` parameters or, for a dataclass, its fields (name, default,
keyword-only); and every public method, classmethod and property defined by the
library itself (inherited ``torch.nn.Module``/TransformerLens members are not part of
the comparison). The reference is described by running this same file with
``--describe sae_lens`` under the reference venv's python; synthsae in-process.

A difference is anything reference code could notice when ``sae_lens`` is replaced by
``synthsae``: a missing name, member, parameter or field; a different default; a required
parameter synthsae adds; a different positional order; a different kind. Extra optional
parameters and extra names are not differences. Each difference has a key such as
``JumpReLUTrainingSAEConfig.target_l0`` or ``synthetic.train_toy_sae(autocast_sae)``.

Deliberate differences are the rows of the table in ``docs/coming-from-saelens.md``
whose first column holds one or more keys in backticks (``fnmatch`` patterns allowed). A
difference whose key matches a row is documented. The tool prints the undocumented ones
(``--all`` prints the documented ones too), lists rows that match nothing, and exits
with status 1 if any difference is undocumented.

``tests/fixtures/reference/api.json.gz`` is the reference's description, written with
``--save-reference-dump``; ``tests/test_api_parity.py`` compares synthsae with it in CI
(no reference needed). Regenerate it when the reference is upgraded.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import fnmatch
import gzip
import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
DOCS = REPO / "docs" / "coming-from-saelens.md"
DUMP = REPO / "tests" / "fixtures" / "reference" / "api.json.gz"

ARCHITECTURE_PREFIXES = (
    "Standard", "TopK", "BatchTopK", "MatryoshkaBatchTopK", "JumpReLU", "Gated", "MatchingPursuit", "AbsTopK",
)  # fmt: skip
BASE_NAMES = ("SAE", "SAEConfig", "TrainingSAE", "TrainingSAEConfig", "LoggingConfig")
_SAE_NAME = re.compile(r"^(" + "|".join(ARCHITECTURE_PREFIXES) + r")(Training)?SAE(Config)?$")


# ----------------------------------------------------------------------------- describing one library
def _default_repr(value: Any) -> str:
    """A library-neutral text form of a default value."""
    if value is inspect.Parameter.empty or value is dataclasses.MISSING:
        return "<required>"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (tuple, list)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return repr(value)
    if isinstance(value, dict) and not value:
        return "{}"
    module = type(value).__module__
    if module.startswith("torch"):
        return repr(value)
    if callable(value):
        return f"<callable {getattr(value, '__name__', type(value).__name__)}>"
    return f"<{type(value).__name__}>"


def _parameters(func: Any, skip_first: bool) -> list[dict[str, str]] | None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    if skip_first and params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]  # the instance a method is bound to, whatever its name
    return [{"name": p.name, "kind": p.kind.name, "default": _default_repr(p.default)} for p in params]


def _dataclass_fields(cls: type) -> list[dict[str, Any]]:
    result = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = _default_repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = "<factory " + _default_repr(f.default_factory()) + ">"  # type: ignore[misc]
        else:
            default = "<required>"
        result.append({"name": f.name, "default": default, "kw_only": bool(f.kw_only)})
    return result


def _members(cls: type, library: str) -> dict[str, dict[str, Any]]:
    """Public members defined by classes of ``library`` in ``cls``'s MRO."""
    members: dict[str, dict[str, Any]] = {}
    for owner in reversed(cls.__mro__):
        if not owner.__module__.startswith(library):
            continue
        for name, raw in vars(owner).items():
            if name.startswith("_"):
                continue
            if isinstance(raw, property):
                members[name] = {"kind": "property"}
            elif isinstance(raw, classmethod):
                members[name] = {"kind": "classmethod", "params": _parameters(getattr(cls, name), False)}
            elif isinstance(raw, staticmethod):
                members[name] = {"kind": "staticmethod", "params": _parameters(getattr(cls, name), False)}
            elif inspect.isfunction(raw):
                members[name] = {"kind": "method", "params": _parameters(raw, True)}
    return members


def _is_type_alias(obj: Any) -> bool:
    """``Callable[...]``, ``X | Y``, ``list[int]`` and other typing constructs."""
    module = getattr(type(obj), "__module__", "")
    return module in ("typing", "types", "collections.abc", "typing_extensions") and not inspect.isclass(obj)


def describe_object(obj: Any, library: str, attributes: bool = True) -> dict[str, Any]:
    """The comparable description of one public object (``attributes``: also list every
    public attribute of a class, inherited ones included; only needed on synthsae's side)."""
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if _is_type_alias(obj):
        return {"kind": "type alias"}
    if inspect.isclass(obj):
        entry: dict[str, Any] = {"kind": "class", "members": _members(obj, library)}
        if attributes:
            entry["attributes"] = sorted(name for name in dir(obj) if not name.startswith("_"))
        if dataclasses.is_dataclass(obj):
            entry["fields"] = _dataclass_fields(obj)
        else:
            init = obj.__init__ if "__init__" in vars(obj) or any(
                "__init__" in vars(base) for base in obj.__mro__[1:] if base.__module__.startswith(library)
            ) else None
            entry["init"] = _parameters(init, True) if init is not None else None
        return entry
    if callable(obj):
        return {"kind": "function", "params": _parameters(obj, False)}
    return {"kind": "constant", "value": _default_repr(obj)}


def reference_names(root: Any, synthetic: Any) -> list[tuple[str, str]]:
    """``(key, attribute)`` pairs of the API under comparison, from the reference's modules."""
    names = [(f"synthetic.{name}", name) for name in synthetic.__all__]
    names += [(name, name) for name in root.__all__ if _SAE_NAME.match(name) or name in BASE_NAMES]
    return sorted(set(names))


def describe_library(library: str, names: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Describe ``library`` (``"sae_lens"`` or ``"synthsae"``) for the given names
    (default: the names this library itself lists, as the reference is described, without
    the attribute lists)."""
    attributes = names is not None
    root = importlib.import_module(library)
    synthetic = importlib.import_module(f"{library}.synthetic")
    if names is None:
        names = reference_names(root, synthetic)
    result: dict[str, Any] = {}
    for key, name in names:
        module = synthetic if key.startswith("synthetic.") else root
        try:
            obj = getattr(module, name)
        except AttributeError:
            continue
        result[key] = describe_object(obj, library, attributes)
    return {"names": [list(n) for n in names], "objects": result}


# ----------------------------------------------------------------------------- comparing
def _compare_params(key: str, ref: list[dict] | None, ours: list[dict] | None) -> list[tuple[str, str]]:
    if ref is None or ours is None:
        return []
    diffs = []
    own = {p["name"]: p for p in ours}
    variadic_kw = any(p["kind"] == "VAR_KEYWORD" for p in ours)
    for p in ref:
        if p["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        mine = own.get(p["name"])
        if mine is None:
            if not variadic_kw:
                diffs.append((f"{key}({p['name']})", "parameter missing"))
            continue
        if mine["default"] != p["default"] and p["default"] != "<required>":
            diffs.append((f"{key}({p['name']})", f"default {mine['default']} (reference {p['default']})"))
        if p["kind"] == "POSITIONAL_OR_KEYWORD" and mine["kind"] == "KEYWORD_ONLY":
            diffs.append((f"{key}({p['name']})", "keyword-only here, positional in the reference"))
    ref_names = {p["name"] for p in ref}
    for p in ours:
        if p["name"] not in ref_names and p["default"] == "<required>" and p["kind"] not in (
            "VAR_POSITIONAL", "VAR_KEYWORD"
        ):
            diffs.append((f"{key}({p['name']})", "required parameter the reference does not have"))
    ref_pos = [p["name"] for p in ref if p["kind"] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    our_pos = [p["name"] for p in ours if p["kind"] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    if our_pos[: len(ref_pos)] != ref_pos and all(n in our_pos for n in ref_pos):
        diffs.append((f"{key}()", f"positional order {our_pos} (reference {ref_pos})"))
    return diffs


def _compare_fields(key: str, ref: list[dict], ours: list[dict]) -> list[tuple[str, str]]:
    diffs = []
    own = {f["name"]: f for f in ours}
    for f in ref:
        mine = own.get(f["name"])
        if mine is None:
            diffs.append((f"{key}.{f['name']}", "field missing"))
        elif mine["default"] != f["default"] and f["default"] != "<required>":
            diffs.append((f"{key}.{f['name']}", f"default {mine['default']} (reference {f['default']})"))
    ref_names = {f["name"] for f in ref}
    for f in ours:
        if f["name"] not in ref_names and f["default"] == "<required>":
            diffs.append((f"{key}.{f['name']}", "required field the reference does not have"))
    ref_pos = [f["name"] for f in ref if not f["kw_only"]]
    our_pos = [f["name"] for f in ours if not f["kw_only"]]
    if our_pos[: len(ref_pos)] != ref_pos and all(n in our_pos for n in ref_pos):
        diffs.append((f"{key}()", f"field order {our_pos} (reference {ref_pos})"))
    return diffs


def _compare_members(key: str, ref: dict, ours: dict, our_attributes: list[str]) -> list[tuple[str, str]]:
    diffs = []
    for name, member in sorted(ref.items()):
        mine = ours.get(name)
        member_key = f"{key}.{name}"
        if mine is None:
            if name not in our_attributes:  # inherited from torch counts as present
                diffs.append((member_key, f"{member['kind']} missing"))
            continue
        if mine["kind"] != member["kind"]:
            diffs.append((member_key, f"a {mine['kind']} here, a {member['kind']} in the reference"))
            continue
        diffs += _compare_params(member_key, member.get("params"), mine.get("params"))
    return diffs


def compare(reference: dict[str, Any], ours: dict[str, Any]) -> list[tuple[str, str]]:
    """Every difference as ``(key, description)``, sorted by key."""
    diffs: list[tuple[str, str]] = []
    for key, ref in sorted(reference["objects"].items()):
        mine = ours["objects"].get(key)
        if mine is None:
            diffs.append((key, f"{ref['kind']} missing"))
            continue
        if mine["kind"] != ref["kind"]:
            diffs.append((key, f"a {mine['kind']} here, a {ref['kind']} in the reference"))
            continue
        if ref["kind"] == "function":
            diffs += _compare_params(key, ref["params"], mine["params"])
        elif ref["kind"] == "constant" and ref["value"] != mine["value"]:
            diffs.append((key, f"value {mine['value']} (reference {ref['value']})"))
        elif ref["kind"] == "class":
            if "fields" in ref and "fields" in mine:
                diffs += _compare_fields(key, ref["fields"], mine["fields"])
            elif "fields" in ref or "fields" in mine:
                diffs.append((key, "a dataclass in only one of the libraries"))
            else:
                diffs += _compare_params(f"{key}.__init__", ref.get("init"), mine.get("init"))
            diffs += _compare_members(key, ref["members"], mine["members"], mine.get("attributes", []))
    return sorted(set(diffs))


# ----------------------------------------------------------------------------- the docs table
_KEY = re.compile(r"`([^`]+)`")


def documented_patterns(docs: Path) -> list[str]:
    """Key patterns from the first column of the docs' differences table.

    A row is a Markdown table line (``| ... | ... |``) of the table whose header's first
    cell is ``API key``; its first cell lists the keys in backticks.
    """
    patterns: list[str] = []
    in_table = False
    for line in docs.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        if cells and cells[0].lower() == "api key":
            in_table = True
            continue
        if in_table and not set(cells[0]) <= set("-: "):
            patterns += _KEY.findall(cells[0])
    return patterns


def _is_documented(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


# ----------------------------------------------------------------------------- main
def read_dump(path: Path) -> dict[str, Any]:
    """A reference description written by ``--save-reference-dump`` (gzipped if ``.gz``)."""
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)


def write_dump(path: Path, description: dict[str, Any]) -> None:
    text = json.dumps(description, indent=None if path.suffix == ".gz" else 1, sort_keys=True).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if path.suffix == ".gz" else text)


def undocumented_and_stale(
    reference: dict[str, Any], docs: Path
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """``(undocumented, documented, stale)``: the differences between ``reference`` and the
    installed synthsae that no docs row matches, those a row matches, and the rows that
    match no difference."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    ours = describe_library("synthsae", [tuple(n) for n in reference["names"]])
    diffs = compare(reference, ours)
    patterns = documented_patterns(docs) if docs.exists() else []
    undocumented = [(k, d) for k, d in diffs if not _is_documented(k, patterns)]
    documented = [(k, d) for k, d in diffs if _is_documented(k, patterns)]
    stale = [p for p in patterns if not any(fnmatch.fnmatchcase(k, p) for k, _ in diffs)]
    return undocumented, documented, stale


def _reference_description(args: argparse.Namespace) -> dict[str, Any]:
    if args.reference_dump is not None:
        return read_dump(args.reference_dump)
    output = subprocess.run(
        [str(args.reference_python), str(Path(__file__).resolve()), "--describe", "sae_lens"],
        check=True, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    return json.loads(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", type=Path, default=REFERENCE_PYTHON)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--reference-dump", type=Path,
                        help="read the reference's description from this JSON file (.json or .json.gz) "
                             "instead of running the reference")
    parser.add_argument("--save-reference-dump", type=Path,
                        help=f"write the reference's description here (the committed one is {DUMP.relative_to(REPO)})")
    parser.add_argument("--all", action="store_true", help="also print the documented differences")
    parser.add_argument("--describe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.describe:
        print(json.dumps(describe_library(args.describe), indent=1, sort_keys=True))
        return 0
    reference = _reference_description(args)
    if args.save_reference_dump is not None:
        write_dump(args.save_reference_dump, reference)
    undocumented, documented, stale = undocumented_and_stale(reference, args.docs)
    n_names = len(reference["objects"])
    print(f"compared {n_names} reference names: {len(undocumented) + len(documented)} differences, "
          f"{len(documented)} documented in {args.docs.name}, {len(undocumented)} undocumented")
    if args.all and documented:
        print("\ndocumented differences:")
        for key, description in documented:
            print(f"  {key}: {description}")
    if undocumented:
        print("\nundocumented differences:")
        for key, description in undocumented:
            print(f"  {key}: {description}")
    if stale:
        print(f"\ntable rows matching no difference (remove them?): {', '.join(stale)}")
    return 1 if undocumented else 0


if __name__ == "__main__":
    sys.exit(main())
