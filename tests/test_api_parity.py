"""API parity with the reference, checked in CI from a committed description of its API.

``tests/fixtures/reference/api.json.gz`` was written by ``benchmarks/api_parity.py
--save-reference-dump`` (which ran a describing script in the reference venv). Every
difference between it and synthsae must be a row of the table in
``docs/coming-from-saelens.md``, and every row must still match a difference.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("api_parity", REPO / "benchmarks" / "api_parity.py")
api_parity = importlib.util.module_from_spec(_spec)
sys.modules["api_parity"] = api_parity
_spec.loader.exec_module(api_parity)


def test_every_difference_from_the_reference_is_documented() -> None:
    reference = api_parity.read_dump(api_parity.DUMP)
    assert len(reference["objects"]) > 100  # sae_lens.synthetic.__all__ and the SAE classes
    undocumented, documented, stale = api_parity.undocumented_and_stale(reference, api_parity.DOCS)
    assert undocumented == [], "\n".join(f"{k}: {d}" for k, d in undocumented)
    assert stale == []
    assert documented  # the table is read (wandb defaults, for one)


def _fn(*params: tuple[str, str, str]) -> dict:
    return {"kind": "function", "params": [{"name": n, "kind": k, "default": d} for n, k, d in params]}


POS, KW = "POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY"


@pytest.mark.parametrize(
    ("ref", "ours", "expected"),
    [
        (_fn(("a", POS, "<required>")), _fn(("a", POS, "<required>"), ("b", POS, "1")), []),  # extra optional: fine
        (_fn(("a", POS, "1")), _fn(("a", POS, "2")), [("f(a)", "default 2 (reference 1)")]),
        (_fn(("a", POS, "<required>")), _fn(("x", POS, "<required>")),
         [("f(a)", "parameter missing"), ("f(x)", "required parameter the reference does not have")]),
        (_fn(("a", POS, "1"), ("b", POS, "2")), _fn(("b", POS, "2"), ("a", POS, "1")),
         [("f()", "positional order ['b', 'a'] (reference ['a', 'b'])")]),
        (_fn(("a", POS, "1")), _fn(("a", KW, "1")), [("f(a)", "keyword-only here, positional in the reference")]),
        (_fn(("a", POS, "<required>")), _fn(("a", POS, "0")), []),  # a default where the reference has none
    ],
)
def test_compare_functions(ref: dict, ours: dict, expected: list) -> None:
    diffs = api_parity.compare({"objects": {"f": ref}}, {"objects": {"f": ours}})
    assert diffs == sorted(expected)


def test_compare_classes_fields_and_members() -> None:
    ref = {"kind": "class", "fields": [{"name": "k", "default": "100", "kw_only": False}],
           "members": {"encode": {"kind": "method", "params": []}, "to": {"kind": "method", "params": []},
                       "gone": {"kind": "property"}}}
    ours = {"kind": "class", "fields": [{"name": "k", "default": "100.0", "kw_only": False}],
            "members": {"encode": {"kind": "method", "params": []}}, "attributes": ["encode", "to"]}
    diffs = api_parity.compare({"objects": {"C": ref, "missing": {"kind": "constant", "value": "1"}}},
                               {"objects": {"C": ours}})
    # "to" exists (inherited from torch), so only the default and the missing names differ
    assert diffs == [("C.gone", "property missing"), ("C.k", "default 100.0 (reference 100)"),
                     ("missing", "constant missing")]


def test_documented_patterns_come_from_the_first_column_of_the_api_key_table(tmp_path: Path) -> None:
    docs = tmp_path / "page.md"
    docs.write_text(
        "| Other | table |\n|---|---|\n| `not.this` | x |\n\n"
        "| API key | What differs | Why |\n|---|---|---|\n"
        "| `A.b`, `*.fold_*` | ... | `ignored.in.other.columns` |\n| behaviour row | ... | ... |\n"
    )
    patterns = api_parity.documented_patterns(docs)
    assert patterns == ["A.b", "*.fold_*"]
    assert api_parity._is_documented("SAE.fold_activation_whitening", patterns)
    assert not api_parity._is_documented("A.c", patterns)
