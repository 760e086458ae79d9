"""Benchmark leaderboards: many SAE architectures at several L0s, trained on one shared stream.

``run_benchmark(BenchmarkConfig(...))`` trains every (architecture, L0 target) SAE with one
Trainer over one synthetic data stream, evaluates each against the true features and
writes a leaderboard (Markdown, CSV, JSON) and plots of each metric against the achieved
L0. The command line is ``synthsae bench``.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    "BenchmarkConfig": "config",
    "BenchmarkResult": "run",
    "run_benchmark": "run",
    "load_benchmark_model": "run",
    "build_sweep": "sweep",
    "SweepRun": "sweep",
    "estimate_data_scale": "sweep",
    "sparsity_setting": "sweep",
    "rank_rows": "leaderboard",
    "format_markdown": "leaderboard",
    "plot_leaderboard": "plots",
    "plot_metric_vs_l0": "plots",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
