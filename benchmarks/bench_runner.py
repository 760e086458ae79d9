"""End-to-end training speed of SyntheticSAERunner (generation + training, no evals).

Usage::

    python benchmarks/bench_runner.py --model-dir /tmp/synth16k --reference
    python benchmarks/bench_runner.py --preset cpu_small --reference
    python benchmarks/bench_runner.py --preset synth_sae_bench_16k --device cuda --autocast

Workloads:

* ``synth_sae_bench_16k``: BatchTopK 768 -> 4096, k=25, batch 1024 on SynthSAEBench-16k.
  Building that model runs 100 orthogonalisation steps; ``--model-dir`` saves it on the
  first run and loads it afterwards. The reference needs a saved model anyway.
* ``cpu_small``: the ``synthsae train`` main job's SAE (BatchTopK 64 -> 256, k=8, batch
  512, lr 3e-3) on the ``cpu_small`` preset.

``--reference`` runs the same config in SAELens (``SyntheticSAERunner``, wandb off, no
evals) in a subprocess with the reference virtualenv's Python, one after the other on
the same machine. Both runs then get evaluated by synthsae's evaluator on the same
fresh samples (``--eval-samples``), from their saved inference weights, so the final
metrics are compared on an equal sample budget. Wall and CPU seconds of ``run()`` are
reported for both; on a shared machine compare ratios from one invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import torch

try:
    import synthsae  # noqa: F401
except ModuleNotFoundError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthsae import SAE
from synthsae.commands.train import DEFAULT_JOB
from synthsae.evals.eval_sae import eval_sae_on_synthetic_data
from synthsae.synthetic import SyntheticModel, SyntheticSAERunner, SyntheticSAERunnerConfig
from synthsae.synthetic.presets import get_preset

REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
WORKLOADS: dict[str, dict[str, Any]] = {
    "synth_sae_bench_16k": {"d_sae": 4096, "k": 25, "batch_size": 1024, "lr": 3e-4, "samples": 100 * 1024},
    "cpu_small": {"d_sae": DEFAULT_JOB["sae"]["d_sae"], "k": DEFAULT_JOB["sae"]["k"],
                  "batch_size": DEFAULT_JOB["batch_size"], "lr": DEFAULT_JOB["lr"], "samples": 400 * 512},
}

_REFERENCE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, torch
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    torch.manual_seed(args["seed"])
    from sae_lens import BatchTopKTrainingSAEConfig, LoggingConfig
    from sae_lens.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig
    cfg = SyntheticSAERunnerConfig(
        synthetic_model=args["model_dir"],
        sae=BatchTopKTrainingSAEConfig(d_in=args["d_in"], d_sae=args["d_sae"], k=args["k"]),
        training_samples=args["samples"], batch_size=args["batch_size"], lr=args["lr"],
        device=args["device"], autocast_sae=args["autocast"], autocast_data=args["autocast"],
        eval_frequency=0, run_final_eval=False, checkpoint_path=None, output_path=args["output"],
        logger=LoggingConfig(log_to_wandb=False),
    )
    runner = SyntheticSAERunner(cfg)
    wall, cpu = time.perf_counter(), time.process_time()
    runner.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print("RESULT " + json.dumps({"wall_s": wall, "cpu_s": cpu}))
    """
)


def _load_or_build(preset: str, model_dir: Path | None, device: str) -> tuple[SyntheticModel, Path, float | None]:
    """The preset's model (loaded from ``model_dir`` if it holds one) and a folder holding it."""
    if model_dir is not None and (model_dir / "synthetic_model_config.json").is_file():
        return SyntheticModel.load_from_disk(model_dir, device=device), model_dir, None
    start = time.perf_counter()
    model = SyntheticModel(get_preset(preset), device=device)
    build_s = time.perf_counter() - start
    target = model_dir or Path(tempfile.mkdtemp(prefix=f"bench-{preset}-"))
    model.save(target)
    return model, target, build_s


def _run_ours(model: SyntheticModel, work: dict[str, Any], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cfg = SyntheticSAERunnerConfig(
        synthetic_model="unused", sae={"architecture": "batchtopk", "d_in": model.hidden_dim, "d_sae": work["d_sae"],
                                       "k": work["k"]},
        training_samples=work["samples"], batch_size=work["batch_size"], lr=work["lr"], device=args.device,
        autocast_sae=args.autocast, autocast_data=args.autocast, eval_samples=0, run_final_eval=False,
        checkpoint_path=None, output_path=str(out), seed=args.seed, show_progress=False,
    )
    runner = SyntheticSAERunner(cfg, override_synthetic_model=model)
    wall, cpu = time.perf_counter(), time.process_time()
    result = runner.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "loop_samples_per_s": result.samples_per_second}


