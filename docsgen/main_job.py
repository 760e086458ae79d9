"""The output of the main job, ``synthsae train``, as the Getting-started page shows it.

``python -m docsgen.main_job OUTDIR`` runs ``synthsae train`` exactly as a newcomer types
it (from a scratch folder, so its ``runs/<timestamp>/`` lands there) and writes what it
printed to ``OUTDIR/main-job-output.md`` as a text block.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m docsgen.main_job OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    outdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "synthsae", "train"], capture_output=True, text=True,
                          timeout=900, check=False)  # stdout and stderr kept apart: the progress line goes to stderr
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return 1
    text = "$ synthsae train\n" + proc.stderr + proc.stdout
    (outdir / "main-job-output.md").write_text(f"```text\n{text.rstrip()}\n```\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
