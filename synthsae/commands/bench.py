"""``synthsae bench``: a leaderboard of SAE architectures at several L0s on one synthetic model.

Without options it trains TopK, BatchTopK, standard (L1) and JumpReLU SAEs at L0 targets
5, 10 and 20 on the ``cpu_small`` preset (12 SAEs, one shared data stream, one CPU thread
unless ``--threads`` says otherwise), in a minute or two, and prints the leaderboard.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from typing import Any

from synthsae.commands.arg_types import positive_int
from synthsae.commands.common import add_command, parse_overrides, timestamped_dir

__all__ = ["add_parser", "build_config", "run"]


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in _name_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``synthsae bench``."""
    from synthsae.benchmark.config import (
        DEFAULT_ARCHITECTURES,
        DEFAULT_L0_TARGETS,
        DEFAULT_PRESET,
        BenchmarkConfig,
    )
    from synthsae.benchmark.sweep import sparsity_knobs
    from synthsae.synthetic.presets import PRESETS

    defaults = BenchmarkConfig()
    p = add_command(
        subparsers, "bench", "train several SAE architectures at several L0s on one data stream and write a leaderboard",
        "Train every architecture at every L0 target on a synthetic model with ONE trainer over ONE "
        "shared stream of batches (each batch is generated once for all SAEs), evaluate each SAE against "
        "the true features, and write to the output folder: leaderboard.md, leaderboard.csv, "
        "leaderboard.json (config, per-run metrics, achieved L0, timings), plots/<metric>.png (MCC, F1, "
        "explained variance, uniqueness, dead latents and shrinkage against the achieved L0, one line per "
        "architecture), saes/<architecture>_l0-<target>/ (each SAE's inference form) and "
        "synthetic_model/. TopK-style SAEs get k = target; standard, gated and JumpReLU SAEs get a "
        "sparsity coefficient from a rule scaled by the data's norm (or from `coefficients`), so their "
        "achieved L0 is near, not at, the target. Default: "
        f"{', '.join(DEFAULT_ARCHITECTURES)} at L0 {', '.join(map(str, DEFAULT_L0_TARGETS))} on the "
        f"{DEFAULT_PRESET} preset, {defaults.training_samples:,} samples, in a minute or two on a CPU.",
        epilog=(
            "examples:\n"
            "  synthsae bench\n"
            "  synthsae bench --architectures topk,gated,matryoshka --l0 8,16 --samples 1e6\n"
            "  synthsae bench --preset cpu_medium --set d_sae=1024 --set sae_settings.standard.lr=1e-3\n"
            "  synthsae bench --config bench.yaml --set coefficients.standard=[4,2,1]\n"
            + textwrap.fill(
                "CONFIG keys are those of BenchmarkConfig: preset | model | model_config, architectures, "
                "l0_targets, d_sae, training_samples, batch_size, lr, eval_samples, dead_feature_window, seed, "
                "device, output_dir, coefficients ({arch: [one per target]}), sae_settings ({arch: {field: value, "
                f"lr: ...}}), rank_by, save_synthetic_model, plots, show_progress. Architectures: "
                f"{', '.join(sparsity_knobs())} (matryoshka and mp are accepted as short names).", width=90)
        ),
    )
    p.add_argument("--config", metavar="FILE", default=None, help="a BenchmarkConfig file (.yaml, .yml or .json)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help=f"the synthetic model preset (default: {DEFAULT_PRESET})")
    source.add_argument("--model", metavar="SOURCE", default=None,
                        help="a saved model folder, a SyntheticModelConfig file or a hub id 'owner/name[:subfolder]'")
    p.add_argument("--architectures", type=_name_list, default=None, metavar="A,B,...",
                   help=f"architectures to compare (default: {','.join(DEFAULT_ARCHITECTURES)})")
    p.add_argument("--l0", type=_int_list, default=None, metavar="N,N,...",
                   help=f"L0 targets (default: {','.join(map(str, DEFAULT_L0_TARGETS))})")
    p.add_argument("--samples", type=positive_int, default=None, metavar="N",
                   help=f"training samples shared by all SAEs (default: {defaults.training_samples:,})")
    p.add_argument("--eval-samples", type=positive_int, default=None, metavar="N",
                   help=f"eval samples per SAE (default: {defaults.eval_samples:,})")
    p.add_argument("--d-sae", type=positive_int, default=None, metavar="N",
                   help=f"latents per SAE (default: {defaults.d_sae})")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="seed of initialisation, data and evals (default: 0)")
    p.add_argument("--device", default=None, metavar="DEV", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--output", metavar="DIR", default=None,
                   help="output folder (default: the config's output_dir, else runs/bench-<timestamp>)")
    p.add_argument("--overwrite", action="store_true",
                   help="clear the output folder first if it holds files (an earlier benchmark's); without it such "
                        "a folder is refused before anything is trained")
    p.add_argument("--threads", dest="bench_threads", type=positive_int, default=None, metavar="N",
                   help="torch CPU threads (same as `synthsae --threads N bench`; default on a CPU: 1, as the "
                        "small SAEs gain nothing from more)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key; dotted keys reach into sections (sae_settings.jumprelu.lr=0.02); "
                        "values are read as YAML (1e-3, 1e6, true, [5, 10]); KEY=null removes an optional key (its "
                        "default applies); repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the ranked rows as JSON instead of the table")
    p.set_defaults(handler=run)
    return p


