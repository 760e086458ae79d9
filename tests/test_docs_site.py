"""The docs site's generated parts: the API reference covers every public name, the
notebook runner renders what a script printed and drew, and the nav lists every page.

The full build (``mkdocs build --strict``, tutorials executed) runs in ``.ci/run``; these
are the fast checks that do not need mkdocs.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from docsgen.api_pages import NAMESPACES, UNDOCUMENTED, reference_entries, reference_pages
from docsgen.notebook import parse_cells, render_markdown, run_script

REPO = Path(__file__).resolve().parents[1]


def _resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted`` and walk the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("namespace", [n.package for n in NAMESPACES])
def test_every_exported_name_has_a_reference_entry(namespace: str) -> None:
    package = importlib.import_module(namespace)
    pages = reference_pages()
    page = next(pages[n.page] for n in NAMESPACES if n.package == namespace)
    directives = set(re.findall(r"^::: (\S+)$", page, flags=re.M))
    entries = reference_entries(namespace)
    assert sorted(e.name for e in entries) == sorted(set(package.__all__) - UNDOCUMENTED)
    for entry in entries:
        assert entry.target in directives, entry
        # the directive points at the object users import, not at a namesake
        assert _resolve(entry.target) is getattr(package, entry.name), entry


def test_reference_index_lists_every_name() -> None:
    index = reference_pages()["reference/index.md"]
    for namespace in NAMESPACES:
        for name in set(importlib.import_module(namespace.package).__all__) - UNDOCUMENTED:
            assert f"`{name}`" in index


def test_nav_lists_every_page() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    listed = set(re.findall(r"([\w./-]+\.md)\s*$", nav, flags=re.M))
    written = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    tutorials = {f"tutorials/{p.stem}.md" for p in (REPO / "docs" / "tutorials").glob("*.py")}
    generated = set(reference_pages()) | tutorials
    assert written | generated == listed


SCRIPT = '''# ---
# jupyter: {}
# ---

# %% [markdown]
# # Title
#
# Some *prose*.

# %%
import matplotlib.pyplot as plt
x = 6 * 7
print("printed", x)

# %%
fig, ax = plt.subplots()
ax.plot([0, 1], [1, 0])
x + 1
'''


def test_parse_cells_splits_prose_and_code() -> None:
    cells = parse_cells(SCRIPT)
    assert [c.kind for c in cells] == ["markdown", "code", "code"]
    assert cells[0].source == "# Title\n\nSome *prose*."
    assert cells[1].source.splitlines()[0] == "import matplotlib.pyplot as plt"
    assert cells[1].line == 11  # 1-based line of the cell's first source line


def test_parse_cells_refuses_code_before_the_first_marker() -> None:
    with pytest.raises(ValueError, match="before the first"):
        parse_cells("x = 1\n# %%\ny = 2\n")


def test_run_script_keeps_output_values_and_figures(tmp_path: Path) -> None:
    script = tmp_path / "demo.py"
    script.write_text(SCRIPT, encoding="utf-8")
    results = run_script(script, tmp_path)
    assert results[1].output == "printed 42\n"
    assert results[2].output == "43\n"  # the final expression's value, as a notebook shows it
    assert results[2].images == ["cell03-1.png"] and (tmp_path / "cell03-1.png").stat().st_size > 0
    page = render_markdown(results, image_dir="demo", script_name="demo.py", seconds=1.0)
    assert "```python\nimport matplotlib" in page and "```text\nprinted 42\n```" in page
    assert "![Output of the cell above](demo/cell03-1.png)" in page


def test_a_failing_script_fails_with_its_own_line_number(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("# %%\nx = 1\n\n# %%\nraise RuntimeError('tutorial broke')\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "docsgen.notebook", str(script), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 1
    assert f'File "{script}", line 5' in proc.stderr and "tutorial broke" in proc.stderr
    assert not (tmp_path / "out" / "cells.json").exists()


def test_a_passing_script_writes_its_cells(tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("# %%\nprint('hello')\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "docsgen.notebook", str(script), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    cells = json.loads((tmp_path / "out" / "cells.json").read_text())["cells"]
    assert cells[0]["output"] == "hello\n"
