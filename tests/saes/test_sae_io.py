"""Saving and loading SAEs: file names, tensor names, cfg.json keys, round trips, errors."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from sae_helpers import make_sae
from safetensors.torch import load_file

import synthsae.saes.io as sae_io
from synthsae.saes.abstopk import AbsTopKSAE
from synthsae.saes.base import SAE, TrainingSAE
from synthsae.saes.gated import GatedSAE
from synthsae.saes.jumprelu import JumpReLUSAE, JumpReLUTrainingSAE
from synthsae.saes.matching_pursuit import MatchingPursuitSAE
from synthsae.saes.standard import StandardSAE, StandardTrainingSAE
from synthsae.saes.topk import TopKSAE

BASE_KEYS = {
    "d_in",
    "d_sae",
    "dtype",
    "device",
    "apply_b_dec_to_input",
    "normalize_activations",
    "reshape_activations",
    "architecture",
    "metadata",
}
INFERENCE = {
    # architecture: (inference class, extra cfg keys, tensor names)
    "standard": (StandardSAE, set(), {"W_enc", "b_enc", "W_dec", "b_dec"}),
    "topk": (TopKSAE, {"k", "rescale_acts_by_decoder_norm"}, {"W_enc", "b_enc", "W_dec", "b_dec"}),
    "abstopk": (AbsTopKSAE, {"k", "rescale_acts_by_decoder_norm"}, {"W_enc", "b_enc", "W_dec", "b_dec"}),
    "batchtopk": (JumpReLUSAE, set(), {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    "matryoshka_batchtopk": (JumpReLUSAE, set(), {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    "jumprelu": (JumpReLUSAE, set(), {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    "gated": (GatedSAE, set(), {"W_enc", "W_dec", "b_dec", "b_gate", "r_mag", "b_mag"}),
    "matching_pursuit": (
        MatchingPursuitSAE,
        {"residual_threshold", "max_iterations", "stop_on_duplicate_support"},
        {"W_dec", "b_dec"},
    ),
}
EXACT_INFERENCE = ("standard", "topk", "abstopk", "jumprelu", "gated", "matching_pursuit")


def _trained_looking(name: str, seed: int = 0) -> TrainingSAE:
    """An SAE whose biases, thresholds and decoder norms are all non-trivial."""
    sae = make_sae(name, seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for param_name, param in sae.named_parameters():
            if param_name == "W_dec" and name == "matching_pursuit":
                continue
            if param_name == "threshold":  # positive, as training keeps it
                param.copy_(0.05 + 0.1 * torch.rand(param.shape, generator=generator))
                continue
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
        if name in ("batchtopk", "matryoshka_batchtopk"):
            sae.topk_threshold.fill_(0.05)
    return sae


def _x(n: int = 12) -> torch.Tensor:
    return torch.randn(n, 16, generator=torch.Generator().manual_seed(7)).abs()


def test_training_save_load_round_trip(architecture: str, tmp_path) -> None:
    sae = _trained_looking(architecture)
    weights_path, cfg_path = sae.save_model(tmp_path)
    assert (weights_path.name, cfg_path.name) == ("sae_weights.safetensors", "cfg.json")
    loaded = TrainingSAE.load_from_disk(tmp_path)
    assert type(loaded) is type(sae) and loaded.cfg == sae.cfg
    for name, tensor in sae.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=1e-6, atol=1e-7)
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), sae.encode(x))
        torch.testing.assert_close(loaded(x), sae(x))
    assert type(sae).load_from_disk(tmp_path).cfg == sae.cfg


def test_training_cfg_json_has_every_field(architecture: str, tmp_path) -> None:
    sae = _trained_looking(architecture)
    sae.save_model(tmp_path)
    saved = json.loads((tmp_path / "cfg.json").read_text())
    assert saved == json.loads(json.dumps(sae.cfg.to_dict()))
    assert saved["architecture"] == architecture


def test_inference_save_format(architecture: str, tmp_path) -> None:
    sae = _trained_looking(architecture)
    sae.save_inference_model(tmp_path)
    inference_cls, extra_keys, tensor_names = INFERENCE[architecture]
    saved = json.loads((tmp_path / "cfg.json").read_text())
    assert set(saved) == BASE_KEYS | extra_keys
    assert saved["architecture"] == ("jumprelu" if "batchtopk" in architecture else architecture)
    assert saved["metadata"]["training_architecture"] == architecture
    tensors = load_file(str(tmp_path / "sae_weights.safetensors"))
    assert set(tensors) == tensor_names
    assert tensors["W_dec"].shape == (32, 16) and tensors["b_dec"].shape == (16,)
    if "W_enc" in tensors:
        assert tensors["W_enc"].shape == (16, 32)
    loaded = SAE.load_from_disk(tmp_path)
    assert type(loaded) is inference_cls
    assert loaded.cfg.architecture() == saved["architecture"]


@pytest.mark.parametrize("name", EXACT_INFERENCE)
def test_inference_round_trip_gives_identical_outputs(name: str, tmp_path) -> None:
    sae = _trained_looking(name)
    sae.save_inference_model(tmp_path)
    loaded = SAE.load_from_disk(tmp_path)
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), sae.encode(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(loaded(x), sae(x), atol=1e-5, rtol=1e-5)
    in_memory = sae.to_inference_sae()
    assert type(in_memory) is type(loaded)
    with torch.no_grad():
        torch.testing.assert_close(in_memory(x), loaded(x))


def test_topk_inference_save_folds_decoder_norms(tmp_path) -> None:
    sae = _trained_looking("topk")
    sae.save_model(tmp_path / "train")
    assert not torch.allclose(load_file(str(tmp_path / "train" / "sae_weights.safetensors"))["W_dec"].norm(dim=-1), torch.ones(32))
    sae.save_inference_model(tmp_path / "inf")
    saved = load_file(str(tmp_path / "inf" / "sae_weights.safetensors"))
    torch.testing.assert_close(saved["W_dec"].norm(dim=-1), torch.ones(32))


def test_training_saves_hold_reference_tensor_names(tmp_path) -> None:
    make_sae("jumprelu").save_model(tmp_path / "j")
    assert set(load_file(str(tmp_path / "j" / "sae_weights.safetensors"))) == {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}
    make_sae("batchtopk").save_model(tmp_path / "b")
    saved = load_file(str(tmp_path / "b" / "sae_weights.safetensors"))
    assert saved["topk_threshold"].shape == () and saved["topk_threshold"].dtype == torch.float64


def test_jumprelu_threshold_survives_both_saves(tmp_path) -> None:
    sae = _trained_looking("jumprelu")
    sae.save_model(tmp_path / "t")
    loaded = JumpReLUTrainingSAE.load_from_disk(tmp_path / "t")
    torch.testing.assert_close(loaded.threshold, sae.threshold)
    sae.save_inference_model(tmp_path / "i")
    torch.testing.assert_close(SAE.load_from_disk(tmp_path / "i").threshold, sae.threshold.detach())


def test_training_checkpoint_loads_as_inference_class(tmp_path) -> None:
    sae = _trained_looking("topk")
    sae.save_model(tmp_path)
    loaded = SAE.load_from_disk(tmp_path)
    assert isinstance(loaded, TopKSAE)
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), sae(x), atol=1e-5, rtol=1e-5)


def test_loading_through_the_wrong_class(tmp_path) -> None:
    make_sae("standard").save_inference_model(tmp_path)
    assert isinstance(StandardSAE.load_from_disk(tmp_path), StandardSAE)
    with pytest.raises(TypeError, match="loads as StandardSAE, not TopKSAE"):
        TopKSAE.load_from_disk(tmp_path)
    with pytest.raises(TypeError, match="not JumpReLUTrainingSAE"):
        JumpReLUTrainingSAE.load_from_disk(tmp_path)


def test_device_and_dtype_overrides(tmp_path) -> None:
    make_sae("standard").save_model(tmp_path)
    loaded = StandardTrainingSAE.load_from_disk(tmp_path, device="cpu", dtype="float64")
    assert loaded.W_enc.dtype == torch.float64 and loaded.cfg.dtype == "float64"
    assert loaded.cfg.device == "cpu"


def test_missing_files_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        SAE.load_from_disk(tmp_path / "nothing_here")
    make_sae("standard").save_model(tmp_path)
    (tmp_path / "sae_weights.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="sae_weights.safetensors"):
        SAE.load_from_disk(tmp_path)
    (tmp_path / "cfg.json").unlink()
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        SAE.load_from_disk(tmp_path)


def test_corrupt_files_raise_value_errors(tmp_path) -> None:
    make_sae("standard").save_model(tmp_path)
    (tmp_path / "sae_weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="sae_weights.safetensors"):
        SAE.load_from_disk(tmp_path)
    (tmp_path / "cfg.json").write_text("{broken")
    with pytest.raises(ValueError, match="cfg.json is not valid JSON"):
        SAE.load_from_disk(tmp_path)


def test_unknown_cfg_key_and_missing_tensor(tmp_path) -> None:
    make_sae("standard").save_inference_model(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "mystery": 1}))
    with pytest.warns(UserWarning, match="mystery"):  # ignored, as the reference ignores it
        SAE.load_from_disk(tmp_path)
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "architecture": "jumprelu"}))
    with pytest.raises(ValueError, match=r"missing tensors \['threshold'\]"):
        SAE.load_from_disk(tmp_path)
    del cfg["architecture"]
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="no 'architecture' key"):
        SAE.load_from_disk(tmp_path)


def test_saves_are_atomic(tmp_path, monkeypatch) -> None:
    sae = make_sae("standard")
    sae.save_model(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sae_io, "save_file", broken_save)
    with torch.no_grad():
        sae.W_dec.mul_(2.0)
    with pytest.raises(OSError, match="disk full"):
        sae.save_model(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # untouched, no temporaries


def test_unserialisable_metadata_writes_nothing(tmp_path) -> None:
    sae = make_sae("standard", metadata={"bad": object()})
    with pytest.raises(TypeError):
        sae.save_model(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_loading_never_unpickles() -> None:
    source = inspect.getsource(sae_io)
    assert "torch.load" not in source and "import pickle" not in source
