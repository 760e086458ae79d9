"""Public home of the SAE base classes and the training contract.

``SAEConfig``/``TrainingSAEConfig`` live in :mod:`synthsae.saes.config`, ``SAE`` in
:mod:`synthsae.saes.sae`, ``TrainingSAE`` in :mod:`synthsae.saes.training_sae` and the step
types in :mod:`synthsae.saes.steps`; import them from here.
"""

from synthsae.saes.config import SAEConfig, TrainingSAEConfig
from synthsae.saes.sae import SAE
from synthsae.saes.steps import TrainCoefficientConfig, TrainStepInput, TrainStepOutput
from synthsae.saes.training_sae import TrainingSAE

__all__ = [
    "SAE",
    "SAEConfig",
    "TrainCoefficientConfig",
    "TrainStepInput",
    "TrainStepOutput",
    "TrainingSAE",
    "TrainingSAEConfig",
]
