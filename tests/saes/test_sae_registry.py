"""The architecture registry, including an architecture registered by a user."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from synthsae.saes import registry
from synthsae.saes.base import SAE, SAEConfig, TrainingSAE, TrainingSAEConfig, TrainStepInput
from synthsae.saes.registry import (
    get_sae_architecture,
    list_sae_architectures,
    register_sae_architecture,
)
from synthsae.saes.standard import StandardTrainingSAE, StandardTrainingSAEConfig

BUILTINS = {
    "standard",
    "topk",
    "batchtopk",
    "matryoshka_batchtopk",
    "jumprelu",
    "gated",
    "matching_pursuit",
}


def test_builtins_are_listed() -> None:
    assert BUILTINS <= set(list_sae_architectures())
    entry = get_sae_architecture("standard")
    assert entry.training_cls is StandardTrainingSAE
    assert entry.training_cfg_cls is StandardTrainingSAEConfig


def test_lookup_alone_loads_every_builtin() -> None:
    code = (
        "from synthsae.saes.registry import get_sae_architecture, list_sae_architectures\n"
        "print(get_sae_architecture('gated').training_cls.__name__)\n"
        "print(','.join(list_sae_architectures()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, listed = result.stdout.split()
    assert name == "GatedTrainingSAE"
    assert BUILTINS <= set(listed.split(","))


def test_top_level_exports() -> None:
    import synthsae

    assert synthsae.BatchTopKTrainingSAE is get_sae_architecture("batchtopk").training_cls
    assert synthsae.get_sae_architecture is get_sae_architecture


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown SAE architecture 'nope'.*'batchtopk'"):
        get_sae_architecture("nope")


def test_name_must_match_config_architecture() -> None:
    with pytest.raises(ValueError, match="returns 'standard'"):
        register_sae_architecture("other", StandardTrainingSAE, StandardTrainingSAEConfig)


def test_registering_the_same_classes_again_is_a_no_op() -> None:
    entry = get_sae_architecture("standard")
    assert register_sae_architecture("standard", *entry[1:]) == entry


def test_duplicate_name_needs_overwrite() -> None:
    entry = get_sae_architecture("standard")
    with pytest.raises(ValueError, match="already registered"):
        register_sae_architecture("standard", StandardTrainingSAE, StandardTrainingSAEConfig)
    assert get_sae_architecture("standard") == entry


def test_wrong_class_types_are_rejected() -> None:
    with pytest.raises(TypeError, match="training_cls must subclass TrainingSAE"):
        register_sae_architecture("standard", int, StandardTrainingSAEConfig)


# --- a user-defined architecture -----------------------------------------------------------


@dataclass
class ShrinkSAEConfig(SAEConfig):
    """Inference config of the test architecture."""

    shrink: float = 0.1

    @classmethod
    def architecture(cls) -> str:
        return "shrink_test"


@dataclass
class ShrinkTrainingSAEConfig(TrainingSAEConfig):
    """A ReLU SAE whose pre-activations are shifted down by ``shrink``; penalty on sum(z)."""

    shrink: float = 0.1
    penalty: float = 0.01

    @classmethod
    def architecture(cls) -> str:
        return "shrink_test"


def _shrink_encode(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    hidden_pre = sae.encoder_linear(x, sae.W_enc, sae.b_enc)
    return F.relu(hidden_pre - sae.cfg.shrink), hidden_pre


class ShrinkSAE(SAE):
    def initialize_weights(self) -> None:
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return _shrink_encode(self, x)[0]


class ShrinkTrainingSAE(TrainingSAE):
    def initialize_weights(self) -> None:
        super().initialize_weights()
        self.b_enc = self.zero_parameter(self.cfg.d_sae)

    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _shrink_encode(self, x)

    def calculate_aux_loss(self, step_input, feature_acts, hidden_pre, sae_out):
        return {"penalty_loss": self.cfg.penalty * feature_acts.sum(dim=-1).mean()}


@pytest.fixture
def shrink_arch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the test's entry goes with it
    register_sae_architecture("shrink_test", ShrinkTrainingSAE, ShrinkTrainingSAEConfig)
    yield


def test_user_architecture_config_and_build(shrink_arch: None) -> None:
    cfg = ShrinkTrainingSAEConfig(d_in=6, d_sae=12, shrink=0.2)
    assert TrainingSAEConfig.from_dict(cfg.to_dict()) == cfg
    sae = TrainingSAE.from_dict(cfg.to_dict())
    assert isinstance(sae, ShrinkTrainingSAE)
    assert "shrink_test" in list_sae_architectures()


def test_user_architecture_trains(shrink_arch: None) -> None:
    torch.manual_seed(0)
    sae = ShrinkTrainingSAE(ShrinkTrainingSAEConfig(d_in=6, d_sae=12))
    x = torch.randn(64, 6)
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        out = sae.training_forward_pass(TrainStepInput(x, {}, None, step))
        assert set(out.losses) == {"mse_loss", "penalty_loss"}
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_user_architecture_save_load_without_inference_class(shrink_arch: None, tmp_path) -> None:
    torch.manual_seed(1)
    sae = ShrinkTrainingSAE(ShrinkTrainingSAEConfig(d_in=6, d_sae=12))
    x = torch.randn(5, 6)
    sae.save_model(tmp_path / "ckpt")
    loaded = TrainingSAE.load_from_disk(tmp_path / "ckpt")
    assert isinstance(loaded, ShrinkTrainingSAE) and loaded.cfg == sae.cfg
    sae.save_inference_model(tmp_path / "inf")
    inference = SAE.load_from_disk(tmp_path / "inf")
    assert isinstance(inference, ShrinkTrainingSAE)  # no inference class registered
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), sae(x))
        torch.testing.assert_close(inference(x), sae(x))


def test_user_architecture_with_inference_class(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the test's entry goes with it
    register_sae_architecture("shrink_test", ShrinkTrainingSAE, ShrinkTrainingSAEConfig, ShrinkSAE, ShrinkSAEConfig)
    torch.manual_seed(2)
    sae = ShrinkTrainingSAE(ShrinkTrainingSAEConfig(d_in=6, d_sae=12, shrink=0.05))
    sae.save_inference_model(tmp_path)
    inference = SAE.load_from_disk(tmp_path)
    assert isinstance(inference, ShrinkSAE) and inference.cfg.shrink == 0.05
    x = torch.randn(5, 6)
    with torch.no_grad():
        torch.testing.assert_close(inference(x), sae(x))
    assert isinstance(SAE.load_from_disk(tmp_path), ShrinkSAE)
    assert isinstance(sae.to_inference_sae(), ShrinkSAE)
