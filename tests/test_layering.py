"""The package layout follows the data flow: each stage imports only the stages below it.

config -> model (``synthetic``) -> batches (``runs``) -> SAE(s) (``saes``, ``training``) ->
metrics (``evals``) -> files and tables (``benchmark``, ``commands``). The imports are read
from the source with ``ast`` (nothing is executed), including imports inside functions and
under ``TYPE_CHECKING``, so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "synthsae"

# Modules every stage may use: they import nothing else of synthsae.
FOUNDATION = "foundation"
# ``synthsae/__init__.py``: the public facade, which re-exports names from the stages below the
# command line. No module of the package imports it (each imports the module that defines a name).
FACADE = "facade"

# stage -> the stages it may import (its own stage and the foundation always included).
ALLOWED: dict[str, set[str]] = {
    FOUNDATION: set(),
    FACADE: {"synthetic", "saes", "training", "evals", "runs", "benchmark"},
    "synthetic": set(),
    "saes": set(),
    "training": {"saes"},
    "evals": {"synthetic", "saes"},
    "runs": {"synthetic", "saes", "training", "evals"},
    "benchmark": {"synthetic", "saes", "training", "evals", "runs"},
    "commands": {"synthetic", "saes", "training", "evals", "runs", "benchmark"},
}
_TOP_LEVEL_COMMAND_MODULES = {"cli", "__main__"}


def stage_of(module: str) -> str:
    """The stage of a dotted module name inside synthsae (``synthsae.evals.metrics`` -> evals)."""
    parts = module.split(".")
    if parts[0] != "synthsae":
        raise ValueError(f"not a synthsae module: {module}")
    if len(parts) == 1:
        return FACADE
    head = parts[1]
    if head in _TOP_LEVEL_COMMAND_MODULES:
        return "commands"
    if head in ALLOWED:
        return head
    if (PACKAGE_ROOT / f"{head}.py").is_file():
        return FOUNDATION  # a top-level helper module such as _lazy or config_values
    raise ValueError(f"{module}: package {head!r} has no stage in tests/test_layering.py")


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every synthsae module that ``source`` (the text of ``module``) imports, anywhere."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            folder = PACKAGE_ROOT.parent / target.replace(".", "/")
            for alias in node.names:
                # ``from synthsae import evals`` imports the submodule synthsae.evals
                is_module = (folder / alias.name).is_dir() or (folder / f"{alias.name}.py").is_file()
                found.add(f"{target}.{alias.name}" if is_module else target)
    return {name for name in found if name == "synthsae" or name.startswith("synthsae.")}


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """``module imports target (stage -> stage)`` for each import that goes up a stage."""
    stage = stage_of(module)
    allowed = ALLOWED[stage] | {stage, FOUNDATION}
    if stage != FACADE:
        allowed.discard(FACADE)
    out = []
    for target in sorted(imported_modules(source, module, is_package)):
        target_stage = stage_of(target)
        if target_stage not in allowed:
            out.append(f"{module} imports {target} ({stage} -> {target_stage})")
    return out


def all_modules() -> list[tuple[str, Path]]:
    return sorted((module_name(path), path) for path in PACKAGE_ROOT.rglob("*.py"))


def test_every_module_has_a_stage() -> None:
    for module, _ in all_modules():
        stage_of(module)  # raises for a package the table does not know


def test_no_stage_imports_a_stage_above_it() -> None:
    found = []
    for module, path in all_modules():
        found += violations(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
    assert not found, "upward imports:\n" + "\n".join(found)


def test_foundation_modules_import_only_foundation() -> None:
    for module, path in all_modules():
        if stage_of(module) == FOUNDATION:
            targets = imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
            assert {stage_of(t) for t in targets} <= {FOUNDATION}, module


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # the data world reaching for an SAE, the training loop or an eval
        ("synthsae.synthetic.model_build", "from synthsae.saes.registry import get_sae_architecture",
         "synthetic -> saes"),
        ("synthsae.synthetic.hub", "def f():\n    from synthsae.training import trainer\n",
         "synthetic -> training"),
        ("synthsae.synthetic.presets", "from ..evals.metrics import L0Calculator", "synthetic -> evals"),
        # SAEs reaching for the data world or the loop
        ("synthsae.saes.topk", "import synthsae.synthetic.sparse_batch", "saes -> synthetic"),
        ("synthsae.saes.sae", "from synthsae import training", "saes -> training"),
        # anything but the command line importing the commands
        ("synthsae.benchmark.run", "from synthsae.commands.train import DEFAULT_JOB", "benchmark -> commands"),
        ("synthsae.runs.runner", "from synthsae.cli import main", "runs -> commands"),
        # the loop reaching up for the runner
        ("synthsae.training.trainer", "from synthsae.runs.runner import SyntheticSAERunner", "training -> runs"),
        # going through the public facade hides where a name comes from
        ("synthsae.evals.metrics", "from synthsae import TopKTrainingSAE", "evals -> facade"),
        # the facade re-exports, but never the command line
        ("synthsae", "from synthsae.cli import main", "facade -> commands"),
    ],
)
def test_a_deliberate_upward_import_is_caught(module: str, source: str, expected: str) -> None:
    found = violations(source, module)
    assert len(found) == 1 and expected in found[0], found


def test_allowed_imports_pass() -> None:
    assert violations("from synthsae.synthetic.sparse_batch import SparseBatch", "synthsae.evals.metrics") == []
    assert violations("from synthsae.config_values import check_int", "synthsae.synthetic.model_config") == []
    assert violations("from synthsae.benchmark import run_benchmark", "synthsae.commands.bench") == []
