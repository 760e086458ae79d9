"""Data-parallel training with torch.distributed: no-op helpers, and two gloo ranks on the CPU.

One spawn of two worker processes (module fixture) runs three scenarios whose results
the tests below read back from files:

1. ``synthsae train`` on a tiny config: the runner joins a process group from torchrun's
   environment variables, only rank 0 writes and prints, and the CLI closes the group;
2. a two-SAE :class:`Trainer` on a group made by ``init_distributed_from_env``: compared
   with a single-process loop that averages the gradients of the two ranks' batches;
3. a resume, through the runner, from the first checkpoint of run 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file, save_file
from training_helpers import D_SAE, standard_sae, synthetic_stream, topk_sae

from synthsae.saes.base import TrainStepInput
from synthsae.training import distributed
from synthsae.training.checkpoint import list_checkpoints, load_state
from synthsae.training.firing_stats import FiringStats
from synthsae.training.logging import read_metrics
from synthsae.training.optim import Adam, clip_scale
from synthsae.training.trainer import Trainer, TrainerCallback, TrainerConfig

WORLD = 2
DATA_SEED = 7  # rank r trains on synthetic_stream(rank_seed(DATA_SEED, r))
BATCH, STEPS, LR, LOG_EVERY = 32, 12, 1e-2, 5
DEAD_WINDOW, SAMPLING_WINDOW = 2, 4  # small enough that TopK's dead-latent loss is active
TINY_RUN = {
    "synthetic_model": {"num_features": 24, "hidden_dim": 12, "seed": 0},
    "sae": {"architecture": "batchtopk", "d_sae": 16, "k": 3},
    "training_samples": 64 * 2 * 10,  # 10 steps of 2 x 64 rows
    "batch_size": 64,
    "lr": 0.01,
    "eval_frequency": 4,
    "eval_samples": 256,
    "n_checkpoints": 2,
    "save_final_checkpoint": True,
}
DEADLINE_S = 150


# ------------------------------------------------------------------ without a process group
def test_helpers_are_no_ops_without_a_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not dist.is_initialized()
    assert not distributed.is_initialized() and not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init_distributed_from_env() is False and not dist.is_initialized()

    sae = standard_sae(0)
    before = {k: v.clone() for k, v in sae.state_dict().items()}
    for p in sae.parameters():
        p.grad = torch.full_like(p, 3.0)
    distributed.average_gradients(list(sae.parameters()))
    distributed.broadcast_parameters(sae)
    assert all(torch.equal(p.grad, torch.full_like(p, 3.0)) for p in sae.parameters())
    assert all(torch.equal(before[k], v) for k, v in sae.state_dict().items())
    mean, total = torch.arange(3.0), torch.ones(2)
    distributed.all_reduce_(mean=[mean], total=[total])
    assert torch.equal(mean, torch.arange(3.0)) and torch.equal(total, torch.ones(2))
    distributed.barrier()
    distributed.destroy_distributed()
    assert distributed.gather_objects({"x": torch.ones(1)})[0]["x"].item() == 1.0
    assert distributed.broadcast_object(5) == 5

    trainer = Trainer(sae, iter(synthetic_stream(0, 8)), TrainerConfig(total_training_samples=16, batch_size=8,
                                                                        show_progress=False))
    assert trainer.world_size == 1 and trainer.is_main_process and trainer.slots[0].world_size == 1
    trainer.fit()
    assert trainer.samples_seen == 16


def test_rank_seed() -> None:
    assert distributed.rank_seed(41, 0) == 41
    seeds = {distributed.rank_seed(s, r) for s in range(50) for r in range(1, 9)}
    assert len(seeds) == 50 * 8 and not seeds & set(range(100))
    assert all(0 <= s < 2**63 for s in seeds)
    assert distributed.rank_seed(3, 2) == distributed.rank_seed(3, 2) != distributed.rank_seed(4, 2)
    for bad in ((-1, 0), (0, -1), (1.5, 1), (True, 1)):
        with pytest.raises(ValueError):
            distributed.rank_seed(*bad)


# ------------------------------------------------------------------ two ranks
def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class _LogCounter(TrainerCallback):
    def __init__(self) -> None:
        self.logs: list[tuple[int, int, dict[str, float]]] = []

    def on_log(self, step: int, metrics: dict[str, float], sae_index: int) -> None:
        self.logs.append((step, sae_index, metrics))


def _trainer_cfg() -> TrainerConfig:
    return TrainerConfig(total_training_samples=BATCH * WORLD * STEPS, batch_size=BATCH, lr=LR, log_frequency=LOG_EVERY,
                         dead_feature_window=DEAD_WINDOW, feature_sampling_window=SAMPLING_WINDOW, show_progress=False)


def _trainer_scenario(rank: int, root: Path) -> None:
    """Rank 1 builds its SAEs from other seeds: the trainer must broadcast rank 0's."""
    saes = [standard_sae(1 + 10 * rank), topk_sae(2 + 10 * rank)]
    stream = synthetic_stream(distributed.rank_seed(DATA_SEED, rank), BATCH)
    first = []

    def data():
        while True:
            batch = next(stream)
            if not first:
                first.append(batch.clone())
            yield batch

    counter = _LogCounter()
    trainer = Trainer(saes, data(), _trainer_cfg(), [counter])
    assert trainer.world_size == WORLD and trainer.is_main_process == (rank == 0)
    trainer.fit()
    tensors = {"first_batch": first[0]}
    for i, slot in enumerate(trainer.slots):
        tensors.update({f"sae{i}.{k}": v.detach().contiguous() for k, v in slot.sae.state_dict().items()})
        tensors.update({f"sae{i}.stats.{k}": v for k, v in slot.stats.state_dict().items()
                        if isinstance(v, torch.Tensor)})
    save_file(tensors, str(root / f"trainer_rank{rank}.safetensors"))
    info = {"step": trainer.step, "samples_seen": trainer.samples_seen, "logs": counter.logs,
            "window_samples": trainer.slots[0].stats.window_samples}
    (root / f"trainer_rank{rank}.json").write_text(json.dumps(info))


