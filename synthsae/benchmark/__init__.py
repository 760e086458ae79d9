"""Benchmarks: SAE architectures at matched L0s, over seeds, on a synthetic model.

``run_benchmark(BenchmarkConfig(...))`` trains every (architecture, L0 target, seed) SAE
(one Trainer and one data stream per seed), steers coefficient-based SAEs to their target
L0, evaluates each against the true features and writes one table per L0 (mean ± sd over
seeds; the published numbers beside them on SynthSAEBench-16k) and Pareto plots. Recipes
(:mod:`synthsae.benchmark.recipes`) bundle published protocols. The command line is
``synthsae bench``.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    "BenchmarkConfig": "config",
    "BenchmarkResult": "run",
    "run_benchmark": "run",
    "load_benchmark_model": "run",
    "build_runs": "sweep",
    "plan_runs": "sweep",
    "RunSpec": "sweep",
    "SweepRun": "sweep",
    "estimate_data_scale": "sweep",
    "sparsity_setting": "sweep",
    "aggregate": "leaderboard",
    "format_markdown": "leaderboard",
    "RECIPES": "recipes",
    "Recipe": "recipes",
    "get_recipe": "recipes",
    "PUBLISHED": "published",
    "PUBLISHED_SOURCE": "published",
    "plot_leaderboard": "plots",
    "plot_metric_vs_l0": "plots",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
