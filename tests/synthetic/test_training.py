"""SyntheticActivationIterator and train_toy_sae."""

import pytest
import torch

from synthsae import (
    StandardTrainingSAE,
    StandardTrainingSAEConfig,
    TopKTrainingSAE,
    TopKTrainingSAEConfig,
)
from synthsae.synthetic import (
    ActivationGenerator,
    FeatureDictionary,
    SyntheticActivationIterator,
    eval_sae_on_synthetic_data,
    train_toy_sae,
)


def toy(seed: int = 0, num_features: int = 16, hidden_dim: int = 32, p: float = 0.25):
    fd = FeatureDictionary(num_features=num_features, hidden_dim=hidden_dim, seed=seed)
    gen = ActivationGenerator(num_features=num_features, firing_probabilities=torch.ones(num_features) * p, seed=seed)
    return fd, gen


def standard(d_in: int = 32, d_sae: int = 16, l1: float = 5e-2, seed: int = 0) -> StandardTrainingSAE:
    torch.manual_seed(seed)
    return StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d_in, d_sae=d_sae, l1_coefficient=l1))


class DenseOnly:
    """A generator without ``sample_sparse``: the iterator must call it for dense batches."""

    def __init__(self, gen: ActivationGenerator) -> None:
        self.gen = gen

    def __call__(self, batch_size: int) -> torch.Tensor:
        return self.gen.sample(batch_size)


def test_iterator_shape_sparsity_and_values():
    fd, gen = toy(1)
    it = SyntheticActivationIterator(fd, gen, batch_size=512, chunk_batches=1)
    assert iter(it) is it
    batch = next(it)
    assert batch.shape == (512, 32) and batch.dtype == torch.float32 and not batch.requires_grad
    # each row is a sum of ~4 of the 16 unit feature vectors: recover the firing pattern
    coeffs = batch @ fd.feature_vectors.detach().T @ torch.linalg.inv(fd.feature_vectors.detach() @ fd.feature_vectors.detach().T)
    fired = (coeffs.abs() > 0.5).float()
    assert fired.sum(-1).mean().item() == pytest.approx(4.0, abs=0.4)
    # same seed, same batches as the generator's sparse sample through the dictionary
    fd2, gen2 = toy(1)
    with torch.no_grad():
        assert torch.allclose(batch, fd2(gen2.sample_sparse(512)), atol=1e-6)


def test_iterator_maps_each_sampling_lane_and_gives_the_same_batches():
    """Batches drawn in several lanes (CPU, two threads, >= 2 * 512 rows) are mapped through
    the dictionary inside each lane: bit for bit the dictionary of the sparse sample."""
    from synthsae.synthetic.sampling_lanes import MIN_LANE_ROWS

    calls = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        fd, gen = toy(4)
        original = gen.sample_sparse_and_map

        def counted(rows, fn):
            calls.append(rows)
            return original(rows, fn)

        gen.sample_sparse_and_map = counted
        it = SyntheticActivationIterator(fd, gen, batch_size=2 * MIN_LANE_ROWS, chunk_batches=1)
        batches = [next(it) for _ in range(2)]
        fd2, gen2 = toy(4)
        with torch.no_grad():
            expected = [fd2(gen2.sample_sparse(2 * MIN_LANE_ROWS)) for _ in range(2)]
        assert calls == [2 * MIN_LANE_ROWS] * 2
        assert all(torch.equal(a, b) for a, b in zip(batches, expected))
        # under autocast the product stays on the caller's thread (autocast is per thread)
        calls.clear()
        next(SyntheticActivationIterator(fd, gen, batch_size=2 * MIN_LANE_ROWS, autocast=True))
        assert calls == []
    finally:
        torch.set_num_threads(before)


def test_iterator_dense_fallback_matches():
    fd, gen = toy(2)
    dense = SyntheticActivationIterator(fd, DenseOnly(gen), batch_size=64)
    assert dense.chunk_batches == 1  # unknown generator: rows may not be independent
    fd2, gen2 = toy(2)
    with torch.no_grad():
        assert torch.allclose(next(dense), fd2(gen2.sample(64)), atol=1e-6)


