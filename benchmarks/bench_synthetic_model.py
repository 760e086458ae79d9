"""Build, sample, save and load the SynthSAEBench-16k model; optionally the reference too.

Usage::

    python benchmarks/bench_synthetic_model.py                 # synthsae only
    python benchmarks/bench_synthetic_model.py --reference     # side by side with SAELens

Each library runs in its own subprocess (so peak RSS is per library), with the same
number of torch threads (2 by default). Reported: build time without orthogonalisation,
orthogonalisation time (synthsae: all steps; reference: ``--reference-ortho-steps``
steps, extrapolated to the config's step count, since 100 steps take about an hour
there), ``sample(batch)`` samples/s (median over batches), save and load times, and
peak RSS. ``--preset`` picks another synthsae preset (the reference builds the same
config from its dict form). ``--json FILE`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median_rate(sample, batch_size: int, batches: int) -> tuple[float, list[float], list[float]]:
    """samples/s from the median wall time, plus the wall and process-CPU times per batch."""
    sample(batch_size)  # warm-up
    times, cpu = [], []
    for _ in range(batches):
        start, start_cpu = time.perf_counter(), time.process_time()
        sample(batch_size)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return batch_size / statistics.median(times), times, cpu


def worker(lib: str, cfg_dict: dict, args: argparse.Namespace) -> dict:
    """Run one library's measurements in this process; returns a dict of figures."""
    import torch

    torch.set_num_threads(args.threads)
    if lib == "synthsae":
        sys.path.insert(0, str(REPO))
        from synthsae.synthetic import SyntheticModel, SyntheticModelConfig
        from synthsae.synthetic.orthogonalize import orthogonalize_embeddings
    else:
        from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig
        from sae_lens.synthetic.feature_dictionary import orthogonalize_embeddings

    cfg = SyntheticModelConfig.from_dict(cfg_dict)
    ortho = cfg.orthogonalization
    cfg.orthogonalization = None
    out: dict = {"library": lib, "threads": torch.get_num_threads()}
    start = time.perf_counter()
    model = SyntheticModel(cfg)
    out["build_without_ortho_s"] = time.perf_counter() - start
    out["rss_after_build_mib"] = _peak_rss_mib()
    if ortho is not None:
        steps = ortho.num_steps if lib == "synthsae" else min(args.reference_ortho_steps, ortho.num_steps)
        vectors = model.feature_dict.feature_vectors.detach()
        orthogonalize_embeddings(vectors, num_steps=0, lr=ortho.lr, chunk_size=ortho.chunk_size)
        start = time.perf_counter()
        new = orthogonalize_embeddings(vectors, num_steps=steps, lr=ortho.lr, chunk_size=ortho.chunk_size)
        elapsed = time.perf_counter() - start
        with torch.no_grad():
            model.feature_dict.feature_vectors.copy_(new)
        out["ortho_steps_run"] = steps
        out["ortho_s_per_step"] = elapsed / max(steps, 1)
        out["ortho_s_full"] = out["ortho_s_per_step"] * ortho.num_steps
        out["ortho_full_is_extrapolated"] = steps != ortho.num_steps
        out["build_full_s"] = out["build_without_ortho_s"] + out["ortho_s_full"]
        out["rss_after_ortho_mib"] = _peak_rss_mib()
    batches = args.batches if lib == "synthsae" else args.reference_batches
    rate, times, cpu = _median_rate(model.sample, args.batch_size, batches)
    out["sample_batch_size"] = args.batch_size
    out["sample_batches"] = batches
    out["samples_per_s"] = rate
    out["sample_s_median"] = statistics.median(times)
    out["sample_cpu_s_median"] = statistics.median(cpu)
    out["rss_after_sampling_mib"] = _peak_rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        model.save(Path(tmp) / "m")
        out["save_s"] = time.perf_counter() - start
        out["saved_mib"] = sum(f.stat().st_size for f in (Path(tmp) / "m").iterdir()) / 2**20
        start = time.perf_counter()
        SyntheticModel.load_from_disk(Path(tmp) / "m")
        out["load_s"] = time.perf_counter() - start
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def _run_worker(python: Path | str, lib: str, cfg_dict: dict, args: argparse.Namespace) -> dict:
    cmd = [str(python), __file__, "--worker", lib, "--config-json", json.dumps(cfg_dict), *_shared_args(args)]
    env = {**os.environ, "PYTHONPATH": str(REPO) if lib == "synthsae" else ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} worker failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _shared_args(args: argparse.Namespace) -> list[str]:
    return [
        "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--batches", str(args.batches),
        "--reference-batches", str(args.reference_batches), "--reference-ortho-steps", str(args.reference_ortho_steps),
    ]  # fmt: skip


