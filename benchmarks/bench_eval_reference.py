"""``eval_sae_on_synthetic_data`` side by side with the reference, at SynthSAEBench-16k size.

    python benchmarks/bench_eval_reference.py [--num-samples 50000] [--threads 2] [--repeats 1]

1. synthsae builds the SynthSAEBench-16k preset (orthogonalisation skipped: it changes
   the feature directions, not the cost of an eval) and saves it in the shared directory
   format; it also saves a TopK SAE (768 -> 4096, k = 25, initialised to match the
   features, so the metrics are far from trivial) with ``save_inference_model``.
2. Each library, in its own fresh process (the reference in its virtualenv), loads both
   directories and times ``eval_sae_on_synthetic_data(sae, model.feature_dict,
   model.activation_generator, num_samples=N, batch_size=1024)`` (the runner's eval batch; the
   reference's default draws all N samples in one dense batch, which does not fit in memory
   at 50k samples and more); the two libraries alternate so that they see the same load.

Each library samples its own data, so the metrics agree to within sampling noise rather
than exactly. Prints one line per run and the speed-up of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"

WORKER = r"""
import importlib, json, sys, time
import torch
lib, model_dir, sae_dir, n, threads, seed, batch = sys.argv[1:8]
batch = int(batch) or None
torch.set_num_threads(int(threads))
top = importlib.import_module(lib)
syn = importlib.import_module(lib + ".synthetic")
model = syn.SyntheticModel.load_from_disk(model_dir)
sae = top.SAE.load_from_disk(sae_dir)
torch.manual_seed(int(seed))
syn.eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator, num_samples=2048,
                               batch_size=batch)  # warm-up
t0, c0 = time.perf_counter(), time.process_time()
r = syn.eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator, num_samples=int(n),
                                   batch_size=batch)
out = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "mcc": r.mcc,
       "explained_variance": r.explained_variance, "uniqueness": r.uniqueness, "sae_l0": r.sae_l0,
       "true_l0": r.true_l0, "f1": r.classification.f1_score, "shrinkage": r.shrinkage,
       "dead_latents": float(r.dead_latents)}
print(json.dumps(out))
"""


def prepare(work: Path, k: int, d_sae: int) -> tuple[Path, Path]:
    """Save the 16k model and a feature-initialised TopK SAE under ``work``."""
    sys.path.insert(0, str(REPO))
    import torch

    from synthsae import TopKTrainingSAE, TopKTrainingSAEConfig
    from synthsae.synthetic import SyntheticModel, init_sae_to_match_feature_dict
    from synthsae.synthetic.model_config import OrthogonalizationConfig
    from synthsae.synthetic.presets import synth_sae_bench_16k

    cfg = synth_sae_bench_16k()
    cfg.orthogonalization = OrthogonalizationConfig(num_steps=0)
    model = SyntheticModel(cfg)
    model_dir, sae_dir = work / "model", work / "sae"
    model.save(model_dir)
    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=cfg.hidden_dim, d_sae=d_sae, k=k))
    init_sae_to_match_feature_dict(sae, model.feature_dict)  # the first d_sae features
    sae.save_inference_model(sae_dir)
    return model_dir, sae_dir


def run_one(lib: str, python: str, model_dir: Path, sae_dir: Path, args: argparse.Namespace, seed: int) -> dict:
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(REPO) if lib == "synthsae" else "")
    cmd = [python, "-c", WORKER, lib, str(model_dir), str(sae_dir), str(args.num_samples), str(args.threads),
           str(seed), str(args.batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/tmp", check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} eval failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="eval batch for both libraries (the runner's default: the training batch); 0: each "
                             "library's default (the reference then draws all samples in one batch)")
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--d-sae", type=int, default=4096)
    parser.add_argument("--reference-python", default=str(DEFAULT_REFERENCE_PYTHON))
    parser.add_argument("--no-reference", action="store_true", help="time synthsae only")
    args = parser.parse_args()
    libs = [("synthsae", sys.executable)]
    if not args.no_reference:
        if not Path(args.reference_python).exists():
            parser.error(f"no reference python at {args.reference_python} (see ../shared/tools/install-reference.sh)")
        libs.append(("sae_lens", args.reference_python))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, sae_dir = prepare(Path(tmp), args.k, args.d_sae)
        print(f"eval of a TopK SAE ({args.d_sae} latents, k={args.k}) on the 16k model: "
              f"{args.num_samples:,} samples, batch {args.batch_size or 'default'}, {args.threads} threads")
        runs: dict[str, list[dict]] = {lib: [] for lib, _ in libs}
        for seed in range(args.repeats):
            for lib, python in libs:
                r = run_one(lib, python, model_dir, sae_dir, args, seed)
                runs[lib].append(r)
                print(f"{lib:9s} seed={seed} {r['wall_s']:8.1f} s wall {r['cpu_s']:8.1f} s CPU  "
                      f"mcc={r['mcc']:.4f} ev={r['explained_variance']:.4f} uniq={r['uniqueness']:.4f} "
                      f"f1={r['f1']:.4f} l0={r['sae_l0']:.2f} true_l0={r['true_l0']:.2f} "
                      f"shrink={r['shrinkage']:.4f} dead={r['dead_latents']:.0f}", flush=True)
    medians = {lib: statistics.median(r["wall_s"] for r in rs) for lib, rs in runs.items()}
    for lib, t in medians.items():
        print(f"{lib}: median {t:.1f} s ({args.num_samples / t:,.0f} samples/s)")
    if "sae_lens" in medians:
        print(f"speed-up synthsae vs reference: {medians['sae_lens'] / medians['synthsae']:.2f}x")


if __name__ == "__main__":
    main()
