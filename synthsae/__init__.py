"""synthsae: sparse autoencoders trained and evaluated on synthetic data with known features.

The SAE training classes and configs live at the top level (as in SAELens);
everything about the synthetic ground truth lives in :mod:`synthsae.synthetic`.
"""

from synthsae._lazy import lazy_exports
from synthsae._version import __version__
from synthsae.saes.architectures import class_exports

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
    # architectures: training + inference classes and configs, from the one table
    **class_exports("saes."),
    # training / logging
    "LoggingConfig": "training.logging",
}

__all__ = sorted(_EXPORTS) + ["__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