def _table(results: list[dict]) -> str:
    rows = [
        ("build without orthogonalisation (s)", "build_without_ortho_s", "{:.2f}"),
        ("orthogonalisation, per step (s)", "ortho_s_per_step", "{:.3f}"),
        ("orthogonalisation, all steps (s)", "ortho_s_full", "{:.1f}"),
        ("build total (s)", "build_full_s", "{:.1f}"),
        ("sample(batch) median wall (s)", "sample_s_median", "{:.4f}"),
        ("sample(batch) median process CPU (s)", "sample_cpu_s_median", "{:.4f}"),
        ("samples/s", "samples_per_s", "{:,.0f}"),
        ("save (s)", "save_s", "{:.2f}"),
        ("load (s)", "load_s", "{:.2f}"),
        ("saved size (MiB)", "saved_mib", "{:.1f}"),
        ("peak RSS (MiB)", "peak_rss_mib", "{:,.0f}"),
    ]
    head = f"| {'measure':<38} | " + " | ".join(f"{r['library']:>12}" for r in results)
    lines = [head, "|" + "-" * 40 + "|" + "|".join("-" * 14 for _ in results) + "|"]
    for label, key, fmt in rows:
        cells = [fmt.format(r[key]) + ("*" if key.startswith("ortho_s_full") and r.get("ortho_full_is_extrapolated") else "") if key in r else "-" for r in results]
        lines.append(f"| {label:<38} | " + " | ".join(f"{c:>12}" for c in cells))
    if len(results) == 2:
        ours, ref = results
        ratio = lambda key: ref[key] / ours[key] if key in ours and key in ref and ours[key] else float("nan")  # noqa: E731
        lines.append("")
        lines.append(f"sampling speed-up: {ours['samples_per_s'] / ref['samples_per_s']:.1f}x")
        lines.append(f"orthogonalisation speed-up (per step): {ratio('ortho_s_per_step'):.0f}x")
        lines.append(f"build speed-up (full config): {ratio('build_full_s'):.0f}x")
    if any(r.get("ortho_full_is_extrapolated") for r in results):
        lines.append("* extrapolated from the steps actually run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synth_sae_bench_16k", help="synthsae preset to measure")
    parser.add_argument("--reference", action="store_true", help="also measure SAELens from the reference venv")
    parser.add_argument("--reference-python", default=str(REFERENCE_PYTHON), help="python of the reference venv")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=30, help="timed sample() batches (synthsae)")
    parser.add_argument("--reference-batches", type=int, default=5, help="timed sample() batches (reference)")
    parser.add_argument("--reference-ortho-steps", type=int, default=2, help="orthogonalisation steps run by the reference")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the figures to FILE")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.config_json), args)))
        return
    sys.path.insert(0, str(REPO))
    from synthsae.synthetic.presets import get_preset

    cfg_dict = get_preset(args.preset).to_dict()
    results = [_run_worker(sys.executable, "synthsae", cfg_dict, args)]
    if args.reference:
        results.append(_run_worker(args.reference_python, "reference", cfg_dict, args))
    print(f"preset {args.preset}, {args.threads} threads, batch {args.batch_size}")
    print(_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
