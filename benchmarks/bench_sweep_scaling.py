"""How a benchmark's cost grows with the number of SAEs sharing one data stream.

Runs ``run_benchmark`` with 1, 4, 12 and 36 SAEs (TopK, BatchTopK, standard and JumpReLU,
at 1, 1, 3 and 9 L0 targets) on one seed, so every sweep shares ONE stream of batches,
and prints, per sweep: wall time of training, the part spent generating data, the SAEs'
own training time, samples/s per SAE, and the wall time against N separate one-SAE runs
(N x the one-SAE time), which is what training them one by one would cost.

    python benchmarks/bench_sweep_scaling.py [--preset cpu_small] [--samples 300000] [--threads 1]

Evals are kept small (they are per SAE and do not share anything); the figures are
training only.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from synthsae.benchmark.config import BenchmarkConfig
from synthsae.benchmark.run import run_benchmark

ARCHITECTURES = ["topk", "batchtopk", "standard", "jumprelu"]
SWEEPS = {1: (["batchtopk"], [10]), 4: (ARCHITECTURES, [10]), 12: (ARCHITECTURES, [5, 10, 20]),
          36: (ARCHITECTURES, [2, 4, 6, 8, 10, 12, 14, 16, 18])}


def measure(preset: str, samples: int, n: int) -> dict[str, float]:
    archs, targets = SWEEPS[n]
    with tempfile.TemporaryDirectory() as out:
        cfg = BenchmarkConfig(preset=preset, architectures=archs, l0_targets=targets, training_samples=samples,
                              eval_samples=2048, output_dir=out, plots=False, absorption=False,
                              save_synthetic_model=False, show_progress=False)
        t0 = time.perf_counter()
        result = run_benchmark(cfg)
        total = time.perf_counter() - t0
    group = result.timing["groups"][0]
    return {"n": n, "train_wall": group["train_wall_seconds"], "data": group["data_seconds"],
            "sae": group["sae_train_seconds"], "total": total,
            "per_sae_rate": samples / (group["sae_train_seconds"] / n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu_small")
    parser.add_argument("--samples", type=float, default=300_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    samples = int(args.samples)
    rows = [measure(args.preset, samples, n) for n in SWEEPS]
    one = rows[0]["train_wall"]
    print(f"{args.preset}, {samples:,} training samples, {args.threads} thread(s)\n")
    print("| SAEs | training wall s | data s | SAE steps s | samples/s per SAE | vs N separate runs |")
    print("|-----:|---------------:|-------:|------------:|------------------:|-------------------:|")
    for r in rows:
        print(f"| {r['n']} | {r['train_wall']:.1f} | {r['data']:.1f} | {r['sae']:.1f} | {r['per_sae_rate']:,.0f} | "
              f"{r['train_wall'] / (r['n'] * one):.2f}x |")


if __name__ == "__main__":
    main()
