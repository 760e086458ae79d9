"""The ground-truth world: feature dictionaries, firing processes, hierarchies,
correlations, synthetic models, and SAE evaluation against the true features."""

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
    "mean_correlation_coefficient": "metrics",
    "feature_uniqueness": "metrics",
    "ClassificationMetrics": "metrics",
    "ClassificationMetricsCalculator": "metrics",
    "compute_classification_metrics": "metrics",
    "L0Calculator": "metrics",
    "DeadLatentsCalculator": "metrics",
    "ShrinkageCalculator": "metrics",
    "ExplainedVarianceCalculator": "metrics",
    "SyntheticDataEvalResult": "evals",
    "eval_sae_on_synthetic_data": "evals",
    "FeatureAbsorptionResult": "absorption",
    "compute_feature_absorption": "absorption",
    # plots
    "find_best_feature_ordering": "plotting",
    "find_best_feature_ordering_from_sae": "plotting",
    "find_best_feature_ordering_across_saes": "plotting",
    "plot_sae_feature_similarity": "plotting",
    # training helpers
    "SyntheticActivationIterator": "training",
    "train_toy_sae": "training",
    "init_sae_to_match_feature_dict": "initialization",
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
    "SyntheticSAERunner": "runner",
    "SyntheticSAERunnerConfig": "runner_config",
    "SyntheticSAERunnerResult": "runner",
    "RUNNER_CONFIG_FILENAME": "runner_config",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
