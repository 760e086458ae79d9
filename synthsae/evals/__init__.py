"""Measuring an SAE against the true features of a synthetic world.

Stage of the data flow: takes an SAE (:mod:`synthsae.saes`) and the ground truth
(:mod:`synthsae.synthetic`) and returns metrics and plots. ``feature_matching`` builds the one
|cos| matrix per eval (MCC, uniqueness, best matches); ``classification`` scores each latent as
a detector of its best-matching feature; ``metrics`` holds the streaming calculators;
``eval_sae`` is :func:`eval_sae_on_synthetic_data`; ``absorption`` measures feature absorption
on hierarchies; ``plotting`` draws similarity heatmaps; ``initialization`` sets an SAE to the
true dictionary. The public names are also exported from :mod:`synthsae.synthetic`, the
reference's import path.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    "metrics": ("mean_correlation_coefficient", "feature_uniqueness", "ClassificationMetrics",
                "ClassificationMetricsCalculator", "compute_classification_metrics", "L0Calculator",
                "DeadLatentsCalculator", "ShrinkageCalculator", "ExplainedVarianceCalculator"),
    "eval_sae": ("SyntheticDataEvalResult", "eval_sae_on_synthetic_data"),
    "absorption": ("FeatureAbsorptionResult", "compute_feature_absorption"),
    "plotting": ("find_best_feature_ordering", "find_best_feature_ordering_from_sae",
                 "find_best_feature_ordering_across_saes", "plot_sae_feature_similarity"),
    "initialization": ("init_sae_to_match_feature_dict",),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = __dir__()
