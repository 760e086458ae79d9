"""Access to the optional ``huggingface_hub`` dependency, shared by the model and SAE loaders.

Imported only when a function talks to the hub, so ``import synthsae`` never needs it.
Downloads go through ``hf_hub_download`` and so honour the hub cache and offline mode
(``HF_HOME``/``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["hub_error", "hub_module"]


def hub_module() -> Any:
    """The ``huggingface_hub`` module; ImportError with the install command if it is missing."""
    try:
        import huggingface_hub
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Hugging Face hub functions need the optional dependency huggingface_hub: "
            "pip install 'synthsae[hub]'"
        ) from err
    return huggingface_hub


def hub_error(name: str) -> type[Exception]:
    """``huggingface_hub``'s exception class ``name`` (its location moved between versions)."""
    try:
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover - older huggingface_hub
        from huggingface_hub import utils as errors
    return getattr(errors, name)
