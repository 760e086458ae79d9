"""The benchmark package: config, sweep, one shared stream, leaderboard files and plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from synthsae.benchmark.config import BenchmarkConfig
from synthsae.benchmark.leaderboard import COLUMNS, METRICS, format_markdown, rank_rows
from synthsae.benchmark.run import run_benchmark
from synthsae.benchmark.sweep import (
    L0_RULE_SCALE,
    L1_RULE_POWER,
    L1_RULE_SCALE,
    DataScale,
    build_sweep,
    estimate_data_scale,
)
from synthsae.synthetic.synthetic_model import SyntheticModel

TINY_MODEL = {"num_features": 24, "hidden_dim": 12, "seed": 0}
TINY = {"model_config": TINY_MODEL, "architectures": ["topk", "standard"], "l0_targets": [2, 4], "d_sae": 16,
        "training_samples": 4096, "batch_size": 256, "eval_samples": 2000, "show_progress": False}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The tiny SAEs train several times faster on one thread than on two busy ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ config
def test_config_defaults_round_trip_and_files(tmp_path: Path) -> None:
    cfg = BenchmarkConfig()
    assert cfg.architectures == ["topk", "batchtopk", "standard", "jumprelu"] and cfg.l0_targets == [5, 10, 20]
    assert cfg.model_label == "preset cpu_small"
    assert BenchmarkConfig.from_dict(cfg.to_dict()) == cfg
    custom = BenchmarkConfig(**{**TINY, "coefficients": {"standard": [2.0, 1.0]},
                                "sae_settings": {"topk": {"lr": 1e-3, "aux_loss_coefficient": 0.5}}})
    for name in ("bench.json", "bench.yaml"):
        assert BenchmarkConfig.from_file(custom.to_file(tmp_path / name)) == custom
    changed = custom.with_overrides({"sae_settings.standard.lr": 0.01, "l0_targets": [3, 6], "coefficients": None})
    assert changed.sae_settings["standard"] == {"lr": 0.01} and changed.l0_targets == [3, 6]
    assert BenchmarkConfig(model_config=TINY_MODEL).with_overrides({"preset": "cpu_medium"}).model_config is None
    aliased = BenchmarkConfig(architectures="matryoshka, mp", l0_targets=[4], d_sae=16)
    assert aliased.architectures == ["matryoshka_batchtopk", "matching_pursuit"]


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"architectures": ["topk", "nope"]}, r"architectures: no L0 rule for 'nope'"),
        ({"architectures": []}, r"architectures must name at least one"),
        ({"architectures": ["topk", "topk"]}, r"architectures has duplicates"),
        ({"l0_targets": [0]}, r"l0_targets\[0\] must be >= 1"),
        ({"l0_targets": [4, 4]}, r"l0_targets has duplicates"),
        ({"l0_targets": [300]}, r"l0_targets\[0\] must be < d_sae \(256\)"),
        ({"training_samples": 10, "batch_size": 64}, r"training_samples must be >= batch_size"),
        ({"lr": 0}, r"lr must be > 0"),
        ({"preset": "cpu_small", "model": "some/dir"}, r"only one of preset, model and model_config"),
        ({"preset": "huge"}, r"preset must be one of .*cpu_small.*got 'huge'"),
        ({"coefficients": {"standard": [1.0]}}, r"coefficients.standard must list one coefficient per L0 target"),
        ({"coefficients": {"topk": [1.0, 1.0, 1.0]}}, r"coefficients.topk: topk takes its k from the L0 targets"),
        ({"coefficients": {"gated": [1, 1, 1]}}, r"coefficients.gated: 'gated' is not in architectures"),
        ({"sae_settings": {"standard": {"l1_coef": 1}}}, r"sae_settings.standard.*'l1_coef' \(did you mean"),
        ({"sae_settings": {"topk": {"d_sae": 8}}}, r"sae_settings.topk: d_sae are set by the benchmark"),
        ({"rank_by": "loss"}, r"rank_by must be one of 'mcc'"),
        ({"device": "gpu9"}, r"device"),
        ({"dead_feature_window": 0}, r"dead_feature_window must be >= 1"),
    ],
)
def test_config_errors_name_the_field(changes: dict, pattern: str) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        BenchmarkConfig(**changes)


def test_config_file_errors_name_the_file_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text("architecturs: [topk]\n")
    with pytest.raises(ValueError, match=r"bench.yaml: unknown key.*'architecturs' \(did you mean 'architectures'"):
        BenchmarkConfig.from_file(path)
    assert BenchmarkConfig(training_samples=800, batch_size=100).resolved_dead_feature_window() == 1
    assert BenchmarkConfig(training_samples=8_000_000).resolved_dead_feature_window() == 1000


# ------------------------------------------------------------------ sweep
def test_sweep_builds_one_sae_per_architecture_and_target() -> None:
    archs = ["topk", "batchtopk", "matryoshka", "matching_pursuit", "standard", "gated", "jumprelu"]
    cfg = BenchmarkConfig(architectures=archs, l0_targets=[4, 8], d_sae=32, coefficients={"gated": [0.5, 0.25]},
                          sae_settings={"standard": {"lr": 1e-3}})
    scale = DataScale(mean_norm=2.0, mean_sq_norm=5.0)
    runs = build_sweep(cfg, d_in=12, scale=scale)
    assert [r.name for r in runs][:4] == ["topk_l0-4", "topk_l0-8", "batchtopk_l0-4", "batchtopk_l0-8"]
    by = {r.name: r for r in runs}
    assert len(runs) == 14 and all(r.sae.cfg.d_in == 12 and r.sae.cfg.d_sae == 32 for r in runs)
    assert type(by["topk_l0-8"].sae).__name__ == "TopKTrainingSAE" and by["topk_l0-8"].sae.cfg.k == 8
    assert by["batchtopk_l0-4"].sae.cfg.k == 4.0
    matryoshka = by["matryoshka_batchtopk_l0-8"].sae.cfg
    assert matryoshka.k == 8.0 and matryoshka.matryoshka_widths == [8, 16, 32]
    assert by["matching_pursuit_l0-4"].sae.cfg.max_iterations == 4
    assert by["standard_l0-4"].sae.cfg.l1_coefficient == pytest.approx(L1_RULE_SCALE * 2.0 / 4**L1_RULE_POWER)
    assert by["standard_l0-4"].lr == 1e-3 and by["topk_l0-4"].lr == cfg.lr
    assert [by[f"gated_l0-{t}"].sae.cfg.l1_coefficient for t in (4, 8)] == [0.5, 0.25]
    jump = by["jumprelu_l0-8"]
    assert jump.sae.cfg.l0_coefficient == pytest.approx(L0_RULE_SCALE * 5.0 / 8)
    assert jump.lr == 1e-2 and jump.sae.cfg.jumprelu_init_threshold == 0.05
    assert jump.describe()["sae_config"]["architecture"] == "jumprelu"
    # same seed, same shapes: the two TopK SAEs start from the same weights
    assert torch.equal(by["topk_l0-4"].sae.W_enc, by["topk_l0-8"].sae.W_enc)
    with pytest.raises(ValueError, match="coefficient or the data scale"):
        build_sweep(BenchmarkConfig(architectures=["standard"], l0_targets=[4]), d_in=12)


def test_data_scale_estimate_leaves_the_sampling_stream_alone() -> None:
    from synthsae.synthetic.model_config import SyntheticModelConfig

    model = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(5)
    expected = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(5).sample(8)
    scale = estimate_data_scale(model, num_samples=512, seed=3)
    assert torch.equal(model.sample(8), expected)
    assert 0 < scale.mean_norm**2 <= scale.mean_sq_norm
    assert scale == estimate_data_scale(model, num_samples=512, seed=3)


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One tiny benchmark, with counts of Trainer constructions and generated batches."""
    from synthsae.runs import toy_training as training_module
    from synthsae.training import trainer as trainer_module

    calls = {"trainers": [], "batches": 0}
    init, next_batch = trainer_module.Trainer.__init__, training_module.SyntheticActivationIterator.next_batch

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
    mp.setattr(training_module.SyntheticActivationIterator, "next_batch", counting_next)
    try:
        result = run_benchmark(BenchmarkConfig(**TINY, output_dir=str(out)))
    finally:
        mp.undo()
        torch.set_num_threads(before)
    return result, out, calls


