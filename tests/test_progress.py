"""Progress bars: off when the caller says so, and TQDM_DISABLE in the environment still works."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from synthsae._progress import progress_bar

REPO = Path(__file__).resolve().parents[1]


def test_show_false_disables_and_show_true_draws() -> None:
    out = io.StringIO()
    with progress_bar(total=3, show=False, file=out) as bar:
        assert bar.disable
        bar.update(3)
    assert out.getvalue() == ""
    with progress_bar(total=3, show=True, file=out) as bar:
        assert not bar.disable
        bar.update(3)
    assert "3/3" in out.getvalue()


def test_environment_can_silence_a_shown_bar() -> None:
    # tqdm reads TQDM_* when it is imported, so this runs in a fresh interpreter;
    # tqdm(disable=False) would override the variable, progress_bar must not pass it
    code = ("import io\nfrom synthsae._progress import progress_bar\nout = io.StringIO()\n"
            "bar = progress_bar(total=3, show=True, file=out)\nprint(bar.disable)\nbar.update(3)\nbar.close()\n"
            "print(repr(out.getvalue()))\n")
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(REPO))
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           check=True).stdout.split()
    assert lines == ["True", "''"]
