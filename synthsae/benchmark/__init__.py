"""Benchmark leaderboards: many SAE architectures at several L0s, trained on one shared stream.

``run_benchmark(BenchmarkConfig(...))`` trains every (architecture, L0 target) SAE with one
Trainer over one synthetic data stream, evaluates each against the true features and
writes a leaderboard (Markdown, CSV, JSON) and plots of each metric against the achieved
L0. The command line is ``synthsae bench``.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    "config": ("BenchmarkConfig",),
    "run": ("BenchmarkResult", "run_benchmark", "load_benchmark_model"),
    "sweep": ("build_sweep", "SweepRun", "estimate_data_scale", "sparsity_setting"),
    "leaderboard": ("rank_rows", "format_markdown"),
    "plots": ("plot_leaderboard", "plot_metric_vs_l0"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = __dir__()
