"""What each knob of the synthetic world does to SAE training, measured at docs-build time.

``python -m docsgen.knob_effects OUTDIR`` writes ``knob-effects.md``: one small world per
knob (64 features, one thing changed from an easy baseline), a BatchTopK SAE with one
latent per feature and ``k`` = the world's true L0 trained on each, and its metrics, the
mean over two seeds. The runs are short (300,000 samples), so the table shows the
direction and rough size of each effect, not converged values.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from synthsae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from synthsae.synthetic import (
    ActivationGenerator,
    ExponentialMagnitudeConfig,
    FeatureDictionary,
    HierarchyNode,
    eval_sae_on_synthetic_data,
    generate_random_low_rank_correlation_matrix,
    hierarchy_modifier,
    orthogonal_initializer,
    train_toy_sae,
    zipfian_firing_probabilities,
)

F = 64  # features (and SAE latents) in every world
SEEDS = (0, 1)
TRAINING_SAMPLES = 300_000
EVAL_SAMPLES = 20_000


@dataclass
class World:
    """Keyword arguments of the dictionary and the generator of one variant."""

    hidden_dim: int = 64
    initializer: Callable | None = None
    probs: torch.Tensor | None = None
    mean: torch.Tensor | float = 1.0
    std: float = 0.0
    correlation: object = None
    modifier: object = None


def _baseline(seed: int) -> World:
    return World(initializer=orthogonal_initializer(), probs=torch.full((F,), 4 / F))


def _superposition(seed: int) -> World:
    return World(hidden_dim=24, probs=torch.full((F,), 4 / F))


def _superposition_orthogonalised(seed: int) -> World:
    return World(hidden_dim=24, initializer=orthogonal_initializer(num_steps=200, lr=0.01), probs=torch.full((F,), 4 / F))


def _zipf(seed: int) -> World:
    probs = zipfian_firing_probabilities(F, exponent=1.0, max_prob=0.5, min_prob=0.01)
    return World(initializer=orthogonal_initializer(), probs=probs)


def _magnitudes(seed: int) -> World:
    mean = ExponentialMagnitudeConfig(start=0.2, end=3.0).generate(F, seed=seed)
    return World(initializer=orthogonal_initializer(), probs=torch.full((F,), 4 / F), mean=mean, std=0.3)


def _correlation(seed: int) -> World:
    corr = generate_random_low_rank_correlation_matrix(F, rank=4, correlation_scale=0.5, seed=seed)
    return World(initializer=orthogonal_initializer(), probs=torch.full((F,), 4 / F), correlation=corr)


def _hierarchy(seed: int) -> World:
    # 8 parents (features 0, 8, 16, ...) with 7 mutually exclusive children each
    roots = [HierarchyNode(r, [HierarchyNode(r + c) for c in range(1, 8)], mutually_exclusive_children=True)
             for r in range(0, F, 8)]
    return World(initializer=orthogonal_initializer(), probs=torch.full((F,), 0.5), modifier=hierarchy_modifier(roots))


VARIANTS: tuple[tuple[str, str, Callable[[int], World]], ...] = (
    ("baseline", "64 orthogonal features in 64 dims, p = 1/16 each, magnitude 1", _baseline),
    ("superposition", "the same features in 24 dims, random directions", _superposition),
    ("+ orthogonalised", "24 dims, 200 orthogonalisation steps", _superposition_orthogonalised),
    ("Zipfian rates", "p from 0.5 down to 0.01 (exponent 1)", _zipf),
    ("varied magnitudes", "mean magnitude 0.2 to 3 (exponential), std 0.3", _magnitudes),
    ("correlated firing", "low-rank correlation, rank 4, scale 0.5", _correlation),
    ("hierarchy", "8 parents with 7 mutually exclusive children each, p = 0.5", _hierarchy),
)
COLUMNS = ("true_l0", "mcc", "f1", "uniqueness", "explained_variance", "dead_latents")


def measure(world_fn: Callable[[int], World], seed: int) -> dict[str, float]:
    """Train one SAE on one world and return its metrics."""
    torch.manual_seed(seed)
    w = world_fn(seed)
    feature_dict = FeatureDictionary(F, w.hidden_dim, initializer=w.initializer, seed=seed)
    generator = ActivationGenerator(F, w.probs, mean_firing_magnitudes=w.mean, std_firing_magnitudes=w.std,
                                    correlation_matrix=w.correlation, modify_activations=w.modifier, seed=seed)
    true_l0 = float((generator.sample(EVAL_SAMPLES) > 0).sum(1).float().mean())
    sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=w.hidden_dim, d_sae=F, k=max(1, round(true_l0))))
    train_toy_sae(sae, feature_dict, generator, training_samples=TRAINING_SAMPLES, lr=3e-3, show_progress=False)
    r = eval_sae_on_synthetic_data(sae, feature_dict, generator, num_samples=EVAL_SAMPLES)
    return {"true_l0": true_l0, "mcc": r.mcc, "f1": r.classification.f1_score, "uniqueness": r.uniqueness,
            "explained_variance": r.explained_variance, "dead_latents": float(r.dead_latents)}


def table() -> str:
    rows = ["| world | what changes | true L0 | MCC | F1 | uniqueness | expl. var. | dead latents |",
            "|:--|:--|--:|--:|--:|--:|--:|--:|"]
    for name, description, world_fn in VARIANTS:
        runs = [measure(world_fn, seed) for seed in SEEDS]
        mean = {c: sum(r[c] for r in runs) / len(runs) for c in COLUMNS}
        rows.append(f"| {name} | {description} | {mean['true_l0']:.1f} | {mean['mcc']:.2f} | {mean['f1']:.2f} | "
                    f"{mean['uniqueness']:.2f} | {mean['explained_variance']:.2f} | {mean['dead_latents']:.0f} / {F} |")
    rows += ["", f"BatchTopK, {F} latents, k = the world's true L0 (rounded), {TRAINING_SAMPLES:,} training "
             f"samples at lr 3e-3 with `train_toy_sae`, metrics on {EVAL_SAMPLES:,} fresh samples; mean of "
             f"seeds {', '.join(map(str, SEEDS))}. Measured while building these docs "
             f"(`docsgen/knob_effects.py`, torch {torch.__version__})."]
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m docsgen.knob_effects OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    (outdir / "knob-effects.md").write_text(table(), encoding="utf-8")
    print(f"knob effects: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
