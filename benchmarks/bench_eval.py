"""Time ``eval_sae_on_synthetic_data`` at SynthSAEBench-16k size.

Defaults: a random TopK SAE with 4,096 latents (k = 25) evaluated on 100,000 samples
of a model with 16,384 features in 768 dimensions.

Usage::

    python benchmarks/bench_eval.py --threads 2
    python benchmarks/bench_eval.py --num-samples 500000 --source standin

``--source model`` builds the SynthSAEBench-16k preset without orthogonalisation
(sampling speed does not depend on it); ``standin`` uses a small independent-Bernoulli
Zipf sampler defined here; ``auto`` (default) uses the model when it can be built.
Prints the decoder-metric cost (one cosine matrix + Hungarian), the sampling-only
cost, and the full eval time with its metrics.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

try:
    import synthsae  # noqa: F401
except ModuleNotFoundError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthsae.evals.eval_sae import default_eval_batch_size, eval_sae_on_synthetic_data
from synthsae.evals.metrics import match_decoder_to_features
from synthsae.synthetic.sparse_batch import SparseBatch


class RandomTopKSAE:
    """SAE-like object: random tied weights, per-sample top-k ReLU encoder."""

    def __init__(self, d_in: int, d_sae: int, k: int, device: str, seed: int = 0) -> None:
        g = torch.Generator(device=device).manual_seed(seed)
        self.W_dec = torch.randn(d_sae, d_in, generator=g, device=device) / d_in**0.5
        self.W_enc = self.W_dec.T.contiguous()
        self.b_enc = torch.zeros(d_sae, device=device)
        self.b_dec = torch.zeros(d_in, device=device)
        self.k = k

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, top.indices, top.values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec


class StandInGenerator:
    """Independent Bernoulli firing with Zipf probabilities, sampled sparsely per feature."""

    def __init__(self, num_features: int, device: str, seed: int = 0) -> None:
        ranks = torch.arange(1, num_features + 1, dtype=torch.float64, device=device)
        p = ranks**-0.5
        p = 5e-4 + (p - p.min()) / (p.max() - p.min()) * (0.4 - 5e-4)
        self.p, self.num_features = p, num_features
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def sample_sparse(self, batch_size: int) -> SparseBatch:
        counts = torch.binomial(
            torch.full_like(self.p, float(batch_size)), self.p, generator=self.generator
        ).long()
        feats = torch.repeat_interleave(
            torch.arange(self.num_features, device=self.p.device), counts
        )
        rows = torch.randint(
            0, batch_size, feats.shape, generator=self.generator, device=self.p.device
        )
        keys = torch.unique(rows * self.num_features + feats)
        values = 4.5 + 0.5 * torch.randn(
            keys.numel(), generator=self.generator, device=self.p.device
        )
        return SparseBatch.from_rows(
            keys // self.num_features,
            keys % self.num_features,
            values.clamp_min(0.0),
            batch_size,
            self.num_features,
        )


class StandInDictionary:
    def __init__(self, num_features: int, hidden_dim: int, device: str, seed: int = 0) -> None:
        g = torch.Generator(device=device).manual_seed(seed)
        v = torch.randn(num_features, hidden_dim, generator=g, device=device)
        self.feature_vectors = v / v.norm(dim=1, keepdim=True)
        self.hidden_dim = hidden_dim

    def __call__(self, acts: SparseBatch) -> torch.Tensor:
        return torch.nn.functional.embedding_bag(
            acts.indices, self.feature_vectors, acts.offsets, mode="sum",
            per_sample_weights=acts.values, include_last_offset=True,
        )  # fmt: skip


def _source(args: argparse.Namespace) -> tuple[Any, Any, str]:
    if args.source in ("auto", "model"):
        try:
            from synthsae.synthetic.model_config import OrthogonalizationConfig
            from synthsae.synthetic.presets import synth_sae_bench_16k
            from synthsae.synthetic.synthetic_model import SyntheticModel

            cfg = synth_sae_bench_16k()
            cfg.num_features, cfg.hidden_dim = args.num_features, args.hidden_dim
            cfg.orthogonalization = OrthogonalizationConfig(num_steps=0)
            model = SyntheticModel(cfg, device=args.device)
            return (
                model.feature_dict,
                model.activation_generator,
                "SyntheticModel (SynthSAEBench-16k preset, no orthogonalisation)",
            )
        except Exception as err:  # noqa: BLE001 - fall back while the model is unavailable
            if args.source == "model":
                raise
            print(f"[model unavailable: {type(err).__name__}: {err}; using the stand-in]")
    fd = StandInDictionary(args.num_features, args.hidden_dim, args.device)
    return fd, StandInGenerator(args.num_features, args.device), "stand-in Zipf Bernoulli sampler"


class _Clock:
    """Wall and process-CPU time; on a shared machine the CPU time is the steadier figure."""

    def __init__(self, device: str) -> None:
        self.device = device
        _sync(device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, samples: int | None = None) -> str:
        _sync(self.device)
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        rate = f", {samples / wall:,.0f} samples/s" if samples else ""
        return f"{wall:.2f} s wall, {cpu:.2f} s CPU (all threads){rate}"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-sae", type=int, default=4096)
    parser.add_argument("--num-features", type=int, default=16_384)
    parser.add_argument("--hidden-dim", type=int, default=768)
    parser.add_argument("--num-samples", type=int, default=100_000)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the eval's own choice"
    )
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--source", choices=("auto", "model", "standin"), default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--no-sampling-baseline", action="store_true", help="skip the sampling-only pass"
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    feature_dict, generator, source = _source(args)
    build_s = time.perf_counter() - t0
    sae = RandomTopKSAE(args.hidden_dim, args.d_sae, args.k, args.device, seed=12345)
    batch = args.batch_size or default_eval_batch_size(
        args.d_sae, args.hidden_dim, args.num_features, not hasattr(generator, "sample_sparse")
    )
    print(
        f"eval: d_sae={args.d_sae} F={args.num_features} D={args.hidden_dim} samples={args.num_samples} "
        f"batch={batch} device={args.device} threads={torch.get_num_threads()}"
    )
    print(f"source: {source} (built in {build_s:.1f} s)")

    _sync(args.device)
    t0 = time.perf_counter()
    match_decoder_to_features(sae.W_dec, feature_dict.feature_vectors)
    _sync(args.device)
    print(
        f"decoder metrics (one |cos| matrix + Hungarian + argmax): {time.perf_counter() - t0:.2f} s"
    )

    if not args.no_sampling_baseline:
        clock, done = _Clock(args.device), 0
        with torch.no_grad():
            while done < args.num_samples:
                b = min(batch, args.num_samples - done)
                sample_sparse = getattr(generator, "sample_sparse", None)
                acts = sample_sparse(b) if callable(sample_sparse) else generator.sample(b)
                feature_dict(acts)
                done += b
        print(f"sampling only (generator + feature_dict): {clock.lap(args.num_samples)}")

    clock = _Clock(args.device)
    result = eval_sae_on_synthetic_data(
        sae, feature_dict, generator, num_samples=args.num_samples, batch_size=args.batch_size
    )
    print(f"full eval: {clock.lap(args.num_samples)}")
    for key, value in result.to_log_dict().items():
        print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    peak = _peak_rss_gib()
    if peak is not None:
        print(f"peak RSS: {peak:.2f} GiB")


def _peak_rss_gib() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on every platform
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


if __name__ == "__main__":
    main()
