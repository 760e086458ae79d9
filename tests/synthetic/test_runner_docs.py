"""The user docs' SyntheticSAERunner samples with ``sae_lens`` -> ``synthsae``.

Only ``training_samples`` is made small (and, in the CPU variant of the first sample,
``device``, ``eval_samples`` and the bf16 autocast flags, which are meant for GPUs). The hub id of the first sample is served from an
offline hub cache holding a small stand-in model with the documented hidden size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_hub import offline_cache, publish  # noqa: F401 - fixture

from synthsae.synthetic import SyntheticModel, SyntheticModelConfig


def _publish_stand_in(cache: Path, tmp_path: Path) -> None:
    stand_in = SyntheticModel(SyntheticModelConfig(num_features=64, hidden_dim=768, seed=1))
    publish(cache, "decoderesearch/synth-sae-bench-16k-v1", stand_in.save(tmp_path / "stand_in"))


def _first_sample(device: str, eval_samples: int, autocast: bool) -> object:
    from synthsae import BatchTopKTrainingSAEConfig, LoggingConfig
    from synthsae.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig

    runner_cfg = SyntheticSAERunnerConfig(
        # Load a pretrained synthetic model from HuggingFace
        synthetic_model="decoderesearch/synth-sae-bench-16k-v1",

        sae=BatchTopKTrainingSAEConfig(
            d_in=768,   # Must match hidden_dim of the synthetic model
            d_sae=4096,
            k=25,
        ),

        # Training parameters
        training_samples=4 * 1024,
        batch_size=1024,
        lr=3e-4,

        # Output
        output_path="output",

        # Evaluation
        eval_frequency=1000,  # Evaluate metrics every N steps
        eval_samples=eval_samples,

        # Performance (recommended for modern GPUs)
        autocast_sae=autocast,
        autocast_data=autocast,

        # Logging
        logger=LoggingConfig(
            log_to_wandb=True,
            wandb_project="my_project",
            wandb_entity="my_team",  # Optional
            run_name="my-run",       # Auto-generated if not set
            wandb_log_frequency=100,  # Log metrics every N training steps
        ),

        device=device,
    )

    runner = SyntheticSAERunner(runner_cfg)
    result = runner.run()

    print(f"Final MCC: {result.final_eval.mcc:.3f}")
    print(f"Final explained variance: {result.final_eval.explained_variance:.3f}")
    return result


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)


@pytest.mark.gpu
def test_training_with_the_runner_sample_on_cuda(offline_cache, offline_wandb, tmp_path: Path) -> None:  # noqa: F811
    _publish_stand_in(offline_cache, tmp_path)
    result = _first_sample("cuda", 500_000, True)
    assert (tmp_path / "output" / "eval_stats.json").is_file()
    assert 0.0 <= result.final_eval.mcc <= 1.0


def test_training_with_the_runner_sample_on_cpu(offline_cache, offline_wandb, tmp_path: Path,  # noqa: F811
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _publish_stand_in(offline_cache, tmp_path)
    result = _first_sample("cpu", 2048, False)  # bf16 on a CPU without bf16 units is very slow
    assert "Final MCC:" in capsys.readouterr().out
    stats = json.loads((tmp_path / "output" / "eval_stats.json").read_text())
    assert stats == result.final_eval.to_dict()


def test_pretrained_model_config_sample() -> None:
    from synthsae import BatchTopKTrainingSAEConfig
    from synthsae.synthetic import SyntheticSAERunnerConfig

    runner_cfg = SyntheticSAERunnerConfig(
        # Load from HuggingFace
        synthetic_model="username/my-synthetic-model",

        # Or from disk
        # synthetic_model="./path/to/model",

        sae=BatchTopKTrainingSAEConfig(
            d_in=768,
            d_sae=4096,
            k=34,
        ),
        training_samples=200_000_000,
    )
    assert runner_cfg.total_training_steps == 200_000_000 // 1024


@pytest.mark.slow
def test_training_on_a_temporary_model_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    from synthsae import BatchTopKTrainingSAEConfig
    from synthsae.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig

    runner_cfg = SyntheticSAERunnerConfig(
        # Create a temporary synthetic model from config
        synthetic_model=SyntheticModelConfig(
            num_features=16_384,
            hidden_dim=768,
            # ... other config fields ...
        ),

        sae=BatchTopKTrainingSAEConfig(
            d_in=768,
            d_sae=4096,
            k=25,
        ),

        # Training parameters
        training_samples=4 * 1024,
        batch_size=1024,
        lr=3e-4,
    )

    runner = SyntheticSAERunner(runner_cfg)
    result = runner.run()
    assert result.final_eval is not None and (tmp_path / "output" / "sae_weights.safetensors").is_file()
