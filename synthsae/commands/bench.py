"""``synthsae bench``: SAE architectures at matched L0s, over seeds, one table per L0.

Without options it trains TopK, BatchTopK, standard (L1) and JumpReLU SAEs at L0 targets
5, 10 and 20 on the ``cpu_small`` preset (12 SAEs, one shared data stream, one CPU thread
unless ``--threads`` says otherwise), in about a minute and a half, and prints one table per
target.
``--recipe synthsaebench`` runs the published SynthSAEBench-16k protocol, ``--recipe cpu``
the CPU-sized benchmark; ``--resume DIR`` continues a benchmark that was stopped; under
``torchrun`` the grid is split across the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from pathlib import Path
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
    from synthsae.benchmark.recipes import RECIPES
    from synthsae.benchmark.sweep import sparsity_knobs
    from synthsae.synthetic.presets import PRESETS

    defaults = BenchmarkConfig()
    p = add_command(
        subparsers, "bench",
        "compare SAE architectures at matched L0s over seeds (one table per L0), e.g. the SynthSAEBench protocol",
        "Train every architecture at every L0 target for every seed on a synthetic model (per seed ONE "
        "trainer over ONE shared stream of batches), steer standard, gated and JumpReLU SAEs to the target "
        "L0 with a closed-loop controller, evaluate each SAE against the true features, and print one table "
        "per L0 target (mean ± sd over seeds of F1, MCC, precision, recall, explained variance, uniqueness, "
        "dead latents, shrinkage and absorption). The output folder gets each SAE and its metrics as soon as "
        "it is evaluated (saes/<name>/), then leaderboard.md, leaderboard.csv (per architecture and target), "
        "leaderboard_runs.csv, leaderboard.json and plots/ (each metric against the achieved L0 with error "
        "bars). --resume DIR skips the finished SAEs. Under torchrun the grid is split across the processes "
        f"(rank 0 writes). Default: {', '.join(DEFAULT_ARCHITECTURES)} at L0 "
        f"{', '.join(map(str, DEFAULT_L0_TARGETS))} on the {DEFAULT_PRESET} preset, "
        f"{defaults.training_samples:,} samples, seed 0, about a minute and a half on a CPU.",
        epilog=(
            "examples:\n"
            "  synthsae bench\n"
            "  synthsae bench --architectures standard,jumprelu,gated,batchtopk --l0 5,10,20 --seeds 0,1\n"
            "  synthsae bench --recipe cpu --probe-ceiling          # the CPU ordering benchmark\n"
            "  synthsae bench --recipe synthsaebench --device cuda   # the published protocol (GPU)\n"
            "  synthsae bench --resume runs/bench-20250101-120000\n"
            "  torchrun --nproc_per_node 2 -m synthsae bench --seeds 0,1 --output runs/split\n"
            + textwrap.fill(
                "recipes: " + "; ".join(f"{r.name}: {r.description}" for r in RECIPES.values()), width=90)
            + "\n"
            + textwrap.fill(
                "CONFIG keys are those of BenchmarkConfig: preset | model | model_config, recipe, architectures, "
                "l0_targets, seeds, model_seeds, d_sae, training_samples, batch_size, lr, eval_samples, "
                "dead_feature_window, device, autocast, output_dir, coefficients ({arch: [one per target]}), "
                "sae_settings ({arch: {field: value, lr: ...}}), l0_control, l0_control_settings, rank_by, "
                "absorption, probe_ceiling, save_synthetic_model, plots, show_progress. Architectures: "
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
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="a published protocol: its budget, grid, seeds and per-architecture settings as defaults")
    p.add_argument("--seeds", type=_int_list, default=None, metavar="S,S,...",
                   help="seeds: each sets the SAE initialisation and the data and eval streams (default: 0)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="a single seed (same as --seeds S)")
    p.add_argument("--model-seeds", type=_int_list, default=None, metavar="S,S,...",
                   help="rebuild the preset model with each of these seeds too (default: the model as it is)")
    p.add_argument("--probe-ceiling", action="store_true",
                   help="also train a logistic probe per true feature: the F1 an SAE latent could reach")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the benchmark in DIR (its benchmark_config.json), skipping finished SAEs")
    p.add_argument("--overwrite", action="store_true",
                   help="clear the output folder first if it holds files (an earlier benchmark's); without it such "
                        "a folder is refused before anything is trained")
    p.add_argument("--device", default=None, metavar="DEV", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--output", metavar="DIR", default=None,
                   help="output folder (default: the config's output_dir, else runs/bench-<timestamp>)")
    p.add_argument("--threads", dest="bench_threads", type=positive_int, default=None, metavar="N",
                   help="torch CPU threads (same as `synthsae --threads N bench`; default on a CPU: 1, as the "
                        "small SAEs gain nothing from more)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key; dotted keys reach into sections (sae_settings.jumprelu.lr=0.02); "
                        "values are read as YAML (1e-3, 1e6, true, [5, 10]); KEY=null removes an optional key (its "
                        "default applies); repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the summary rows as JSON instead of the tables")
    p.set_defaults(handler=run)
    return p


_RESUME_OPTIONS = ("config", "preset", "model", "architectures", "l0", "samples", "eval_samples", "d_sae", "recipe",
                   "seeds", "seed", "model_seeds", "device", "output")


def build_config(args: argparse.Namespace) -> Any:
    """The :class:`BenchmarkConfig` that the parsed arguments describe (options win over --set,
    --set over the config file, the file over the recipe). With ``--resume DIR``: the config
    saved in DIR (only ``--quiet`` and ``--threads`` may be added)."""
    from synthsae.benchmark.config import BenchmarkConfig
    from synthsae.benchmark.store import CONFIG_FILENAME
    from synthsae.config_values import load_config_data

    if args.resume is not None:
        given = [name for name in _RESUME_OPTIONS if getattr(args, name, None) not in (None, False)]
        if given or args.overrides or args.probe_ceiling:
            raise ValueError("--resume continues the benchmark exactly as it was configured; drop "
                             + ", ".join(f"--{n.replace('_', '-')}" for n in given + (["set"] if args.overrides else [])
                                         + (["probe-ceiling"] if args.probe_ceiling else [])))
        path = Path(args.resume) / CONFIG_FILENAME
        if not path.is_file():
            raise ValueError(f"--resume {args.resume}: no {CONFIG_FILENAME} there (not a benchmark folder)")
        data = load_config_data(path)
        data["output_dir"] = str(args.resume)
        if args.quiet:
            data["show_progress"] = False
        return BenchmarkConfig.from_dict(data)
    overrides = parse_overrides(args.overrides)
    seeds = args.seeds if args.seeds is not None else ([args.seed] if args.seed is not None else None)
    options = {"preset": args.preset, "model": args.model, "architectures": args.architectures,
               "l0_targets": args.l0, "training_samples": args.samples, "eval_samples": args.eval_samples,
               "d_sae": args.d_sae, "seeds": seeds, "model_seeds": args.model_seeds, "device": args.device,
               "output_dir": args.output}
    overrides.update({k: v for k, v in options.items() if v is not None})
    if args.quiet:
        overrides["show_progress"] = False
    if args.probe_ceiling:
        overrides["probe_ceiling"] = True
    if args.config is not None:
        data = load_config_data(args.config)
        if args.recipe is not None:
            data["recipe"] = args.recipe
        cfg = BenchmarkConfig.from_dict(apply_file_overrides(data, overrides, args.config))
    else:
        cfg = BenchmarkConfig.from_recipe(args.recipe, overrides)
    if cfg.output_dir is None:
        cfg = cfg.with_overrides({"output_dir": str(timestamped_dir("runs", prefix="bench-"))})
    return cfg


def apply_file_overrides(data: dict[str, Any], overrides: dict[str, Any], path: Any) -> dict[str, Any]:
    """``data`` from a config file with the dotted ``overrides`` applied (errors name the file)."""
    from synthsae.benchmark.config import apply_dotted_overrides

    try:
        return apply_dotted_overrides(data, overrides)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{path}: {err}") from None


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
    from synthsae.training import distributed

    cfg = build_config(args)
    threads = args.bench_threads or getattr(args, "threads", None)
    if threads is not None:
        torch.set_num_threads(threads)
    elif torch.device(cfg.device).type == "cpu":
        torch.set_num_threads(1)  # small SAEs: extra threads only wait on each other
    main = int(os.environ.get("RANK", "0")) == 0
    n = len(cfg.architectures) * len(cfg.l0_targets) * len(cfg.seeds) * len(cfg.model_seeds or [None])
    if not args.json and main:
        print(f"benchmark: {n} SAEs ({', '.join(cfg.architectures)} x L0 {cfg.l0_targets} x seeds {cfg.seeds}) on "
              f"{cfg.model_label}{f', recipe {cfg.recipe}' if cfg.recipe else ''}, {cfg.training_samples:,} training "
              f"samples per seed, device {cfg.device}, outputs -> {cfg.output_dir}"
              + (" (resuming)" if args.resume else ""), file=sys.stderr)
    t0 = time.perf_counter()
    had_group = distributed.is_initialized()
    try:
        result = run_benchmark(cfg, resume=args.resume is not None, overwrite=args.overwrite)
        rank = distributed.rank()
    except OutputFolderExistsError as err:
        raise ValueError(err.with_remedy(f"continue it with --resume {err.path} or pass --overwrite to clear it")) \
            from None
    finally:
        if not had_group:  # a group run_benchmark made from torchrun's environment
            distributed.destroy_distributed()
    wall = time.perf_counter() - t0
    if rank != 0:
        return 0
    if args.json:
        print(json.dumps({"summaries": result.summaries, "runs": result.rows, "true_l0": result.true_l0,
                          "probe_ceiling": result.probe, "output_dir": str(result.output_dir)}, indent=2))
        return _report_write_errors(result.write_errors)
    print(result.markdown())
    if result.write_errors:
        return _report_write_errors(result.write_errors)
    print(f"outputs: {result.output_dir}  (leaderboard.md/.csv/.json, leaderboard_runs.csv, "
          f"{len(result.files.get('plots', []))} plots in plots/, SAEs in saes/); {wall:.0f} s in all")
    return 0
