"""``synthsae train [CONFIG] [--set KEY=VALUE ...] [--resume DIR]``: a full training run.

Without a config it runs the main job: a BatchTopK SAE on the ``cpu_small`` preset,
about a minute on a CPU (one thread unless ``--threads`` says otherwise), then prints a
metrics table.

Under ``torchrun --nproc_per_node N -m synthsae train ...`` the runner trains data
parallel on N processes (``batch_size`` per process, ``training_samples`` in total);
only rank 0 writes and prints, and the process group is closed at the end.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

from synthsae.commands.common import add_command, parse_overrides, timestamped_dir
from synthsae.synthetic.presets import DEFAULT_PRESET

__all__ = ["DEFAULT_JOB", "add_parser", "default_config", "run"]

#: The main job's settings (``synthsae train`` with no config); d_in comes from the model.
DEFAULT_JOB: dict[str, Any] = {
    "synthetic_model": {"preset": DEFAULT_PRESET},
    "sae": {"architecture": "batchtopk", "d_sae": 256, "k": 8},
    "training_samples": 1_500_000,
    "batch_size": 512,
    "lr": 3e-3,
    "eval_frequency": 1000,
    "eval_samples": 50_000,
    "n_checkpoints": 2,
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``synthsae train``."""
    p = add_command(
        subparsers, "train", "train an SAE on a synthetic model (no CONFIG: the small CPU demo job)",
        "Train an SAE on synthetic data with known true features, evaluating it during and after "
        "training, writing checkpoints (resumable with --resume) and these outputs to output_path: "
        "sae_weights.safetensors + cfg.json, runner_config.json, eval_stats.json, "
        "sparsity.safetensors and metrics.jsonl (one JSON line per logged step and eval). Without "
        f"CONFIG, trains a BatchTopK SAE (k={DEFAULT_JOB['sae']['k']}, {DEFAULT_JOB['sae']['d_sae']} "
        f"latents) on the {DEFAULT_PRESET} preset (512 features in 64 dims) for "
        f"{DEFAULT_JOB['training_samples']:,} samples (about a minute on a CPU) into "
        "runs/<timestamp>/, and prints a metrics table. The demo job uses one CPU thread unless "
        "`synthsae --threads N train` says otherwise: its matrices are too small to gain from more, "
        "and extra threads only slow it down on a busy machine.",
        epilog=(
            "examples:\n"
            "  synthsae train\n"
            "  synthsae train run.yaml --set lr=1e-3 --set sae.k=16\n"
            "  synthsae train --set sae.architecture=topk --set training_samples=1e6\n"
            "  synthsae train --set device=cuda --set autocast_sae=true\n"
            "  synthsae train --resume runs/20250101-120000\n"
            "  synthsae train run.yaml --output runs/again --overwrite\n"
            "  torchrun --nproc_per_node 2 -m synthsae train run.yaml   (data parallel)\n"
            + textwrap.fill(
                "CONFIG keys are those of SyntheticSAERunnerConfig (synthetic_model, sae, training_samples, "
                "batch_size, lr, eval_frequency, n_checkpoints, logger, seed, ...); synthetic_model may be "
                "{preset: NAME} (optionally with fields to change), a model config dict, a saved model folder "
                "or a hub id 'owner/name[:subfolder]'; sae needs 'architecture' and may leave out d_in.",
                width=90)
        ),
    )
    p.add_argument("config", nargs="?", metavar="CONFIG",
                   help="runner config file (.yaml, .yml or .json); default: the built-in demo job")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key; dotted keys reach into sections (sae.k=8, logger.log_to_wandb=true); "
                        "values are read as YAML (1e-3, 1e6, true, [16, 64]); KEY=null removes an optional key (its "
                        "default applies); sae.architecture=NAME switches the sae section to NAME, keeping the keys "
                        "NAME also has; repeatable")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue a run: DIR is its output folder, its checkpoint folder or one checkpoint (the "
                        "newest readable one is used; the saved config is the config). It writes into the run's "
                        "own folders; --output/--set may send outputs elsewhere")
    p.add_argument("--output", metavar="DIR", default=None,
                   help="output folder (shorthand for --set output_path=DIR); default for the demo job: "
                        "runs/<timestamp>. A folder that holds files is refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="clear a non-empty output or checkpoint folder (an earlier run's) before training")
    p.add_argument("--device", metavar="DEV", default=None, help="shorthand for --set device=DEV (cpu, cuda, ...)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON instead of a table")
    p.set_defaults(handler=run)
    return p


def default_config(output: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """The main job's config (see :data:`DEFAULT_JOB`), writing to ``output``
    (default ``runs/<timestamp>``) with checkpoints in ``output/checkpoints``."""
    from synthsae.runs.runner_config import SyntheticSAERunnerConfig

    out = Path(output) if output is not None else timestamped_dir("runs")
    data = {**DEFAULT_JOB, "output_path": str(out), "checkpoint_path": str(out / "checkpoints")}
    cfg = SyntheticSAERunnerConfig.from_dict(data)
    return cfg.with_overrides(overrides) if overrides else cfg


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values = parse_overrides(args.overrides)
    if args.output is not None:
        values["output_path"] = args.output
        if args.config is None and args.resume is None:
            values.setdefault("checkpoint_path", str(Path(args.output) / "checkpoints"))
    if args.device is not None:
        values["device"] = args.device
    if args.quiet:
        values["show_progress"] = False
    return values


def run(args: argparse.Namespace) -> int:
    """Run ``synthsae train``; returns the exit code."""
    from synthsae.training import distributed

    had_group = distributed.is_initialized()
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C before or after training (during it, the runner checkpoints)
        print("synthsae train: interrupted", file=sys.stderr)
        return 128 + int(signal.SIGINT)
    finally:
        if not had_group:  # the runner joined torchrun's process group: leave it cleanly
            distributed.destroy_distributed()


def _run(args: argparse.Namespace) -> int:
    from synthsae.commands.eval import format_metrics_table, metrics_summary
    from synthsae.output_folders import OutputFolderExistsError
    from synthsae.runs.runner import SyntheticSAERunner
    from synthsae.runs.runner_config import SyntheticSAERunnerConfig
    from synthsae.training.interrupts import TrainingInterrupted, exit_code_for
    from synthsae.training.trainer import NonFiniteLossError

    if args.resume is not None and args.config is not None:
        raise ValueError("give either CONFIG or --resume DIR, not both (the checkpoint holds its config)")
    try:
        overrides = _overrides(args)
        if args.resume is not None:
            runner = SyntheticSAERunner.resume(args.resume, overrides=overrides, overwrite=args.overwrite)
        else:
            if args.config is not None:
                cfg = SyntheticSAERunnerConfig.from_file(args.config, overrides=overrides)
            else:
                cfg = default_config(overrides.pop("output_path", None), overrides)
                if getattr(args, "threads", None) is None and cfg.device == "cpu":
                    import torch

                    torch.set_num_threads(1)  # its 64-dim matrices gain nothing from more threads
            runner = SyntheticSAERunner(cfg, overwrite=args.overwrite)
    except OutputFolderExistsError as err:
        raise ValueError(err.with_remedy(f"pass --overwrite to clear it first, or continue that run with "
                                         f"--resume {shlex.quote(str(err.path))}")) from None
    cfg = runner.cfg
    point = runner.resume_point
    if point is not None and runner.rank == 0:
        print(f"resumed from step {point.info['step']} ({point.info['samples_seen']:,} samples) of {point.checkpoint}",
              file=sys.stderr)
    if runner.rank != 0:  # torchrun: rank 0 reports (and prints any error)
        try:
            runner.run()
        except NonFiniteLossError:
            return 1
        except TrainingInterrupted as stop:
            return exit_code_for(stop.signum)
        return 0
    if not args.json:
        where = cfg.output_path if cfg.output_path is not None else "(not saved)"
        print(f"training {cfg.architecture} (d_sae={runner.sae.cfg.d_sae}) on {cfg.training_samples:,} samples, "
              f"device {cfg.device}, outputs -> {where}", file=sys.stderr)
    try:
        result = runner.run()
    except TrainingInterrupted as stop:
        print(f"synthsae train: {interrupted_message(stop, runner.world_size)}", file=sys.stderr)
        return exit_code_for(stop.signum)
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
        print(f"synthsae train: stopped at once; {_last_checkpoint_note(cfg.checkpoint_path)}", file=sys.stderr)
        return exit_code_for(signal.SIGINT)
    except NonFiniteLossError as err:
        print(f"synthsae train: error: {err}", file=sys.stderr)
        if cfg.checkpoint_path is not None:
            from synthsae.training.checkpoint import latest_checkpoint

            last = latest_checkpoint(cfg.checkpoint_path)
            if last is not None:
                print(f"the last checkpoint is intact: {last}", file=sys.stderr)
        return 1
    if result.final_eval is None:
        summary: dict[str, Any] = {"samples_per_second": result.samples_per_second}
    else:
        summary = metrics_summary(result.final_eval, d_sae=int(runner.sae.cfg.d_sae),
                                  samples_per_second=result.samples_per_second)
    summary["output_path"] = None if result.output_path is None else str(result.output_path)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    if result.final_eval is not None:
        print(format_metrics_table(summary, title=f"final eval ({cfg.eval_samples:,} samples)"))
    else:
        print(f"trained at {result.samples_per_second or 0:,.0f} samples/s (final eval disabled)")
    if result.write_errors:
        for problem in result.write_errors:
            print(f"synthsae train: error: could not write {problem}", file=sys.stderr)
        return 1
    if result.output_path is not None:
        print(f"outputs: {result.output_path}  (metrics log: {Path(result.output_path) / 'metrics.jsonl'})")
    return 0


def resume_command(resume_from: str | Path, world_size: int = 1) -> str:
    """The shell command that continues a run from ``resume_from`` (under torchrun with ``world_size`` ranks)."""
    launcher = f"torchrun --nproc_per_node {world_size} -m synthsae" if world_size > 1 else "synthsae"
    return f"{launcher} train --resume {shlex.quote(str(resume_from))}"


def interrupted_message(stop: Any, world_size: int = 1) -> str:
    """What ``synthsae train`` prints after SIGINT/SIGTERM: the step, the checkpoint, the resume command."""
    from synthsae.training.interrupts import signal_name

    text = f"interrupted by {signal_name(stop.signum)} after step {stop.step}"
    if stop.checkpoint is None:
        return text + "; no checkpoint written (checkpoint_path is null), the run cannot be resumed"
    return f"{text}; checkpoint written to {stop.checkpoint}\nresume with: {resume_command(stop.resume_from, world_size)}"


def _last_checkpoint_note(checkpoint_path: str | None) -> str:
    from synthsae.training.checkpoint import latest_checkpoint

    last = latest_checkpoint(checkpoint_path) if checkpoint_path is not None else None
    return f"the last complete checkpoint is {last}" if last is not None else "no checkpoint was written"
