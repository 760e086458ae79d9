"""How close the L0 controller lands: achieved eval L0 against the target, per SAE.

    python benchmarks/bench_l0_control.py --preset cpu_small --l0 5,10,20 --seeds 0,1
    python benchmarks/bench_l0_control.py --preset synth_sae_bench_16k --l0 20,25 --d-sae 1024 --samples 1e6

Trains the coefficient-based architectures (standard, gated, JumpReLU by default) with
``synthsae bench``'s defaults and prints, for each SAE, the target, the L0 the final eval
measured (on ``--eval-samples`` rows), the relative error, the starting coefficient and the
one the controller ended with. Also BatchTopK, whose inference threshold sets its L0.
"""

from __future__ import annotations

import argparse
import time

import torch

from synthsae.benchmark.config import BenchmarkConfig
from synthsae.benchmark.run import run_benchmark


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu_small")
    parser.add_argument("--architectures", default="standard,gated,jumprelu,batchtopk")
    parser.add_argument("--l0", type=_ints, default=[5, 10, 20])
    parser.add_argument("--seeds", type=_ints, default=[0, 1])
    parser.add_argument("--d-sae", type=int, default=None)
    parser.add_argument("--samples", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--eval-samples", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    changes = {k: v for k, v in {"d_sae": args.d_sae, "batch_size": args.batch_size,
                                  "training_samples": int(args.samples) if args.samples else None}.items()
               if v is not None}
    cfg = BenchmarkConfig(preset=args.preset, architectures=args.architectures.split(","), l0_targets=args.l0,
                          seeds=args.seeds, eval_samples=args.eval_samples, plots=False, absorption=False,
                          show_progress=False, **changes)
    t0 = time.perf_counter()
    result = run_benchmark(cfg)
    print(f"{args.preset}, d_sae {cfg.d_sae}, {cfg.training_samples:,} samples (batch {cfg.batch_size}), "
          f"{cfg.eval_samples:,} eval rows, {time.perf_counter() - t0:.0f} s\n")
    print("| SAE | target | achieved L0 | error | start coefficient | final coefficient |")
    print("|:----|------:|------------:|------:|------------------:|------------------:|")
    worst = 0.0
    for r in result.rows:
        err = r["l0"] / r["target_l0"] - 1
        worst = max(worst, abs(err)) if r["knob"].endswith("_coefficient") else worst
        start, final = r["knob_value"], r["final_coefficient"]
        print(f"| {r['name']} | {r['target_l0']} | {r['l0']:.2f} | {100 * err:+.1f}% | {start:.4g} | {final:.4g} |")
    print(f"\nlargest error of a controlled SAE: {100 * worst:.1f}%")


if __name__ == "__main__":
    main()
