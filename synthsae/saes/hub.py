"""Loading SAEs saved in the SAELens layout from the Hugging Face hub, by repo id and folder.

``huggingface_hub`` is optional (``pip install synthsae[hub]``). Downloads go through
``hf_hub_download``, so the hub cache and offline mode (``HF_HUB_OFFLINE=1``) apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from synthsae._hub import hub_error, hub_module
from synthsae.saes.io import (
    SAE_CFG_FILENAME,
    SAE_WEIGHTS_FILENAME,
    SPARSITY_FILENAME,
    cast_to_cfg_dtype,
    load_sae_config,
    load_tensors,
)

__all__ = ["download_sae_file", "hub_sae_folder", "sae_lens_huggingface_loader", "split_release"]


def hub_sae_folder(folder_name: str | None) -> str:
    """The folder inside a repo as a path prefix (``""`` for the repo root)."""
    folder = (folder_name or "").strip("/")
    return "" if folder in ("", ".") else f"{folder}/"


def download_sae_file(repo_id: str, folder_name: str | None, filename: str, force_download: bool = False) -> Path:
    """Local path of ``folder_name/filename`` in ``repo_id`` (from the cache when offline)."""
    hub = hub_module()
    name = f"{hub_sae_folder(folder_name)}{filename}"
    return Path(hub.hf_hub_download(repo_id=repo_id, filename=name, force_download=force_download))


def sae_lens_huggingface_loader(
    repo_id: str,
    folder_name: str,
    device: str = "cpu",
    force_download: bool = False,
    cfg_overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], torch.Tensor | None]:
    """Fetch the SAE in ``folder_name`` of hub repo ``repo_id``: ``(cfg_dict, state_dict, log_sparsity)``.

    Reads ``cfg.json`` and ``sae_weights.safetensors`` (SAELens layout) and, when the
    folder has one, ``sparsity.safetensors`` (else ``log_sparsity`` is ``None``).
    ``cfg_dict`` gets ``device`` and ``cfg_overrides``; tensors come in its dtype.
    """
    cfg_path = download_sae_file(repo_id, folder_name, SAE_CFG_FILENAME, force_download)
    cfg = load_sae_config(cfg_path.parent)
    cfg["device"] = str(device)
    cfg.update(cfg_overrides or {})
    weights = download_sae_file(repo_id, folder_name, SAE_WEIGHTS_FILENAME, force_download)
    state_dict = cast_to_cfg_dtype(cfg, load_tensors(weights, device=device))
    try:
        sparsity_path = download_sae_file(repo_id, folder_name, SPARSITY_FILENAME, force_download)
    except (hub_error("EntryNotFoundError"), hub_error("LocalEntryNotFoundError")):
        return cfg, state_dict, None
    return cfg, state_dict, load_tensors(sparsity_path, device=device).get("sparsity")


def split_release(release: str, sae_id: str) -> tuple[str, str]:
    """``(repo_id, folder_name)`` for ``from_pretrained(release, sae_id)``.

    synthsae has no directory of named releases: ``release`` must be a hub repo id
    (``"owner/name"``) and ``sae_id`` the SAE's folder inside it (``""`` for the root).
    """
    if not isinstance(release, str) or release.count("/") != 1 or not all(release.split("/")):
        raise ValueError(
            f"release {release!r} is not a Hugging Face repo id ('owner/name'); synthsae has no "
            "directory of named releases, so pass the repo id and the SAE's folder in it as sae_id"
        )
    if not isinstance(sae_id, str):
        raise TypeError(f"sae_id must be the SAE's folder inside the repo (a str), got {sae_id!r}")
    return release, sae_id
