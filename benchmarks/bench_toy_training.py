"""The user docs' "Basic Training Workflow", timed: synthsae and (optionally) the reference side by side.

Runs exactly the docs' code (16 features in 32 dims, firing probability 0.25,
StandardTrainingSAE with l1_coefficient=5e-2, ``train_toy_sae`` with its defaults:
10M samples, batch 1024, lr 3e-4), then the docs' eval (100k samples). Each run is a
fresh process with ``torch.set_num_threads(--threads)``; with ``--reference`` the same
code runs with ``sae_lens`` imports under the reference's virtualenv, alternating with
synthsae so that both see the same machine load.

    python benchmarks/bench_toy_training.py [--samples 10000000] [--repeats 3] [--reference]

Prints one line per run (wall time of train_toy_sae, samples/s, MCC, EV, uniqueness, F1,
L0, shrinkage, dead latents) and, per library, the median time, plus the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"


def worker(lib: str, samples: int, batch_size: int, threads: int, seed: int) -> dict[str, float]:
    """The docs' workflow with ``lib`` (``synthsae`` or ``sae_lens``) imports; returns timings and metrics."""
    import importlib
    import time

    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    synthetic = importlib.import_module(f"{lib}.synthetic")
    top = importlib.import_module(lib)

    # --- the docs' code, unchanged apart from the import prefix and the sample count ---
    feature_dict = synthetic.FeatureDictionary(num_features=16, hidden_dim=32)
    activation_gen = synthetic.ActivationGenerator(num_features=16, firing_probabilities=torch.ones(16) * 0.25)
    cfg = top.StandardTrainingSAEConfig(
        d_in=feature_dict.hidden_dim,
        d_sae=feature_dict.num_features,
        l1_coefficient=5e-2,
    )
    sae = top.StandardTrainingSAE(cfg)
    t0 = time.perf_counter()
    synthetic.train_toy_sae(sae, feature_dict, activation_gen, training_samples=samples, batch_size=batch_size)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = synthetic.eval_sae_on_synthetic_data(sae, feature_dict, activation_gen)
    eval_s = time.perf_counter() - t0
    return {
        "train_s": train_s,
        "samples_per_s": samples / train_s,
        "eval_s": eval_s,
        "mcc": result.mcc,
        "explained_variance": result.explained_variance,
        "uniqueness": result.uniqueness,
        "f1": result.classification.f1_score,
        "sae_l0": result.sae_l0,
        "shrinkage": result.shrinkage,
        "dead_latents": float(result.dead_latents),
    }


def run_one(lib: str, python: str, args: argparse.Namespace, seed: int) -> dict[str, float]:
    """One fresh-process run; the worker prints a single JSON line on stdout."""
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(REPO) if lib == "synthsae" else "")
    cmd = [python, str(Path(__file__).resolve()), "--worker", lib, "--samples", str(args.samples),
           "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/tmp", check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt(lib: str, seed: int, r: dict[str, float]) -> str:
    return (f"{lib:9s} seed={seed}  train {r['train_s']:7.2f} s  {r['samples_per_s'] / 1e3:7.1f}k samples/s  "
            f"mcc={r['mcc']:.5f} ev={r['explained_variance']:.4f} uniq={r['uniqueness']:.3f} f1={r['f1']:.3f} "
            f"l0={r['sae_l0']:.2f} shrink={r['shrinkage']:.3f} dead={r['dead_latents']:.0f}  (eval {r['eval_s']:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="runs per library (seeds 0, 1, ...)")
    parser.add_argument("--reference", action="store_true", help="also run the reference (sae_lens)")
    parser.add_argument("--reference-python", default=str(DEFAULT_REFERENCE_PYTHON))
    parser.add_argument("--json", type=Path, help="write all runs to this file")
    parser.add_argument("--worker", choices=["synthsae", "sae_lens"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.samples, args.batch_size, args.threads, args.seed)))
        return

    libs = [("synthsae", sys.executable)]
    if args.reference:
        if not Path(args.reference_python).exists():
            parser.error(f"no reference python at {args.reference_python} (see ../shared/tools/install-reference.sh)")
        libs.append(("sae_lens", args.reference_python))
    print(f"docs basic workflow: {args.samples:,} samples, batch {args.batch_size}, {args.threads} threads")
    runs: dict[str, list[dict[str, float]]] = {lib: [] for lib, _ in libs}
    for seed in range(args.repeats):
        for lib, python in libs:
            r = run_one(lib, python, args, seed)
            runs[lib].append(r)
            print(fmt(lib, seed, r), flush=True)
    medians = {lib: statistics.median(r["train_s"] for r in rs) for lib, rs in runs.items()}
    for lib, t in medians.items():
        print(f"{lib}: median train time {t:.2f} s ({args.samples / t / 1e3:.1f}k samples/s)")
    if "sae_lens" in medians:
        print(f"speed-up synthsae vs reference: {medians['sae_lens'] / medians['synthsae']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
