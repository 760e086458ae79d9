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
    "config": ("BenchmarkConfig",),
    "run": ("BenchmarkResult", "run_benchmark", "load_benchmark_model"),
    "sweep": ("build_runs", "plan_runs", "RunSpec", "SweepRun", "estimate_data_scale", "sparsity_setting"),
    "leaderboard": ("aggregate", "format_markdown"),
    "recipes": ("RECIPES", "Recipe", "get_recipe"),
    "published": ("PUBLISHED", "PUBLISHED_SOURCE"),
    "plots": ("plot_leaderboard", "plot_metric_vs_l0"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = __dir__()
