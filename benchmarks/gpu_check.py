"""One-command GPU check: the GPU tests, then BatchTopK on SynthSAEBench-16k in bf16.

Usage::

    bash benchmarks/gpu_check.sh                    # on a machine with CUDA (about 3-4 minutes)
    bash benchmarks/gpu_check.sh --reference        # also time SAELens on the same GPU
    python benchmarks/gpu_check.py --dry-run        # the plumbing on a CPU, tiny sizes, seconds

Steps (each printed as it runs, all summarised in ``--json``, default ``gpu_check.json``):

1. ``pytest -m gpu``: the tests that need a CUDA device (``--skip-tests`` leaves them out).
2. Build SynthSAEBench-16k on the GPU (100 orthogonalisation steps), or load ``--model-dir``.
3. Train BatchTopK 768 -> 4096, k = 25, batch 1024, lr 3e-4 with bf16 autocast for the SAE
   and the data (``SyntheticSAERunner``, no periodic evals, no checkpoints): a short
   warm-up run sizes the main run to about ``--train-seconds``.
4. Report samples/s of the main run, the projected time for 200M samples, peak GPU
   memory, and the final metrics on ``--eval-samples`` fresh samples.

Without CUDA (and without ``--dry-run``) it says so and exits with status 0.
``--dry-run`` runs steps 2-4 on the CPU on the small ``cpu_small`` preset for a few
hundred steps, so that CI can check the script end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a source checkout without installing
    sys.path.insert(0, str(REPO))

TARGET_SAMPLES = 200_000_000  # the SynthSAEBench-16k run the projection is for
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"


def _runner_config(args: argparse.Namespace, d_in: int, samples: int) -> Any:
    from synthsae.synthetic import SyntheticSAERunnerConfig

    return SyntheticSAERunnerConfig(
        synthetic_model="unused", sae={"architecture": "batchtopk", "d_in": d_in, "d_sae": args.d_sae, "k": args.k},
        training_samples=samples, batch_size=args.batch_size, lr=3e-4, device=args.device,
        autocast_sae=args.bf16, autocast_data=args.bf16, eval_frequency=0, eval_samples=0, run_final_eval=False,
        checkpoint_path=None, output_path=None, seed=args.seed, show_progress=False,
    )


def run_gpu_tests() -> dict[str, Any]:
    """``pytest -m gpu`` in a subprocess; the exit status and the summary line."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else proc.stderr.strip()[-300:]
    print(f"  {summary}  ({time.perf_counter() - start:.0f} s)")
    if proc.returncode not in (0, 5):  # 5: nothing collected
        print(textwrap.indent(proc.stdout[-4000:], "    "))
    return {"returncode": proc.returncode, "summary": summary, "passed": proc.returncode in (0, 5)}


