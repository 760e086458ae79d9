"""The pictures and tables of the synthetic-world guide, drawn from the library's own code.

``python -m docsgen.figures OUTDIR`` writes one PNG per figure and one Markdown snippet
per generated table (the guide includes a snippet with a ``<!-- generated: NAME -->``
line). Every number comes from synthsae's functions run at build time, at sizes that take
a few seconds on a CPU; the seeds are fixed, so the pictures only change with the code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from synthsae.synthetic import (  # noqa: E402
    ActivationGenerator,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
    HierarchyConfig,
    HierarchyNode,
    LinearMagnitudeConfig,
    SyntheticModel,
    compute_superposition_stats,
    generate_hierarchy,
    generate_random_low_rank_correlation_matrix,
    hierarchy_modifier,
    linear_firing_probabilities,
    orthogonalize_embeddings,
    random_firing_probabilities,
    zipfian_firing_probabilities,
)
from synthsae.synthetic.presets import PRESETS  # noqa: E402

DPI = 90  # the site scales pictures to the page width; more pixels only cost bytes
SAMPLES = 50_000  # rows drawn for empirical rates: binomial s.e. <= 0.0023 per rate


def _save(fig: plt.Figure, outdir: Path, name: str) -> None:
    fig.savefig(outdir / f"{name}.png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def _fired(generator: ActivationGenerator, rows: int) -> torch.Tensor:
    """``[rows, F]`` float 0/1: which features fired in each sampled row."""
    return (generator.sample(rows) > 0).float()


# ------------------------------------------------------------------ firing probabilities
def firing_probabilities(outdir: Path) -> None:
    n = 1024
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for exponent in (0.5, 1.0, 2.0):
        probs = zipfian_firing_probabilities(n, exponent=exponent, max_prob=0.4, min_prob=5e-4)
        ax.plot(range(1, n + 1), probs, label=f"zipfian, exponent {exponent}")
    ax.plot(range(1, n + 1), linear_firing_probabilities(n, max_prob=0.4, min_prob=5e-4), label="linear", ls="--")
    random = random_firing_probabilities(n, max_prob=0.4, min_prob=5e-4, seed=0)
    ax.scatter(range(1, n + 1), random, s=2, color="grey", label="random (uniform)")
    ax.set(xscale="log", yscale="log", xlabel="feature index (1-based)", ylabel="firing probability",
           title=f"{n} features, max_prob 0.4, min_prob 5e-4")
    ax.legend(fontsize=8)
    _save(fig, outdir, "firing-probabilities")


# ------------------------------------------------------------------ magnitudes
def magnitudes(outdir: Path) -> None:
    n = 512
    recipes = {
        "LinearMagnitudeConfig(5, 4)": LinearMagnitudeConfig(start=5.0, end=4.0),
        "ExponentialMagnitudeConfig(0.5, 4)": ExponentialMagnitudeConfig(start=0.5, end=4.0),
        "FoldedNormalMagnitudeConfig(0.5, 0.5)": FoldedNormalMagnitudeConfig(mean=0.5, std=0.5),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for label, recipe in recipes.items():
        left.plot(recipe.generate(n, seed=0), label=label, lw=1)
    left.set(xlabel="feature index", ylabel="per-feature value", title="Magnitude recipes (512 features)")
    left.legend(fontsize=7)
    # one feature's activation values when mean = 4 and std = 1: a normal clipped at 0 by the final ReLU
    gen = ActivationGenerator(2, firing_probabilities=1.0, mean_firing_magnitudes=torch.tensor([4.0, 0.5]),
                              std_firing_magnitudes=torch.tensor([1.0, 0.5]), seed=0)
    acts = gen.sample(SAMPLES)
    right.hist(acts[:, 0].numpy(), bins=80, alpha=0.7, label="mean 4, std 1")
    right.hist(acts[:, 1].numpy(), bins=80, alpha=0.7, label="mean 0.5, std 0.5 (draws <= 0 become 0: inactive)")
    right.set(xlabel="activation of a firing feature", ylabel="count", title="Sampled magnitudes")
    right.legend(fontsize=7)
    _save(fig, outdir, "magnitudes")


# ------------------------------------------------------------------ hierarchy as a tree
def _tree_positions(roots: list[HierarchyNode]) -> dict[int, tuple[float, float]]:
    """x = order of the leaves (parents centred over their children), y = -depth."""
    pos: dict[int, tuple[float, float]] = {}
    next_x = [0.0]

    def place(node: HierarchyNode, depth: int) -> float:
        if not node.children:
            x = next_x[0]
            next_x[0] += 1.0
        else:
            xs = [place(child, depth + 1) for child in node.children]
            x = sum(xs) / len(xs)
        pos[node.feature_index] = (x, -depth)
        return x

    for root in roots:
        place(root, 0)
        next_x[0] += 0.6  # a gap between trees
    return pos


def hierarchy_tree(outdir: Path) -> None:
    config = HierarchyConfig(total_root_nodes=2, branching_factor=3, max_depth=2, mutually_exclusive_portion=0.5)
    hierarchy = generate_hierarchy(26, config, seed=1)
    probs = torch.full((26,), 0.3)
    gen = ActivationGenerator(26, probs, modify_activations=hierarchy.modifier, seed=0)
    rates = _fired(gen, SAMPLES).mean(0)
    pos = _tree_positions(hierarchy.roots)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for root in hierarchy.roots:
        for node in root.iter_nodes():
            for child in node.children:
                (x0, y0), (x1, y1) = pos[node.feature_index], pos[child.feature_index]
                style = dict(color="tab:red", ls="--") if node.mutually_exclusive_children else dict(color="grey")
                ax.plot([x0, x1], [y0, y1], lw=1.2, zorder=1, **style)
    xs, ys = zip(*(pos[i] for i in sorted(pos)))
    dots = ax.scatter(xs, ys, c=[float(rates[i]) for i in sorted(pos)], cmap="viridis", s=420, zorder=2,
                      vmin=0, vmax=0.3, edgecolors="black")
    for i, (x, y) in pos.items():
        ax.text(x, y, str(i), ha="center", va="center", fontsize=8, color="white", zorder=3)
    fig.colorbar(dots, ax=ax, label="empirical firing rate", fraction=0.03)
    ax.plot([], [], color="tab:red", ls="--", label="mutually exclusive children")
    ax.plot([], [], color="grey", label="independent children")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8, frameon=False)
    ax.set_title("generate_hierarchy(26, HierarchyConfig(2 roots, branching 3, depth 2, ME portion 0.5)); "
                 "every feature configured at p = 0.3", fontsize=9)
    ax.axis("off")
    _save(fig, outdir, "hierarchy-tree")


# ------------------------------------------------------------------ co-firing
def _phi(fired: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the 0/1 firing indicators (the phi coefficient)."""
    return torch.corrcoef(fired.T).nan_to_num(0.0)


