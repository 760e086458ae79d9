# %% [markdown]
# # Comparing architectures at matched L0, with seeds
#
# "Architecture A gets a higher MCC than architecture B" means little on its own. Two things
# decide most such comparisons before the architecture does:
#
# * **sparsity**: an SAE allowed more active latents reconstructs better and matches
#   features differently, so SAEs must be compared at the same L0 (mean active latents per
#   sample), or along their whole metric-versus-L0 curve;
# * **luck**: the initialisation and the data stream move every metric; a difference
#   smaller than the spread between seeds is not a difference.
#
# This tutorial compares TopK, BatchTopK and standard (L1) SAEs on the `cpu_small` world at two sparsity targets and three seeds, with `run_benchmark`, the Python
# side of `synthsae bench`. Each call trains all its SAEs on **one** stream of batches, so
# the data is generated once per seed. It runs in about a minute on a CPU.

# %%
import matplotlib.pyplot as plt
import torch

from synthsae.benchmark import BenchmarkConfig, run_benchmark

ARCHITECTURES = ["topk", "batchtopk", "standard"]
L0_TARGETS = [6, 12]
SEEDS = [0, 1, 2]

# %% [markdown]
# ## One sweep per seed
#
# A `BenchmarkConfig` names the world (`preset`), the architectures, the L0 targets and the
# budget. TopK SAEs get `k` = the target, so their L0 is the target by construction;
# BatchTopK keeps `k` per row *on average over a batch* during training, and its saved form
# (a JumpReLU with the learned threshold) lands near `k`. Standard SAEs have no `k`: their
# sparsity comes from an L1 coefficient, which the benchmark sets from a rule scaled by the
# data's norm, so they land *near* the target, not on it. The `seed` drives the SAE initialisation, the training batches and
# the evaluation samples.

# %%
rows = []
for seed in SEEDS:
    config = BenchmarkConfig(preset="cpu_small", architectures=ARCHITECTURES, l0_targets=L0_TARGETS, d_sae=128,
                             training_samples=150_000, eval_samples=10_000, seed=seed, show_progress=False,
                             plots=False, output_dir=None)
    result = run_benchmark(config)
    rows += [dict(row, seed=seed) for row in result.rows]
    print(f"seed {seed}: {len(result.rows)} SAEs trained on {result.data_batches} shared batches "
          f"in {result.timing['total_seconds']:.0f} s")

# %% [markdown]
# ## Mean and spread over seeds
#
# For each architecture and target: the achieved L0, MCC and F1, as mean ± standard
# deviation over the three seeds.

# %%
def mean_sd(values):
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


summary = {}
print(f"{'architecture':12s} target   achieved L0        MCC              F1")
for arch in ARCHITECTURES:
    for target in L0_TARGETS:
        runs = [r for r in rows if r["architecture"] == arch and r["target_l0"] == target]
        stats = {key: mean_sd([r[key] for r in runs]) for key in ("l0", "mcc", "f1")}
        summary[arch, target] = stats
        print(f"{arch:12s} {target:6d}   {stats['l0'][0]:5.1f} ± {stats['l0'][1]:4.1f}   "
              f"{stats['mcc'][0]:.3f} ± {stats['mcc'][1]:.3f}   {stats['f1'][0]:.3f} ± {stats['f1'][1]:.3f}")

# %% [markdown]
# Two things to read off the table before ranking anything:
#
# * the **achieved L0** of BatchTopK and standard SAEs differs from the target (and from
#   each other), so their row at "target 6" is not at L0 6;
# * the **± column**: a gap between two architectures smaller than about two standard
#   deviations (of three seeds) is not a finding.
#
# ## Compare along the L0 axis
#
# Plotting each metric against the *achieved* L0, with error bars in both directions,
# compares the architectures where they actually are: a curve above another at the same
# L0 is better at that sparsity, whatever targets produced the points.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, metric, label in ((axes[0], "mcc", "MCC"), (axes[1], "f1", "F1")):
    for arch in ARCHITECTURES:
        points = [summary[arch, t] for t in L0_TARGETS]
        ax.errorbar([p["l0"][0] for p in points], [p[metric][0] for p in points],
                    xerr=[p["l0"][1] for p in points], yerr=[p[metric][1] for p in points],
                    marker="o", capsize=3, label=arch)
    ax.set(xlabel="achieved L0 (mean over seeds)", ylabel=f"{label} (mean ± sd)")
axes[0].legend(fontsize=8)
fig.suptitle("cpu_small, 128 latents, 150k samples, 3 seeds")
fig

# %% [markdown]
# ## Which architecture is best here?
#
# A fair verdict compares at a common L0. Below, each architecture's MCC and F1 are
# interpolated (linearly in log L0, between its two points) at L0 values that all the
# curves cover.

# %%
def interpolate(arch, metric, l0):
    (x0, y0), (x1, y1) = sorted((summary[arch, t]["l0"][0], summary[arch, t][metric][0]) for t in L0_TARGETS)
    if not x0 <= l0 <= x1:
        return None
    w = (torch.log(torch.tensor(l0)) - torch.log(torch.tensor(x0))) / (torch.log(torch.tensor(x1 / x0)))
    return float(y0 + w * (y1 - y0))


low = max(min(summary[a, t]["l0"][0] for t in L0_TARGETS) for a in ARCHITECTURES)
high = min(max(summary[a, t]["l0"][0] for t in L0_TARGETS) for a in ARCHITECTURES)
common = [] if low > high else sorted({round(low, 1), round((low * high) ** 0.5, 1), round(high, 1)})
print(f"L0 range covered by every architecture: {low:.1f} to {high:.1f}" if common else "no L0 common to all")
for l0 in common:
    for metric in ("mcc", "f1"):
        values = {a: interpolate(a, metric, l0) for a in ARCHITECTURES}
        ranked = sorted(((v, a) for a, v in values.items() if v is not None), reverse=True)
        print(f"at L0 {l0:5.1f}, {metric:3s}: " + ", ".join(f"{a} {v:.3f}" for v, a in ranked))

# %% [markdown]
# ## Take-aways
#
# * Compare SAEs at matched L0: at the same achieved L0, or along metric-versus-L0 curves.
#   A leaderboard that ranks SAEs of different L0 against each other mostly ranks their
#   sparsity.
# * Run several seeds and report mean ± spread; here three seeds already show which gaps
#   are real.
# * Rankings depend on the metric: an SAE can lead on MCC (its directions) and trail on F1
#   (when its latents fire), or the reverse.
# * These are short runs on a small world: they rank the architectures at this budget. For
#   the benchmark-sized protocol (the SynthSAEBench-16k world, a published table to compare
#   with), see [Benchmarking](../guides/benchmarking.md) and `synthsae bench --help`.
