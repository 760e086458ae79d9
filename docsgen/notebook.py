"""Run a percent-format Python script cell by cell and keep what each cell printed and drew.

The tutorials are plain scripts in jupytext's "percent" format, so they run with
``python script.py``, open as notebooks with jupytext, and are executed here during the docs
build:

* ``# %%`` starts a code cell; ``# %% [markdown]`` starts a prose cell whose lines are
  Markdown behind ``# `` (a leading jupytext ``# ---`` header is skipped).
* Cells run in order in one namespace, in this process. A cell's standard output is kept;
  if the cell ends in an expression, its value is shown as a notebook would (a matplotlib
  figure is saved as a picture, anything else but ``None`` is printed with ``repr``).
* After each cell every open pyplot figure is saved as PNG and closed.

``python -m docsgen.notebook SCRIPT OUTDIR`` writes ``OUTDIR/cells.json`` and the PNGs and
exits with status 1 (traceback on stderr) when a cell raises; :func:`render_markdown`
turns the result into the page the site shows.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Cell", "CellResult", "parse_cells", "render_markdown", "run_script"]

CELLS_FILENAME = "cells.json"
FIGURE_DPI = 90  # small PNGs: the site shows them at page width anyway


@dataclass
class Cell:
    """One cell of a percent-format script; ``line`` is its first source line (1-based)."""

    kind: str  # "code" or "markdown"
    source: str
    line: int


@dataclass
class CellResult:
    """A cell and what running it produced."""

    kind: str
    source: str
    output: str = ""
    images: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _is_marker(line: str) -> bool:
    return line.strip() == "# %%" or line.startswith("# %% ")


def _skip_header(lines: list[str]) -> int:
    """Index of the first line after a jupytext ``# ---`` ... ``# ---`` header, if any."""
    if lines and lines[0].strip() == "# ---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "# ---":
                return i + 1
    return 0


def _markdown_text(body: list[str]) -> str:
    out = []
    for raw in body:
        if raw.strip() and not raw.startswith("#"):
            raise ValueError(f"a markdown cell may only hold '# ' comment lines, got {raw!r}")
        out.append(raw[2:] if raw.startswith("# ") else raw.lstrip("#"))
    return "\n".join(out).strip("\n")


def parse_cells(text: str) -> list[Cell]:
    """The cells of a percent-format script (code before the first marker is refused)."""
    lines = text.splitlines()
    start = _skip_header(lines)
    cells: list[Cell] = []
    kind, body, first = None, [], 0
    for number, line in enumerate(lines[start:], start=start + 1):
        if _is_marker(line):
            if kind is not None:
                cells.append(_finish(kind, body, first))
            kind = "markdown" if "[markdown]" in line else "code"
            body, first = [], number + 1
        elif kind is None:
            if line.strip():
                raise ValueError(f"line {number}: text before the first '# %%' cell marker")
        else:
            body.append(line)
    if kind is not None:
        cells.append(_finish(kind, body, first))
    return [c for c in cells if c.source.strip()]


def _finish(kind: str, body: list[str], first: int) -> Cell:
    if kind == "markdown":
        return Cell("markdown", _markdown_text(body), first)
    while body and not body[-1].strip():
        body.pop()
    return Cell("code", "\n".join(body), first)


# --------------------------------------------------------------------------- running
def _save_open_figures(outdir: Path, stem: str, extra: Any = None) -> list[str]:
    """Save (then close) every open pyplot figure, plus ``extra`` if it is a figure."""
    if "matplotlib" not in sys.modules:
        return []
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    figures = [plt.figure(n) for n in plt.get_fignums()]
    if isinstance(extra, Figure) and extra not in figures:
        figures.append(extra)
    names = []
    for i, fig in enumerate(figures, start=1):
        name = f"{stem}-{i}.png"
        fig.savefig(outdir / name, dpi=FIGURE_DPI, bbox_inches="tight")
        names.append(name)
    plt.close("all")
    return names


def _run_code(cell: Cell, path: Path, namespace: dict[str, Any]) -> Any:
    """Execute a code cell; return the value of a final expression (else ``None``)."""
    padding = "\n" * (cell.line - 1)  # tracebacks point at the script's own line numbers
    tree = ast.parse(padding + cell.source, filename=str(path))
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, str(path), "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), str(path), "eval"), namespace)


def run_script(path: Path, outdir: Path) -> list[CellResult]:
    """Run every cell of ``path``, saving figures under ``outdir``; exceptions propagate."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    cells = parse_cells(path.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
    results = []
    for index, cell in enumerate(cells, start=1):
        result = CellResult(cell.kind, cell.source)
        if cell.kind == "code":
            buffer, started = io.StringIO(), time.perf_counter()
            with contextlib.redirect_stdout(buffer):
                value = _run_code(cell, path, namespace)
                if value is not None and not _is_figure(value):
                    print(repr(value))
            result.seconds = time.perf_counter() - started
            result.output = buffer.getvalue()
            result.images = _save_open_figures(outdir, f"cell{index:02d}", value)
        results.append(result)
    return results


def _is_figure(value: Any) -> bool:
    return type(value).__name__ == "Figure" and type(value).__module__.startswith("matplotlib")


# --------------------------------------------------------------------------- rendering
def _fence(text: str, language: str) -> list[str]:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return [f"{ticks}{language}", text.rstrip("\n"), ticks, ""]


def render_markdown(results: list[CellResult], image_dir: str, script_name: str, seconds: float,
                    banner: bool = True) -> str:
    """The page: prose cells as Markdown, code cells as code, then their output and pictures.

    ``image_dir`` is the folder of the PNGs relative to the page. ``banner`` adds, after the
    first prose cell, a note saying that the page was executed during the build.
    """
    lines: list[str] = []
    for i, cell in enumerate(results):
        if cell.kind == "markdown":
            lines += [cell.source, ""]
            if i == 0 and banner:
                lines += [
                    '!!! note "Executed during the docs build"',
                    f"    This page is the output of [`{script_name}`]({script_name}) run "
                    "by `mkdocs build`: the numbers and plots below come from the current "
                    "code. Run it yourself "
                    f"with `python {script_name}`, or open it as a notebook with jupytext.",
                    "",
                ]
            continue
        lines += _fence(cell.source, "python")
        if cell.output.strip():
            lines += _fence(cell.output, "text")
        for name in cell.images:
            lines += [f"![Output of the cell above]({image_dir}/{name})", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m docsgen.notebook SCRIPT OUTDIR", file=sys.stderr)
        return 2
    path, outdir = Path(argv[0]).resolve(), Path(argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        results = run_script(path, outdir)
    except Exception:  # noqa: BLE001 - any failure of the script fails the docs build
        traceback.print_exc()
        return 1
    payload = {"seconds": time.perf_counter() - started, "cells": [asdict(r) for r in results]}
    (outdir / CELLS_FILENAME).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