def test_one_trainer_drives_every_sae_over_one_stream(tiny_run: tuple) -> None:
    result, _, calls = tiny_run
    steps = TINY["training_samples"] // TINY["batch_size"]
    assert calls["trainers"] == [4]  # one Trainer with all four SAEs
    assert calls["batches"] == steps == result.data_batches  # each batch generated once, not once per SAE
    assert all(r.sae.cfg.d_sae == 16 for r in result.runs) and len(result.evals) == 4


def test_end_to_end_writes_the_leaderboard(tiny_run: tuple) -> None:
    result, out, _ = tiny_run
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "benchmark_config.json"):
        assert (out / name).is_file(), name
    with (out / "leaderboard.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 4
    assert [int(r["rank"]) for r in rows] == sorted(int(r["rank"]) for r in rows)
    for row in rows:
        if row["architecture"] == "topk":  # TopK's achieved L0 is exactly k
            assert float(row["l0"]) == pytest.approx(float(row["target_l0"])) == float(row["knob_value"])
    data = json.loads((out / "leaderboard.json").read_text())
    assert BenchmarkConfig.from_dict(data["config"]).l0_targets == [2, 4]
    assert data["model"]["true_l0"] == pytest.approx(result.true_l0) and data["data_batches"] == 16
    assert {"train_wall_seconds", "data_seconds", "eval_seconds", "total_seconds"} <= set(data["timing"])
    run = data["runs"][0]
    assert set(COLUMNS) <= set(run) and run["eval"]["sae_l0"] == run["l0"] and run["train_seconds"] > 0
    assert {s["architecture"] for s in data["architectures"]} == {"topk", "standard"}
    md = (out / "leaderboard.md").read_text()
    assert "| Rank | Architecture" in md and "one shared stream" in md and md == result.markdown()
    assert BenchmarkConfig.from_file(out / "benchmark_config.json") == result.config


def test_saved_saes_load_and_match_their_evals(tiny_run: tuple) -> None:
    from synthsae.evals.eval_sae import eval_sae_on_synthetic_data
    from synthsae.saes.base import SAE

    result, out, _ = tiny_run
    model = SyntheticModel.load_from_disk(out / "synthetic_model")
    for run, ev in zip(result.runs, result.evals):
        sae = SAE.load_from_disk(out / "saes" / run.name)
        model.set_sampling_seed(result.config.seed + 2)
        again = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                           num_samples=result.config.eval_samples)
        assert again.sae_l0 == pytest.approx(ev.sae_l0) and again.mcc == pytest.approx(ev.mcc)


