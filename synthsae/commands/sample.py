"""Build (or load) a synthetic model, draw batches of hidden activations and print a statistics
table: sizes, true L0 (empirical and expected), configured and expected (exact for independent
firings) versus empirical firing rates of a few features with binomial standard errors, the
hierarchy, build time and sampling speed."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from synthsae.commands.arg_types import non_negative_int, positive_int
from synthsae.commands.common import add_command
from synthsae.synthetic.presets import DEFAULT_PRESET

__all__ = ["DEFAULT_PRESET", "add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``synthsae sample``."""
    from synthsae.synthetic.presets import PRESETS

    p = add_command(subparsers, "sample", "build a synthetic model, draw batches and print its statistics", __doc__)
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help=f"a built-in model recipe (default when neither --config nor --model is given: {DEFAULT_PRESET})",
    )
    source.add_argument("--config", metavar="FILE", help="a SyntheticModelConfig file (.json, .yaml or .yml)")
    source.add_argument(
        "--model",
        metavar="SOURCE",
        help="a saved model directory, or a Hugging Face id 'owner/name[:subfolder]'",
    )
    p.add_argument("--batch-size", type=positive_int, default=1024, metavar="N", help="samples per batch (default: 1024)")
    p.add_argument("--batches", type=positive_int, default=20, metavar="N", help="number of batches to draw (default: 20)")
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        metavar="S",
        help="sampling seed: the same seed gives the same batches on the same device (default: global RNG)",
    )
    p.add_argument(
        "--model-seed",
        type=non_negative_int,
        default=None,
        metavar="S",
        help="override the build seed of the preset or config (ignored with --model)",
    )
    p.add_argument("--device", default="cpu", metavar="DEV", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--save", metavar="DIR", default=None, help="also save the model to this directory")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON instead of a table")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``synthsae sample`` with parsed arguments; returns the exit code."""
    import dataclasses

    from synthsae.output_folders import check_writable
    from synthsae.synthetic.model_config import SyntheticModelConfig
    from synthsae.synthetic.presets import get_preset
    from synthsae.synthetic.synthetic_model import SyntheticModel

    if args.save:  # before the model is built: a bad folder fails at once
        check_writable(args.save, "--save")
    if args.model is not None:
        label = args.model
        start = time.perf_counter()
        model = SyntheticModel.load_from_source(args.model, device=args.device)
    else:
        if args.config is not None:
            label, cfg = args.config, SyntheticModelConfig.from_file(args.config)
        else:
            name = args.preset or DEFAULT_PRESET
            label, cfg = f"preset {name}", get_preset(name)
        if args.model_seed is not None:
            cfg = dataclasses.replace(cfg, seed=args.model_seed)
        start = time.perf_counter()
        model = SyntheticModel(cfg, device=args.device)
    build_s = time.perf_counter() - start
    if args.seed is not None:
        model.set_sampling_seed(args.seed)
    if args.save:
        model.save(args.save)

    from synthsae.synthetic.model_stats import sample_statistics

    stats = sample_statistics(model, batch_size=args.batch_size, batches=args.batches)
    stats = {"source": label, "device": str(args.device), "build_s": build_s, **stats}
    if args.save:
        stats["saved_to"] = str(args.save)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        from synthsae.synthetic.model_stats import format_statistics

        print(format_statistics(stats))
    return 0
