"""Load an SAE folder (sae_weights.safetensors + cfg.json, as written by `synthsae train`,
`synthsae bench`, SyntheticSAERunner or SAELens) and measure how well it recovers the true
features of a synthetic model: MCC, F1, uniqueness, explained variance, L0 against the true L0,
dead latents and shrinkage, on fresh samples. BatchTopK/Matryoshka SAEs are evaluated in their
saved (JumpReLU) form."""

# This module is also home of format_metrics_table, the metrics table `synthsae train` prints.

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from synthsae.commands.arg_types import positive_int
from synthsae.commands.common import add_command

__all__ = ["add_parser", "format_metrics_table", "load_model_for_eval", "metrics_summary", "run"]

BENCHMARK_CONFIG_FILENAME = "benchmark_config.json"  # what `synthsae bench` writes next to saes/


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``synthsae eval``."""
    p = add_command(subparsers, "eval", "evaluate a saved SAE against a synthetic model's true features", __doc__)
    p.add_argument("sae_dir", metavar="SAE_DIR", help="folder holding sae_weights.safetensors and cfg.json")
    p.add_argument(
        "--model",
        metavar="SOURCE",
        default=None,
        help=(
            "the synthetic model: a saved model folder, a Hugging Face id 'owner/name[:subfolder]', "
            "a SyntheticModelConfig file (.yaml/.yml/.json) or 'preset:NAME'. Default: SAE_DIR/synthetic_model, "
            "else a checkpoint's saved model, else the model named in SAE_DIR/runner_config.json, else (for "
            "SAE_DIR = BENCH/saes/NAME, as `synthsae bench` writes) BENCH/synthetic_model or the model of "
            "BENCH/benchmark_config.json"
        ),
    )
    p.add_argument("--samples", type=positive_int, default=100_000, metavar="N",
                   help="number of eval samples (default: 100,000)")
    p.add_argument("--batch-size", type=positive_int, default=4096, metavar="N",
                   help="samples per eval chunk (default: 4096)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed of the eval data (default: 0)")
    p.add_argument("--device", default="cpu", metavar="DEV", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    p.set_defaults(handler=run)
    return p


def load_model_for_eval(source: str | None, sae_dir: Path, device: str) -> Any:
    """Resolve ``--model`` (see its help) into a :class:`SyntheticModel`."""
    from synthsae.synthetic.model_config import SyntheticModelConfig
    from synthsae.synthetic.presets import get_preset
    from synthsae.synthetic.synthetic_model import SyntheticModel

    if source is None:
        return _model_next_to(sae_dir, device)
    if source.startswith("preset:"):
        return SyntheticModel(get_preset(source[len("preset:"):]), device=device)
    if Path(source).expanduser().is_file():  # a config file (load_config_data refuses other endings)
        return SyntheticModel(SyntheticModelConfig.from_file(source), device=device)
    return SyntheticModel.load_from_source(source, device=device)


def _model_next_to(sae_dir: Path, device: str) -> Any:
    """The model an SAE folder was trained on, found from the folder itself (``--model`` omitted)."""
    from synthsae.runs.runner_config import RUNNER_CONFIG_FILENAME
    from synthsae.synthetic.model_config import SyntheticModelConfig
    from synthsae.synthetic.synthetic_model import SyntheticModel
    from synthsae.training.checkpoint import is_complete_checkpoint, read_checkpoint_info

    if (sae_dir / "synthetic_model").is_dir():
        return SyntheticModel.load_from_disk(sae_dir / "synthetic_model", device=device)
    if is_complete_checkpoint(sae_dir) and read_checkpoint_info(sae_dir).get("synthetic_model"):
        saved = sae_dir / read_checkpoint_info(sae_dir)["synthetic_model"]  # a checkpoint's model copy
        if saved.is_dir():
            return SyntheticModel.load_from_disk(saved, device=device)
    cfg_path = sae_dir / RUNNER_CONFIG_FILENAME
    if cfg_path.is_file():
        model = json.loads(cfg_path.read_text(encoding="utf-8")).get("synthetic_model")
        if isinstance(model, dict):
            return SyntheticModel(SyntheticModelConfig.from_dict(model), device=device)
        return SyntheticModel.load_from_source(str(model), device=device)
    bench = sae_dir.resolve().parent.parent  # a bench SAE: BENCH/saes/<architecture>_l0-<target>
    if sae_dir.resolve().parent.name == "saes" and (bench / BENCHMARK_CONFIG_FILENAME).is_file():
        if (bench / "synthetic_model").is_dir():
            return SyntheticModel.load_from_disk(bench / "synthetic_model", device=device)
        from synthsae.benchmark.config import BenchmarkConfig
        from synthsae.benchmark.run import load_benchmark_model

        bench_cfg = BenchmarkConfig.from_file(bench / BENCHMARK_CONFIG_FILENAME)
        return load_benchmark_model(bench_cfg.with_overrides({"device": device}))
    raise ValueError(f"--model is required: {sae_dir} has no synthetic_model/, no {RUNNER_CONFIG_FILENAME} and is "
                     f"not in the saes/ folder of a benchmark (next to its {BENCHMARK_CONFIG_FILENAME})")


def metrics_summary(result: Any, d_sae: int | None = None, samples_per_second: float | None = None) -> dict[str, Any]:
    """A flat dict of the headline metrics of a ``SyntheticDataEvalResult``."""
    c = result.classification
    out = {
        "mcc": result.mcc,
        "f1": c.f1_score,
        "precision": c.precision,
        "recall": c.recall,
        "uniqueness": result.uniqueness,
        "explained_variance": result.explained_variance,
        "sae_l0": result.sae_l0,
        "true_l0": result.true_l0,
        "dead_latents": result.dead_latents,
        "d_sae": d_sae,
        "shrinkage": result.shrinkage,
    }
    if samples_per_second is not None:
        out["samples_per_second"] = samples_per_second
    return out


def format_metrics_table(summary: dict[str, Any], title: str | None = None) -> str:
    """The metrics of :func:`metrics_summary` as an aligned text table."""
    dead = f"{summary['dead_latents']}" + (f" / {summary['d_sae']}" if summary.get("d_sae") else "")
    rows = [
        ("MCC", f"{summary['mcc']:.4f}"),
        ("F1 (precision / recall)", f"{summary['f1']:.4f} ({summary['precision']:.3f} / {summary['recall']:.3f})"),
        ("uniqueness", f"{summary['uniqueness']:.4f}"),
        ("explained variance", f"{summary['explained_variance']:.4f}"),
        ("L0 (true L0)", f"{summary['sae_l0']:.2f} ({summary['true_l0']:.2f})"),
        ("dead latents", dead),
        ("shrinkage", f"{summary['shrinkage']:.4f}"),
    ]
    if summary.get("samples_per_second") is not None:
        rows.append(("samples/s", f"{summary['samples_per_second']:,.0f}"))
    width = max(len(name) for name, _ in rows)
    lines = [title] if title else []
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``synthsae eval``; returns the exit code."""
    from synthsae.evals.eval_sae import eval_sae_on_synthetic_data
    from synthsae.saes.base import SAE

    sae_dir = Path(args.sae_dir).expanduser()
    sae = SAE.load_from_disk(sae_dir, device=args.device)
    model = load_model_for_eval(args.model, sae_dir, args.device)
    model.set_sampling_seed(args.seed)
    start = time.perf_counter()
    result = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                        num_samples=args.samples, batch_size=args.batch_size,
                                        show_progress=not args.quiet)
    rate = args.samples / max(time.perf_counter() - start, 1e-9)
    summary = metrics_summary(result, d_sae=int(sae.cfg.d_sae), samples_per_second=rate)
    if args.json:
        print(json.dumps({**summary, "eval": result.to_dict(), "samples": args.samples}, indent=2))
    else:
        print(format_metrics_table(summary, title=f"{sae_dir} on {args.samples:,} samples (eval samples/s)"))
    return 0
