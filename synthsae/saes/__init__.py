"""SAE architectures, one per module, behind a name registry (see :mod:`synthsae.saes.registry`).

Layout: ``config`` (configs and validation), ``sae`` (inference base), ``training_sae``
(training base), ``steps`` (TrainStepInput/Output, TrainCoefficientConfig), ``base``
(re-exports of those), ``io``/``loading`` (files), ``sparse_acts``/``sparse_grad`` (the
TopK family's sparse kernels) and one module per architecture. Names are exported lazily.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    "SAE": "sae",
    "SAEConfig": "config",
    "TrainingSAE": "training_sae",
    "TrainingSAEConfig": "config",
    "TrainStepInput": "steps",
    "TrainStepOutput": "steps",
    "TrainCoefficientConfig": "steps",
    "SAEArchitecture": "registry",
    "register_sae_architecture": "registry",
    "get_sae_architecture": "registry",
    "list_sae_architectures": "registry",
    "StandardSAE": "standard",
    "StandardSAEConfig": "standard",
    "StandardTrainingSAE": "standard",
    "StandardTrainingSAEConfig": "standard",
    "TopKSAE": "topk",
    "TopKSAEConfig": "topk",
    "TopKTrainingSAE": "topk",
    "TopKTrainingSAEConfig": "topk",
    "BatchTopKTrainingSAE": "batchtopk",
    "BatchTopKTrainingSAEConfig": "batchtopk",
    "MatryoshkaBatchTopKTrainingSAE": "matryoshka",
    "MatryoshkaBatchTopKTrainingSAEConfig": "matryoshka",
    "JumpReLUSAE": "jumprelu",
    "JumpReLUSAEConfig": "jumprelu",
    "JumpReLUTrainingSAE": "jumprelu",
    "JumpReLUTrainingSAEConfig": "jumprelu",
    "GatedSAE": "gated",
    "GatedSAEConfig": "gated",
    "GatedTrainingSAE": "gated",
    "GatedTrainingSAEConfig": "gated",
    "MatchingPursuitSAE": "matching_pursuit",
    "MatchingPursuitSAEConfig": "matching_pursuit",
    "MatchingPursuitTrainingSAE": "matching_pursuit",
    "MatchingPursuitTrainingSAEConfig": "matching_pursuit",
    "AbsTopKSAE": "abstopk",
    "AbsTopKSAEConfig": "abstopk",
    "AbsTopKTrainingSAE": "abstopk",
    "AbsTopKTrainingSAEConfig": "abstopk",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
