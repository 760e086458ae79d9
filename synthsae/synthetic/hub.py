"""Sharing :class:`SyntheticModel` directories through the Hugging Face hub.

``huggingface_hub`` is an optional dependency (``pip install synthsae[hub]``); it is
imported only when a function here talks to the hub. The download path goes
through ``hf_hub_download`` and therefore honours the hub cache and offline mode
(``HF_HOME``/``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthsae._hub import hub_error, hub_module
from synthsae.synthetic.model_config import (
    SYNTHETIC_MODEL_CONFIG_FILENAME,
    SYNTHETIC_MODEL_HIERARCHY_FILENAME,
    SYNTHETIC_MODEL_WEIGHTS_FILENAME,
)

if TYPE_CHECKING:
    from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
    from synthsae.synthetic.synthetic_model import SyntheticModel

__all__ = [
    "download_synthetic_model",
    "hierarchy_max_depth",
    "is_local_path",
    "parse_hub_source",
    "upload_synthetic_model_to_huggingface",
]

# one hub name: letters, digits, '-', '_', '.', not starting or ending with '-' or '.'
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^{_NAME}(?:/{_NAME})?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


# ---------------------------------------------------------------- sources
def is_local_path(source: str) -> bool:
    """Whether a ``load_from_source`` string means a local directory.

    True when it starts with ``/``, ``./``, ``../`` or ``~``, is ``.`` or ``..``,
    contains a backslash, or exists on disk.
    """
    if source in (".", "..") or source.startswith(("/", "./", "../", "~")) or "\\" in source:
        return True
    return Path(source).exists()


def parse_hub_source(source: str) -> tuple[str, str | None]:
    """Split ``"owner/name"`` or ``"owner/name:subfolder"`` into ``(repo_id, subfolder)``.

    Raises:
        FileNotFoundError: when ``source`` is not a valid hub id either (it is then
            reported as a missing local directory, without touching the network).
    """
    repo_id, _, subfolder = source.partition(":")
    sub = subfolder.strip("/") or None
    bad_sub = sub is not None and any(part in ("", ".", "..") for part in sub.split("/"))
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id or len(repo_id) > 96 or bad_sub:
        raise FileNotFoundError(
            f"{source!r} is not an existing local directory, and not a Hugging Face repo id "
            "('owner/name' or 'owner/name:subfolder'); use an absolute path or start it with './'"
        )
    return repo_id, sub


# --------------------------------------------------------------- download
def _snapshot_commit(file_path: Path, filename: str) -> str | None:
    """The commit hash of the cache snapshot holding ``file_path`` (``filename`` in the repo)."""
    snapshot = file_path
    for _ in Path(filename).parts:
        snapshot = snapshot.parent
    return snapshot.name if _COMMIT.match(snapshot.name) else None


def download_synthetic_model(
    repo_id: str,
    model_path: str | None = None,
    force_download: bool = False,
    revision: str | None = None,
) -> Path:
    """Fetch a model directory from the hub (or its local cache) and return its local path.

    Downloads the config and weights, and ``hierarchy.json`` when the repo has one;
    all three come from one commit. Offline mode and the cache location are those of
    ``huggingface_hub`` at call time.

    Raises:
        ImportError: when ``huggingface_hub`` is not installed.
        FileNotFoundError: when the config declares a hierarchy but ``hierarchy.json``
            cannot be found.
    """
    hub = hub_module()
    prefix = f"{model_path.strip('/')}/" if model_path and model_path.strip("/") else ""
    names = [f"{prefix}{n}" for n in (SYNTHETIC_MODEL_CONFIG_FILENAME, SYNTHETIC_MODEL_WEIGHTS_FILENAME)]
    config_file = Path(hub.hf_hub_download(repo_id=repo_id, filename=names[0], revision=revision, force_download=force_download))
    pinned = _snapshot_commit(config_file, names[0]) or revision
    files = [config_file]
    files.append(Path(hub.hf_hub_download(repo_id=repo_id, filename=names[1], revision=pinned, force_download=force_download)))

    from synthsae.synthetic.model_io import read_json

    declares_hierarchy = bool((read_json(config_file, SYNTHETIC_MODEL_CONFIG_FILENAME) or {}).get("hierarchy"))
    try:
        files.append(
            Path(
                hub.hf_hub_download(
                    repo_id=repo_id,
                    filename=f"{prefix}{SYNTHETIC_MODEL_HIERARCHY_FILENAME}",
                    revision=pinned,
                    force_download=force_download,
                )
            )
        )
    except hub_error("EntryNotFoundError") as err:
        if declares_hierarchy:
            raise FileNotFoundError(
                f"{SYNTHETIC_MODEL_HIERARCHY_FILENAME} not found in {repo_id}"
                f"{':' + prefix.rstrip('/') if prefix else ''} (or not cached while offline), but the "
                f"config declares a hierarchy: {err}"
            ) from err
    folder = config_file.parent
    if all(f.parent == folder for f in files):
        return folder
    # files from different folders (unusual cache layouts): gather copies in one place
    gathered = Path(tempfile.mkdtemp(prefix="synthsae-model-"))
    for f in files:
        gathered.joinpath(f.name).write_bytes(f.read_bytes())
    return gathered


# ----------------------------------------------------------------- upload
def hierarchy_max_depth(hierarchy: Hierarchy) -> int:
    """Depth of the deepest tree (a lone root counts as 1; an empty forest is 0)."""
    best = 0
    stack = [(root, 1) for root in hierarchy.roots]
    while stack:
        node, depth = stack.pop()
        best = max(best, depth)
        stack.extend((child, depth + 1) for child in node.children)
    return best


def default_readme(model: SyntheticModel, repo_id: str, hf_path: str | None = None) -> str:
    """The model card uploaded when a repo has no README.

    The front matter names ``saelens`` as the library: the files are in the SAELens
    ``SyntheticModel`` layout and load with either library, and the hub knows that
    library; the ``synthsae`` tag lets synthsae users filter for them too.
    """
    cfg = model.cfg
    lines = [f"- Features: {cfg.num_features:,}", f"- Hidden dimension: {cfg.hidden_dim:,}"]
    if model.hierarchy is not None:
        h = model.hierarchy
        lines.append(
            f"- Hierarchy: yes ({len(h.roots):,} root features, {len(h.feature_indices_used):,} "
            f"features in the forest, max depth {hierarchy_max_depth(h)})"
        )
    else:
        lines.append("- Hierarchy: no")
    if model.correlation_matrix is not None:
        rank = model.correlation_matrix.correlation_factor.shape[1]
        scale = f", scale {cfg.correlation.correlation_scale}" if cfg.correlation is not None else ""
        lines.append(f"- Feature correlation: yes (low rank {rank}{scale})")
    else:
        lines.append("- Feature correlation: no")
    lines.append(f"- Seed: {cfg.seed}")
    where = f'"{repo_id}", model_path="{hf_path}"' if hf_path else f'"{repo_id}"'
    info = "\n".join(lines)
    return f"""---
