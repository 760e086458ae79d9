"""bf16 autocast (CPU here; CUDA when a GPU is present) for every architecture."""

from __future__ import annotations

import pytest
import torch
from sae_helpers import make_sae, orthogonal_features, toy_batch

from synthsae.saes.base import TrainStepInput

DEAD = torch.arange(32) % 4 == 0


def _step(x: torch.Tensor, dead: torch.Tensor | None) -> TrainStepInput:
    return TrainStepInput(x, {"l1": 0.1, "l0": 0.1}, dead, 0, is_logging_step=True)


def _batch(device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    x = toy_batch(orthogonal_features(16, 16), 64, generator=torch.Generator().manual_seed(0))
    return x.to(device=device, dtype=dtype)


def _check_autocast(architecture: str, device: str) -> None:
    sae = make_sae(architecture, d_in=16, d_sae=32, device=device)
    x = _batch(device)
    dead = DEAD.to(device)
    reference = sae.training_forward_pass(_step(x, dead))
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        out = sae.training_forward_pass(_step(x, dead))
    assert torch.isfinite(out.loss)
    torch.testing.assert_close(out.loss.float(), reference.loss, rtol=0.05, atol=0.05)
    out.loss.backward()
    for name, param in sae.named_parameters():
        assert param.grad is not None, name
        assert param.grad.dtype == param.dtype and torch.isfinite(param.grad).all(), name
    # bf16 input batches (data produced under autocast) work too
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        acts = sae.encode(_batch(device, torch.bfloat16))
        assert torch.isfinite(sae.decode(acts)).all()


def test_cpu_autocast(architecture: str) -> None:
    _check_autocast(architecture, "cpu")


@pytest.mark.gpu
def test_cuda_autocast(architecture: str) -> None:
    _check_autocast(architecture, "cuda")


@pytest.mark.gpu
def test_cuda_matches_cpu(architecture: str, tmp_path) -> None:
    sae = make_sae(architecture, d_in=16, d_sae=32)
    x = _batch()
    cpu = sae.training_forward_pass(_step(x, DEAD))
    cuda_sae = make_sae(architecture, d_in=16, d_sae=32).to("cuda")
    assert cuda_sae.cfg.device.startswith("cuda")
    gpu = cuda_sae.training_forward_pass(_step(x.cuda(), DEAD.cuda()))
    for name, value in cpu.losses.items():
        torch.testing.assert_close(gpu.losses[name].cpu(), value, rtol=1e-3, atol=1e-4, msg=name)
    gpu.loss.backward()
    cuda_sae.save_inference_model(tmp_path)
    from synthsae.saes.base import SAE

    loaded = SAE.load_from_disk(tmp_path, device="cuda")
    assert loaded.W_dec.is_cuda