def load_model(args: argparse.Namespace) -> tuple[Any, float | None]:
    from synthsae.synthetic import SyntheticModel
    from synthsae.synthetic.presets import get_preset

    if args.model_dir and (Path(args.model_dir) / "synthetic_model_config.json").is_file():
        return SyntheticModel.load_from_disk(args.model_dir, device=args.device), None
    start = time.perf_counter()
    model = SyntheticModel(get_preset(args.preset), device=args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    build_s = time.perf_counter() - start
    if args.model_dir:
        model.save(args.model_dir)
    return model, build_s


def train(model: Any, args: argparse.Namespace) -> tuple[Any, dict[str, float]]:
    """Warm-up run, then a main run sized to about ``--train-seconds``; returns the SAE and timings."""
    from synthsae.synthetic import SyntheticSAERunner

    warm_samples = args.warmup_steps * args.batch_size
    warm = SyntheticSAERunner(_runner_config(args, model.hidden_dim, warm_samples), override_synthetic_model=model)
    warm_rate = warm.run().samples_per_second or 1.0
    steps = max(args.min_steps, int(args.train_seconds * warm_rate / args.batch_size))
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    runner = SyntheticSAERunner(_runner_config(args, model.hidden_dim, steps * args.batch_size),
                                override_synthetic_model=model)
    result = runner.run()
    rate = float(result.samples_per_second or 0.0)
    timing = {"warmup_samples_per_s": warm_rate, "samples": steps * args.batch_size,
              "train_seconds": float(result.train_seconds or 0.0), "samples_per_s": rate,
              "projected_200M_minutes": TARGET_SAMPLES / rate / 60 if rate else float("inf")}
    if args.device.startswith("cuda"):
        timing["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result.sae, timing


def evaluate(sae: Any, model: Any, args: argparse.Namespace) -> dict[str, float]:
    from synthsae.evals.eval_sae import eval_sae_on_synthetic_data

    model.set_sampling_seed(10_000 + args.seed)
    start = time.perf_counter()
    r = eval_sae_on_synthetic_data(sae.to_inference_sae(), model.feature_dict, model.activation_generator,
                                   num_samples=args.eval_samples, batch_size=args.batch_size)
    return {"mcc": r.mcc, "f1": r.classification.f1_score, "uniqueness": r.uniqueness,
            "explained_variance": r.explained_variance, "l0": r.sae_l0, "dead_latents": float(r.dead_latents),
            "eval_seconds": time.perf_counter() - start}


_REFERENCE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, torch
    a = json.loads(sys.argv[1])
    from sae_lens import BatchTopKTrainingSAEConfig, LoggingConfig
    from sae_lens.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig
    cfg = SyntheticSAERunnerConfig(
        synthetic_model=a["model_dir"], sae=BatchTopKTrainingSAEConfig(d_in=a["d_in"], d_sae=a["d_sae"], k=a["k"]),
        training_samples=a["samples"], batch_size=a["batch_size"], lr=3e-4, device=a["device"],
        autocast_sae=a["bf16"], autocast_data=a["bf16"], eval_frequency=0, run_final_eval=False,
        checkpoint_path=None, output_path=a["output"], logger=LoggingConfig(log_to_wandb=False))
    runner = SyntheticSAERunner(cfg)
    torch.cuda.synchronize(); t = time.perf_counter(); runner.run(); torch.cuda.synchronize()
    print("RESULT " + json.dumps({"wall_s": time.perf_counter() - t}))
    """
)


def time_reference(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    """SAELens's runner on the same saved model and GPU, ``--reference-samples`` rows."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-ref-"))
    model_dir = Path(args.model_dir) if args.model_dir else tmp / "model"
    if not (model_dir / "synthetic_model_config.json").is_file():
        model.save(model_dir)
    payload = {"model_dir": str(model_dir), "d_in": model.hidden_dim, "d_sae": args.d_sae, "k": args.k,
               "samples": args.reference_samples, "batch_size": args.batch_size, "device": args.device,
               "bf16": args.bf16, "output": str(tmp / "out")}
    env = {**os.environ, "WANDB_MODE": "disabled", "TQDM_DISABLE": "1", "PYTHONPATH": ""}
    proc = subprocess.run([args.reference_python, "-c", _REFERENCE_SCRIPT, json.dumps(payload)],
                          capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": proc.stderr[-2000:]}
    wall = json.loads(lines[-1][len("RESULT "):])["wall_s"]
    rate = args.reference_samples / wall
    return {"samples": args.reference_samples, "wall_s": wall, "samples_per_s": rate,
            "projected_200M_minutes": TARGET_SAMPLES / rate / 60}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--dry-run", action="store_true", help="tiny run on the CPU (cpu_small preset) to test the plumbing")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    p.add_argument("--model-dir", default=None, help="load the model from here (or save it here after building)")
    p.add_argument("--train-seconds", type=float, default=None, help="length of the main run (default 120; 1 dry)")
    p.add_argument("--eval-samples", type=int, default=None, help="final-eval samples (default 100,000; 2,000 dry)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                   help="bf16 autocast for the SAE and the data (the default on a GPU)")
    p.add_argument("--fp32", dest="bf16", action="store_false", help="float32 throughout (the default on a CPU)")
    p.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu")
    p.add_argument("--reference", action="store_true", help="also time SAELens (reference venv) on the same GPU")
    p.add_argument("--reference-python", default=str(REFERENCE_PYTHON))
    p.add_argument("--reference-samples", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="gpu_check.json", help="where to write the summary")
    args = p.parse_args(argv)
    dry = args.dry_run
    args.device = args.device or ("cpu" if dry else "cuda")
    if args.bf16 is None:
        args.bf16 = args.device.startswith("cuda")
    args.preset = "cpu_small" if dry else "synth_sae_bench_16k"
    args.d_sae, args.k = (256, 8) if dry else (4096, 25)
    args.train_seconds = args.train_seconds if args.train_seconds is not None else (1.0 if dry else 120.0)
    args.eval_samples = args.eval_samples if args.eval_samples is not None else (2_000 if dry else 100_000)
    args.warmup_steps, args.min_steps = (5, 10) if dry else (200, 500)
    if dry:
        args.batch_size = min(args.batch_size, 256)
        args.skip_tests = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}); nothing to check. "
              "Run it on a machine with a GPU, or with --dry-run to exercise the script on this CPU.")
        return 0
    start = time.perf_counter()
    summary: dict[str, Any] = {
        "device": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.processor()
        or "cpu", "torch": torch.__version__, "dry_run": args.dry_run, "preset": args.preset, "bf16": args.bf16,
        "sae": {"architecture": "batchtopk", "d_sae": args.d_sae, "k": args.k, "batch_size": args.batch_size},
    }
    if not args.skip_tests:
        print("[1/4] GPU tests (pytest -m gpu)")
        summary["tests"] = run_gpu_tests()
    print(f"[2/4] {args.preset} model on {args.device}")
    model, build_s = load_model(args)
    summary["model_build_seconds"] = build_s
    print(f"  built in {build_s:.1f} s" if build_s is not None else f"  loaded from {args.model_dir}")
    print(f"[3/4] training BatchTopK {model.hidden_dim} -> {args.d_sae}, k={args.k}, batch {args.batch_size}, "
          f"{'bf16' if args.bf16 else 'fp32'}, about {args.train_seconds:.0f} s")
    sae, timing = train(model, args)
    summary["training"] = timing
    print(f"  {timing['samples_per_s']:,.0f} samples/s over {timing['samples']:,} samples; 200M samples would take "
          f"{timing['projected_200M_minutes']:.1f} min"
          + (f"; peak GPU memory {timing['peak_gpu_memory_gib']:.2f} GiB" if "peak_gpu_memory_gib" in timing else ""))
    print(f"[4/4] final eval on {args.eval_samples:,} samples")
    summary["final_metrics"] = metrics = evaluate(sae, model, args)
    print("  " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    if args.reference:
        print(f"[+] reference (SAELens) on the same device, {args.reference_samples:,} samples")
        summary["reference"] = ref = time_reference(model, args)
        if "samples_per_s" in ref:
            print(f"  {ref['samples_per_s']:,.0f} samples/s; 200M samples would take {ref['projected_200M_minutes']:.1f} "
                  f"min; synthsae is {timing['samples_per_s'] / ref['samples_per_s']:.1f}x")
        else:
            print("  reference run failed:\n" + textwrap.indent(ref["error"], "    "))
    summary["total_seconds"] = time.perf_counter() - start
    Path(args.json).write_text(json.dumps(summary, indent=2))
    print(f"done in {summary['total_seconds']:.0f} s; summary in {args.json}")
    tests_ok = summary.get("tests", {}).get("passed", True)
    return 0 if tests_ok else 1


if __name__ == "__main__":
    sys.exit(main())