library_name: saelens
tags:
- synthsae
- sparse-autoencoder
- synthetic-data
---

# Synthetic activations with known features

This repository holds a synthetic model: a set of ground-truth feature directions,
their firing process and a dictionary that turns sparse feature activations into
dense hidden vectors. Sparse autoencoders trained on its samples can be scored
against the true features. The files use the SAELens `SyntheticModel` layout and
also store the per-feature firing magnitudes, so they load in SAELens and synthsae.

## Model

{info}

## Usage

```python
from synthsae.synthetic import SyntheticModel  # or: from sae_lens.synthetic import SyntheticModel

model = SyntheticModel.from_pretrained({where})
hidden = model.sample(1024)
```
"""


def upload_synthetic_model_to_huggingface(
    model: SyntheticModel | Path | str,
    hf_repo_id: str,
    hf_path: str | None = None,
    hf_revision: str = "main",
    add_default_readme: bool = True,
    private: bool = False,
    *,
    api: Any = None,
) -> None:
    """Upload a model (object or saved directory) to a hub repo, creating it if needed.

    The model is loaded and validated before anything is sent. The config, weights
    and (when present) hierarchy files go to ``hf_path`` (the repo root by default)
    on branch ``hf_revision`` (created if missing). With ``add_default_readme`` a
    model card is added when the branch has no ``README.md``. ``api`` may be an
    ``HfApi``-like object (defaults to ``huggingface_hub.HfApi()``).

    Raises:
        ImportError: when ``huggingface_hub`` is not installed.
        FileNotFoundError / ValueError: when a saved directory is missing files or corrupt.
    """
    from synthsae.synthetic.synthetic_model import SyntheticModel

    hub = hub_module()
    api = api if api is not None else hub.HfApi()
    sub = hf_path.strip("/") if hf_path else None
    with tempfile.TemporaryDirectory(prefix="synthsae-upload-") as tmp:
        if isinstance(model, SyntheticModel):
            folder = model.save(Path(tmp) / "model")
            loaded = model
        else:
            folder = Path(model).expanduser()
            loaded = SyntheticModel.load_from_disk(folder)
        patterns = [SYNTHETIC_MODEL_CONFIG_FILENAME, SYNTHETIC_MODEL_WEIGHTS_FILENAME]
        if (folder / SYNTHETIC_MODEL_HIERARCHY_FILENAME).exists():
            patterns.append(SYNTHETIC_MODEL_HIERARCHY_FILENAME)

        try:
            api.repo_info(hf_repo_id, repo_type="model")
        except hub_error("RepositoryNotFoundError"):
            api.create_repo(hf_repo_id, private=private, repo_type="model", exist_ok=True)
        if hf_revision != "main":
            api.create_branch(hf_repo_id, branch=hf_revision, repo_type="model", exist_ok=True)
        api.upload_folder(
            folder_path=str(folder),
            path_in_repo=sub or ".",
            repo_id=hf_repo_id,
            repo_type="model",
            revision=hf_revision,
            commit_message=f"Upload SyntheticModel {sub}" if sub else "Upload SyntheticModel",
            allow_patterns=patterns,
        )
    if add_default_readme and not api.file_exists(hf_repo_id, "README.md", repo_type="model", revision=hf_revision):
        api.upload_file(
            path_or_fileobj=default_readme(loaded, hf_repo_id, sub).encode("utf-8"),
            path_in_repo="README.md",
            repo_id=hf_repo_id,
            repo_type="model",
            revision=hf_revision,
            commit_message="Add README.md",
        )
