"""Per-L0 tables: mean ± sd over seeds, the published column, the probe row, CSV and JSON."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from synthsae.benchmark.leaderboard import (
    RUN_COLUMNS,
    aggregate,
    format_markdown,
    summary_columns,
    write_csv,
    write_json,
)
from synthsae.benchmark.published import published_row


def _row(arch: str, target: int, seed: int, **metrics: float) -> dict:
    base = {"name": f"{arch}_l0-{target}_seed-{seed}", "architecture": arch, "target_l0": target, "seed": seed,
            "model_seed": None, "l0": float(target), "f1": 0.5, "mcc": 0.5, "precision": 0.5, "recall": 0.5,
            "explained_variance": 0.5, "uniqueness": 0.5, "dead_latents": 0, "d_sae": 8, "shrinkage": 1.0,
            "absorption": None, "knob": "k", "knob_value": target, "final_coefficient": target,
            "train_seconds": 1.0, "eval_seconds": 1.0}
    return {**base, **metrics}


ROWS = [
    _row("batchtopk", 20, 0, f1=0.80, l0=20.1), _row("batchtopk", 20, 1, f1=0.84, l0=19.9),
    _row("standard", 20, 0, f1=0.90, l0=20.5), _row("standard", 20, 1, f1=0.86, l0=20.3),
    _row("batchtopk", 5, 0, f1=0.30), _row("batchtopk", 5, 1, f1=0.34),
    _row("standard", 5, 0, f1=0.20), _row("standard", 5, 1, f1=0.22),
]


def test_aggregate_gives_mean_and_sample_sd_per_architecture_and_target() -> None:
    summaries = aggregate(ROWS)
    assert [(s["architecture"], s["target_l0"], s["n"]) for s in summaries] == [
        ("batchtopk", 20, 2), ("standard", 20, 2), ("batchtopk", 5, 2), ("standard", 5, 2)]
    first = summaries[0]
    assert first["f1_mean"] == pytest.approx(0.82) and first["f1_sd"] == pytest.approx(statistics.stdev([0.8, 0.84]))
    assert first["l0_mean"] == pytest.approx(20.0) and first["seeds"] == [0, 1]
    assert first["absorption_mean"] is None and first["published"] is None  # not measured / not asked for
    single = aggregate(ROWS[:1])[0]
    assert single["f1_mean"] == 0.8 and single["f1_sd"] is None  # one seed: no spread to report


def test_one_table_per_target_ordered_within_it() -> None:
    md = format_markdown(aggregate(ROWS), "f1", title="T", notes=["n1"])
    assert md.startswith("# T\n\n- n1\n")
    at5, at20 = md.index("## L0 = 5"), md.index("## L0 = 20")
    assert at5 < at20
    table5, table20 = md[at5:at20], md[at20:]
    # within L0 = 20 standard (0.88) leads; within L0 = 5 batchtopk (0.32): no ranking across targets
    assert table20.index("| standard") < table20.index("| batchtopk")
    assert table5.index("| batchtopk") < table5.index("| standard")
    assert "0.880 ± 0.028" in table20 and "20.40 ± 0.14" in table20
    assert "Absorption" not in md and "Published" not in md and "Rank" not in md


def test_published_column_and_probe_row() -> None:
    rows = [_row("batchtopk", 25, 0, f1=0.7), _row("jumprelu", 25, 0, f1=0.6), _row("topk", 25, 0)]
    md = format_markdown(aggregate(rows, published_row), "f1", probe={"f1": 0.97, "precision": 0.98, "recall": 0.96})
    assert "Published F1" in md and "0.732 ± 0.001" in md and "0.753 ± 0.001" in md  # batchtopk F1, jumprelu MCC
    topk_line = next(line for line in md.splitlines() if line.startswith("| topk"))
    assert topk_line.rstrip(" |").endswith("-")  # no published number for TopK
    probe_line = next(line for line in md.splitlines() if line.startswith("| probe ceiling"))
    assert "0.970" in probe_line and "0.980" in probe_line


def test_csv_and_json_writers(tmp_path: Path) -> None:
    summaries = aggregate(ROWS, published_row)
    write_csv(tmp_path / "s.csv", summaries, summary_columns())
    write_csv(tmp_path / "r.csv", ROWS, RUN_COLUMNS)
    with (tmp_path / "s.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0]) == summary_columns() and float(lines[0]["f1_mean"]) == pytest.approx(0.82)
    with (tmp_path / "r.csv").open() as f:
        assert [r["name"] for r in csv.DictReader(f)] == [r["name"] for r in ROWS]
    write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.0, float("inf")]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [1.0, None]}
