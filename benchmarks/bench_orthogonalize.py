"""Time ``orthogonalize_embeddings`` at SynthSAEBench-16k size (16,384 x 768 by default).

Usage::

    python benchmarks/bench_orthogonalize.py --steps 5 --threads 2 [--precision exact]

Prints the time of two full float32 products (the old step's work), the seconds per
Adam step (a one-step run is timed separately) and the extrapolated time for the 100
steps the benchmark model uses. On a shared machine the figures move with its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

try:
    from synthsae.synthetic.orthogonalize import orthogonalize_embeddings
except ModuleNotFoundError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from synthsae.synthetic.orthogonalize import orthogonalize_embeddings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-features", type=int, default=16_384)
    parser.add_argument("--hidden-dim", type=int, default=768)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=("auto", "exact", "bfloat16"),
                        help="products of each step (auto: bfloat16 where the hardware has it)")
    args = parser.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    generator = torch.Generator(device=args.device).manual_seed(0)
    embeddings = torch.randn(
        args.num_features, args.hidden_dim, generator=generator, device=args.device
    )

    def timed(fn) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) of ``fn()``."""
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - wall, time.process_time() - cpu

    def steps(n: int):
        return lambda: orthogonalize_embeddings(embeddings, num_steps=n, lr=args.lr, precision=args.precision)

    # the two full float32 products of the old step (E.T @ E, then E @ M); a step now does
    # about 3/4 of that work (M from its upper block triangle), in bfloat16 where available
    floor = min(timed(lambda: embeddings @ (embeddings.T @ embeddings))[0] for _ in range(3))
    base_wall, base_cpu = timed(steps(0))  # copy + normalisation only
    first_wall, _ = timed(steps(1))
    wall, cpu = timed(steps(args.steps))
    n = max(args.steps, 1)
    per_step = (wall - base_wall) / n
    cpu_per_step = (cpu - base_cpu) / n
    threads = torch.get_num_threads()
    print(f"orthogonalize_embeddings {args.num_features} x {args.hidden_dim}, device={args.device}, threads={threads}, "
          f"precision={args.precision}")
    print(f"  two float32 products E.T @ E and E @ M: {floor:.3f} s")
    print(f"  one-step run: {first_wall - base_wall:.3f} s")
    print(f"  {args.steps} steps: {wall - base_wall:.2f} s -> {per_step:.3f} s/step")
    print(f"  extrapolated 100 steps: {100 * per_step:.1f} s")
    print(
        f"  CPU time: {cpu_per_step:.3f} CPU-s/step, i.e. ~{cpu_per_step / threads:.3f} s/step "
        f"if {threads} cores were free (the wall figures above include waiting for busy cores)"
    )

if __name__ == "__main__":
    main()
