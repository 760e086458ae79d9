"""Running training on synthetic data: the batch stream, ``train_toy_sae`` and the runner.

Stage of the data flow: draws batches from a synthetic model (:mod:`synthsae.synthetic`),
trains SAEs on them with the one training loop (:mod:`synthsae.training`), evaluates them
(:mod:`synthsae.evals`) and writes the run's files. ``activation_iterator`` is the endless
batch stream; ``toy_training`` is :func:`train_toy_sae`; ``runner_config``, ``runner`` and
``runner_hooks`` make up :class:`SyntheticSAERunner`. The public names are also exported from
:mod:`synthsae.synthetic`, the reference's import path.
"""

from synthsae._lazy import lazy_exports

_EXPORTS = {
    "activation_iterator": ("SyntheticActivationIterator",),
    "toy_training": ("train_toy_sae",),
    "runner": ("SyntheticSAERunner", "SyntheticSAERunnerResult"),
    "runner_config": ("SyntheticSAERunnerConfig", "RUNNER_CONFIG_FILENAME"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = __dir__()
