"""SAE files move both ways between the reference and synthsae with the same outputs.

``tests/fixtures/reference/files/<architecture>/`` holds, for every architecture that
trains on synthetic data, a training checkpoint (``save_model``) and an inference save
(``save_inference_model``) written by the installed reference itself
(``benchmarks/reference_fixtures/make_file_fixtures.py``), and the reference's
``encode``/``decode`` of a probe batch by both. synthsae must load them and give the same
outputs (fp32, relative tolerance 1e-5), and what synthsae writes for the same weights
must hold what the reference reads: the same tensors and the same config values. The
last test has the reference itself load synthsae's files (slow; needs the reference venv).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from synthsae.saes.base import SAE, TrainingSAE
from synthsae.saes.io import SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "files"
ARCHITECTURES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
REPO = Path(__file__).resolve().parents[2]
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"
READER = REPO / "benchmarks" / "reference_fixtures" / "reference_reads.py"
INFERENCE_CLASS = {
    "standard": "StandardSAE", "topk": "TopKSAE", "abstopk": "AbsTopKSAE", "batchtopk": "JumpReLUSAE",
    "matryoshka_batchtopk": "JumpReLUSAE", "jumprelu": "JumpReLUSAE", "gated": "GatedSAE",
    "matching_pursuit": "MatchingPursuitSAE",
}  # fmt: skip
# keys whose values legitimately differ: the writing library's version stamps
VERSION_KEYS = {"sae_lens_version", "sae_lens_training_version", "synthsae_version"}


def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    scale = max(float(expected.abs().max()), 1e-3)
    torch.testing.assert_close(actual.detach(), expected, rtol=1e-5, atol=1e-6 * scale, msg=lambda m: f"{what}: {m}")


def outputs(architecture: str) -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / architecture / "outputs.safetensors"))


def check_outputs(sae: SAE, expected: dict[str, torch.Tensor], prefix: str) -> None:
    with torch.no_grad():
        latents = sae.encode(expected["x"])
        close(latents, expected[f"{prefix}_latents"], f"{prefix} latents")
        close(sae.decode(latents), expected[f"{prefix}_recons"], f"{prefix} reconstruction")


def test_fixtures_cover_every_architecture() -> None:
    assert ARCHITECTURES == sorted(INFERENCE_CLASS)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_reference_inference_save_loads_with_the_same_outputs(architecture: str) -> None:
    sae = SAE.load_from_disk(FIXTURES / architecture / "inference")
    assert type(sae).__name__ == INFERENCE_CLASS[architecture]
    check_outputs(sae, outputs(architecture), "inference")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_reference_checkpoint_loads_for_training_and_for_inference(architecture: str) -> None:
    training = TrainingSAE.load_from_disk(FIXTURES / architecture / "checkpoint")
    assert training.cfg.architecture() == architecture
    check_outputs(training, outputs(architecture), "training")
    inference = SAE.load_from_disk(FIXTURES / architecture / "checkpoint")  # converted as the inference save is
    assert type(inference).__name__ == INFERENCE_CLASS[architecture]
    check_outputs(inference, outputs(architecture), "inference")


@pytest.mark.parametrize("kind", ["inference", "checkpoint"])
def test_unknown_config_keys_warn_and_are_ignored(kind: str, tmp_path: Path) -> None:
    folder = tmp_path / kind
    shutil.copytree(FIXTURES / "jumprelu" / kind, folder)
    cfg = json.loads((folder / SAE_CFG_FILENAME).read_text())
    cfg["a_field_from_a_newer_reference"] = 3
    (folder / SAE_CFG_FILENAME).write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="a_field_from_a_newer_reference"):
        sae = SAE.load_from_disk(folder)
    check_outputs(sae, outputs("jumprelu"), "inference")


def _same_values(ours: dict, reference: dict, where: str) -> None:
    for key, value in reference.items():
        if key in VERSION_KEYS:
            continue
        assert key in ours, f"{where}: key {key!r} missing"
        if isinstance(value, dict):
            _same_values(ours[key], value, f"{where}.{key}")
        else:
            assert ours[key] == value, f"{where}.{key}: {ours[key]!r} != {value!r}"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_synthsae_writes_what_the_reference_reads(architecture: str, tmp_path: Path) -> None:
    training = TrainingSAE.load_from_disk(FIXTURES / architecture / "checkpoint")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing of the reference's own files is unknown
        training.save_model(tmp_path / "checkpoint")
    training.save_inference_model(tmp_path / "inference")
    for kind in ("checkpoint", "inference"):
        reference_dir, our_dir = FIXTURES / architecture / kind, tmp_path / kind
        _same_values(json.loads((our_dir / SAE_CFG_FILENAME).read_text()),
                     json.loads((reference_dir / SAE_CFG_FILENAME).read_text()), f"{kind}/cfg.json")
        ours, theirs = load_file(str(our_dir / SAE_WEIGHTS_FILENAME)), load_file(str(reference_dir / SAE_WEIGHTS_FILENAME))
        assert sorted(ours) == sorted(theirs), kind
        for name, tensor in theirs.items():
            assert ours[name].dtype == tensor.dtype, f"{kind}/{name}"
            close(ours[name], tensor, f"{kind}/{name}")


def _reference_available() -> bool:
    if not REFERENCE_PYTHON.exists():
        return False
    probe = subprocess.run([str(REFERENCE_PYTHON), "-c", "import sae_lens"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _reference_available(), reason="the SAELens reference venv is not installed")
def test_the_reference_loads_synthsae_files_with_the_same_outputs(tmp_path: Path) -> None:
    from sae_helpers import make_sae

    x = torch.randn(12, 8, generator=torch.Generator().manual_seed(0)) + 0.2
    expected = {}
    for architecture in ARCHITECTURES:
        sae = make_sae(architecture, seed=3, d_in=8, d_sae=16)
        with torch.no_grad():
            for name, param in sae.named_parameters():
                if name == "threshold":
                    param.copy_(0.05 + 0.3 * torch.rand(param.shape))
                elif name != "W_dec" or architecture != "matching_pursuit":
                    param.add_(0.1 * torch.randn(param.shape))
        sae.eval()
        sae.save_model(tmp_path / architecture / "checkpoint")
        sae.save_inference_model(tmp_path / architecture / "inference")
        inference = SAE.load_from_disk(tmp_path / architecture / "inference")
        with torch.no_grad():
            for prefix, model in (("training", sae), ("inference", inference)):
                latents = model.encode(x)
                expected[f"{architecture}.{prefix}_latents"] = latents
                expected[f"{architecture}.{prefix}_recons"] = model.decode(latents)
    save_file({"x": x}, str(tmp_path / "probe.safetensors"))
    proc = subprocess.run([str(REFERENCE_PYTHON), str(READER), str(tmp_path), *ARCHITECTURES],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = load_file(str(tmp_path / "reference_outputs.safetensors"))
    assert sorted(theirs) == sorted(expected)
    for key, value in expected.items():
        close(theirs[key], value, key)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {a: INFERENCE_CLASS[a] for a in ARCHITECTURES}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
