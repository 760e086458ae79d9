"""SAE architectures, one per module, behind a name registry (see :mod:`synthsae.saes.registry`).

Layout: ``config`` (configs and validation), ``sae`` (inference base), ``training_sae``
(training base), ``steps`` (TrainStepInput/Output, TrainCoefficientConfig), ``architectures`` (the one table of
built-in architectures), ``base``
(re-exports of those), ``io``/``loading`` (files), ``sparse_acts``/``sparse_grad`` (the
TopK family's sparse kernels) and one module per architecture. Names are exported lazily.
"""

from synthsae._lazy import lazy_exports
from synthsae.saes.architectures import class_exports

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
    "BUILTIN_ARCHITECTURES": "architectures",
    **class_exports(),  # every architecture's classes, from the one table
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
