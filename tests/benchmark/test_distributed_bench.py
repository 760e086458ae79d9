"""``synthsae bench`` under torchrun: two gloo processes split the grid, rank 0 writes, and
the merged result equals a single-process run bit for bit."""

from __future__ import annotations

import contextlib
import csv
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from synthsae.cli import main

WORLD = 2
TINY = {"model_config": {"num_features": 24, "hidden_dim": 12, "seed": 0},
        "architectures": ["topk", "standard", "jumprelu"], "l0_targets": [2, 4], "seeds": [0, 1], "d_sae": 16,
        "training_samples": 4096, "batch_size": 256, "eval_samples": 1000, "plots": False,
        "save_synthetic_model": False}
DEADLINE_S = 180
TIMING = ("train_seconds", "eval_seconds", "samples_per_second")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, root_str: str) -> None:
    torch.set_num_threads(1)
    root = Path(root_str)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    with open(root / f"stdout_rank{rank}.txt", "w") as out, contextlib.redirect_stdout(out):
        code = main(["bench", "--config", str(root / "bench.yaml"), "--output", str(root / "split"), "--quiet",
                     "--threads", "1"])
    (root / f"code_rank{rank}.txt").write_text(f"{code} {dist.is_initialized()}")


def _runs(out: Path) -> list[dict[str, str]]:
    with (out / "leaderboard_runs.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def split_and_single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no torch.distributed gloo backend")
    root = tmp_path_factory.mktemp("bench_ddp")
    (root / "bench.yaml").write_text(yaml.safe_dump(TINY))
    try:
        ctx = mp.start_processes(_worker, args=(_free_port(), str(root)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    except OSError as err:
        pytest.skip(f"cannot start worker processes here: {err}")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the two benchmark processes did not finish within {DEADLINE_S} s")
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
    before = torch.get_num_threads()
    try:  # the single-process run, same threads
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            assert main(["bench", "--config", str(root / "bench.yaml"), "--output", str(root / "single"), "--quiet",
                         "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(before)
    return root


def test_both_ranks_finish_and_only_rank_zero_prints(split_and_single: Path) -> None:
    root = split_and_single
    assert (root / "code_rank0.txt").read_text() == "0 False"  # exit code 0, process group closed
    assert (root / "code_rank1.txt").read_text() == "0 False"
    assert "## L0 = 2" in (root / "stdout_rank0.txt").read_text()
    assert (root / "stdout_rank1.txt").read_text() == ""


def test_the_split_sweep_equals_the_single_process_one(split_and_single: Path) -> None:
    split, single = split_and_single / "split", split_and_single / "single"
    assert (split / "leaderboard.md").read_text() == (single / "leaderboard.md").read_text()
    assert (split / "leaderboard.csv").read_text() == (single / "leaderboard.csv").read_text()
    assert _runs(split) == _runs(single) and len(_runs(split)) == 12
    names = sorted(p.name for p in (single / "saes").iterdir())
    assert sorted(p.name for p in (split / "saes").iterdir()) == names
    for name in names:  # rank 0 wrote every SAE, the other rank's too, with identical weights
        assert (split / "saes" / name / "sae_weights.safetensors").read_bytes() == \
            (single / "saes" / name / "sae_weights.safetensors").read_bytes(), name