def co_firing(outdir: Path) -> None:
    n = 24
    probs = torch.full((n,), 0.2)
    low_rank = generate_random_low_rank_correlation_matrix(n, rank=2, correlation_scale=0.6, seed=0)
    roots = [HierarchyNode(0, [HierarchyNode(i) for i in range(1, 5)], mutually_exclusive_children=True),
             HierarchyNode(5, [HierarchyNode(i) for i in range(6, 9)]),
             HierarchyNode(9, [HierarchyNode(10, [HierarchyNode(11), HierarchyNode(12)])])]
    worlds = {
        "independent": ActivationGenerator(n, probs, seed=0),
        "low-rank correlation (rank 2, scale 0.6)": ActivationGenerator(n, probs, correlation_matrix=low_rank, seed=0),
        "hierarchy: 0 > ME{1..4}, 5 > {6..8}, 9 > 10 > {11, 12}": ActivationGenerator(
            n, probs, modify_activations=hierarchy_modifier(roots), seed=0),
    }
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (title, gen) in zip(axes, worlds.items()):
        phi = _phi(_fired(gen, SAMPLES))
        phi.fill_diagonal_(float("nan"))
        image = ax.imshow(phi.numpy(), cmap="RdBu_r", vmin=-0.6, vmax=0.6)
        ax.set_title(title, fontsize=8)
        ax.set(xlabel="feature", ylabel="feature")
    fig.colorbar(image, ax=axes, fraction=0.02, label="co-firing correlation (phi)")
    _save(fig, outdir, "co-firing")


