"""How sampling and evaluation cost grow with the number of features, side by side.

Models: :func:`synthsae.synthetic.presets.synth_sae_bench_scaled` at each size (the
SynthSAEBench-16k recipe with rates rescaled so that L0 stays near 34), built without
orthogonalisation (it changes the directions, not the cost of sampling or of an eval).
For every size, each library runs in its own fresh process (the reference from its
virtualenv), one after the other, with the same number of threads and a memory cap:

* build time (no orthogonalisation) and peak RSS;
* ``model.sample(batch)`` (hidden activations): median time per batch;
* ``eval_sae_on_synthetic_data`` of a random 4,096-latent TopK SAE (k = 25) on
  ``--eval-samples`` samples in batches of ``--batch-size``; for synthsae also its fixed
  part, the decoder matching (``match_decoder_to_features``).

The reference runs only up to ``--reference-max-features``; above that the table gives
the memory its dense ``[batch, F]`` sampling would need, by arithmetic.

    python benchmarks/bench_scaling.py                      # 4k ... 1M, reference up to 64k
    python benchmarks/bench_scaling.py --sizes 4096,16384 --plot scaling.png --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
DEFAULT_SIZES = "4096,16384,65536,262144,1048576"

WORKER = r"""
import importlib, json, resource, statistics, sys, time
import torch
lib, cfg_json, opts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cap = int(opts["memory_cap_gib"] * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))  # a guard: fail cleanly instead of swamping the machine
torch.set_num_threads(opts["threads"])
syn = importlib.import_module(lib + ".synthetic")
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
out = {"library": lib}


class RandomTopK(torch.nn.Module):
    # a random TopK SAE both libraries can evaluate (W_dec, encode, decode, eval)
    def __init__(self, d_in, d_sae, k):
        super().__init__()
        g = torch.Generator().manual_seed(12345)
        self.W_dec = torch.nn.Parameter(torch.randn(d_sae, d_in, generator=g) / d_in**0.5)
        self.W_enc = torch.nn.Parameter(self.W_dec.detach().T.contiguous())
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in))
        self.k = k

    def encode(self, x):
        pre = torch.relu((x - self.b_dec) @ self.W_enc)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, top.indices, top.values)

    def decode(self, z):
        return z @ self.W_dec + self.b_dec


try:
    cfg = syn.SyntheticModelConfig.from_dict(json.loads(cfg_json))
    t0 = time.perf_counter()
    model = syn.SyntheticModel(cfg)
    out["build_s"] = time.perf_counter() - t0
    out["rss_build_gib"] = peak()
    b = opts["batch_size"]
    model.sample(b)
    times, start = [], time.perf_counter()
    while len(times) < opts["max_batches"] and (len(times) < opts["min_batches"] or time.perf_counter() - start < opts["min_seconds"]):
        t = time.perf_counter()
        model.sample(b)
        times.append(time.perf_counter() - t)
    out["sample_s"] = statistics.median(times)
    out["sample_batches"] = len(times)
    out["rss_sample_gib"] = peak()
    sae = RandomTopK(cfg.hidden_dim, opts["d_sae"], opts["k"])
    if lib == "synthsae":
        from synthsae.evals.feature_matching import match_decoder_to_features
        t = time.perf_counter()
        match_decoder_to_features(sae.W_dec.detach(), model.feature_dict.feature_vectors.detach())
        out["match_s"] = time.perf_counter() - t
    torch.manual_seed(0)
    t = time.perf_counter()
    r = syn.eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                       num_samples=opts["eval_samples"], batch_size=b)
    out["eval_s"] = time.perf_counter() - t
    out["true_l0"] = r.true_l0
    out["rss_eval_gib"] = peak()
