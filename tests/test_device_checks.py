"""A CUDA device that torch cannot use is refused up front, in one line, wherever a device is taken
(issue 12). The tests pretend to be a CPU-only torch (or a CUDA torch without enough GPUs), so they
mean the same on every machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from synthsae import SAE, TopKTrainingSAE, TopKTrainingSAEConfig
from synthsae.cli import main
from synthsae.config_values import check_device
from synthsae.synthetic import (
    ActivationGenerator,
    FeatureDictionary,
    SyntheticModel,
    SyntheticModelConfig,
    SyntheticSAERunnerConfig,
    train_toy_sae,
)

MODEL = SyntheticModelConfig(num_features=8, hidden_dim=4, seed=0)


@pytest.fixture
def cpu_only_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _entry_points(tmp_path: Path) -> dict[str, Any]:
    from synthsae.benchmark import BenchmarkConfig
    from synthsae.training.trainer import TrainerConfig

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=4, d_sae=6, k=2))
    sae.save_inference_model(tmp_path / "sae")
    SyntheticModel(MODEL).save(tmp_path / "model")
    fd = FeatureDictionary(8, 4, initializer=None)
    gen = ActivationGenerator(8, torch.full((8,), 0.2))
    return {
        "SAE config": lambda: TopKTrainingSAEConfig(d_in=4, d_sae=6, k=2, device="cuda"),
        "SAE.load_from_disk": lambda: SAE.load_from_disk(tmp_path / "sae", device="cuda"),
        "TrainerConfig": lambda: TrainerConfig(total_training_samples=64, batch_size=8, device="cuda"),
        "train_toy_sae": lambda: train_toy_sae(sae, fd, gen, training_samples=64, batch_size=8, device="cuda"),
        "runner config": lambda: SyntheticSAERunnerConfig(MODEL, {"architecture": "topk", "d_sae": 6, "k": 2},
                                                          device="cuda"),
        "benchmark config": lambda: BenchmarkConfig(device="cuda"),
        "SyntheticModel": lambda: SyntheticModel(MODEL, device="cuda"),
        "SyntheticModel.load_from_disk": lambda: SyntheticModel.load_from_disk(tmp_path / "model", device="cuda"),
        "SyntheticModel.to": lambda: SyntheticModel(MODEL).to("cuda"),
        "FeatureDictionary": lambda: FeatureDictionary(8, 4, device="cuda"),
        "ActivationGenerator": lambda: ActivationGenerator(8, torch.full((8,), 0.2), device="cuda"),
    }


def test_every_python_entry_point_refuses_cuda_in_one_line(cpu_only_torch: None, tmp_path: Path) -> None:
    for label, call in _entry_points(tmp_path).items():
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "CUDA is not available" in message and "CPU-only build" in message, (label, message)
        assert "install a CUDA build of torch" in message and "\n" not in message, (label, message)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--device", "cuda", "--quiet"],
        ["train", "--set", "device=cuda:1", "--quiet"],
        ["bench", "--device", "cuda", "--quiet"],
        ["sample", "--device", "cuda", "--batches", "1"],
        ["eval", "SAE_DIR", "--device", "cuda", "--model", "preset:cpu_small"],
    ],
)
def test_every_command_refuses_cuda_in_one_line(cpu_only_torch: None, tmp_path: Path, argv: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    TopKTrainingSAE(TopKTrainingSAEConfig(d_in=64, d_sae=6, k=2)).save_inference_model(tmp_path / "sae")
    argv = [str(tmp_path / "sae") if a == "SAE_DIR" else a for a in argv]
    if argv[0] in ("train", "bench"):
        argv += ["--output", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CUDA is not available" in err, err
    assert err.startswith(f"synthsae {argv[0]}: error: ")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_cuda_build_without_a_gpu_or_with_fewer_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"has CUDA support but sees no GPU"):
        check_device("device", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("device", "cuda:1") == "cuda:1"
    assert check_device("device", torch.device("cuda")) == "cuda"
    with pytest.raises(ValueError, match=r"device='cuda:2': torch sees 2 CUDA device\(s\) \(cuda:0..cuda:1\)"):
        check_device("device", "cuda:2")


def test_other_devices_and_bad_strings() -> None:
    assert check_device("device", "cpu") == "cpu"
    with pytest.raises(ValueError, match="must be a torch device such as 'cpu'"):
        check_device("device", "gpu")
    with pytest.raises(TypeError, match="device must be a device string"):
        check_device("device", 0)
