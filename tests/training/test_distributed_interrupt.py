"""Two gloo ranks: a SIGTERM that reaches only one rank stops both after the same step, with one
checkpoint holding both ranks' streams, and the resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file

from synthsae.training.checkpoint import list_checkpoints, load_state
from synthsae.training.logging import read_metrics

WORLD, STEPS, LOG_EVERY, SIGNAL_AT_BATCH = 2, 20, 4, 7
RUN = {
    "synthetic_model": {"num_features": 24, "hidden_dim": 12, "seed": 0},
    "sae": {"architecture": "topk", "d_sae": 16, "k": 3},
    "training_samples": 32 * WORLD * STEPS, "batch_size": 32, "lr": 0.01, "seed": 3,
    "eval_frequency": 0, "eval_samples": 256, "n_checkpoints": 1,
    "logger": {"wandb_log_frequency": LOG_EVERY},  # the ranks agree on stopping at logging steps
}
DEADLINE_S = 240


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _signal_rank_one_at(batch: int) -> None:
    import synthsae.runs.runner as runner_module

    base = runner_module.SyntheticActivationIterator
    count = {"n": 0}

    class Stream(base):  # type: ignore[misc, valid-type]
        def __next__(self) -> torch.Tensor:
            count["n"] += 1
            if count["n"] == batch:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().__next__()

    runner_module.SyntheticActivationIterator = Stream


def _worker(rank: int, ports: list[int], root_str: str) -> None:
    import contextlib

    from synthsae.cli import main

    torch.set_num_threads(1)
    root = Path(root_str)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    codes = {}
    with open(root / f"stderr_rank{rank}.txt", "w") as err, contextlib.redirect_stderr(err):
        os.environ["MASTER_PORT"] = str(ports[0])
        codes["full"] = main(["train", str(root / "full.yaml"), "--quiet", "--json"])
        if rank == 1:
            _signal_rank_one_at(SIGNAL_AT_BATCH)
        os.environ["MASTER_PORT"] = str(ports[1])
        codes["cut"] = main(["train", str(root / "cut.yaml"), "--quiet", "--json"])
        os.environ["MASTER_PORT"] = str(ports[2])
        codes["resumed"] = main(["train", "--resume", str(root / "cut"), "--quiet", "--json"])
    (root / f"codes_rank{rank}.json").write_text(json.dumps(codes))


@pytest.mark.slow
def test_sigterm_on_one_rank_stops_both_after_the_same_step(tmp_path: Path) -> None:
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no torch.distributed gloo backend")
    for name in ("full", "cut"):
        run = {**RUN, "output_path": str(tmp_path / name), "checkpoint_path": str(tmp_path / name / "checkpoints")}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(run))
    ctx = mp.start_processes(_worker, args=(_free_ports(3), str(tmp_path)), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not ctx.join(timeout=1):
            assert time.monotonic() < deadline, f"the two-rank runs did not finish within {DEADLINE_S} s"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    codes = [json.loads((tmp_path / f"codes_rank{r}.json").read_text()) for r in range(WORLD)]
    assert codes == [{"full": 0, "cut": 143, "resumed": 0}] * WORLD  # both ranks stopped, 128 + SIGTERM
    stop_step = LOG_EVERY * -(-SIGNAL_AT_BATCH // LOG_EVERY)  # the first logging step at or after the signal
    err = (tmp_path / "stderr_rank0.txt").read_text()
    assert f"interrupted by SIGTERM after step {stop_step}" in err
    assert f"resume with: torchrun --nproc_per_node 2 -m synthsae train --resume {tmp_path / 'cut'}" in err
    interrupted = [p for p in list_checkpoints(tmp_path / "cut" / "checkpoints")
                   if p.name == str(stop_step * 32 * WORLD)]
    assert len(interrupted) == 1 and len(load_state(interrupted[0], "runner_state")["ranks"]) == WORLD
    final = [load_file(str(tmp_path / name / "sae_weights.safetensors")) for name in ("full", "cut")]
    for key in final[0]:
        assert torch.equal(final[0][key], final[1][key]), key
    steps = [r["step"] for r in read_metrics(tmp_path / "cut") if "losses/overall_loss" in r]
    assert steps == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))  # each logging step once
