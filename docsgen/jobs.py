"""The build's executed jobs (tutorials, guide figures): run in parallel, cached by their inputs.

Each job is a Python module run in its own process with an output folder, from a scratch
working directory, with progress bars off and one torch thread (two jobs share the two
cores of a CI machine better than two threads fight over them). A job that fails or runs
past :data:`JOB_TIMEOUT_S` fails the build with its traceback.

Results are cached under ``.cache/docsgen/`` keyed by a hash of everything they depend
on: the job's own script, the ``docsgen`` package, every file of the ``synthsae`` package
and the torch version. An unchanged checkout rebuilds (``mkdocs serve``) without rerunning
anything; any change to the library reruns every job, so the site never shows output of
older code. ``SYNTHSAE_DOCS_CACHE=0`` turns the cache off; a fresh clone has none.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Job", "JobError", "JobResult", "run_jobs"]

REPO = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO / ".cache" / "docsgen"
JOB_TIMEOUT_S = 600  # a tutorial is meant to take about a minute; ten is surely broken
DONE_MARKER = ".done"


class JobError(RuntimeError):
    """A job's process failed; the message holds the tail of its output."""


@dataclass(frozen=True)
class Job:
    """``python -m MODULE [script] OUTDIR``; ``script`` (if any) is part of the cache key."""

    name: str
    module: str
    script: Path | None = None


@dataclass(frozen=True)
class JobResult:
    job: Job
    outdir: Path
    seconds: float  # 0.0 when it came from the cache
    cached: bool


def _digest_tree(h: hashlib._Hash, root: Path, pattern: str) -> None:
    for path in sorted(root.rglob(pattern)):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        h.update(str(path.relative_to(REPO)).encode())
        h.update(path.read_bytes())


def code_digest() -> str:
    """Hash of what every job's output depends on besides its own script."""
    import torch

    h = hashlib.sha256()
    h.update(f"{sys.version_info[:2]} torch {torch.__version__}".encode())
    _digest_tree(h, REPO / "synthsae", "*")
    _digest_tree(h, REPO / "docsgen", "*.py")
    return h.hexdigest()


def _job_key(job: Job, digest: str) -> str:
    h = hashlib.sha256(digest.encode())
    h.update(job.module.encode())
    if job.script is not None:
        h.update(job.script.read_bytes())
    return h.hexdigest()[:16]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    python_path = [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env.update(
        PYTHONPATH=os.pathsep.join(python_path),
        TQDM_DISABLE="1",
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONHASHSEED="0",
        WANDB_MODE="disabled",
    )
    return env


def _execute(job: Job, outdir: Path) -> float:
    args = [sys.executable, "-m", job.module] + ([str(job.script)] if job.script else []) + [str(outdir)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"docsgen-{job.name}-") as scratch:
        try:
            proc = subprocess.run(args, cwd=scratch, env=_environment(), capture_output=True, text=True,
                                  timeout=JOB_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as err:
            raise JobError(f"{job.name}: still running after {JOB_TIMEOUT_S} s") from err
    if proc.returncode != 0:
        tail = (proc.stdout[-2000:] + "\n" + proc.stderr[-6000:]).strip()
        raise JobError(f"{job.name} failed (exit status {proc.returncode}):\n{tail}")
    return time.perf_counter() - started


def _run_one(job: Job, digest: str, use_cache: bool) -> JobResult:
    key = _job_key(job, digest)
    outdir = CACHE_DIR / f"{job.name}-{key}"
    if use_cache and (outdir / DONE_MARKER).exists():
        return JobResult(job, outdir, 0.0, cached=True)
    for stale in CACHE_DIR.glob(f"{job.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    outdir.mkdir(parents=True)
    seconds = _execute(job, outdir)
    (outdir / DONE_MARKER).write_text(f"{seconds:.1f}\n", encoding="utf-8")
    return JobResult(job, outdir, seconds, cached=False)


def run_jobs(jobs: list[Job]) -> dict[str, JobResult]:
    """Run (or fetch from the cache) every job, two at a time; raise :class:`JobError` on failure."""
    use_cache = os.environ.get("SYNTHSAE_DOCS_CACHE", "1") != "0"
    digest = code_digest()
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {job.name: pool.submit(_run_one, job, digest, use_cache) for job in jobs}
        return {name: future.result() for name, future in futures.items()}
