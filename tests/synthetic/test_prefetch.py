"""Background batch drawing: same stream, exact state, clean shutdown."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import pytest
import torch

from synthsae.runs.activation_iterator import SyntheticActivationIterator
from synthsae.runs.prefetch import Prefetcher
from synthsae.synthetic import (
    HierarchyConfig,
    SyntheticModel,
    SyntheticModelConfig,
    SyntheticSAERunner,
)

MODEL = SyntheticModelConfig(num_features=40, hidden_dim=16, hierarchy=HierarchyConfig(total_root_nodes=3,
                             branching_factor=2, max_depth=2), seed=3)


def _producer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "synthsae-prefetch"]


@pytest.fixture(scope="module")
def model() -> SyntheticModel:
    return SyntheticModel(MODEL)


def _stream(model: SyntheticModel, prefetch: int, chunk: int, n: int = 24, cut_at: int | None = None,
            resume_prefetch: int | None = None) -> torch.Tensor:
    """``n`` batches; with ``cut_at``, the iterator is saved there and a fresh one (after the
    generator was reseeded) continues from the saved state."""
    model.set_sampling_seed(11)
    it = SyntheticActivationIterator(model.feature_dict, model.activation_generator, 8, chunk_batches=chunk,
                                     prefetch=prefetch)
    out = []
    for i in range(n):
        if i == cut_at:
            time.sleep(0.05)  # let the producer run ahead: the state must account for its queue
            state = it.state_dict()
            it.close()
            model.set_sampling_seed(999)
            it = SyntheticActivationIterator(model.feature_dict, model.activation_generator, 8, chunk_batches=chunk,
                                             prefetch=prefetch if resume_prefetch is None else resume_prefetch)
            it.load_state_dict(state)
        out.append(next(it).clone())
    it.close()
    return torch.stack(out)


@pytest.mark.parametrize("chunk", [1, 3])
def test_prefetching_keeps_the_stream_and_resumes_exactly(model: SyntheticModel, chunk: int) -> None:
    plain = _stream(model, prefetch=0, chunk=chunk)
    assert torch.equal(_stream(model, prefetch=2, chunk=chunk), plain)
    assert torch.equal(_stream(model, prefetch=3, chunk=chunk, cut_at=7), plain)
    # the saved state does not depend on prefetching: either side may resume the other's
    assert torch.equal(_stream(model, prefetch=2, chunk=chunk, cut_at=10, resume_prefetch=0), plain)
    assert torch.equal(_stream(model, prefetch=0, chunk=chunk, cut_at=5, resume_prefetch=2), plain)
    assert not _producer_threads()


@pytest.mark.gpu
def test_prefetching_on_a_gpu_keeps_the_stream() -> None:
    cuda = SyntheticModel(MODEL, device="cuda")
    plain = _stream(cuda, prefetch=0, chunk=1)
    assert plain.is_cuda
    assert torch.equal(_stream(cuda, prefetch=2, chunk=1), plain)
    assert torch.equal(_stream(cuda, prefetch=2, chunk=3, cut_at=7), _stream(cuda, prefetch=0, chunk=3))


def test_no_draw_runs_while_paused() -> None:
    state = {"pausing": False, "violations": 0, "draws": 0}

    def draw() -> int:
        state["violations"] += state["pausing"]
        time.sleep(0.001)
        state["draws"] += 1
        return state["draws"]

    pre = Prefetcher(draw, depth=1)
    values = []
    for _ in range(20):  # each get() frees the slot, so the producer wants to draw during the pause
        values.append(pre.get())
        with pre.paused():
            state["pausing"] = True
            time.sleep(0.005)
            state["pausing"] = False
    pre.close()
    assert state["violations"] == 0
    assert values == list(range(1, 21))


def test_prefetcher_order_errors_and_restart() -> None:
    counter = iter(range(100))

    def draw() -> int:
        value = next(counter)
        if value == 5:
            raise ValueError("draw failed at 5")
        return value

    pre = Prefetcher(draw, depth=2)
    assert [pre.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="draw failed at 5"):
        pre.get()
    assert pre.get() == 6  # a new producer continues after the failed draw
    queued, captured = pre.snapshot(lambda: "state")
    assert captured == "state" and queued == list(range(7, 7 + len(queued)))
    pre.close()
    assert not _producer_threads()
    with pytest.raises(ValueError, match="depth"):
        Prefetcher(draw, depth=0)


def test_dropped_iterator_ends_its_producer(model: SyntheticModel) -> None:
    it = SyntheticActivationIterator(model.feature_dict, model.activation_generator, 8, prefetch=2)
    next(it)
    assert _producer_threads()
    del it
    gc.collect()
    deadline = time.monotonic() + 10
    while _producer_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _producer_threads()


def test_runner_gives_the_same_sae_with_and_without_prefetching(tmp_path: Path) -> None:
    def run(prefetch: int) -> torch.nn.Module:
        from synthsae.synthetic import SyntheticSAERunnerConfig

        cfg = SyntheticSAERunnerConfig(
            synthetic_model=MODEL, sae={"architecture": "batchtopk", "d_sae": 32, "k": 3},
            training_samples=64 * 12, batch_size=64, lr=1e-2, eval_frequency=4, eval_samples=128,
            output_path=None, checkpoint_path=None, show_progress=False, prefetch_batches=prefetch,
        )
        return SyntheticSAERunner(cfg).run().sae

    plain, ahead = run(0).state_dict(), run(2).state_dict()
    for key in plain:
        assert torch.equal(plain[key], ahead[key]), key
    assert not _producer_threads()


def test_toy_training_leaves_the_global_rng_as_without_prefetching(monkeypatch: pytest.MonkeyPatch) -> None:
    import synthsae.runs.toy_training as toy
    from synthsae import StandardTrainingSAE, StandardTrainingSAEConfig
    from synthsae.synthetic import ActivationGenerator, FeatureDictionary, train_toy_sae

    def run(chunks_ahead: int) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
        monkeypatch.setattr(toy, "_PREFETCH_CHUNKS", chunks_ahead)
        torch.manual_seed(0)
        fd = FeatureDictionary(num_features=8, hidden_dim=12)
        gen = ActivationGenerator(num_features=8, firing_probabilities=torch.full((8,), 0.3))  # global RNG
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=12, d_sae=8, l1_coefficient=1e-2))
        snapshots: list[float] = []  # each snapshot draws from the training generator
        train_toy_sae(sae, fd, gen, training_samples=40 * 256, batch_size=256, n_snapshots=3,
                      snapshot_fn=lambda trainer: snapshots.append(float(gen(4).sum())), show_progress=False)
        return sae.W_dec.detach().clone(), torch.rand(3), snapshots

    plain, ahead = run(0), run(1)
    assert torch.equal(plain[0], ahead[0]) and torch.equal(plain[1], ahead[1]) and plain[2] == ahead[2]
