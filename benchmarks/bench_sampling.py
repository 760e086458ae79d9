"""Sampling speed on the SynthSAEBench-16k ingredients (ActivationGenerator + FeatureDictionary).

Builds the pieces directly: 16,384 features in 768 dims, Zipfian probabilities (exponent
0.5, max 0.4, min 5e-4), low-rank correlation (rank 25, scale 0.1), the 128-root /
branching 4 / depth 3 all-mutually-exclusive hierarchy with compensated probabilities
and child scaling, mean magnitudes linear 5 -> 4, std folded-normal(0.5, 0.5).

    python benchmarks/bench_sampling.py [--batch-size 1024] [--iters 30] [--device cpu]

Prints samples/s for the feature sampling alone and with the dictionary product, a
time breakdown, and the empirical L0 (the reference gives 34.45 +- 0.3 over 20k rows).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from synthsae.synthetic.activation_generator import ActivationGenerator
from synthsae.synthetic.correlation import generate_random_low_rank_correlation_matrix
from synthsae.synthetic.feature_dictionary import FeatureDictionary
from synthsae.synthetic.firing_probabilities import zipfian_firing_probabilities
from synthsae.synthetic.hierarchy.config import HierarchyConfig
from synthsae.synthetic.hierarchy.generate import generate_hierarchy
from synthsae.synthetic.magnitudes import (
    FoldedNormalMagnitudeConfig,
    LinearMagnitudeConfig,
    generate_magnitudes,
)

NUM_FEATURES, HIDDEN_DIM, SEED = 16_384, 768, 42


def build(device: str) -> tuple[ActivationGenerator, FeatureDictionary]:
    """The generator and dictionary of the 16k benchmark model (no orthogonalisation)."""
    hierarchy = generate_hierarchy(
        NUM_FEATURES,
        HierarchyConfig(
            total_root_nodes=128,
            branching_factor=4,
            max_depth=3,
            mutually_exclusive_portion=1.0,
            compensate_probabilities=True,
            scale_children_by_parent=True,
        ),
        seed=SEED + 3,
    )
    base = zipfian_firing_probabilities(NUM_FEATURES, exponent=0.5, max_prob=0.4, min_prob=5e-4)
    probs = (base * hierarchy.compute_probability_correction_factors(base)).clamp(max=1.0)
    correlation = generate_random_low_rank_correlation_matrix(
        NUM_FEATURES, rank=25, correlation_scale=0.1, seed=SEED + 4, device=device
    )
    std = generate_magnitudes(NUM_FEATURES, FoldedNormalMagnitudeConfig(mean=0.5, std=0.5), seed=SEED + 1)
    mean = generate_magnitudes(NUM_FEATURES, LinearMagnitudeConfig(start=5.0, end=4.0), seed=SEED + 2)
    generator = ActivationGenerator(
        NUM_FEATURES,
        probs.to(device),
        std.to(device),
        mean.to(device),
        modify_activations=hierarchy.modifier,
        correlation_matrix=correlation,
        device=device,
        seed=SEED,
    )
    feature_dict = FeatureDictionary(NUM_FEATURES, HIDDEN_DIM, bias=True, initializer=None, device=device, seed=SEED)
    return generator, feature_dict


def _timed(fn, iters: int, sync) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(iters):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--l0-samples", type=int, default=20_480)
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="also time the reference's dense passes ([B, F] firing + magnitudes, [B, F] x [F, D] product) "
        "to estimate the side-by-side speed-up on a loaded machine",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    t0 = time.perf_counter()
    generator, feature_dict = build(device)
    print(f"build: {time.perf_counter() - t0:.2f} s (device {device}, {torch.get_num_threads()} threads)")
    b = args.batch_size
    with torch.no_grad():
        for _ in range(3):  # warm up (plan construction, allocator)
            feature_dict(generator.sample_sparse(b))
        feats = _timed(lambda: generator.sample_sparse(b), args.iters, sync)
        batch = generator.sample_sparse(b)
        dict_times = _timed(lambda: feature_dict(batch), args.iters, sync)
        full = _timed(lambda: feature_dict(generator.sample_sparse(b)), args.iters, sync)
        dense = _timed(lambda: generator.sample(b), max(3, args.iters // 5), sync)

        counts = []
        for _ in range(max(1, args.l0_samples // b)):
            counts.append(generator.sample_sparse(b).row_counts().to(torch.float64))
        l0 = torch.cat(counts)

    def report(name: str, times: list[float]) -> None:
        med = statistics.median(times)
        print(f"{name:<38} median {med * 1e3:7.2f} ms  min {min(times) * 1e3:7.2f} ms  -> {b / med:10.0f} samples/s")

    report("features (sample_sparse)", feats)
    report("dictionary product (embedding_bag)", dict_times)
    report("hidden = dict(sample_sparse) [total]", full)
    report("dense features (sample)", dense)
    sem = l0.std().item() / l0.numel() ** 0.5
    print(
        f"L0 over {l0.numel()} samples: {l0.mean().item():.2f} +- {sem:.2f} (sd {l0.std().item():.1f}, "
        f"min {int(l0.min())}, max {int(l0.max())}); reference 34.45"
    )
    ours = statistics.median(full)
    print(f"vs the reference's anchor (~740 samples/s, idle machine): {b / ours / 740:.0f}x")
    if args.calibrate:
        dense = _dense_passes(generator, feature_dict, b, sync)
        slowdown = dense / (REF_FIRING_S + REF_PRODUCT_S)
        print(
            f"dense reference-style passes here: {dense:.2f} s (anchor {REF_FIRING_S + REF_PRODUCT_S:.2f} s) -> "
            f"machine x{slowdown:.2f}; estimated side-by-side speed-up {REF_SAMPLE_S * slowdown / ours:.0f}x"
        )


# the reference on this machine type (anchor measurements): model.sample(1024) and two of its parts
REF_SAMPLE_S, REF_FIRING_S, REF_PRODUCT_S = 1.38, 0.48, 0.41


def _dense_passes(generator: ActivationGenerator, feature_dict: FeatureDictionary, b: int, sync) -> float:  # type: ignore[no-untyped-def]
    """Median time of the reference's dense firing pass plus its dense dictionary product."""
    factor, diag = generator.correlation_matrix  # type: ignore[misc]
    probs, mean, std = generator.firing_probabilities, generator.mean_firing_magnitudes, generator.std_firing_magnitudes
    thresholds = torch.sqrt(torch.tensor(2.0)) * torch.erfinv(1 - 2 * probs)
    vectors = feature_dict.feature_vectors.detach()

    def once() -> None:
        eps = torch.randn(b, factor.shape[1], device=probs.device)
        fired = eps @ factor.T + torch.randn(b, probs.numel(), device=probs.device) * diag.sqrt() > thresholds
        acts = torch.where(fired, torch.relu(mean + std * torch.randn_like(mean.expand(b, -1))), 0.0)
        _ = acts @ vectors

    return statistics.median(_timed(once, 3, sync))


if __name__ == "__main__":
    main()
