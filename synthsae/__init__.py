"""synthsae: sparse autoencoders trained and evaluated on synthetic data with known features.

The SAE training classes and configs live at the top level (as in SAELens);
everything about the synthetic ground truth lives in :mod:`synthsae.synthetic`.
"""

from synthsae._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # base classes
    "SAE": "saes.base",
    "SAEConfig": "saes.base",
    "TrainingSAE": "saes.base",
    "TrainingSAEConfig": "saes.base",
    "TrainStepInput": "saes.base",
    "TrainStepOutput": "saes.base",
    "TrainCoefficientConfig": "saes.base",
    # registry
    "register_sae_architecture": "saes.registry",
    "get_sae_architecture": "saes.registry",
    "list_sae_architectures": "saes.registry",
    # architectures: training + inference classes and configs
    "StandardSAE": "saes.standard",
    "StandardSAEConfig": "saes.standard",
    "StandardTrainingSAE": "saes.standard",
    "StandardTrainingSAEConfig": "saes.standard",
    "TopKSAE": "saes.topk",
    "TopKSAEConfig": "saes.topk",
    "TopKTrainingSAE": "saes.topk",
    "TopKTrainingSAEConfig": "saes.topk",
    "BatchTopKTrainingSAE": "saes.batchtopk",
    "BatchTopKTrainingSAEConfig": "saes.batchtopk",
    "MatryoshkaBatchTopKTrainingSAE": "saes.matryoshka",
    "MatryoshkaBatchTopKTrainingSAEConfig": "saes.matryoshka",
    "JumpReLUSAE": "saes.jumprelu",
    "JumpReLUSAEConfig": "saes.jumprelu",
    "JumpReLUTrainingSAE": "saes.jumprelu",
    "JumpReLUTrainingSAEConfig": "saes.jumprelu",
    "GatedSAE": "saes.gated",
    "GatedSAEConfig": "saes.gated",
    "GatedTrainingSAE": "saes.gated",
    "GatedTrainingSAEConfig": "saes.gated",
    "MatchingPursuitSAE": "saes.matching_pursuit",
    "MatchingPursuitSAEConfig": "saes.matching_pursuit",
    "MatchingPursuitTrainingSAE": "saes.matching_pursuit",
    "MatchingPursuitTrainingSAEConfig": "saes.matching_pursuit",
    "AbsTopKSAE": "saes.abstopk",
    "AbsTopKSAEConfig": "saes.abstopk",
    "AbsTopKTrainingSAE": "saes.abstopk",
    "AbsTopKTrainingSAEConfig": "saes.abstopk",
    # training / logging
    "LoggingConfig": "training.logging",
}

__all__ = sorted(_EXPORTS) + ["__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
