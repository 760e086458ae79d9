"""The mkdocs hook of the site (``hooks:`` in ``mkdocs.yml``).

During ``mkdocs build`` / ``mkdocs serve`` it adds the generated pages to the site:

* ``reference/*.md``: the API reference, from the packages' export tables
  (:mod:`docsgen.api_pages`);
* ``tutorials/<name>.md`` and their pictures: each ``docs/tutorials/*.py`` script executed
  cell by cell (:mod:`docsgen.notebook`);
* executed examples: each ``docs/examples/<name>.py`` script is run the same way and
  rendered (code, then its real output) as the snippet ``example-<name>``, which any page
  includes with a ``<!-- generated: example-<name> -->`` line;
* ``guides/figures/*.png`` and the generated tables and outputs that pages include with a
  ``<!-- generated: NAME -->`` line (:mod:`docsgen.figures`, :mod:`docsgen.knob_effects`,
  :mod:`docsgen.main_job`).

A tutorial or figure script that raises fails the build (with or without ``--strict``),
and so does a ``<!-- generated: NAME -->`` line whose NAME no job produced. Sphinx roles
left in docstrings (``:class:`X```) are shown as plain code.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # mkdocs loads a hook by file path: make docsgen and synthsae importable
    sys.path.insert(0, str(REPO))

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402

from docsgen.api_pages import reference_pages  # noqa: E402
from docsgen.jobs import Job, JobError, JobResult, run_jobs  # noqa: E402
from docsgen.notebook import CELLS_FILENAME, CellResult, render_markdown  # noqa: E402

log = logging.getLogger("mkdocs.plugins.synthsae")

TUTORIALS_DIR = "tutorials"
EXAMPLES_DIR = "examples"
FIGURES_DIR = "guides/figures"
ASSET_JOBS = ("docsgen.knob_effects", "docsgen.main_job", "docsgen.figures")  # longest first
GENERATED_MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.M)
SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(?=<code>)")
TILDE_PATH = re.compile(r"<code>~(?:\w+\.)+(\w+)</code>")

DOCS_ROOT = "@@DOCS_ROOT@@"  # replaced by the relative path from the including page to docs/
_snippets: dict[str, str] = {}


def _jobs(docs_dir: Path) -> list[Job]:
    scripts = sorted((docs_dir / TUTORIALS_DIR).glob("*.py")) + sorted((docs_dir / EXAMPLES_DIR).glob("*.py"))
    return [Job(module.rsplit(".", 1)[1], module) for module in ASSET_JOBS] + [
        Job(f"{path.parent.name}-{path.stem}", "docsgen.notebook", path) for path in scripts
    ]


def _add(files: Files, config: Any, src_uri: str, **source: Any) -> None:
    existing = files.get_file_from_path(src_uri)
    if existing is not None:
        files.remove(existing)
    files.append(File.generated(config, src_uri, **source))


def _add_executed(files: Files, config: Any, result: JobResult) -> None:
    """A tutorial becomes a page; an example becomes a snippet (its pictures go beside it)."""
    script = result.job.script
    assert script is not None
    payload = json.loads((result.outdir / CELLS_FILENAME).read_text(encoding="utf-8"))
    cells = [CellResult(**cell) for cell in payload["cells"]]
    folder = script.parent.name
    if folder == TUTORIALS_DIR:
        page = render_markdown(cells, image_dir=script.stem, script_name=script.name, seconds=payload["seconds"])
        _add(files, config, f"{TUTORIALS_DIR}/{script.stem}.md", content=page)
        image_root = f"{TUTORIALS_DIR}/{script.stem}"
    else:
        image_root = f"{EXAMPLES_DIR}/{script.stem}"
        # a snippet may be included by any page: its picture links are made relative to that page
        _snippets[f"example-{script.stem}"] = render_markdown(
            cells, image_dir=f"{DOCS_ROOT}/{image_root}", script_name=script.name, seconds=payload["seconds"],
            banner=False)
    for png in sorted(result.outdir.glob("*.png")):
        _add(files, config, f"{image_root}/{png.name}", abs_src_path=str(png))


def _add_assets(files: Files, config: Any, result: JobResult) -> None:
    for png in sorted(result.outdir.glob("*.png")):
        _add(files, config, f"{FIGURES_DIR}/{png.name}", abs_src_path=str(png))
    for snippet in sorted(result.outdir.glob("*.md")):
        _snippets[snippet.stem] = snippet.read_text(encoding="utf-8")


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for path, text in reference_pages().items():
        _add(files, config, path, content=text)
    _snippets.clear()
    try:
        results = run_jobs(_jobs(Path(config["docs_dir"])))
    except JobError as err:
        raise PluginError(f"docs build job failed: {err}") from err
    for result in results.values():
        how = "cached" if result.cached else f"{result.seconds:.1f} s"
        log.info(f"executed {result.job.name} ({how})")
        if result.job.script is None:
            _add_assets(files, config, result)
        else:
            _add_executed(files, config, result)
    return files


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    root = "/".join([".."] * page.file.src_uri.count("/")) or "."

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _snippets:
            raise PluginError(f"{page.file.src_uri}: no generated snippet {name!r} "
                              f"(known: {', '.join(sorted(_snippets)) or 'none'})")
        return _snippets[name].replace(DOCS_ROOT, root)

    return GENERATED_MARKER.sub(replace, markdown)


def on_page_content(html: str, **kwargs: Any) -> str:
    return TILDE_PATH.sub(r"<code>\1</code>", SPHINX_ROLE.sub("", html))