def _run_reference(model_dir: Path, d_in: int, work: dict[str, Any], args: argparse.Namespace,
                   out: Path) -> dict[str, Any]:
    payload = {"model_dir": str(model_dir), "d_in": d_in, "output": str(out), "threads": args.threads,
               "seed": args.seed, "device": args.device, "autocast": args.autocast,
               **{k: work[k] for k in ("d_sae", "k", "batch_size", "lr", "samples")}}
    env = {**os.environ, "WANDB_MODE": "disabled", "TQDM_DISABLE": "1"}
    proc = subprocess.run([str(args.reference_python), "-c", _REFERENCE_SCRIPT, json.dumps(payload)],
                          capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"reference run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _evaluate(folder: Path, model: SyntheticModel, args: argparse.Namespace, batch_size: int) -> dict[str, float]:
    sae = SAE.load_from_disk(folder, device=args.device)
    model.set_sampling_seed(10_000 + args.seed)
    r = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                   num_samples=args.eval_samples, batch_size=batch_size)
    return {"mcc": r.mcc, "f1": r.classification.f1_score, "uniqueness": r.uniqueness,
            "explained_variance": r.explained_variance, "sae_l0": r.sae_l0, "dead_latents": r.dead_latents}


def bench(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    work = dict(WORKLOADS[preset])
    if args.samples:
        work["samples"] = args.samples
    model_dir = Path(args.model_dir) if args.model_dir and preset == "synth_sae_bench_16k" else None
    model, model_dir, build_s = _load_or_build(preset, model_dir, args.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    row: dict[str, Any] = {"preset": preset, "samples": work["samples"], "build_s": build_s,
                           "threads": torch.get_num_threads(), "device": args.device, "autocast": args.autocast}
    row["ours"] = _run_ours(model, work, args, tmp / "ours")
    if args.reference:
        row["reference"] = _run_reference(model_dir, model.hidden_dim, work, args, tmp / "reference")
    for side in ("ours", "reference"):
        if side in row:
            row[side]["samples_per_s"] = work["samples"] / row[side]["wall_s"]
            if args.eval_samples > 0:
                row[side]["metrics"] = _evaluate(tmp / side, model, args, work["batch_size"])
    if "reference" in row:
        row["speedup_wall"] = row["reference"]["wall_s"] / row["ours"]["wall_s"]
        row["speedup_cpu"] = row["reference"]["cpu_s"] / row["ours"]["cpu_s"]
    return row


def _report(rows: list[dict[str, Any]]) -> str:
    lines = ["| workload | side | samples | wall s | CPU s | samples/s | MCC | F1 | EV | L0 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for side in ("reference", "ours"):
            if side not in row:
                continue
            r, m = row[side], row[side].get("metrics", {})

            def metric(key: str, fmt: str, m: dict[str, float] = m) -> str:
                return format(m[key], fmt) if key in m else "-"

            lines.append(f"| {row['preset']} ({row['device']}{', bf16' if row['autocast'] else ''}) | {side} | "
                         f"{row['samples']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['samples_per_s']:,.0f} | "
                         f"{metric('mcc', '.3f')} | {metric('f1', '.3f')} | {metric('explained_variance', '.3f')} | "
                         f"{metric('sae_l0', '.1f')} |")
        if "speedup_wall" in row:
            lines.append(f"| {row['preset']} | **speed-up** | | {row['speedup_wall']:.1f}x | {row['speedup_cpu']:.1f}x "
                         "| | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", choices=sorted(WORKLOADS),
                        help="workload(s) to run (repeatable; default: both)")
    parser.add_argument("--model-dir", default=None, help="where the 16k model is saved/loaded (skips rebuilding)")
    parser.add_argument("--samples", type=int, default=0, help="training samples per run (0: the workload default)")
    parser.add_argument("--eval-samples", type=int, default=20_000, help="samples to compare final metrics (0: skip)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for both sides")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--autocast", action="store_true", help="bf16 autocast of the SAE and the data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", action="store_true", help="also run SAELens in its virtualenv")
    parser.add_argument("--reference-python", default=str(REFERENCE_PYTHON), help="the reference venv's python")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [bench(preset, args) for preset in (args.preset or list(WORKLOADS))]
    print(_report(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
