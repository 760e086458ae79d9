"""SAEs published on the Hugging Face hub in the reference's layout load by repo id and folder.

The hub is offline: a local cache, laid out as ``huggingface_hub`` lays out downloads, is
built in the test and holds the reference-written SAE folders of
``tests/fixtures/reference/files`` (as a SynthSAEBench-style repo with one folder per SAE,
next to a ``sparsity.safetensors`` and a ``runner_config.json``). Loading goes through
``SAE.from_pretrained`` and through ``synthsae eval`` with hub sources.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from synthsae.cli import main
from synthsae.saes.base import SAE, TrainingSAE

hub_constants = pytest.importorskip("huggingface_hub.constants")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "files"
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
REPO = "synth-authors/synthsae-bench-saes"
# a tiny model with the fixtures' d_in = 8, for the eval command
MODEL_CONFIG = {"num_features": 12, "hidden_dim": 8, "seed": 0}


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache under ``tmp_path`` with the hub offline (env and constants)."""
    cache = tmp_path / "hf_home" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads these once, at import: point its constants at the test cache
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return cache


def publish(cache: Path, repo_id: str, files: dict[str, Path]) -> None:
    """Cache ``files`` (path in repo -> local file) as downloads of ``repo_id`` at ``COMMIT``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        data = source.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        target = repo / "snapshots" / COMMIT / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(blob)
        except OSError:  # no symlinks here: the hub then keeps copies
            shutil.copy(blob, target)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture
def published(offline_cache: Path, tmp_path: Path) -> dict[str, torch.Tensor]:
    """The repo: ``<arch>/k-or-coef/`` folders (inference saves) and one SAE at the root."""
    extra = tmp_path / "extra"
    extra.mkdir()
    sparsity = -torch.arange(16, dtype=torch.float32) / 4
    save_file({"sparsity": sparsity}, str(extra / "sparsity.safetensors"))
    (extra / "runner_config.json").write_text(json.dumps({"synthetic_model": MODEL_CONFIG}))
    files = {}
    for architecture in ("batchtopk", "jumprelu", "abstopk"):
        for name in ("cfg.json", "sae_weights.safetensors"):
            files[f"{architecture}/l0-4/{name}"] = FIXTURES / architecture / "inference" / name
    files["batchtopk/l0-4/sparsity.safetensors"] = extra / "sparsity.safetensors"
    files["batchtopk/l0-4/runner_config.json"] = extra / "runner_config.json"
    for name in ("cfg.json", "sae_weights.safetensors"):
        files[name] = FIXTURES / "standard" / "inference" / name
    publish(offline_cache, REPO, files)
    return {"sparsity": sparsity}


@pytest.mark.parametrize("architecture", ["batchtopk", "jumprelu", "abstopk"])
def test_from_pretrained_by_repo_id_and_folder(published: dict, architecture: str) -> None:
    sae = SAE.from_pretrained(REPO, f"{architecture}/l0-4")
    outputs = load_file(str(FIXTURES / architecture / "outputs.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(outputs["x"]), outputs["inference_latents"], rtol=1e-5, atol=1e-6)


def test_config_and_sparsity_come_along(published: dict) -> None:
    sae, cfg_dict, sparsity = SAE.from_pretrained_with_cfg_and_sparsity(REPO, "batchtopk/l0-4")
    assert type(sae).__name__ == "JumpReLUSAE" and cfg_dict["architecture"] == "jumprelu"
    torch.testing.assert_close(sparsity, published["sparsity"])
    _, _, none = SAE.from_pretrained_with_cfg_and_sparsity(REPO, "jumprelu/l0-4")
    assert none is None
    root = SAE.from_pretrained(REPO, "")  # the SAE at the repo root
    assert type(root).__name__ == "StandardSAE"
    # through TrainingSAE the same folder gives the training class (its tensors are the same)
    assert type(TrainingSAE.from_pretrained(REPO, "jumprelu/l0-4")).__name__ == "JumpReLUTrainingSAE"


def test_names_that_are_not_repo_ids_are_refused(published: dict) -> None:
    with pytest.raises(ValueError, match="not a Hugging Face repo id"):
        SAE.from_pretrained("gemma-scope-2b-pt-res", "layer_12/width_16k/canonical")
    with pytest.raises(Exception, match="(?i)offline|cache|not found|cannot"):
        SAE.from_pretrained(REPO, "no/such/folder")


def test_eval_command_takes_hub_saes(published: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_file = tmp_path / "model.json"
    model_file.write_text(json.dumps(MODEL_CONFIG))
    args = ["--samples", "300", "--batch-size", "100", "--json"]
    # the runner_config.json next to the SAE names the model
    assert main(["eval", f"{REPO}:batchtopk/l0-4", *args]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["d_sae"] == 16 and 0 <= first["mcc"] <= 1
    # without one, --model does
    assert main(["eval", f"{REPO}:jumprelu/l0-4", "--model", str(model_file), *args]) == 0
    assert json.loads(capsys.readouterr().out)["d_sae"] == 16
    assert main(["eval", f"{REPO}:missing", "--model", str(model_file), *args]) == 1
    assert "neither a local SAE folder nor an SAE on the hub" in capsys.readouterr().err