def test_plots_are_written(tiny_run: tuple) -> None:
    pytest.importorskip("matplotlib")
    _, out, _ = tiny_run
    for metric in [*METRICS, "overview"]:
        path = out / "plots" / f"{metric}.png"
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", metric


def test_run_with_a_given_model_and_no_output(one_thread: None) -> None:
    from synthsae.synthetic.model_config import SyntheticModelConfig

    model = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(9)
    expected = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(9).sample(4)
    cfg = BenchmarkConfig(**{**TINY, "architectures": ["batchtopk"], "l0_targets": [3], "training_samples": 512,
                             "eval_samples": 300})
    rng = torch.random.get_rng_state()
    result = run_benchmark(cfg, model=model)
    assert result.output_dir is None and result.files == {} and len(result.rows) == 1
    assert torch.equal(torch.random.get_rng_state(), rng)  # the global RNG is left alone
    assert torch.equal(model.sample(4), expected)  # and so is the model's own stream


def test_refuses_to_run_on_several_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    # every rank would train the same sweep on the same stream and write the same files
    from synthsae.training import distributed

    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(RuntimeError, match="without torchrun.*2 ranks"):
        run_benchmark(BenchmarkConfig(**TINY))


# ------------------------------------------------------------------ leaderboard
def _row(name: str, arch: str, **metrics: float) -> dict:
    base = {"name": name, "architecture": arch, "target_l0": 5, "l0": 5.0, "knob": "k", "knob_value": 5,
            "mcc": 0.5, "f1": 0.5, "precision": 0.5, "recall": 0.5, "explained_variance": 0.5, "uniqueness": 0.5,
            "dead_latents": 0, "d_sae": 8, "shrinkage": 1.0, "train_seconds": 1.0, "eval_seconds": 1.0}
    return {**base, **metrics}


def test_ranking_directions_and_ties() -> None:
    rows = [_row("a", "x", mcc=0.7, dead_latents=3, shrinkage=0.8), _row("b", "y", mcc=0.9, dead_latents=1,
            shrinkage=1.1), _row("c", "y", mcc=0.7, dead_latents=2, shrinkage=0.95)]
    assert [(r["name"], r["rank"]) for r in rank_rows(rows, "mcc")] == [("b", 1), ("a", 2), ("c", 2)]
    assert [r["name"] for r in rank_rows(rows, "dead_latents")] == ["b", "c", "a"]
    assert [r["name"] for r in rank_rows(rows, "shrinkage")] == ["c", "b", "a"]
    with pytest.raises(ValueError, match="rank_by"):
        rank_rows(rows, "loss")
    md = format_markdown(rank_rows(rows), title="T", notes=["n1"])
    assert md.startswith("# T\n\n- n1\n") and "| y            |    2 | 0.800 |" in md
