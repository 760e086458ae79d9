"""SyntheticSAERunner end to end on a tiny model: outputs, eval cadence, exact resume, wandb, errors."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from synthsae import SAE, BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from synthsae.synthetic import (
    HierarchyConfig,
    LowRankCorrelationConfig,
    SyntheticDataEvalResult,
    SyntheticModel,
    SyntheticModelConfig,
    SyntheticSAERunner,
    SyntheticSAERunnerConfig,
)
from synthsae.training.checkpoint import COMPLETE_MARKER, latest_checkpoint, list_checkpoints
from synthsae.training.logging import read_metrics
from synthsae.training.trainer import NonFiniteLossError

MODEL = SyntheticModelConfig(
    num_features=24,
    hidden_dim=12,
    hierarchy=HierarchyConfig(total_root_nodes=2, branching_factor=2, max_depth=2),
    correlation=LowRankCorrelationConfig(rank=2),
    seed=0,
)


def make_cfg(tmp: Path, **kw: Any) -> SyntheticSAERunnerConfig:
    base: dict[str, Any] = dict(
        synthetic_model=MODEL,
        sae={"architecture": "batchtopk", "d_sae": 24, "k": 3},
        training_samples=64 * 20,
        batch_size=64,
        lr=1e-2,
        eval_frequency=0,
        eval_samples=256,
        output_path=str(tmp / "out"),
        checkpoint_path=str(tmp / "ck"),
        show_progress=False,
    )
    base.update(kw)
    return SyntheticSAERunnerConfig(**base)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


FULL = {"n_checkpoints": 4, "eval_frequency": 3, "save_final_checkpoint": True, "save_synthetic_model": True}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One uninterrupted run shared by the output and resume tests."""
    tmp = tmp_path_factory.mktemp("full")
    return tmp, SyntheticSAERunner(make_cfg(tmp, **FULL)).run()


def test_short_run_writes_every_output(full_run: tuple[Path, Any]) -> None:
    tmp, result = full_run
    out = tmp / "out"
    assert result.output_path == out
    for name in ("sae_weights.safetensors", "cfg.json", "runner_config.json", "eval_stats.json",
                 "sparsity.safetensors", "metrics.jsonl", "synthetic_model/synthetic_model_config.json"):
        assert (out / name).is_file(), name
    assert isinstance(result.final_eval, SyntheticDataEvalResult)
    assert json.loads((out / "eval_stats.json").read_text()) == result.final_eval.to_dict()
    assert json.loads((out / "cfg.json").read_text())["architecture"] == "jumprelu"  # batchtopk's inference form
    assert SAE.load_from_disk(out).cfg.d_sae == 24
    saved = SyntheticSAERunnerConfig.from_dict(json.loads((out / "runner_config.json").read_text()))
    assert saved.sae.d_in == 12 and saved.seed == 42
    assert SyntheticModel.load_from_disk(out / "synthetic_model").cfg == MODEL
    from safetensors.torch import load_file

    assert load_file(str(out / "sparsity.safetensors"))["sparsity"].shape == (24,)
    records = read_metrics(out)
    keys = set().union(*records)
    assert {"losses/overall_loss", "losses/mse_loss", "metrics/l0", "metrics/explained_variance",
            "details/current_learning_rate", "synthetic/mcc", "synthetic/classification/f1_score",
            "final/mcc", "final/explained_variance", "final/samples_per_second"} <= keys
    assert result.samples_per_second and result.samples_per_second > 0
    names = [p.name for p in list_checkpoints(tmp / "ck")]
    assert names == ["320", "576", "832", "1088", "final_1280"]  # evenly spaced, plus the final one
    for name in names:
        for file in ("sae_weights.safetensors", "cfg.json", "sparsity.safetensors", "runner_config.json",
                     "runner_state.json", "runner_state.safetensors", COMPLETE_MARKER):
            assert (tmp / "ck" / name / file).is_file(), (name, file)


@pytest.mark.parametrize(
    ("steps", "every", "final", "expected"),
    [(10, 4, True, [4, 8]), (12, 4, True, [4, 8]), (12, 4, False, [4, 8, 12])],
)
def test_eval_cadence_follows_eval_frequency(tmp_path: Path, steps: int, every: int, final: bool,
                                             expected: list[int]) -> None:
    cfg = make_cfg(tmp_path, training_samples=64 * steps, eval_frequency=every, run_final_eval=final,
                   eval_samples=128)
    SyntheticSAERunner(cfg).run()
    records = read_metrics(tmp_path / "out")
    assert [r["step"] for r in records if "synthetic/mcc" in r] == expected
    assert [r["step"] for r in records if "final/mcc" in r] == ([steps] if final else [])


