"""The ground-truth world: feature dictionaries, firing processes, hierarchies,
correlations and synthetic models.

This is the public namespace of the reference's ``sae_lens.synthetic``: besides the data
world defined here, it re-exports the evaluation (:mod:`synthsae.evals`) and run
(:mod:`synthsae.runs`) names that lived in the same module in the reference, so user code
keeps one import path. The code of those stages lives in its own packages.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    # sparse activations
    "SparseBatch": "sparse_batch",
    # registries
    "Registry": "registry",
    # firing probabilities
    "FiringProbabilityConfig": "firing_probabilities",
    "ZipfianFiringProbabilityConfig": "firing_probabilities",
    "LinearFiringProbabilityConfig": "firing_probabilities",
    "RandomFiringProbabilityConfig": "firing_probabilities",
    "ConstantFiringProbabilityConfig": "firing_probabilities",
    "zipfian_firing_probabilities": "firing_probabilities",
    "linear_firing_probabilities": "firing_probabilities",
    "random_firing_probabilities": "firing_probabilities",
    "register_firing_probability": "firing_probabilities",
    "get_firing_probability_class": "firing_probabilities",
    "FIRING_PROB_REGISTRY": "firing_probabilities",
    # magnitudes
    "MagnitudeConfig": "magnitudes",
    "ConstantMagnitudeConfig": "magnitudes",
    "LinearMagnitudeConfig": "magnitudes",
    "ExponentialMagnitudeConfig": "magnitudes",
    "FoldedNormalMagnitudeConfig": "magnitudes",
    "generate_magnitudes": "magnitudes",
    "register_magnitude": "magnitudes",
    "get_magnitude_class": "magnitudes",
    "MAGNITUDE_REGISTRY": "magnitudes",
    # correlation
    "LowRankCorrelationMatrix": "correlation",
    "CorrelationMatrixInput": "correlation",
    "create_correlation_matrix_from_correlations": "correlation",
    "generate_random_correlations": "correlation",
    "generate_random_correlation_matrix": "correlation",
    "generate_random_low_rank_correlation_matrix": "correlation",
    # statistics
    "CorrelationMatrixStats": "stats",
    "SuperpositionStats": "stats",
    "compute_correlation_matrix_stats": "stats",
    "compute_low_rank_correlation_matrix_stats": "stats",
    "compute_superposition_stats": "stats",
    # feature dictionary
    "FeatureDictionary": "feature_dictionary",
    "FeatureDictionaryInitializer": "feature_dictionary",
    "orthogonal_initializer": "orthogonalize",
    "orthogonalize_embeddings": "orthogonalize",
    # activation generation
    "ActivationGenerator": "activation_generator",
    "ActivationsModifier": "activation_generator",
    "ActivationsModifierInput": "activation_generator",
    # hierarchy
    "HierarchyNode": "hierarchy.node",
    "hierarchy_modifier": "hierarchy.modifier",
    "HierarchyModifier": "hierarchy.modifier",
    "HierarchyConfig": "hierarchy.config",
    "Hierarchy": "hierarchy.hierarchy",
    "generate_hierarchy": "hierarchy.generate",
    # evaluation
    "mean_correlation_coefficient": "synthsae.evals.metrics",
    "cosine_similarities": "synthsae.evals.feature_matching",
    "feature_uniqueness": "synthsae.evals.metrics",
    "ClassificationMetrics": "synthsae.evals.metrics",
    "ClassificationMetricsCalculator": "synthsae.evals.metrics",
    "compute_classification_metrics": "synthsae.evals.metrics",
    "L0Calculator": "synthsae.evals.metrics",
    "DeadLatentsCalculator": "synthsae.evals.metrics",
    "ShrinkageCalculator": "synthsae.evals.metrics",
    "ExplainedVarianceCalculator": "synthsae.evals.metrics",
    "SyntheticDataEvalResult": "synthsae.evals.eval_sae",
    "eval_sae_on_synthetic_data": "synthsae.evals.eval_sae",
    "FeatureAbsorptionResult": "synthsae.evals.absorption",
    "compute_feature_absorption": "synthsae.evals.absorption",
    # plots
    "find_best_feature_ordering": "synthsae.evals.plotting",
    "find_best_feature_ordering_from_sae": "synthsae.evals.plotting",
    "find_best_feature_ordering_across_saes": "synthsae.evals.plotting",
    "plot_sae_feature_similarity": "synthsae.evals.plotting",
    # training helpers
    "SyntheticActivationIterator": "synthsae.runs.activation_iterator",
    "train_toy_sae": "synthsae.runs.toy_training",
    "init_sae_to_match_feature_dict": "synthsae.evals.initialization",
    # synthetic model
    "SyntheticModel": "synthetic_model",
    "SyntheticModelConfig": "model_config",
    "OrthogonalizationConfig": "model_config",
    "LowRankCorrelationConfig": "model_config",
    "SYNTHETIC_MODEL_CONFIG_FILENAME": "model_config",
    "SYNTHETIC_MODEL_WEIGHTS_FILENAME": "model_config",
    "SYNTHETIC_MODEL_HIERARCHY_FILENAME": "model_config",
    "upload_synthetic_model_to_huggingface": "hub",
    "presets": "presets",
    "download_synthetic_model": "hub",
    # runner
    "SyntheticSAERunner": "synthsae.runs.runner",
    "SyntheticSAERunnerConfig": "synthsae.runs.runner_config",
    "SyntheticSAERunnerResult": "synthsae.runs.runner",
    "RUNNER_CONFIG_FILENAME": "synthsae.runs.runner_config",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
