"""End-to-end training speed of SyntheticSAERunner (generation + training, no evals), side by side.

Usage::

    python benchmarks/bench_runner.py --model-dir /tmp/synth16k --reference --repeats 3
    python benchmarks/bench_runner.py --model-dir /tmp/synth16k --variants fp32,bf16 --seeds 0,1,2 --samples 1024000
    python benchmarks/bench_runner.py --preset cpu_small --reference
    python benchmarks/bench_runner.py --preset synth_sae_bench_16k --device cuda --variants bf16

Workloads:

* ``synth_sae_bench_16k``: BatchTopK 768 -> 4096, k=25, batch 1024, lr 3e-4 on SynthSAEBench-16k.
  Building that model runs 100 orthogonalisation steps; ``--model-dir`` saves it on the
  first run and loads it afterwards. The reference needs a saved model anyway.
* ``cpu_small``: the ``synthsae train`` main job's SAE (BatchTopK 64 -> 256, k=8, batch
  512, lr 3e-3) on the ``cpu_small`` preset.

Every run is a fresh process with ``torch.set_num_threads(--threads)``; the runs alternate
(for each repeat and seed: each synthsae variant, then the reference), so that all of them
see the same machine load. synthsae variants: ``fp32`` (the default run), ``bf16``
(``autocast_sae=True``: the dense encoder product in bf16, everything else in fp32),
``fp32-noprefetch`` (``prefetch_batches=0``: batches drawn on the training thread, the
layout before the producer thread). The reference is SAELens's ``SyntheticSAERunner``
(wandb off, no evals) run with the reference virtualenv's Python.

Afterwards every trained SAE is evaluated by synthsae's evaluator on the same fresh
samples (``--eval-samples``), from its saved inference weights, so the final metrics are
compared on an equal sample budget. Reported: wall and CPU seconds of ``run()`` per run,
the median samples/s of each variant, its speed-up over the reference's median, and the
metrics (mean and spread over seeds). ``--json FILE`` writes everything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
WORKLOADS: dict[str, dict[str, Any]] = {
    "synth_sae_bench_16k": {"d_sae": 4096, "k": 25, "batch_size": 1024, "lr": 3e-4, "samples": 100 * 1024},
    "cpu_small": {"d_sae": 256, "k": 8, "batch_size": 512, "lr": 3e-3, "samples": 400 * 512},
}
VARIANTS = {  # synthsae runner settings of each variant
    "fp32": {},
    "bf16": {"autocast_sae": True},
    "fp32-noprefetch": {"prefetch_batches": 0},
}

_OURS_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, torch
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    from synthsae.synthetic import SyntheticModel, SyntheticSAERunner, SyntheticSAERunnerConfig
    model = SyntheticModel.load_from_disk(a["model_dir"], device=a["device"])
    cfg = SyntheticSAERunnerConfig(
        synthetic_model=a["model_dir"], sae={"architecture": "batchtopk", "d_sae": a["d_sae"], "k": a["k"]},
        training_samples=a["samples"], batch_size=a["batch_size"], lr=a["lr"], device=a["device"],
        eval_samples=0, run_final_eval=False, checkpoint_path=None, output_path=a["output"], seed=a["seed"],
        show_progress=False, **a["settings"])
    runner = SyntheticSAERunner(cfg, override_synthetic_model=model)
    wall, cpu = time.perf_counter(), time.process_time()
    runner.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print("RESULT " + json.dumps({"wall_s": wall, "cpu_s": cpu}))
    """
)

_REFERENCE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, torch
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    torch.manual_seed(a["seed"])
    from sae_lens import BatchTopKTrainingSAEConfig, LoggingConfig
    from sae_lens.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig
    cfg = SyntheticSAERunnerConfig(
        synthetic_model=a["model_dir"],
        sae=BatchTopKTrainingSAEConfig(d_in=a["d_in"], d_sae=a["d_sae"], k=a["k"]),
        training_samples=a["samples"], batch_size=a["batch_size"], lr=a["lr"],
        device=a["device"], autocast_sae=False, autocast_data=False,
        eval_frequency=0, run_final_eval=False, checkpoint_path=None, output_path=a["output"],
        logger=LoggingConfig(log_to_wandb=False),
    )
    runner = SyntheticSAERunner(cfg)
    wall, cpu = time.perf_counter(), time.process_time()
    runner.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print("RESULT " + json.dumps({"wall_s": wall, "cpu_s": cpu}))
    """
)


def _subprocess(python: str, script: str, payload: dict[str, Any], pythonpath: str) -> dict[str, Any]:
    env = {**os.environ, "WANDB_MODE": "disabled", "TQDM_DISABLE": "1", "PYTHONPATH": pythonpath}
    proc = subprocess.run([python, "-c", script, json.dumps(payload)], capture_output=True, text=True, env=env,
                          cwd="/tmp")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _model_dir(preset: str, args: argparse.Namespace) -> tuple[Path, int, float | None]:
    """A folder holding the preset's model (built and saved if needed), its hidden_dim, build seconds."""
    sys.path.insert(0, str(REPO))
    import torch

    from synthsae.synthetic import SyntheticModel
    from synthsae.synthetic.presets import get_preset

    torch.set_num_threads(args.threads)
    folder = Path(args.model_dir) if args.model_dir and preset == "synth_sae_bench_16k" else \
        Path(tempfile.mkdtemp(prefix=f"bench-{preset}-"))
    if (folder / "synthetic_model_config.json").is_file():
        return folder, SyntheticModel.load_from_disk(folder).hidden_dim, None
    start = time.perf_counter()
    model = SyntheticModel(get_preset(preset))
    build_s = time.perf_counter() - start
    model.save(folder)
    return folder, model.hidden_dim, build_s