def build_config(args: argparse.Namespace) -> Any:
    """The :class:`BenchmarkConfig` that the parsed arguments describe (options win over --set,
    --set over the config file)."""
    from synthsae.benchmark.config import BenchmarkConfig
    overrides = parse_overrides(args.overrides)
    options = {"preset": args.preset, "model": args.model, "architectures": args.architectures,
               "l0_targets": args.l0, "training_samples": args.samples, "eval_samples": args.eval_samples,
               "d_sae": args.d_sae, "seed": args.seed, "device": args.device, "output_dir": args.output}
    overrides.update({k: v for k, v in options.items() if v is not None})
    if args.quiet:
        overrides["show_progress"] = False
    if args.config is not None:
        cfg = BenchmarkConfig.from_file(args.config, overrides)
    else:
        cfg = BenchmarkConfig().with_overrides(overrides)
    if cfg.output_dir is None:
        cfg = cfg.with_overrides({"output_dir": str(timestamped_dir("runs", prefix="bench-"))})
    return cfg


def _report_write_errors(errors: list[str]) -> int:
    """Print what could not be written (the results were printed before); the exit code."""
    for problem in errors:
        print(f"synthsae bench: error: could not write {problem}", file=sys.stderr)
    return 1 if errors else 0


def run(args: argparse.Namespace) -> int:
    """Run ``synthsae bench``; returns the exit code."""
    import torch

    from synthsae.benchmark.run import run_benchmark
    from synthsae.output_folders import OutputFolderExistsError

    cfg = build_config(args)
    threads = args.bench_threads or getattr(args, "threads", None)
    if threads is not None:
        torch.set_num_threads(threads)
    elif torch.device(cfg.device).type == "cpu":
        torch.set_num_threads(1)  # tiny matrices: extra threads only wait on each other
    n = len(cfg.architectures) * len(cfg.l0_targets)
    if not args.json:
        print(f"benchmark: {n} SAEs ({', '.join(cfg.architectures)} x L0 {cfg.l0_targets}) on {cfg.model_label}, "
              f"{cfg.training_samples:,} shared training samples, device {cfg.device}, outputs -> {cfg.output_dir}",
              file=sys.stderr)
    t0 = time.perf_counter()
    try:
        result = run_benchmark(cfg, overwrite=args.overwrite)
    except OutputFolderExistsError as err:
        raise ValueError(err.with_remedy("or pass --overwrite to clear it first")) from None
    wall = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"rows": result.rows, "true_l0": result.true_l0, "timing": result.timing,
                          "output_dir": str(result.output_dir)}, indent=2))
        return _report_write_errors(result.write_errors)
    print(result.markdown())
    if result.write_errors:
        return _report_write_errors(result.write_errors)
    out = result.output_dir
    print(f"outputs: {out}  (leaderboard.md/.csv/.json, {len(result.files.get('plots', []))} plots in plots/, "
          f"SAEs in saes/); {wall:.0f} s in all")
    return 0
