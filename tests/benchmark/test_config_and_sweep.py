"""Benchmark config, recipes and the grid of runs (nothing is trained here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthsae.benchmark.config import BenchmarkConfig
from synthsae.benchmark.published import PUBLISHED, published_row
from synthsae.benchmark.recipes import RECIPES, get_recipe
from synthsae.benchmark.sweep import (
    L0_RULE_SCALE,
    L1_RULE_POWER,
    L1_RULE_SCALE,
    DataScale,
    RunSpec,
    build_runs,
    deal_runs,
    estimate_data_scale,
    needs_data_scale,
    plan_runs,
    relative_cost,
    stream_seed,
)
from synthsae.synthetic.synthetic_model import SyntheticModel

TINY_MODEL = {"num_features": 24, "hidden_dim": 12, "seed": 0}
TINY = {"model_config": TINY_MODEL, "architectures": ["topk", "standard"], "l0_targets": [2, 4], "d_sae": 16,
        "training_samples": 4096, "batch_size": 256, "eval_samples": 2000, "show_progress": False}


# ------------------------------------------------------------------ config
def test_config_defaults_round_trip_and_files(tmp_path: Path) -> None:
    cfg = BenchmarkConfig()
    assert cfg.architectures == ["topk", "batchtopk", "standard", "jumprelu"] and cfg.l0_targets == [5, 10, 20]
    assert cfg.seeds == [0] and cfg.model_seeds is None and cfg.l0_control and cfg.recipe is None
    assert cfg.model_label == "preset cpu_small"
    assert BenchmarkConfig.from_dict(cfg.to_dict()) == cfg
    custom = BenchmarkConfig(**{**TINY, "seeds": [3, 1], "coefficients": {"standard": [2.0, 1.0]},
                                "l0_control_settings": {"gain_per_run": 4.0},
                                "sae_settings": {"topk": {"lr": 1e-3, "aux_loss_coefficient": 0.5}}})
    for name in ("bench.json", "bench.yaml"):
        assert BenchmarkConfig.from_file(custom.to_file(tmp_path / name)) == custom
    changed = custom.with_overrides({"sae_settings.standard.lr": 0.01, "l0_targets": [3, 6], "coefficients": None})
    assert changed.sae_settings["standard"] == {"lr": 0.01} and changed.l0_targets == [3, 6]
    assert BenchmarkConfig(model_config=TINY_MODEL).with_overrides({"preset": "cpu_medium"}).model_config is None
    aliased = BenchmarkConfig(architectures="matryoshka, mp", l0_targets=[4], d_sae=16, seeds=2)
    assert aliased.architectures == ["matryoshka_batchtopk", "matching_pursuit"] and aliased.seeds == [2]


def test_recipes_fill_what_is_not_given() -> None:
    cfg = BenchmarkConfig.from_recipe("synthsaebench")
    assert cfg.recipe == "synthsaebench" and cfg.preset == "synth_sae_bench_16k" and cfg.d_sae == 4096
    assert cfg.l0_targets == [15, 20, 25, 30, 35, 40, 45] and cfg.seeds == [0, 1, 2, 3, 4]
    assert (cfg.training_samples, cfg.batch_size, cfg.lr, cfg.eval_samples) == (200_000_000, 1024, 3e-4, 1_000_000)
    assert set(cfg.architectures) == {"batchtopk", "matryoshka_batchtopk", "jumprelu", "standard", "matching_pursuit"}
    smoke = BenchmarkConfig.from_recipe("synthsaebench", {"training_samples": 4096, "seeds": [0]})
    assert smoke.training_samples == 4096 and smoke.seeds == [0] and smoke.d_sae == 4096
    assert BenchmarkConfig.from_dict(smoke.to_dict()) == smoke  # every key is written, so nothing re-fills
    mine = BenchmarkConfig.from_recipe("synthsaebench", {"model_config": TINY_MODEL, "d_sae": 64,
                                                         "l0_targets": [4]})
    assert mine.preset is None and mine.model_config == TINY_MODEL  # a model source replaces the recipe's
    assert BenchmarkConfig.from_recipe(None) == BenchmarkConfig()
    with pytest.raises(ValueError, match="unknown recipe 'nope'; available: default, synthsaebench, cpu"):
        BenchmarkConfig.from_recipe("nope")
    for recipe in RECIPES.values():  # every recipe's defaults make a valid config
        BenchmarkConfig.from_recipe(recipe.name)


def test_published_recipe_settings_per_architecture() -> None:
    recipe = get_recipe("synthsaebench")
    steps = 195_312
    assert recipe.sae_settings("standard", 25, steps, 4096) == {"l1_coefficient": 2.0, "l1_warm_up_steps": steps // 3}
    assert recipe.control_start("standard", steps) == steps // 3 and recipe.control_start("jumprelu", steps) == 0
    mat = recipe.sae_settings("matryoshka_batchtopk", 25, steps, 4096)
    assert mat == {"matryoshka_widths": [128, 512, 2048, 4096], "use_matryoshka_aux_loss": True}
    mp = recipe.sae_settings("matching_pursuit", 25, steps, 4096)
    assert mp == {"residual_threshold": 0.0, "decoder_init_norm": 1.0, "stop_on_duplicate_support": False}
    jr = recipe.sae_settings("jumprelu", 25, steps, 4096)
    assert jr["jumprelu_sparsity_loss_mode"] == "tanh" and jr["jumprelu_bandwidth"] == 2.0
    assert jr["jumprelu_init_threshold"] == 0.5 and jr["decoder_init_norm"] == 0.5
    assert jr["normalize_activations"] == "expected_average_only_in" and jr["jumprelu_tanh_scale"] == 4.0
    assert jr["topk_aux_loss_coefficient"] == 1.0
    assert recipe.sae_settings("batchtopk", 25, steps, 4096) == {}


def test_quadratic_jumprelu_takes_the_target_itself() -> None:
    cfg = BenchmarkConfig(architectures=["jumprelu"], l0_targets=[6], d_sae=32,
                          sae_settings={"jumprelu": {"jumprelu_sparsity_loss_mode": "quadratic"}})
    run = build_runs(cfg, plan_runs(cfg), d_in=12, scale=DataScale(2.0, 5.0, 12))[0]
    assert run.sae.cfg.target_l0 == 6.0 and run.control is None  # no controller on top of its own loss


def test_published_table_is_embedded_with_its_source() -> None:
    from synthsae.benchmark.published import PUBLISHED_SOURCE

    assert "synth_sae_bench.md" in PUBLISHED_SOURCE
    assert published_row("matryoshka_batchtopk", 25)["f1"] == {"mean": 0.8793, "sd": 0.0021}
    assert published_row("batchtopk", 25)["mcc"]["mean"] == 0.7574 and published_row("topk", 25) is None
    assert {l0 for _, l0 in PUBLISHED} == {20, 25} and len(PUBLISHED) == 10
    assert all(sd <= 0.007 for row in PUBLISHED.values() for _, sd in row.values())


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"architectures": ["topk", "nope"]}, r"architectures: no L0 rule for 'nope'"),
        ({"architectures": []}, r"architectures must name at least one"),
        ({"architectures": ["topk", "topk"]}, r"architectures has duplicates"),
        ({"l0_targets": [0]}, r"l0_targets\[0\] must be >= 1"),
        ({"l0_targets": [4, 4]}, r"l0_targets has duplicates"),
        ({"l0_targets": [300]}, r"l0_targets\[0\] must be < d_sae \(256\)"),
        ({"seeds": [1, 1]}, r"seeds has duplicates"),
        ({"seeds": [-1]}, r"seeds\[0\] must be >= 0"),
        ({"seeds": []}, r"seeds must be a non-empty list"),
        ({"model_seeds": [1], "model": "some/dir"}, r"model_seeds: a saved model cannot be rebuilt"),
        ({"recipe": "fast"}, r"unknown recipe 'fast'"),
        ({"training_samples": 10, "batch_size": 64}, r"training_samples must be >= batch_size"),
        ({"lr": 0}, r"lr must be > 0"),
        ({"preset": "cpu_small", "model": "some/dir"}, r"only one of preset, model and model_config"),
        ({"preset": "huge"}, r"preset must be one of .*cpu_small.*got 'huge'"),
        ({"coefficients": {"standard": [1.0]}}, r"coefficients.standard must list one coefficient per L0 target"),
        ({"coefficients": {"topk": [1.0, 1.0, 1.0]}}, r"coefficients.topk: topk takes its k from the L0 targets"),
        ({"coefficients": {"gated": [1, 1, 1]}}, r"coefficients.gated: 'gated' is not in architectures"),
        ({"sae_settings": {"standard": {"l1_coef": 1}}}, r"sae_settings.standard.*'l1_coef' \(did you mean"),
        ({"sae_settings": {"topk": {"d_sae": 8}}}, r"sae_settings.topk: d_sae are set by the benchmark"),
        ({"l0_control_settings": {"target_l0": 3}}, r"l0_control_settings.*'target_l0'"),
        ({"l0_control_settings": {"sharpness": -1}}, r"l0_control_settings: .*sharpness must be > 0"),
        ({"l0_control": "yes"}, r"l0_control"),
        ({"rank_by": "loss"}, r"rank_by must be one of 'f1'"),
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


# ------------------------------------------------------------------ the grid
def test_grid_order_names_and_stream_seeds() -> None:
    cfg = BenchmarkConfig(**{**TINY, "seeds": [0, 1], "model_seeds": [7, 8]})
    specs = plan_runs(cfg)
    assert len(specs) == 2 * 2 * 2 * 2
    assert specs[0] == RunSpec("topk", 2, 0, 7) and specs[-1] == RunSpec("standard", 4, 1, 8)
    assert specs[0].name == "topk_l0-2_seed-0_model-7" and RunSpec("mp", 3, 2).name == "mp_l0-3_seed-2"
    assert len({s.name for s in specs}) == len(specs)
    seeds = {stream_seed(s, p) for s in range(100) for p in range(1, 5)}
    assert len(seeds) == 400  # every (seed, purpose) has its own stream


def test_runs_get_their_sparsity_setting_and_controller() -> None:
    archs = ["topk", "batchtopk", "matryoshka", "matching_pursuit", "standard", "gated", "jumprelu"]
    cfg = BenchmarkConfig(architectures=archs, l0_targets=[4, 8], d_sae=32, coefficients={"gated": [0.5, 0.25]},
                          sae_settings={"standard": {"lr": 1e-3}})
    scale = DataScale(mean_norm=2.0, mean_sq_norm=5.0, dim=12)
    runs = {r.name: r for r in build_runs(cfg, plan_runs(cfg), d_in=12, scale=scale)}
    assert len(runs) == 14
    assert runs["topk_l0-4_seed-0"].sae.cfg.k == 4 and runs["batchtopk_l0-8_seed-0"].sae.cfg.k == 8.0
    assert runs["matryoshka_batchtopk_l0-4_seed-0"].sae.cfg.matryoshka_widths == [8, 16, 32]
    assert runs["matching_pursuit_l0-8_seed-0"].sae.cfg.max_iterations == 8
    std = runs["standard_l0-4_seed-0"]
    assert std.sae.cfg.l1_coefficient == pytest.approx(L1_RULE_SCALE * 2.0 / 4**L1_RULE_POWER) and std.lr == 1e-3
    assert runs["jumprelu_l0-8_seed-0"].sae.cfg.l0_coefficient == pytest.approx(L0_RULE_SCALE * (5.0 / 12) / 8**0.5)
    assert runs["gated_l0-8_seed-0"].sae.cfg.l1_coefficient == 0.25  # given coefficients are the start
    assert std.control.target_l0 == 4.0 and std.control.start_step == 0
    assert runs["topk_l0-4_seed-0"].control is None and runs["matching_pursuit_l0-4_seed-0"].control is None
    assert all(r.sae.cfg.d_sae == 32 and r.sae.cfg.d_in == 12 for r in runs.values())
    off = BenchmarkConfig(architectures=["standard"], l0_targets=[4], d_sae=32, l0_control=False)
    assert build_runs(off, plan_runs(off), d_in=12, scale=scale)[0].control is None
    with pytest.raises(ValueError, match="a coefficient or the data scale is needed"):
        build_runs(BenchmarkConfig(architectures=["standard"], l0_targets=[4]), [RunSpec("standard", 4, 0)], d_in=12)


def test_recipe_coefficients_need_no_data_scale_and_standard_waits_a_third() -> None:
    cfg = BenchmarkConfig.from_recipe("synthsaebench", {"model_config": TINY_MODEL, "d_sae": 256, "l0_targets": [4],
                                                        "training_samples": 30_720, "seeds": [0]})
    assert not needs_data_scale(cfg, plan_runs(cfg))  # standard 2.0 and JumpReLU 0.2 come from the recipe
    runs = {r.architecture: r for r in build_runs(cfg, plan_runs(cfg), d_in=12)}
    assert runs["standard"].sae.cfg.l1_coefficient == 2.0 and runs["standard"].sae.cfg.l1_warm_up_steps == 10
    assert runs["standard"].control.start_step == 10 and runs["jumprelu"].control.start_step == 0
    assert runs["matryoshka_batchtopk"].sae.cfg.matryoshka_widths == [128, 256]


def test_an_sae_starts_from_its_seed_whatever_else_is_built() -> None:
    cfg = BenchmarkConfig(**{**TINY, "seeds": [0, 1]})
    scale = DataScale(2.0, 5.0, 12)
    every = {r.name: r.sae for r in build_runs(cfg, plan_runs(cfg), 12, scale)}
    alone = build_runs(cfg, [RunSpec("standard", 4, 1)], 12, scale)[0].sae
    assert torch.equal(alone.W_dec, every["standard_l0-4_seed-1"].W_dec)
    assert not torch.equal(every["standard_l0-4_seed-0"].W_dec, every["standard_l0-4_seed-1"].W_dec)


def test_data_scale_estimate_leaves_the_sampling_stream_alone() -> None:
    from synthsae.synthetic.model_config import SyntheticModelConfig

    model = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(5)
    expected = SyntheticModel(SyntheticModelConfig.from_dict(TINY_MODEL)).set_sampling_seed(5).sample(8)
    scale = estimate_data_scale(model, num_samples=512, seed=3)
    assert scale == estimate_data_scale(model, num_samples=512, seed=3)
    assert scale.mean_sq_norm >= scale.mean_norm**2  # Jensen
    assert scale.dim == TINY_MODEL["hidden_dim"] and scale.mean_sq_per_dim == scale.mean_sq_norm / scale.dim
    with pytest.raises(ValueError, match="DataScale.dim must be an integer >= 1"):
        DataScale(1.0, 1.0, 0)
    assert torch.equal(model.sample(8), expected)


def test_cpu_recipe_scales_the_published_settings_to_a_short_run() -> None:
    recipe = get_recipe("cpu")
    jr = recipe.sae_settings("jumprelu", 12, 3906, 512)
    # published JumpReLU settings, with an lr at which directly learned thresholds follow the controller
    assert jr["jumprelu_sparsity_loss_mode"] == "tanh" and jr["lr"] == 3e-3
    assert recipe.sae_settings("matryoshka_batchtopk", 12, 3906, 512)["matryoshka_widths"] == [16, 64, 256, 512]
    # many short steps: ~3,900 of batch 256 over 1M samples
    assert recipe.defaults["batch_size"] == 256 and recipe.defaults["training_samples"] == 1_000_000


def test_runs_are_dealt_to_processes_by_cost_within_each_seed_group() -> None:
    cfg = BenchmarkConfig.from_recipe("cpu", {"model_config": TINY_MODEL})
    specs = plan_runs(cfg)  # 5 architectures x 3 seeds
    assert deal_runs(specs, 1, 0) == specs
    shares = [deal_runs(specs, 2, rank) for rank in (0, 1)]
    assert sorted(shares[0] + shares[1], key=specs.index) == specs and not set(shares[0]) & set(shares[1])
    assert all(share == sorted(share, key=specs.index) for share in shares)  # grid order kept
    for seed in cfg.seeds:
        group = [[s.architecture for s in share if s.seed == seed] for share in shares]
        # matching pursuit (cost 3 at L0 12) alone with one cheap SAE; Matryoshka (1.6) with two
        assert group[0] == ["standard", "matching_pursuit"], group
        assert group[1] == ["batchtopk", "matryoshka_batchtopk", "jumprelu"], group
        loads = [sum(relative_cost(s) for s in share if s.seed == seed) for share in shares]
        round_robin = [sum(relative_cost(s) for s in specs[r::2] if s.seed == seed) for r in (0, 1)]
        assert max(loads) < max(round_robin)
    assert relative_cost(RunSpec("matching_pursuit", 12, 0)) == 3.0 and relative_cost(RunSpec("topk", 12, 0)) == 1.0
    with pytest.raises(ValueError, match="rank 2 is out of range for 2 processes"):
        deal_runs(specs, 2, 2)
    with pytest.raises(ValueError, match="world_size must be an integer >= 1, got 0"):
        deal_runs(specs, 0, 0)