# ------------------------------------------------------------------ superposition and orthogonalisation
def _pairwise_abs_cos(vectors: torch.Tensor) -> torch.Tensor:
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    cos = (unit @ unit.T).abs()
    upper = torch.triu(torch.ones_like(cos, dtype=torch.bool), diagonal=1)
    return cos[upper]


def cosine_overlap(outdir: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    generator = torch.Generator().manual_seed(0)
    for ax, num_features in zip(axes, (64, 128, 512)):
        raw = torch.randn(num_features, 64, generator=generator)
        variants = {"random": raw, "orthogonalised (100 steps, lr 0.01)": orthogonalize_embeddings(raw, 100, 0.01)}
        for label, vectors in variants.items():
            stats = compute_superposition_stats(vectors)
            ax.hist(_pairwise_abs_cos(vectors).numpy(), bins=60, range=(0, 0.6), histtype="step", lw=1.4,
                    label=f"{label}: mean max |cos| {stats.mean_max_abs_cos_sim:.3f}")
        ax.axvline(1 / 64**0.5, color="black", lw=0.8, ls=":")
        ax.set(yscale="log", xlabel="|cos| between two feature directions",
               title=f"{num_features} features in 64 dims ({num_features / 64:g}x)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    axes[0].set_ylabel("pairs (dotted line: 1/sqrt(64))")
    _save(fig, outdir, "cosine-overlap")


# ------------------------------------------------------------------ the presets, measured
def presets_table(outdir: Path) -> None:
    rows = ["| preset | features x dims | true L0 (measured) | mean max \\|cos\\| | hierarchy nodes | build s |",
            "|:--|--:|--:|--:|--:|--:|"]
    for name in ("cpu_small", "cpu_medium"):
        started = time.perf_counter()
        model = SyntheticModel(PRESETS[name]()).set_sampling_seed(0)
        built = time.perf_counter() - started
        sparse = model.sample_sparse_features(20_000)
        true_l0 = sparse.nnz / sparse.batch_size
        overlap = compute_superposition_stats(model.feature_dict).mean_max_abs_cos_sim
        nodes = len(model.hierarchy.feature_indices_used) if model.hierarchy is not None else 0
        rows.append(f"| `{name}` | {model.num_features:,} x {model.hidden_dim} | {true_l0:.2f} | "
                    f"{overlap:.3f} | {nodes:,} | {built:.1f} |")
    rows.append("| `synth_sae_bench_16k` | 16,384 x 768 | about 34.4 | (not built here) | 10,880 | "
                "about 36 on 2 CPU threads |")
    rows += ["", f"Measured while building these docs (20,000 samples, sampling seed 0, torch "
             f"{torch.__version__}); the 16k row is quoted from its docstring and "
             "[Performance](../performance.md), as building it takes too long for a docs build."]
    (outdir / "presets-table.md").write_text("\n".join(rows) + "\n", encoding="utf-8")


FIGURES = (firing_probabilities, magnitudes, hierarchy_tree, co_firing, cosine_overlap, presets_table)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m docsgen.figures OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    outdir.mkdir(parents=True, exist_ok=True)
    for draw in FIGURES:
        started = time.perf_counter()
        draw(outdir)
        print(f"{draw.__name__}: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
