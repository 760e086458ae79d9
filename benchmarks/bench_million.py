"""The 1,048,576-feature model: build, save, load and sample within a memory cap.

    python benchmarks/bench_million.py --dir /tmp/synth1m [--threads 2] [--reference]

Two fresh processes, each under an address-space cap (``--memory-cap-gib``, 16 by
default, so a mistake fails cleanly instead of starving the machine):

1. build :func:`synthsae.synthetic.presets.synth_sae_bench_1m` (hierarchy of 8,192
   roots, low-rank correlation, 10 orthogonalisation steps), sample, save;
2. load the saved directory and sample again.

Each phase reports its time and the process's peak RSS so far. ``--reference`` then
tries the same config with the reference in its virtualenv under the same cap: build
without orthogonalisation, one ``sample(batch)``, and one orthogonalisation step
(bounded by ``--reference-timeout``); what fails or runs out of time is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"

PRELUDE = r"""
import json, resource, sys, time
import torch
opts = json.loads(sys.argv[1])
cap = int(opts["cap_gib"] * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))  # a guard: fail cleanly instead of swamping the machine
torch.set_num_threads(opts["threads"])
out = {}
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
def phase(name, fn, fatal=True):
    t = time.perf_counter()
    try:
        result = fn()
    except (MemoryError, RuntimeError) as err:  # torch reports allocation failures as RuntimeError
        out[name + "_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
        out[name + "_peak_rss_gib"] = peak()
        if fatal:
            print(json.dumps(out))
            sys.exit(0)
        return None
    out[name + "_s"] = time.perf_counter() - t
    out[name + "_peak_rss_gib"] = peak()
    print(f"{name}: {out[name + '_s']:.1f} s, peak RSS {peak():.2f} GiB", file=sys.stderr, flush=True)
    return result
def sample_rate(model, batches):
    model.sample(opts["batch_size"])
    t = time.perf_counter()
    for _ in range(batches):
        model.sample(opts["batch_size"])
    return (time.perf_counter() - t) / batches
"""

BUILD = PRELUDE + r"""
from synthsae.synthetic import SyntheticModel
from synthsae.synthetic.presets import synth_sae_bench_1m
cfg = synth_sae_bench_1m()
model = phase("build", lambda: SyntheticModel(cfg))
out["l0"] = float(model.sample_sparse_features(4096).row_counts().double().mean())
out["sample_s_per_batch"] = phase("sample", lambda: sample_rate(model, opts["batches"]))
phase("save", lambda: model.save(opts["dir"]))
out["saved_gib"] = sum(p.stat().st_size for p in __import__("pathlib").Path(opts["dir"]).iterdir()) / 2**30
print(json.dumps(out))
"""

LOAD = PRELUDE + r"""
from synthsae.synthetic import SyntheticModel
model = phase("load", lambda: SyntheticModel.load_from_disk(opts["dir"]))
out["sample_after_load_s_per_batch"] = phase("sample_after_load", lambda: sample_rate(model, opts["batches"]))
print(json.dumps(out))
"""

REFERENCE = PRELUDE + r"""
from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig
from sae_lens.synthetic.feature_dictionary import orthogonalize_embeddings
cfg = SyntheticModelConfig.from_dict(opts["config"])
cfg.orthogonalization = None
model = phase("build_without_orthogonalisation", lambda: SyntheticModel(cfg))
phase("sample", lambda: model.sample(opts["batch_size"]), fatal=False)
vectors = model.feature_dict.feature_vectors.detach()
print(json.dumps(out), flush=True)
phase("one_orthogonalisation_step", lambda: orthogonalize_embeddings(vectors, num_steps=1, lr=3e-3, show_progress=True))
print(json.dumps(out))
"""


def run(python: str, code: str, opts: dict, timeout: float, reference: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH="" if reference else str(REPO))
    if reference:
        env.pop("TQDM_DISABLE", None)
    else:
        env["TQDM_DISABLE"] = "1"
    try:
        proc = subprocess.run([python, "-c", code, json.dumps(opts)], capture_output=True, text=True, env=env,
                              cwd="/tmp", timeout=timeout, check=False)
        stdout, stderr, note = proc.stdout, proc.stderr, f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as err:
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
        note = f"timed out after {timeout:.0f} s"
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    result["process"] = note
    progress = [line for line in stderr.replace("\r", "\n").splitlines() if "it/s" in line or "s/it" in line]
    if progress:
        result["last_progress"] = progress[-1].strip()[-120:]
    if not lines:
        result["stderr_tail"] = stderr.strip().splitlines()[-3:]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="where to save the model (about 3 GiB)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--memory-cap-gib", type=float, default=16.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--reference-only", action="store_true", help="skip synthsae's phases")
    parser.add_argument("--reference-python", default=str(REFERENCE_PYTHON))
    parser.add_argument("--reference-timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    opts = {"threads": args.threads, "batch_size": args.batch_size, "batches": args.batches,
            "cap_gib": args.memory_cap_gib, "dir": str(Path(args.dir).resolve())}
    results = {}
    if not args.reference_only:
        results["build_save"] = run(sys.executable, BUILD, opts, args.timeout)
        print(json.dumps(results["build_save"]), flush=True)
        results["load"] = run(sys.executable, LOAD, opts, args.timeout)
        print(json.dumps(results["load"]), flush=True)
    if args.reference or args.reference_only:
        sys.path.insert(0, str(REPO))
        from synthsae.synthetic.presets import synth_sae_bench_1m

        ref_opts = dict(opts, config=synth_sae_bench_1m().to_dict())
        results["reference"] = run(args.reference_python, REFERENCE, ref_opts, args.reference_timeout, reference=True)
        print(json.dumps(results["reference"]), flush=True)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