except (MemoryError, RuntimeError) as err:  # torch reports allocation failures as RuntimeError
    out["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
out["peak_rss_gib"] = peak()
print(json.dumps(out))
"""


def reference_sampling_gib(num_features: int, batch_size: int) -> float:
    """Memory of the reference's dense sampling step: at least five ``[batch, F]`` float32
    tensors live at once (the noise, the low-rank term, their sum, the activations and the
    hierarchy's copy), before the dense ``[batch, F] x [F, D]`` product."""
    return 5 * 4 * batch_size * num_features / 2**30


def run_worker(python: str, lib: str, cfg_dict: dict, opts: dict, timeout: float) -> dict:
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(REPO) if lib == "synthsae" else "")
    cmd = [python, "-c", WORKER, lib, json.dumps(cfg_dict), json.dumps(opts)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/tmp", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"library": lib, "error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"library": lib, "error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def table(rows: list[dict], batch_size: int, eval_samples: int) -> str:
    head = (
        f"| features | hidden | L0 | build s (ours / ref) | sample ms per {batch_size} (ours / ref) | ratio "
        f"| eval {eval_samples:,} s (ours / ref) | ours: matching s | peak RSS GiB (ours / ref) |"
    )
    lines = [head, "|" + "---|" * 9]
    for row in rows:
        ours, ref = row["synthsae"], row.get("reference") or {}
        ratio = ref["sample_s"] / ours["sample_s"] if "sample_s" in ref and "sample_s" in ours else None
        ref_note = ref.get("error") or row.get("reference_note", "")
        lines.append(
            f"| {row['num_features']:,} | {row['hidden_dim']} | {_fmt(ours.get('true_l0'), '{:.1f}')} "
            f"| {_fmt(ours.get('build_s'), '{:.1f}')} / {_fmt(ref.get('build_s'), '{:.1f}')} "
            f"| {_fmt(ours.get('sample_s') and ours['sample_s'] * 1e3, '{:.1f}')} / "
            f"{_fmt(ref.get('sample_s') and ref['sample_s'] * 1e3, '{:.0f}')} | {_fmt(ratio, '{:.0f}x')} "
            f"| {_fmt(ours.get('eval_s'), '{:.1f}')} / {_fmt(ref.get('eval_s'), '{:.1f}')} "
            f"| {_fmt(ours.get('match_s'), '{:.1f}')} "
            f"| {_fmt(ours.get('peak_rss_gib'), '{:.2f}')} / {_fmt(ref.get('peak_rss_gib'), '{:.2f}')} |"
            + (f" {ref_note}" if ref_note else "")
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, batch_size: int, eval_samples: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    series = [
        ("sample_s", f"sample, s per {batch_size}", axes[0]),
        ("eval_s", f"eval of {eval_samples:,} samples, s", axes[1]),
    ]
    for key, title, ax in series:
        for lib, style in (("synthsae", "o-"), ("reference", "s--")):
            points = [(r["num_features"], r[lib][key]) for r in rows if key in (r.get(lib) or {})]
            if points:
                ax.plot(*zip(*points), style, label=lib)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("features")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated feature counts (>= 1024)")
    parser.add_argument("--hidden-dim", type=int, default=768)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--eval-samples", type=int, default=10_240)
    parser.add_argument("--d-sae", type=int, default=4096)
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--min-batches", type=int, default=5)
    parser.add_argument("--max-batches", type=int, default=100)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--memory-cap-gib", type=float, default=16.0, help="address-space cap of each worker")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker")
    parser.add_argument("--reference-max-features", type=int, default=65_536)
    parser.add_argument("--reference-python", default=str(REFERENCE_PYTHON))
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--plot", default=None, metavar="PNG")
    parser.add_argument("--json", default=None, metavar="FILE")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from synthsae.synthetic.presets import synth_sae_bench_scaled

    opts = {key: getattr(args, key) for key in (
        "threads", "batch_size", "eval_samples", "d_sae", "k", "min_batches", "max_batches", "min_seconds",
        "memory_cap_gib")}  # fmt: skip
    run_reference = not args.no_reference and Path(args.reference_python).exists()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        cfg = synth_sae_bench_scaled(size, hidden_dim=args.hidden_dim, orthogonalization_steps=0).to_dict()
        row: dict = {"num_features": size, "hidden_dim": args.hidden_dim}
        row["synthsae"] = run_worker(sys.executable, "synthsae", cfg, opts, args.timeout)
        need = reference_sampling_gib(size, args.batch_size)
        if run_reference and size <= args.reference_max_features:
            row["reference"] = run_worker(args.reference_python, "sae_lens", cfg, opts, args.timeout)
        else:
            row["reference_note"] = f"reference not run; its dense sampling needs >= {need:.1f} GiB per batch"
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.threads} threads, batch {args.batch_size}, hidden {args.hidden_dim}, load {os.getloadavg()}")
    print(table(rows, args.batch_size, args.eval_samples))
    if args.plot:
        plot(rows, Path(args.plot), args.batch_size, args.eval_samples)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
