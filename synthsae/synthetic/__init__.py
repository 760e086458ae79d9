"""The ground-truth world: feature dictionaries, firing processes, hierarchies,
correlations and synthetic models.

This is the public namespace of the reference's ``sae_lens.synthetic``: besides the data
world defined here, it re-exports the evaluation (:mod:`synthsae.evals`) and run
(:mod:`synthsae.runs`) names that lived in the same module in the reference, so user code
keeps one import path. The code of those stages lives in its own packages.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    "sparse_batch": ("SparseBatch",),
    "registry": ("Registry",),
    "firing_probabilities": (
        "FiringProbabilityConfig", "ZipfianFiringProbabilityConfig", "LinearFiringProbabilityConfig",
        "RandomFiringProbabilityConfig", "ConstantFiringProbabilityConfig", "zipfian_firing_probabilities",
        "linear_firing_probabilities", "random_firing_probabilities", "register_firing_probability",
        "get_firing_probability_class", "FIRING_PROB_REGISTRY",
    ),
    "magnitudes": (
        "MagnitudeConfig", "ConstantMagnitudeConfig", "LinearMagnitudeConfig", "ExponentialMagnitudeConfig",
        "FoldedNormalMagnitudeConfig", "generate_magnitudes", "register_magnitude", "get_magnitude_class",
        "MAGNITUDE_REGISTRY",
    ),
    "correlation": (
        "LowRankCorrelationMatrix", "CorrelationMatrixInput", "create_correlation_matrix_from_correlations",
        "generate_random_correlations", "generate_random_correlation_matrix",
        "generate_random_low_rank_correlation_matrix",
    ),
    "stats": ("CorrelationMatrixStats", "SuperpositionStats", "compute_correlation_matrix_stats",
              "compute_low_rank_correlation_matrix_stats", "compute_superposition_stats"),
    "feature_dictionary": ("FeatureDictionary", "FeatureDictionaryInitializer"),
    "orthogonalize": ("orthogonal_initializer", "orthogonalize_embeddings"),
    "activation_generator": ("ActivationGenerator", "ActivationsModifier", "ActivationsModifierInput"),
    "hierarchy.node": ("HierarchyNode",),
    "hierarchy.modifier": ("hierarchy_modifier", "HierarchyModifier"),
    "hierarchy.config": ("HierarchyConfig",),
    "hierarchy.hierarchy": ("Hierarchy",),
    "hierarchy.generate": ("generate_hierarchy",),
    "synthetic_model": ("SyntheticModel",),
    "model_config": ("SyntheticModelConfig", "OrthogonalizationConfig", "LowRankCorrelationConfig",
                     "SYNTHETIC_MODEL_CONFIG_FILENAME", "SYNTHETIC_MODEL_WEIGHTS_FILENAME",
                     "SYNTHETIC_MODEL_HIERARCHY_FILENAME"),
    "hub": ("upload_synthetic_model_to_huggingface", "download_synthetic_model"),
    "presets": ("presets",),
}

# the evaluation and run names the reference's ``sae_lens.synthetic`` also exports
_REEXPORTED_PACKAGES = ("synthsae.evals", "synthsae.runs")

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, reexport=_REEXPORTED_PACKAGES)
