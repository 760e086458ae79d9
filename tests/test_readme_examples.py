"""The README's Python examples run as written (slow: they train real SAEs, ~2 minutes in all).

Run with ``python -m pytest -m slow tests/test_readme_examples.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, tmp_path: Path) -> None:
    # a fresh interpreter per block: the examples are independent scripts
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", BLOCKS[index]], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "every README example prints its result"
