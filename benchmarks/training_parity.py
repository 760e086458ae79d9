"""Training parity: the same recipe trained by synthsae and by the reference, several seeds.

Usage::

    nice python benchmarks/training_parity.py --out /tmp/parity [--samples 2000000]
        [--seeds 0 1 2] [--archs batchtopk matryoshka_batchtopk standard jumprelu]
        [--libraries synthsae reference] [--jobs N] [--threads N] [--reference-python PATH]
        [--table FILE]

The model is the ``cpu_medium`` preset (2,048 features in 256 dims, a forest whose
children are all mutually exclusive, Zipfian firing rates, a rank-25 low-rank
correlation), built once by synthsae and saved to ``OUT/model``; both libraries load that
directory, so they train on the same dictionary. Each (library, architecture, seed)
is one subprocess that trains through that library's own ``SyntheticSAERunner`` and
writes ``OUT/runs/<library>-<arch>-<seed>.json``; runs already there are skipped, so an
interrupted benchmark resumes. The reference runs under the reference venv's python
(never imported here). The table prints mean +- sd over the seeds of each metric.

Recipe (both libraries, identical field names, nothing to map): SAE width 512, batch
1024, Adam lr 1e-3 (constant; the runner's defaults otherwise), final eval on
``--eval-samples`` rows. L0 about 8: BatchTopK and Matryoshka ``k=8``; JumpReLU the
quadratic L0 loss with ``target_l0=8``; Standard a fixed L1 coefficient (see
``RECIPES``) chosen on synthsae by a pilot run to land near L0 8.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
LIBRARIES = ("synthsae", "reference")
D_SAE = 512
BATCH_SIZE = 1024
LR = 1e-3  # 3e-4 (the default) leaves 2M-sample runs far from converged; 1e-3 is stable for all four
RECIPES: dict[str, dict] = {
    "batchtopk": {"k": 8},
    "matryoshka_batchtopk": {"k": 8, "matryoshka_widths": [64, 128, 256, 512]},
    # L1 coefficient from a synthsae pilot run (2M samples, seed 0): L0 8.5 on cpu_medium
    "standard": {"l1_coefficient": 3.0},
    "jumprelu": {"jumprelu_sparsity_loss_mode": "quadratic", "target_l0": 8.0},
}
METRICS = ("mcc", "f1", "explained_variance", "uniqueness", "l0", "dead_latents")


# ----------------------------------------------------------------------------- worker side
def _worker(args: argparse.Namespace) -> None:
    """One training run in this process; imports only the library under test."""
    import torch

    torch.set_num_threads(args.threads)
    if args.library == "reference":
        from sae_lens import LoggingConfig
        from sae_lens.registry import get_sae_training_class
        from sae_lens.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig

        cfg_cls = get_sae_training_class(args.arch)[1]
        extra: dict = {}
    else:
        from synthsae import LoggingConfig
        from synthsae.saes.registry import get_sae_architecture
        from synthsae.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig

        cfg_cls = get_sae_architecture(args.arch).training_cfg_cls
        extra = {"seed": args.seed, "show_progress": False}
    sae_cfg = cfg_cls(d_in=256, d_sae=D_SAE, **RECIPES[args.arch])
    cfg = SyntheticSAERunnerConfig(
        synthetic_model=str(args.model_dir),
        sae=sae_cfg,
        training_samples=args.samples,
        batch_size=BATCH_SIZE,
        lr=LR,
        device="cpu",
        output_path=None,
        checkpoint_path=None,
        eval_samples=args.eval_samples,
        logger=LoggingConfig(log_to_wandb=False),
        **extra,
    )
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    result = SyntheticSAERunner(cfg).run()
    seconds = time.perf_counter() - start
    ev = result.final_eval
    record = {
        "library": args.library, "arch": args.arch, "seed": args.seed, "samples": args.samples,
        "seconds": seconds, "mcc": ev.mcc, "f1": ev.classification.f1_score,
        "explained_variance": ev.explained_variance, "uniqueness": ev.uniqueness,
        "l0": ev.sae_l0, "dead_latents": ev.dead_latents, "true_l0": ev.true_l0,
    }  # fmt: skip
    Path(args.result).write_text(json.dumps(record, indent=2))


# ----------------------------------------------------------------------------- driver side
def _build_model(model_dir: Path) -> None:
    if (model_dir / "synthetic_model_config.json").exists():
        return
    sys.path.insert(0, str(REPO))
    from synthsae.synthetic import SyntheticModel
    from synthsae.synthetic.presets import cpu_medium

    SyntheticModel(cpu_medium()).save(model_dir)


def _run_one(args: argparse.Namespace, library: str, arch: str, seed: int, result: Path) -> None:
    python = str(args.reference_python) if library == "reference" else sys.executable
    env = dict(os.environ)
    if library == "synthsae":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)  # the reference venv must not see synthsae
    command = [python, __file__, "--worker", "--library", library, "--arch", arch, "--seed", str(seed),
               "--model-dir", str(args.out / "model"), "--samples", str(args.samples),
               "--eval-samples", str(args.eval_samples), "--threads", str(args.threads), "--result", str(result)]
    print(f"[{time.strftime('%H:%M:%S')}] {library} {arch} seed {seed} ...", flush=True)
    subprocess.run(command, check=True, env=env, cwd=str(args.out))
    print(f"    {json.loads(result.read_text())}", flush=True)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, sd


def summarise(records: list[dict], archs: list[str]) -> str:
    """The Markdown table: per architecture and library, mean +- sd of each metric, and
    whether the two libraries' means agree within 2 of the larger of their seed sds."""
    header = "| Architecture | Library | n | " + " | ".join(METRICS) + " | seconds |"
    lines = [header, "|" + "---|" * (len(METRICS) + 4)]
    verdicts = []
    for arch in archs:
        stats = {}
        for library in LIBRARIES:
            rows = [r for r in records if r["arch"] == arch and r["library"] == library]
            if not rows:
                continue
            stats[library] = {m: _mean_sd([float(r[m]) for r in rows]) for m in METRICS}
            cells = [f"{stats[library][m][0]:.3f} ± {stats[library][m][1]:.3f}" for m in METRICS]
            seconds = _mean_sd([r["seconds"] for r in rows])[0]
            lines.append(f"| {arch} | {library} | {len(rows)} | " + " | ".join(cells) + f" | {seconds:.0f} |")
        if len(stats) == 2:
            for m in METRICS:
                (a, sa), (b, sb) = stats["synthsae"][m], stats["reference"][m]
                if abs(a - b) > 2 * max(sa, sb):
                    verdicts.append(f"- {arch} {m}: synthsae {a:.3f} vs reference {b:.3f} (> 2 sd)")
    lines.append("")
    lines.extend(verdicts or ["- every metric of every architecture agrees within 2 seed standard deviations"])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("training-parity"))
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--eval-samples", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--archs", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=list(LIBRARIES))
    parser.add_argument("--reference-python", type=Path, default=REFERENCE_PYTHON)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each its own process)")
    parser.add_argument("--table", type=Path, default=None, help="also write the Markdown table here")
    # worker mode (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--library", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--arch", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    args.out = args.out.resolve()
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    _build_model(args.out / "model")
    todo = []
    for seed in args.seeds:
        for arch in args.archs:
            for library in args.libraries:
                result = args.out / "runs" / f"{library}-{arch}-{seed}-{args.samples}.json"
                if not result.exists():
                    todo.append((library, arch, seed, result))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(_run_one, args, *job) for job in todo]:
            future.result()
    records = [json.loads(p.read_text()) for p in sorted((args.out / "runs").glob(f"*-{args.samples}.json"))]
    records = [r for r in records if r["seed"] in args.seeds]
    table = summarise(records, args.archs)
    print(table)
    if args.table is not None:
        args.table.write_text(table + "\n")


if __name__ == "__main__":
    main()