def test_iterator_chunks_small_models_and_resumes_mid_chunk():
    fd, gen = toy(4)
    it = SyntheticActivationIterator(fd, gen, batch_size=64)
    assert it.chunk_batches == 64  # 64 x 32 floats per batch: 64 batches per generator call
    batches = [next(it) for _ in range(80)]
    assert all(b.shape == (64, 32) for b in batches)
    rows = torch.cat(batches)
    assert not torch.equal(batches[0], batches[1]) and not torch.equal(batches[0], batches[16])
    fd2, gen2 = toy(4)
    ref = SyntheticActivationIterator(fd2, gen2, batch_size=64, chunk_batches=1)
    ref_rows = torch.cat([next(ref) for _ in range(80)])
    # same distribution: orthonormal features, magnitude 1, so |x|^2 = number fired, mean 16 * 0.25
    for r in (rows, ref_rows):
        assert r.pow(2).sum(-1).mean().item() == pytest.approx(4.0, rel=0.05)
    # a state saved mid-chunk resumes exactly, with both the pending rows and the generator
    it.load_state_dict({"generator_state": None, "pending_rows": None})
    state = it.state_dict()
    again = [next(it) for _ in range(20)]
    it.load_state_dict(state)
    assert all(torch.equal(a, next(it)) for a in again)
    for _ in range(5):
        next(it)
    state = it.state_dict()
    assert state["pending_rows"] is not None and state["pending_rows"].shape[0] % 64 == 0
    tail = [next(it) for _ in range(70)]
    fresh = SyntheticActivationIterator(fd, toy(99)[1], batch_size=64)
    fresh.load_state_dict(state)
    assert all(torch.equal(a, next(fresh)) for a in tail)


def test_iterator_does_not_chunk_with_row_mixing_modifiers():
    fd, _ = toy()
    gen = ActivationGenerator(num_features=16, firing_probabilities=0.25, modify_activations=lambda a: a)
    assert SyntheticActivationIterator(fd, gen, batch_size=64).chunk_batches == 1
    with pytest.raises(ValueError, match="chunk_batches"):
        SyntheticActivationIterator(fd, gen, batch_size=64, chunk_batches=0)


def test_iterator_autocast_and_state():
    fd, gen = toy(3)
    it = SyntheticActivationIterator(fd, gen, batch_size=32, autocast=True)
    assert next(it).dtype == torch.bfloat16
    plain = SyntheticActivationIterator(fd, gen, batch_size=32)
    state = plain.state_dict()
    a = [next(plain) for _ in range(3)]
    plain.load_state_dict(state)
    assert all(torch.equal(x, next(plain)) for x in a)
    with pytest.raises(ValueError, match="batch_size"):
        SyntheticActivationIterator(fd, gen, batch_size=0)


def test_autocast_changes_only_the_dictionary_product():
    # the firing process (low-rank copula thinning, magnitudes) must not run in bf16: with
    # autocast the batch is the full-precision batch rounded to bf16, the same features fired
    from synthsae.synthetic.correlation import generate_random_low_rank_correlation_matrix

    def iterator(autocast: bool) -> SyntheticActivationIterator:
        fd = FeatureDictionary(num_features=256, hidden_dim=32, seed=5)
        corr = generate_random_low_rank_correlation_matrix(256, 8, correlation_scale=0.3, seed=5)
        gen = ActivationGenerator(num_features=256, firing_probabilities=torch.full((256,), 0.05),
                                  std_firing_magnitudes=0.2, correlation_matrix=corr, seed=5)
        return SyntheticActivationIterator(fd, gen, batch_size=512, autocast=autocast)

    ours, plain = iterator(True), iterator(False)
    for _ in range(3):
        a, b = next(ours), next(plain)
        assert a.dtype == torch.bfloat16 and b.dtype == torch.float32
        # bf16 keeps 8 mantissa bits: relative rounding error <= 2^-8 per element
        assert torch.allclose(a.float(), b, rtol=2**-7, atol=1e-6)


