"""synthsae: sparse autoencoders trained and evaluated on synthetic data with known features.

The SAE training classes and configs live at the top level (as in SAELens);
everything about the synthetic ground truth lives in :mod:`synthsae.synthetic`.
"""

from synthsae._lazy import lazy_exports
from synthsae._version import __version__
from synthsae.saes.architectures import class_exports

_EXPORTS = {
    # base classes
    "saes.base": ("SAE", "SAEConfig", "TrainingSAE", "TrainingSAEConfig", "TrainStepInput", "TrainStepOutput",
                  "TrainCoefficientConfig"),
    "saes.registry": ("register_sae_architecture", "get_sae_architecture", "list_sae_architectures"),
    # architectures: training + inference classes and configs, from the one table
    **class_exports("saes."),
    "training.logging": ("LoggingConfig",),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*__dir__(), "__version__"]
