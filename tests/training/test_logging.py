"""LoggingConfig, the metrics.jsonl writer, and wandb in offline mode."""

import json
import time

import pytest
import torch
from training_helpers import (
    ListData,
    fixed_batches,
    read_wandb_offline_history,
    read_wandb_offline_records,
    standard_sae,
)

from synthsae import LoggingConfig as TopLevelLoggingConfig
from synthsae.training.logging import METRICS_FILENAME, LoggingConfig, MetricsLogger, read_metrics
from synthsae.training.trainer import Trainer, TrainerConfig

TRAIN_KEYS = {
    "losses/overall_loss", "losses/mse_loss", "losses/l1_loss", "metrics/explained_variance", "metrics/l0",
    "sparsity/mean_passes_since_fired", "sparsity/dead_features", "details/current_learning_rate",
    "details/n_training_samples", "details/l1_coefficient",
}


def test_logging_config_defaults_and_round_trip():
    cfg = LoggingConfig()
    assert TopLevelLoggingConfig is LoggingConfig
    assert cfg.log_to_wandb is False and cfg.log_weights_to_wandb is False
    assert (cfg.wandb_project, cfg.wandb_log_frequency, cfg.eval_every_n_wandb_logs) == ("synthsae", 10, 100)
    assert cfg.eval_frequency_steps == 1000
    custom = LoggingConfig(log_to_wandb=True, wandb_project="p", run_name="r", wandb_log_frequency=3)
    d = custom.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert LoggingConfig.from_dict(d) == custom
    with pytest.raises(ValueError, match="unknown key.* in LoggingConfig: 'wandb_projekt' \\(did you mean 'wandb_project'"):
        LoggingConfig.from_dict({"wandb_projekt": "x"})
    with pytest.raises(ValueError, match="wandb_log_frequency"):
        LoggingConfig(wandb_log_frequency=0)


def test_metrics_jsonl_append_only_flushed_and_strict(tmp_path):
    logger = MetricsLogger(tmp_path / "run")
    logger.log({"a": 1.5, "nan": float("nan")}, step=3)
    # flushed: readable while the logger is still open
    assert read_metrics(tmp_path / "run") == [{"step": 3, "sae_index": None, "a": 1.5, "nan": None}]
    logger.close()
    with MetricsLogger(tmp_path / "run") as again:  # a second writer appends
        again.log({"b": 2}, step=4, sae_index=1)
    lines = (tmp_path / "run" / METRICS_FILENAME).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1]) == {"step": 4, "sae_index": 1, "b": 2}
    for line in lines:
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_trainer_writes_metrics_jsonl(tmp_path):
    logger = MetricsLogger(tmp_path)
    cfg = TrainerConfig(total_training_samples=64 * 12, batch_size=64, log_frequency=4, show_progress=False,
                        feature_sampling_window=6)
    Trainer([standard_sae(0), standard_sae(1)], ListData(fixed_batches(12)), cfg, [logger]).fit()
    logger.close()
    records = read_metrics(tmp_path / METRICS_FILENAME)
    train = [r for r in records if "losses/overall_loss" in r]
    assert [(r["step"], r["sae_index"]) for r in train] == [(4, 0), (4, 1), (8, 0), (8, 1), (12, 0), (12, 1)]
    assert all(TRAIN_KEYS <= set(r) for r in train)
    windows = [r for r in records if "metrics/mean_log10_feature_sparsity" in r]
    assert sorted((r["step"], r["sae_index"]) for r in windows) == [(6, 0), (6, 1), (12, 0), (12, 1)]


def test_wandb_offline_logs_the_keys(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    logging_cfg = LoggingConfig(log_to_wandb=True, wandb_project="synthsae-test", run_name="offline")
    logger = MetricsLogger(tmp_path, logging_cfg, wandb_config={"lr": 3e-4})
    assert logger.wandb_run is not None
    cfg = TrainerConfig(total_training_samples=64 * 8, batch_size=64, log_frequency=4, show_progress=False)
    Trainer(standard_sae(), ListData(fixed_batches(8)), cfg, [logger]).fit()
    logger.close()
    for _ in range(100):  # the wandb service may still be writing the run file
        rows = read_wandb_offline_history(tmp_path)
        if sum("losses/overall_loss" in r for r in rows) >= 2:
            break
        time.sleep(0.1)
    train_rows = [r for r in rows if "losses/overall_loss" in r]
    assert [int(r["step"]) for r in train_rows] == [4, 8]
    assert all(TRAIN_KEYS <= set(r) for r in train_rows)
    local = [r for r in read_metrics(tmp_path) if "losses/overall_loss" in r]
    assert float(train_rows[-1]["losses/mse_loss"]) == pytest.approx(local[-1]["losses/mse_loss"])


def test_model_artifact_holds_the_weights_only_when_asked(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}.items():
        monkeypatch.setenv(key, value)
    sae_dir = tmp_path / "sae"
    standard_sae().save_inference_model(sae_dir)
    contents = {}
    for weights in (False, True):
        logger = MetricsLogger(tmp_path / f"wandb_{weights}", LoggingConfig(log_to_wandb=True, log_weights_to_wandb=weights))
        logger.log_model_artifact(sae_dir, "synthetic/run 1", aliases=["final"])
        logger.close()
        for _ in range(40):  # wandb's service writes the run file after close() returns
            records = read_wandb_offline_records(tmp_path / f"wandb_{weights}", missing_ok=True)
            artifacts = [r.artifact for r in records if r.HasField("artifact")]
            if artifacts:
                break
            time.sleep(0.25)
        (artifact,) = artifacts
        assert artifact.name == "synthetic_run_1" and artifact.type == "model"  # made artifact-safe
        contents[weights] = {c.path for c in artifact.manifest.contents}
    assert contents == {False: {"cfg.json"}, True: {"cfg.json", "sae_weights.safetensors"}}


def test_without_wandb_artifacts_and_histograms_are_no_ops(tmp_path):
    logger = MetricsLogger(tmp_path, LoggingConfig(log_weights_to_wandb=True))
    logger.log_model_artifact(tmp_path, "x")
    logger.log_histograms({"w": torch.ones(3)}, step=1)
    logger.close()
    assert read_metrics(tmp_path) == []  # histograms never reach the local log