def _evaluate(folder: Path, model_dir: Path, args: argparse.Namespace, batch_size: int) -> dict[str, float]:
    from synthsae import SAE
    from synthsae.evals.eval_sae import eval_sae_on_synthetic_data
    from synthsae.synthetic import SyntheticModel

    model = SyntheticModel.load_from_disk(model_dir, device=args.device)
    model.set_sampling_seed(10_000)  # the same eval rows for every run
    r = eval_sae_on_synthetic_data(SAE.load_from_disk(folder, device=args.device), model.feature_dict,
                                   model.activation_generator, num_samples=args.eval_samples, batch_size=batch_size)
    return {"mcc": r.mcc, "f1": r.classification.f1_score, "uniqueness": r.uniqueness,
            "explained_variance": r.explained_variance, "l0": r.sae_l0, "dead_latents": float(r.dead_latents)}


def bench(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    work = dict(WORKLOADS[preset])
    if args.samples:
        work["samples"] = args.samples
    model_dir, d_in, build_s = _model_dir(preset, args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    sides = [(v, VARIANTS[v]) for v in args.variants] + ([("reference", None)] if args.reference else [])
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for seed in args.seeds:
            for side, settings in sides:
                out = tmp / f"{side}-s{seed}-r{repeat}"
                payload = {"model_dir": str(model_dir), "d_in": d_in, "output": str(out), "threads": args.threads,
                           "seed": seed, "device": args.device, "settings": settings or {},
                           **{k: work[k] for k in ("d_sae", "k", "batch_size", "lr", "samples")}}
                if settings is None:
                    result = _subprocess(args.reference_python, _REFERENCE_SCRIPT, payload, "")
                else:
                    result = _subprocess(sys.executable, _OURS_SCRIPT, payload, str(REPO))
                result.update(side=side, seed=seed, repeat=repeat, folder=str(out),
                              samples_per_s=work["samples"] / result["wall_s"])
                print(f"  {preset} {side:16s} seed {seed} repeat {repeat}: {result['wall_s']:7.1f} s wall, "
                      f"{result['cpu_s']:7.1f} s CPU, {result['samples_per_s']:8,.0f} samples/s", flush=True)
                runs.append(result)
    if args.eval_samples > 0:
        for r in runs:
            if r["repeat"] == 0:
                r["metrics"] = _evaluate(Path(r["folder"]), model_dir, args, work["batch_size"])
    return {"preset": preset, "samples": work["samples"], "threads": args.threads, "device": args.device,
            "build_s": build_s, "runs": runs}


def _summary(row: dict[str, Any]) -> str:
    by_side: dict[str, list[dict[str, Any]]] = {}
    for r in row["runs"]:
        by_side.setdefault(r["side"], []).append(r)
    ref_wall = statistics.median(r["wall_s"] for r in by_side["reference"]) if "reference" in by_side else None
    ref_cpu = statistics.median(r["cpu_s"] for r in by_side["reference"]) if "reference" in by_side else None
    lines = [f"{row['preset']}: {row['samples']:,} samples per run, {row['threads']} threads, {row['device']}",
             "| side | runs | median wall s | median CPU s | samples/s | speed-up wall / CPU | MCC | F1 | EV | L0 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for side, rs in by_side.items():
        wall, cpu = statistics.median(r["wall_s"] for r in rs), statistics.median(r["cpu_s"] for r in rs)
        speed = f"{ref_wall / wall:.1f}x / {ref_cpu / cpu:.1f}x" if ref_wall and side != "reference" else "-"
        cells = []
        for key, fmt in (("mcc", ".3f"), ("f1", ".3f"), ("explained_variance", ".3f"), ("l0", ".1f")):
            values = [r["metrics"][key] for r in rs if "metrics" in r]
            spread = f" ± {statistics.stdev(values):{fmt}}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):{fmt}}{spread}" if values else "-")
        lines.append(f"| {side} | {len(rs)} | {wall:.1f} | {cpu:.1f} | {row['samples'] / wall:,.0f} | {speed} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--preset", action="append", choices=sorted(WORKLOADS),
                        help="workload(s) to run (repeatable; default: synth_sae_bench_16k)")
    parser.add_argument("--model-dir", default=None, help="where the 16k model is saved/loaded (skips rebuilding)")
    parser.add_argument("--samples", type=int, default=0, help="training samples per run (0: the workload default)")
    parser.add_argument("--variants", default="fp32", help=f"synthsae variants, comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (each runs every side)")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats of every (seed, side)")
    parser.add_argument("--eval-samples", type=int, default=20_000, help="samples to compare final metrics (0: skip)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of every run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference", action="store_true", help="also run SAELens in its virtualenv")
    parser.add_argument("--reference-python", default=str(REFERENCE_PYTHON), help="the reference venv's python")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    if args.reference and not Path(args.reference_python).exists():
        parser.error(f"no reference python at {args.reference_python} (see ../shared/tools/install-reference.sh)")
    rows = [bench(preset, args) for preset in (args.preset or ["synth_sae_bench_16k"])]
    print()
    print("\n\n".join(_summary(row) for row in rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
