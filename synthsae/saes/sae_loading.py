"""The loading classmethods of :class:`~synthsae.saes.sae.SAE`: from a folder or the hub.

Kept apart from the SAE's model code; :class:`SAELoadingMixin` is a base of ``SAE``.
The class a file loads as follows the calling class: ``SAE.load_from_disk`` gives the
inference class of the architecture in ``cfg.json`` (a training checkpoint converted),
``TrainingSAE.load_from_disk`` the training class (see :mod:`synthsae.saes.loading`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from synthsae.config_values import check_device
from synthsae.saes.io import SAE_WEIGHTS_FILENAME, sae_lens_disk_loader

T = TypeVar("T")


class SAELoadingMixin:
    """``load_from_disk``, ``from_pretrained`` and the architecture-to-class lookups."""

    is_training: bool = False

    @classmethod
    def load_from_disk(
        cls: type[T],
        path: str | Path,
        device: str = "cpu",
        dtype: str | None = None,
        converter: Callable[..., tuple[dict[str, Any], dict[str, torch.Tensor]]] = sae_lens_disk_loader,
        fold_W_dec_norm: bool = False,
    ) -> T:
        """Load an SAE folder (``sae_weights.safetensors`` + ``cfg.json``, SAELens layout).

        On :class:`SAE` (or an inference class) the result is the inference class named by
        ``cfg.json``'s ``"architecture"``, a training checkpoint being converted to its
        inference form; on :class:`TrainingSAE` (or a training class) the training class.
        ``device``/``dtype`` override the saved values. ``converter(path, device,
        cfg_overrides=...)`` reads the folder into ``(cfg_dict, state_dict)``.
        ``fold_W_dec_norm`` calls :meth:`fold_W_dec_norm` on the result.
        """
        from synthsae.saes.loading import load_sae

        device = check_device("device", device)  # before any tensor is read onto it
        overrides = {"dtype": dtype} if dtype is not None else None
        cfg_dict, state_dict = converter(path, device, cfg_overrides=overrides)
        source = str(Path(path) / SAE_WEIGHTS_FILENAME)
        sae = load_sae(cls, cfg_dict, state_dict, device, dtype, source)  # type: ignore[arg-type]
        if fold_W_dec_norm:
            sae.fold_W_dec_norm()
        return sae  # type: ignore[return-value]

    @classmethod
    def load_from_pretrained(cls: type[T], path: str | Path, device: str = "cpu", dtype: str | None = None) -> T:
        """Deprecated name of :meth:`load_from_disk`."""
        warnings.warn("load_from_pretrained is deprecated; use load_from_disk", DeprecationWarning, stacklevel=2)
        return cls.load_from_disk(path, device=device, dtype=dtype)  # type: ignore[attr-defined]

    @classmethod
    def from_pretrained(
        cls: type[T],
        release: str,
        sae_id: str,
        device: str = "cpu",
        dtype: str = "float32",
        force_download: bool = False,
        converter: Callable[..., Any] | None = None,
        fold_W_dec_norm: bool = False,
    ) -> T:
        """Load the SAE in folder ``sae_id`` of Hugging Face repo ``release`` (``"owner/name"``).

        The folder holds ``cfg.json`` and ``sae_weights.safetensors`` as the reference
        writes them (``sae_id=""`` for the repo root). Downloads honour the hub cache and
        ``HF_HUB_OFFLINE``. See :meth:`from_pretrained_with_cfg_and_sparsity`.
        """
        return cls.from_pretrained_with_cfg_and_sparsity(  # type: ignore[attr-defined]
            release, sae_id, device, dtype, force_download, converter, fold_W_dec_norm
        )[0]

    @classmethod
    def from_pretrained_with_cfg_and_sparsity(
        cls: type[T],
        release: str,
        sae_id: str,
        device: str = "cpu",
        dtype: str = "float32",
        force_download: bool = False,
        converter: Callable[..., Any] | None = None,
        fold_W_dec_norm: bool = False,
    ) -> tuple[T, dict[str, Any], torch.Tensor | None]:
        """:meth:`from_pretrained`, also returning the config dict and the log10 firing
        frequencies (``sparsity.safetensors``, ``None`` when the folder has none).

        ``converter(repo_id, folder_name, device, force_download, cfg_overrides)`` returns
        ``(cfg_dict, state_dict, log_sparsity)``; the default reads the SAELens layout.
        """
        from synthsae.saes.hub import sae_lens_huggingface_loader, split_release
        from synthsae.saes.loading import load_sae

        repo_id, folder_name = split_release(release, sae_id)
        loader = converter or sae_lens_huggingface_loader
        overrides = {"device": device, "dtype": dtype}
        cfg_dict, state_dict, log_sparsity = loader(
            repo_id=repo_id, folder_name=folder_name, device=device, force_download=force_download,
            cfg_overrides=overrides,
        )  # fmt: skip
        source = f"{repo_id}/{folder_name}".rstrip("/")
        sae = load_sae(cls, cfg_dict, state_dict, device, dtype, source)  # type: ignore[arg-type]
        if fold_W_dec_norm:
            sae.fold_W_dec_norm()
        return sae, cfg_dict, log_sparsity  # type: ignore[return-value]

    @classmethod
    def get_sae_class_for_architecture(cls: type[T], architecture: str) -> type[T]:
        """The class an ``architecture`` loads as through this class (inference classes
        through :class:`SAE`, training classes through :class:`TrainingSAE`)."""
        from synthsae.saes.registry import get_sae_architecture

        entry = get_sae_architecture(architecture)
        found = entry.training_cls if cls.is_training else (entry.inference_cls or entry.training_cls)  # type: ignore[attr-defined]
        if found is None or not issubclass(found, cls):
            raise ValueError(f"architecture {architecture!r} does not load as a {cls.__name__} ({found})")
        return found

    @classmethod
    def get_sae_config_class_for_architecture(cls, architecture: str) -> type:
        """The config class of :meth:`get_sae_class_for_architecture`'s class."""
        from synthsae.saes.registry import get_sae_architecture

        entry = get_sae_architecture(architecture)
        if cls.is_training or entry.inference_cfg_cls is None:
            return entry.training_cfg_cls
        return entry.inference_cfg_cls
