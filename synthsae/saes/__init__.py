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
    "sae": ("SAE",),
    "training_sae": ("TrainingSAE",),
    "config": ("SAEConfig", "TrainingSAEConfig"),
    "steps": ("TrainStepInput", "TrainStepOutput", "TrainCoefficientConfig"),
    "registry": ("SAEArchitecture", "register_sae_architecture", "get_sae_architecture", "list_sae_architectures"),
    "architectures": ("BUILTIN_ARCHITECTURES",),
    **class_exports(),  # every architecture's classes, from the one table
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = __dir__()
