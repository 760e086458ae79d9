"""The published SynthSAEBench-16k results, as data, with their source.

The SAELens documentation page "SynthSAEBench" reports, for SAEs of width 4096 trained on
SynthSAEBench-16k (200M samples, batch 1024, lr 3e-4; 5 seeds), the mean and standard
deviation of four metrics at L0 = 25 and L0 = 20. ``synthsae bench`` prints these
numbers beside its own when it runs on the ``synth_sae_bench_16k`` preset, so a run can
be checked against the table at a glance.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PUBLISHED", "PUBLISHED_MODEL", "PUBLISHED_SOURCE", "published_row"]

PUBLISHED_SOURCE = (
    "SAELens docs, SynthSAEBench, 'Raw results for SynthSAEBench-16k at selected L0s': "
    "https://github.com/decoderesearch/SAELens/blob/main/docs/synth_sae_bench.md "
    "(paper: https://arxiv.org/abs/2602.14687)"
)
PUBLISHED_MODEL = "synth_sae_bench_16k"
"""The preset the published numbers were measured on (width 4096)."""

# (architecture, L0) -> metric -> (mean, standard deviation over 5 seeds)
PUBLISHED: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    ("batchtopk", 25): {"f1": (0.7316, 0.0010), "mcc": (0.7574, 0.0003),
                        "uniqueness": (0.9837, 0.0015), "explained_variance": (0.7923, 0.0003)},
    ("matryoshka_batchtopk", 25): {"f1": (0.8793, 0.0021), "mcc": (0.7927, 0.0006),
                                   "uniqueness": (0.9987, 0.0005), "explained_variance": (0.7792, 0.0004)},
    ("matching_pursuit", 25): {"f1": (0.4464, 0.0044), "mcc": (0.6930, 0.0030),
                               "uniqueness": (0.8281, 0.0069), "explained_variance": (0.8351, 0.0003)},
    ("standard", 25): {"f1": (0.5562, 0.0020), "mcc": (0.6039, 0.0012),
                       "uniqueness": (0.8976, 0.0021), "explained_variance": (0.7654, 0.0001)},
    ("jumprelu", 25): {"f1": (0.7317, 0.0034), "mcc": (0.7527, 0.0009),
                       "uniqueness": (0.9885, 0.0010), "explained_variance": (0.7951, 0.0004)},
    ("batchtopk", 20): {"f1": (0.8183, 0.0011), "mcc": (0.7526, 0.0007),
                        "uniqueness": (0.9760, 0.0028), "explained_variance": (0.7889, 0.0002)},
    ("matryoshka_batchtopk", 20): {"f1": (0.8601, 0.0016), "mcc": (0.7455, 0.0021),
                                   "uniqueness": (0.9874, 0.0020), "explained_variance": (0.7699, 0.0002)},
    ("matching_pursuit", 20): {"f1": (0.4439, 0.0024), "mcc": (0.6748, 0.0028),
                               "uniqueness": (0.7552, 0.0026), "explained_variance": (0.8267, 0.0003)},
    ("standard", 20): {"f1": (0.5777, 0.0012), "mcc": (0.5834, 0.0015),
                       "uniqueness": (0.8528, 0.0055), "explained_variance": (0.7501, 0.0009)},
    ("jumprelu", 20): {"f1": (0.8241, 0.0041), "mcc": (0.7434, 0.0015),
                       "uniqueness": (0.9781, 0.0029), "explained_variance": (0.7906, 0.0005)},
}


def published_row(architecture: str, target_l0: int) -> dict[str, Any] | None:
    """``{metric: {"mean": m, "sd": s}}`` published for this architecture at this L0, or ``None``."""
    row = PUBLISHED.get((architecture, int(target_l0)))
    if row is None:
        return None
    return {metric: {"mean": mean, "sd": sd} for metric, (mean, sd) in row.items()}