def test_evals_and_seed_do_what_they_say(tmp_path: Path) -> None:
    base = SyntheticSAERunner(make_cfg(tmp_path / "a", seed=3)).run()
    with_evals = SyntheticSAERunner(make_cfg(tmp_path / "b", seed=3, eval_frequency=6)).run()
    other_seed = SyntheticSAERunner(make_cfg(tmp_path / "c", seed=4)).run()
    assert not [r for r in read_metrics(tmp_path / "a" / "out") if "synthetic/mcc" in r]  # eval_frequency=0
    assert_same_weights(base.sae, with_evals.sae)  # evals draw their own stream
    assert base.final_eval == with_evals.final_eval
    assert not torch.equal(base.sae.W_dec, other_seed.sae.W_dec)


def test_resume_after_a_crash_is_bit_identical(full_run: tuple[Path, Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    full = full_run[1]

    original = SyntheticSAERunner._checkpoint
    calls = {"n": 0}

    def crash_after_second(self: SyntheticSAERunner, trainer: Any, final: bool) -> Path:
        path = original(self, trainer, final)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash")
        return path

    monkeypatch.setattr(SyntheticSAERunner, "_checkpoint", crash_after_second)
    cfg = make_cfg(tmp_path / "cut", **FULL)
    with pytest.raises(KeyboardInterrupt):
        SyntheticSAERunner(cfg).run()
    monkeypatch.undo()
    ck = tmp_path / "cut" / "ck"
    assert [p.name for p in list_checkpoints(ck)] == ["320", "576"]
    # a half-written, more advanced checkpoint (no marker) and a temp folder are ignored
    fake = ck / "1000"
    fake.mkdir()
    (fake / "runner_config.json").write_text("{}")
    (ck / ".1100.tmp-1-x").mkdir()
    assert latest_checkpoint(ck) == ck / "576"

    resumed = SyntheticSAERunner.resume(ck).run()
    assert_same_weights(full.sae, resumed.sae)
    assert resumed.final_eval == full.final_eval
    records = read_metrics(tmp_path / "cut" / "out")
    assert any(r.get("event") == "resume" and r["step"] == 9 for r in records)


@pytest.mark.filterwarnings("ignore:SAE 0. the LR schedule differs")
def test_resume_into_another_folder_and_after_divergence(tmp_path: Path) -> None:
    jumprelu = {"architecture": "jumprelu", "d_sae": 24}
    full = SyntheticSAERunner(make_cfg(tmp_path / "a", sae=jumprelu, n_checkpoints=2)).run()
    first = list_checkpoints(tmp_path / "a" / "ck")[0]
    with pytest.raises(NonFiniteLossError, match="mse_loss"):  # a diverging continuation...
        SyntheticSAERunner.resume(first, overrides={"lr": 1e3, "output_path": str(tmp_path / "nan" / "out"),
                                                    "checkpoint_path": str(tmp_path / "nan" / "ck")}).run()
    assert list_checkpoints(tmp_path / "nan" / "ck") == []  # ...writes no checkpoint past the divergence
    runner = SyntheticSAERunner.resume(first, overrides={"output_path": str(tmp_path / "b" / "out"),
                                                         "checkpoint_path": str(tmp_path / "b" / "ck")})
    assert_same_weights(full.sae, runner.run().sae)  # and the last good checkpoint still resumes exactly
    assert (tmp_path / "b" / "out" / "eval_stats.json").is_file()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SyntheticSAERunner.resume(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        SyntheticSAERunner.resume(tmp_path / "empty")


def test_non_finite_loss_stops_the_run_at_once(tmp_path: Path) -> None:
    sae = {"architecture": "jumprelu", "d_sae": 24}
    with pytest.raises(NonFiniteLossError, match=r"step.*mse_loss=nan") as info:
        SyntheticSAERunner(make_cfg(tmp_path, sae=sae, lr=1e3, n_checkpoints=3)).run()
    assert info.value.step <= 10
    assert list_checkpoints(tmp_path / "ck") == []  # nothing written from a diverged state
    events = [r for r in read_metrics(tmp_path / "out") if r.get("event") == "non_finite_loss"]
    assert len(events) == 1 and "mse_loss" in events[0]["error"]


def test_string_sources_fill_or_check_d_in(tmp_path: Path) -> None:
    model_dir = SyntheticModel(MODEL).save(tmp_path / "model")
    cfg = make_cfg(tmp_path, synthetic_model=str(model_dir), sae={"architecture": "topk", "d_sae": 16, "k": 2},
                   training_samples=128, eval_samples=0)
    runner = SyntheticSAERunner(cfg)
    assert runner.sae.cfg.d_in == 12
    assert runner.run().final_eval is None
    bad = make_cfg(tmp_path / "bad", synthetic_model=str(model_dir), sae={"architecture": "topk", "d_sae": 16,
                                                                           "k": 2, "d_in": 10})
    with pytest.raises(ValueError, match=r"sae.d_in \(10\) does not match .*hidden_dim \(12\)"):
        SyntheticSAERunner(bad)
    missing = make_cfg(tmp_path / "missing", synthetic_model=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="synthetic_model: .*nowhere"):
        SyntheticSAERunner(missing)


@pytest.mark.filterwarnings("ignore:autocast_sae")
def test_overrides_and_autocast(tmp_path: Path) -> None:
    model = SyntheticModel(MODEL)
    sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=12, d_sae=8, k=2))
    cfg = make_cfg(tmp_path, autocast_sae=True, autocast_data=True, training_samples=64 * 4, output_path=None)
    result = SyntheticSAERunner(cfg, override_synthetic_model=model, override_sae=sae).run()
    assert result.sae is sae and result.synthetic_model is model and result.output_path is None
    assert torch.isfinite(sae.W_dec).all() and result.final_eval is not None
    wrong = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=5, d_sae=8, k=2))
    with pytest.raises(ValueError, match="override_sae has d_in=5"):
        SyntheticSAERunner(cfg, override_synthetic_model=model, override_sae=wrong)