def _worker(rank: int, ports: list[int], root_str: str) -> None:
    from synthsae.cli import main
    from synthsae.runs.runner import SyntheticSAERunner

    torch.set_num_threads(1)
    root = Path(root_str)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(ports[0]))
    codes = {}
    # 1. the CLI: the runner creates the process group from the environment, the CLI destroys it
    with open(root / f"stdout_rank{rank}.txt", "w") as out, contextlib.redirect_stdout(out):
        codes["train"] = main(["train", str(root / "run.yaml"), "--quiet", "--json"])
    codes["group_closed_by_cli"] = not dist.is_initialized()
    # 2. the trainer, on a group made here
    os.environ["MASTER_PORT"] = str(ports[1])
    codes["init"] = distributed.init_distributed_from_env(backend="gloo", timeout_s=120)
    _trainer_scenario(rank, root)
    # 3. resume run 1 from its first checkpoint (the runner joins the existing group)
    first = list_checkpoints(root / "ck")[0]
    result = SyntheticSAERunner.resume(first, overrides={"output_path": str(root / "resumed"),
                                                          "checkpoint_path": None}).run()
    state = {k: v.detach().contiguous() for k, v in result.sae.state_dict().items()}
    save_file(state, str(root / f"resumed_rank{rank}.safetensors"))
    codes["resumed_final_eval"] = result.final_eval is not None
    codes["group_kept"] = dist.is_initialized()
    distributed.destroy_distributed()
    (root / f"codes_rank{rank}.json").write_text(json.dumps(codes))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no torch.distributed gloo backend")
    try:
        ports = _free_ports(2)
    except OSError as err:
        pytest.skip(f"no loopback TCP port for the gloo rendezvous: {err}")
    root = tmp_path_factory.mktemp("ddp")
    run = {**TINY_RUN, "output_path": str(root / "out"), "checkpoint_path": str(root / "ck")}
    (root / "run.yaml").write_text(yaml.safe_dump(run))
    try:
        ctx = mp.start_processes(_worker, args=(ports, str(root)), nprocs=WORLD, join=False, start_method="spawn")
    except OSError as err:
        pytest.skip(f"cannot start worker processes here: {err}")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the two-rank run did not finish within {DEADLINE_S} s (deadlock?)")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return root


