"""Smaller command-line items of issue 12: `synthsae eval` on a bench SAE, `--version`, eval
progress, eval help without "(default: None)", `sample`'s default preset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthsae import TopKTrainingSAE, TopKTrainingSAEConfig
from synthsae._version import __version__
from synthsae.benchmark import BenchmarkConfig
from synthsae.cli import build_parser, main
from synthsae.synthetic import SyntheticModel, SyntheticModelConfig

MODEL = {"num_features": 24, "hidden_dim": 12, "seed": 3}


def _bench_folder(root: Path, save_model: bool) -> Path:
    """The layout `synthsae bench` writes: benchmark_config.json, synthetic_model/, saes/<name>/."""
    cfg = BenchmarkConfig(model_config=MODEL, architectures=["topk"], l0_targets=[5], d_sae=16,
                          save_synthetic_model=save_model)
    cfg.to_file(root / "benchmark_config.json")
    if save_model:
        SyntheticModel(SyntheticModelConfig.from_dict(MODEL)).save(root / "synthetic_model")
    TopKTrainingSAE(TopKTrainingSAEConfig(d_in=12, d_sae=16, k=5)).save_inference_model(root / "saes" / "topk_l0-5")
    return root / "saes" / "topk_l0-5"


@pytest.mark.parametrize("save_model", [True, False])
def test_eval_finds_the_model_of_a_bench_sae(tmp_path: Path, save_model: bool,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    sae_dir = _bench_folder(tmp_path / "bench", save_model)
    assert main(["eval", str(sae_dir), "--samples", "200", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    # the same model as naming it explicitly (saved folder, or rebuilt from the bench config's model_config)
    explicit = tmp_path / "model.json"
    explicit.write_text(json.dumps(MODEL))
    assert main(["eval", str(sae_dir), "--samples", "200", "--json", "--model", str(explicit)]) == 0
    assert json.loads(capsys.readouterr().out)["eval"] == first["eval"]


def test_eval_without_a_model_anywhere_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    TopKTrainingSAE(TopKTrainingSAEConfig(d_in=12, d_sae=16, k=5)).save_inference_model(tmp_path / "sae")
    assert main(["eval", str(tmp_path / "sae")]) == 1
    err = capsys.readouterr().err
    assert "--model is required" in err and "benchmark_config.json" in err and err.count("\n") == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"synthsae {__version__}"


def test_evals_show_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    from synthsae.evals import eval_sae
    from synthsae.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig

    shown: list[dict[str, Any]] = []
    real = eval_sae.progress_bar

    def spy(*args: Any, **kwargs: Any) -> Any:
        shown.append(kwargs)
        return real(*args, **{**kwargs, "show": False})

    monkeypatch.setattr(eval_sae, "progress_bar", spy)
    cfg = SyntheticSAERunnerConfig(MODEL, {"architecture": "topk", "d_sae": 16, "k": 3}, training_samples=256,
                                   batch_size=64, eval_frequency=2, eval_samples=128, output_path=None,
                                   checkpoint_path=None, show_progress=True)
    SyntheticSAERunner(cfg).run()
    # periodic evals at steps 2 (the last one is replaced by the final eval) and the final eval
    assert [k["show"] for k in shown] == [True, True]
    assert all(k.get("delay", 0) >= 1 for k in shown)  # a bar only for an eval that takes a while
    shown.clear()
    SyntheticSAERunner(SyntheticSAERunnerConfig(**{**cfg.__dict__, "show_progress": False})).run()
    assert [k["show"] for k in shown] == [False, False]
    shown.clear()
    sae_dir = _bench_folder(tmp_path / "bench", save_model=True)
    assert main(["eval", str(sae_dir), "--samples", "100"]) == 0
    assert main(["eval", str(sae_dir), "--samples", "100", "--quiet"]) == 0
    assert [k["show"] for k in shown] == [True, False]


def test_eval_help_states_each_default_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text
    assert text.count("default: 100,000") == 1 and text.count("4096") == 1


def test_sample_defaults_to_cpu_small_like_train_and_bench(capsys: pytest.CaptureFixture[str]) -> None:
    from synthsae.benchmark.config import DEFAULT_PRESET as BENCH_PRESET
    from synthsae.commands.train import DEFAULT_JOB

    assert main(["sample", "--batches", "1", "--batch-size", "64", "--json"]) == 0
    source = json.loads(capsys.readouterr().out)["source"]
    assert source == "preset cpu_small" == f"preset {DEFAULT_JOB['synthetic_model']['preset']}" == f"preset {BENCH_PRESET}"