def _wandb_records(run_dir: Path) -> list[Any]:
    """Every record of an offline run's .wandb transaction log (LevelDB-style framing)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = next(run_dir.rglob("*.wandb")).read_bytes()
    pos, block, chunks, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += room
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            chunks.append(pending + chunk)
    records = []
    for raw in chunks:
        record = pb.Record()
        record.ParseFromString(raw)
        records.append(record)
    return records


def _wandb_history(run_dir: Path) -> list[dict[str, str]]:
    """History rows of an offline run."""
    rows = []
    for record in _wandb_records(run_dir):
        # rows live in history records; the summary updates carry the same keys (the last row
        # once went missing from the history of a run on a loaded machine, not from its summary)
        items = record.history.item if record.HasField("history") else (
            record.summary.update if record.HasField("summary") else None)
        if items is not None:
            rows.append({item.key or "/".join(item.nested_key): item.value_json for item in items})
    return rows


def test_wandb_offline_gets_the_metrics_log_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    # 20 steps; weight histograms every wandb_log_frequency * eval_every_n_wandb_logs = 10 steps
    cfg = make_cfg(tmp_path, eval_frequency=5, logger={"log_to_wandb": True, "wandb_project": "test",
                                                        "wandb_log_frequency": 5, "eval_every_n_wandb_logs": 2,
                                                        "log_weights_to_wandb": True})
    SyntheticSAERunner(cfg).run()
    local = set().union(*(r.keys() for r in read_metrics(tmp_path / "out"))) - {"step", "sae_index"}
    remote = set().union(*_wandb_history(tmp_path))
    for _ in range(20):  # on a loaded machine wandb's service may still be writing the log after finish()
        if local <= remote:
            break
        time.sleep(0.5)
        remote = set().union(*_wandb_history(tmp_path))
    assert {"losses/mse_loss", "metrics/l0", "synthetic/mcc", "final/mcc"} <= local
    assert local <= remote, sorted(local - remote)
    assert "weights/W_dec_norms/_type" in remote  # histograms go to wandb only
    history = [r for r in _wandb_history(tmp_path) if "weights/W_dec_norms/_type" in r and "final/mcc" not in r]
    assert sorted({int(r["step"]) for r in history}) == [10, 20]  # not with the evals at 5 and 15
    for _ in range(40):  # wandb's service writes the artifact record after finish() returns
        artifacts = [r.artifact for r in _wandb_records(tmp_path) if r.HasField("artifact")]
        if artifacts:
            break
        time.sleep(0.25)
    (artifact,) = artifacts
    assert artifact.type == "model" and "final" in artifact.aliases
    assert {c.path for c in artifact.manifest.contents} == {"sae_weights.safetensors", "cfg.json",
                                                          "sparsity.safetensors"}