def _reference(first_batches: list[torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Single process: each step averages the gradients of the two ranks' batches."""
    streams = [synthetic_stream(distributed.rank_seed(DATA_SEED, r), BATCH) for r in range(WORLD)]
    batches = [[next(s) for _ in range(STEPS)] for s in streams]
    for r in range(WORLD):
        assert torch.equal(batches[r][0], first_batches[r]), f"rank {r} did not draw from rank_seed({DATA_SEED}, {r})"
    out: dict[str, torch.Tensor] = {}
    losses: list[float] = []
    cfg = _trainer_cfg()
    for i, sae in enumerate([standard_sae(1), topk_sae(2)]):
        params = [p for p in sae.parameters() if p.requires_grad]
        adam = Adam(params, LR, (cfg.adam_beta1, cfg.adam_beta2))
        stats = FiringStats(D_SAE, "cpu", DEAD_WINDOW, SAMPLING_WINDOW)
        coefs = {k: float(getattr(v, "value", v)) for k, v in sae.get_coefficients().items()}
        for step in range(STEPS):
            if stats.window_full:
                stats.reset_window()
            dead = stats.dead_mask()
            grads, acts, step_losses = [], [], []
            for r in range(WORLD):
                o = sae.training_forward_pass(TrainStepInput(batches[r][step], coefs, dead, step))
                o.loss.backward()
                grads.append([p.grad for p in params])
                acts.append(o.feature_acts.detach())
                step_losses.append(o.loss.detach().float())
                for p in params:
                    p.grad = None
            for p, *gs in zip(params, *grads):
                p.grad = (gs[0] + gs[1]) / WORLD
            stats.update(torch.cat(acts))
            adam.step(LR, grad_scale=clip_scale(params, cfg.max_grad_norm))
            for p in params:
                p.grad = None
            if i == 0:
                losses.append(float((step_losses[0] + step_losses[1]) / WORLD))
        out.update({f"sae{i}.{k}": v for k, v in sae.state_dict().items()})
        out.update({f"sae{i}.stats.{k}": v for k, v in stats.state_dict().items() if isinstance(v, torch.Tensor)})
    return out, losses


def test_ranks_match_a_single_process_run_averaging_their_gradients(two_ranks: Path) -> None:
    results = [load_file(str(two_ranks / f"trainer_rank{r}.safetensors")) for r in range(WORLD)]
    infos = [json.loads((two_ranks / f"trainer_rank{r}.json").read_text()) for r in range(WORLD)]
    assert not torch.equal(results[0]["first_batch"], results[1]["first_batch"])  # each rank its own batches
    for key in results[0]:
        if key != "first_batch":
            assert torch.equal(results[0][key], results[1][key]), f"ranks differ in {key}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' kernels, for a bit-for-bit comparison
    try:
        expected, losses = _reference([results[r]["first_batch"] for r in range(WORLD)])
    finally:
        torch.set_num_threads(threads)
    assert expected["sae1.stats.steps_since_fired"].max() > DEAD_WINDOW  # TopK's dead-latent loss was used
    for key, value in expected.items():
        assert torch.equal(results[0][key], value), f"{key} differs from the single-process reference"
    for info in infos:  # samples count over both ranks; only rank 0 logs
        assert info["step"] == STEPS and info["samples_seen"] == STEPS * BATCH * WORLD
        assert info["window_samples"] == SAMPLING_WINDOW * BATCH * WORLD
    assert infos[1]["logs"] == []
    step_logs = [(step, i, m) for step, i, m in infos[0]["logs"] if "losses/overall_loss" in m]
    assert [(step, i) for step, i, _ in step_logs] == [(5, 0), (5, 1), (10, 0), (10, 1)]
    for step, i, metrics in step_logs:
        if i == 0:  # the mean of the two ranks' losses
            assert metrics["losses/overall_loss"] == pytest.approx(losses[step - 1], rel=1e-6)
    assert any("metrics/mean_log10_feature_sparsity" in m for _, _, m in infos[0]["logs"])


def test_cli_run_writes_once_and_resumes_bit_for_bit(two_ranks: Path) -> None:
    codes = [json.loads((two_ranks / f"codes_rank{r}.json").read_text()) for r in range(WORLD)]
    for c in codes:
        assert c["train"] == 0 and c["group_closed_by_cli"] and c["init"] and c["group_kept"]
    summary = json.loads((two_ranks / "stdout_rank0.txt").read_text())
    assert summary["output_path"] == str(two_ranks / "out") and summary["mcc"] > 0
    assert (two_ranks / "stdout_rank1.txt").read_text() == ""

    records = read_metrics(two_ranks / "out")
    keys = [(r["step"], r.get("event"), tuple(sorted(r))) for r in records]
    assert len(keys) == len(set(keys)), "a metrics line was written twice"
    assert [r["world_size"] for r in records if r.get("event") == "distributed"] == [2]
    assert sorted(r["step"] for r in records if "synthetic/mcc" in r) == [4, 8]  # periodic evals, rank 0 only
    assert [r["step"] for r in records if "losses/overall_loss" in r] == [10]
    assert [r["step"] for r in records if "final/mcc" in r] == [10]

    checkpoints = list_checkpoints(two_ranks / "ck")
    assert [p.name for p in checkpoints] == ["512", "896", "final_1280"]  # 128 global rows a step
    state = load_state(checkpoints[0], "runner_state")
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    gen_states = [s["data"]["generator_state"] for s in state["ranks"]]
    assert not torch.equal(gen_states[0], gen_states[1])
    assert torch.equal(gen_states[0], state["trainer"]["data"]["generator_state"])

    # the resume from the first checkpoint ends where the uninterrupted run ended, on both ranks
    resumed = [load_file(str(two_ranks / f"resumed_rank{r}.safetensors")) for r in range(WORLD)]
    assert resumed[0].keys() == resumed[1].keys() and "topk_threshold" in resumed[0]
    assert all(torch.equal(resumed[0][k], resumed[1][k]) for k in resumed[0])
    final = load_state(checkpoints[-1], "runner_state")["trainer"]["saes"][0]["model"]
    assert all(torch.equal(final[k], resumed[0][k]) for k in final)
    original, again = (load_file(str(two_ranks / d / "sae_weights.safetensors")) for d in ("out", "resumed"))
    assert all(torch.equal(original[k], again[k]) for k in original)
    assert json.loads((two_ranks / "resumed" / "eval_stats.json").read_text()) == \
        json.loads((two_ranks / "out" / "eval_stats.json").read_text())
    assert codes[0]["resumed_final_eval"] and not codes[1]["resumed_final_eval"]
