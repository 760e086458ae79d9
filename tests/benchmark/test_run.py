"""Benchmarks end to end on a tiny model: files, seeds, shared streams, resume, output checks."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from synthsae.benchmark import run as run_module
from synthsae.benchmark.config import BenchmarkConfig
from synthsae.benchmark.run import run_benchmark
from synthsae.benchmark.store import RUN_FILENAME
from synthsae.synthetic.synthetic_model import SyntheticModel

TINY_MODEL = {"num_features": 24, "hidden_dim": 12, "seed": 0,
              "hierarchy": {"total_root_nodes": 2, "branching_factor": 2, "max_depth": 1}}
TINY = {"model_config": TINY_MODEL, "architectures": ["topk", "standard"], "l0_targets": [2, 4], "d_sae": 16,
        "seeds": [0, 1], "training_samples": 4096, "batch_size": 256, "eval_samples": 2000, "show_progress": False}
TIMING_COLUMNS = ("train_seconds", "eval_seconds", "samples_per_second")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny SAEs train faster on one thread; results must not depend on the thread count either."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One tiny benchmark, counting Trainer constructions and generated batches."""
    from synthsae.runs import activation_iterator
    from synthsae.training import trainer as trainer_module

    calls = {"trainers": [], "batches": 0}
    init, next_batch = trainer_module.Trainer.__init__, activation_iterator.SyntheticActivationIterator.next_batch

    def counting_init(self, saes, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["trainers"].append(len(saes))
        init(self, saes, *args, **kwargs)

    def counting_next(self):  # type: ignore[no-untyped-def]
        calls["batches"] += 1
        return next_batch(self)

    out = tmp_path_factory.mktemp("bench") / "out"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setattr(trainer_module.Trainer, "__init__", counting_init)
    mp.setattr(activation_iterator.SyntheticActivationIterator, "next_batch", counting_next)
    try:
        result = run_benchmark(BenchmarkConfig(**TINY, output_dir=str(out)))
    finally:
        mp.undo()
        torch.set_num_threads(before)
    return result, out, calls


def _runs_csv(out: Path) -> list[dict[str, str]]:
    with (out / "leaderboard_runs.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


def test_one_trainer_and_one_stream_per_seed(tiny_run: tuple) -> None:
    result, _, calls = tiny_run
    steps = TINY["training_samples"] // TINY["batch_size"]
    assert calls["trainers"] == [4, 4]  # per seed, one Trainer with all four SAEs
    assert calls["batches"] == 2 * steps  # each batch generated once per seed, not once per SAE
    assert [g["batches"] for g in result.timing["groups"]] == [steps, steps]


def test_rows_keep_their_seed_and_tables_aggregate_them(tiny_run: tuple) -> None:
    result, out, _ = tiny_run
    assert [(r["architecture"], r["target_l0"], r["seed"]) for r in result.rows] == [
        (a, t, s) for s in (0, 1) for a in ("topk", "standard") for t in (2, 4)]
    assert all(r["l0"] == pytest.approx(r["target_l0"]) for r in result.rows if r["architecture"] == "topk")
    by_seed = {r["seed"]: r for r in result.rows if r["name"].startswith("standard_l0-4")}
    assert by_seed[0]["f1"] != by_seed[1]["f1"]  # seeds differ in initialisation and data...
    assert len({r.eval["true_l0"] for r in result.records if r.row["seed"] == 0}) == 1  # ...not in the model
    summary = next(s for s in result.summaries if (s["architecture"], s["target_l0"]) == ("standard", 4))
    assert summary["n"] == 2 and summary["f1_mean"] == pytest.approx((by_seed[0]["f1"] + by_seed[1]["f1"]) / 2)
    assert summary["absorption_mean"] is not None  # the model has a hierarchy
    md = (out / "leaderboard.md").read_text()
    assert md == result.markdown() and "## L0 = 2" in md and "## L0 = 4" in md and " ± " in md
    data = json.loads((out / "leaderboard.json").read_text())
    assert {"architecture", "target_l0", "l0", "seed"} <= set(data["runs"][0]) and len(data["runs"]) == 8
    assert len(data["summaries"]) == 4 and data["model"]["true_l0"] == pytest.approx(result.true_l0)
    assert BenchmarkConfig.from_file(out / "benchmark_config.json") == result.config


def test_every_sae_is_saved_with_its_metrics(tiny_run: tuple) -> None:
    from synthsae.benchmark.sweep import EVAL_STREAM, stream_seed
    from synthsae.evals.eval_sae import eval_sae_on_synthetic_data
    from synthsae.saes.base import SAE

    result, out, _ = tiny_run
    model = SyntheticModel.load_from_disk(out / "synthetic_model")
    for record in result.records:
        folder = out / "saes" / record.name
        saved = json.loads((folder / RUN_FILENAME).read_text())
        assert saved["row"] == json.loads(json.dumps(record.row))
        sae = SAE.load_from_disk(folder)
        model.set_sampling_seed(stream_seed(record.row["seed"], EVAL_STREAM))
        again = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                           num_samples=TINY["eval_samples"])
        assert again.sae_l0 == pytest.approx(record.row["l0"]) and again.mcc == pytest.approx(record.row["mcc"])


def test_plots_have_error_bars_per_metric(tiny_run: tuple) -> None:
    pytest.importorskip("matplotlib")
    _, out, _ = tiny_run
    for metric in ("f1", "mcc", "explained_variance", "absorption", "overview"):
        path = out / "plots" / f"{metric}.png"
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", metric


def test_interrupted_benchmark_resumes_to_the_same_tables(tiny_run: tuple, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped after the third SAE is written (in the middle of seed 0's group): the resumed run
    trains the other SAEs of that group on their own and still reproduces every number."""
    _, full, _ = tiny_run
    out = tmp_path / "out"
    cfg = BenchmarkConfig(**TINY, output_dir=str(out))
    written = []
    original = run_module.write_run

    def stop_after_three(folder, record):  # type: ignore[no-untyped-def]
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(record.name)
        return original(folder, record)

    monkeypatch.setattr(run_module, "write_run", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg)
    monkeypatch.setattr(run_module, "write_run", original)
    assert sorted(p.name for p in (out / "saes").iterdir()) == sorted(written)  # each SAE written at once
    assert not (out / "leaderboard.md").exists()
    with pytest.raises(FileExistsError, match="already holds files.*continue it with resume"):
        run_benchmark(cfg)
    resumed = run_benchmark(cfg, resume=True)
    assert len(resumed.rows) == 8
    assert (out / "leaderboard.md").read_text() == (full / "leaderboard.md").read_text()
    assert (out / "leaderboard.csv").read_text() == (full / "leaderboard.csv").read_text()
    assert _runs_csv(out) == _runs_csv(full)
    for name in written:  # finished runs were not trained again
        assert json.loads((out / "saes" / name / RUN_FILENAME).read_text())["row"]["name"] == name


def test_output_folder_is_checked_before_any_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained = []
    monkeypatch.setattr(run_module, "_train", lambda *a, **k: trained.append(1))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot be created"):
        run_benchmark(BenchmarkConfig(**TINY, output_dir=str(blocker / "out")))
    with pytest.raises(FileNotFoundError, match="holds no benchmark_config.json"):
        run_benchmark(BenchmarkConfig(**TINY, output_dir=str(tmp_path / "new")), resume=True)
    assert trained == []


def test_given_model_and_no_output_leave_the_rngs_alone() -> None:
    from synthsae.synthetic.model_config import SyntheticModelConfig

    model = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(9)
    expected = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(9).sample(4)
    cfg = BenchmarkConfig(**{**TINY, "architectures": ["batchtopk"], "l0_targets": [3], "seeds": [0],
                             "training_samples": 512, "eval_samples": 300})
    rng = torch.random.get_rng_state()
    result = run_benchmark(cfg, model=model)
    assert result.output_dir is None and result.files == {} and len(result.rows) == 1
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.equal(model.sample(4), expected)