def test_train_toy_sae_runs_in_place_and_returns_none():
    fd, gen = toy()
    sae = standard()
    w = sae.W_dec.detach().clone()
    assert train_toy_sae(sae, fd, gen, training_samples=2048, batch_size=256, show_progress=False) is None
    assert not torch.equal(w, sae.W_dec.detach())


def test_snapshots_count_spacing_and_trainer():
    fd, gen = toy()
    steps, samples, trainers = [], [], []

    def snap(trainer):
        steps.append(trainer.step)
        samples.append(trainer.samples_seen)
        trainers.append(trainer)

    train_toy_sae(standard(), fd, gen, training_samples=4096, batch_size=128, n_snapshots=4, snapshot_fn=snap,
                  show_progress=False)
    # thresholds 820, 1640, 2460, 3280 samples; each fires after the first step past it
    assert samples == [896, 1664, 2560, 3328]
    assert steps == [7, 13, 20, 26]
    assert all(t is trainers[0] for t in trainers) and isinstance(trainers[0].sae, StandardTrainingSAE)


def test_no_snapshots_by_default_and_error_without_fn():
    fd, gen = toy()
    train_toy_sae(standard(), fd, gen, training_samples=1024, batch_size=128, show_progress=False)
    sae = standard()
    w = sae.W_dec.detach().clone()
    with pytest.raises(ValueError, match="snapshot_fn"):
        train_toy_sae(sae, fd, gen, training_samples=1024, batch_size=128, n_snapshots=2, show_progress=False)
    assert torch.equal(w, sae.W_dec.detach())  # raised before training


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"training_samples": 100, "batch_size": 128}, "training_samples"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_snapshots": -1}, "n_snapshots"),
    ],
)
def test_bad_arguments(kwargs, match):
    fd, gen = toy()
    with pytest.raises(ValueError, match=match):
        train_toy_sae(standard(), fd, gen, show_progress=False, **kwargs)


def test_d_in_mismatch_names_both():
    fd, gen = toy()
    with pytest.raises(ValueError, match=r"d_in \(24\).*hidden_dim \(32\)"):
        train_toy_sae(standard(d_in=24), fd, gen, training_samples=1024, show_progress=False)


@pytest.mark.parametrize("autocast_sae, autocast_data", [(True, False), (False, True), (True, True)])
def test_autocast_runs(autocast_sae, autocast_data):
    fd, gen = toy()
    sae = standard()
    train_toy_sae(sae, fd, gen, training_samples=1024, batch_size=128, autocast_sae=autocast_sae,
                  autocast_data=autocast_data, show_progress=False)
    assert torch.isfinite(sae.W_dec).all() and sae.W_dec.dtype == torch.float32


def test_topk_trains_with_dead_mask():
    fd, gen = toy(num_features=8, hidden_dim=16)
    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=16, d_sae=32, k=2))
    train_toy_sae(sae, fd, gen, training_samples=2048, batch_size=128, lr=1e-3, show_progress=False)
    assert torch.isfinite(sae.W_dec).all()


def test_docs_toy_recovers_the_features():
    """The docs' basic workflow (16 features in 32 dims, p=0.25, L1 5e-2), on a short budget:
    120k samples at batch 256 and lr 2e-2 (MCC reaches 1.0 after ~80k; the default 10M samples
    at lr 3e-4 take far longer)."""
    fd, gen = toy(seed=0)
    sae = standard()
    train_toy_sae(sae, fd, gen, training_samples=120_000, batch_size=256, lr=2e-2, show_progress=False)
    result = eval_sae_on_synthetic_data(sae, fd, gen, num_samples=20_000)
    assert result.mcc > 0.99
    assert result.explained_variance > 0.95
    assert result.sae_l0 == pytest.approx(4.0, abs=0.3)
