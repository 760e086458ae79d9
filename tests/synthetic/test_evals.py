"""eval_sae_on_synthetic_data and SyntheticDataEvalResult."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthsae.evals.eval_sae import SyntheticDataEvalResult, eval_sae_on_synthetic_data
from synthsae.evals.initialization import init_sae_to_match_feature_dict
from synthsae.evals.metrics import ClassificationMetrics
from synthsae.synthetic.feature_dictionary import FeatureDictionary
from synthsae.synthetic.sparse_batch import SparseBatch
from synthsae.training.activation_scaler import ActivationScaler


class ReluSAE(nn.Module):
    """Minimal SAE: pre-activations ``(x - b_dec) W_enc + b_enc`` kept where they exceed
    ``threshold`` (plain ReLU at 0), decoded as ``z W_dec + b_dec``."""

    def __init__(self, d_in: int, d_sae: int, seed: int = 0, threshold: float = 0.0) -> None:
        super().__init__()
        self.threshold = threshold
        g = torch.Generator().manual_seed(seed)
        self.W_dec = nn.Parameter(torch.randn(d_sae, d_in, generator=g) / d_in**0.5)
        self.W_enc = nn.Parameter(self.W_dec.detach().T.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        return pre * (pre > self.threshold)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec


class ReplayGenerator:
    """Serves consecutive rows of a fixed pool, so every batching sees the same data."""

    def __init__(self, pool: torch.Tensor, sparse: bool) -> None:
        self.pool, self.pos = pool, 0
        if sparse:
            self.sample_sparse = lambda b: SparseBatch.from_dense(self.sample(b))

    def sample(self, batch_size: int) -> torch.Tensor:
        rows = torch.arange(self.pos, self.pos + batch_size) % self.pool.shape[0]
        self.pos += batch_size
        return self.pool[rows]


def _pool(n: int, probs: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    fires = torch.rand(n, probs.numel(), generator=g) < probs
    return fires * (1.0 + 0.5 * torch.rand(n, probs.numel(), generator=g))


def _orthogonal_dict(num_features: int, hidden_dim: int, bias: bool = False) -> FeatureDictionary:
    fd = FeatureDictionary(num_features, hidden_dim, bias=bias, initializer=None, seed=0)
    q, _ = torch.linalg.qr(
        torch.randn(hidden_dim, hidden_dim, generator=torch.Generator().manual_seed(1))
    )
    with torch.no_grad():
        fd.feature_vectors.copy_(q[:num_features])
    return fd


def _assert_results_close(
    a: SyntheticDataEvalResult, b: SyntheticDataEvalResult, tol: float
) -> None:
    da, db = a.to_log_dict(), b.to_log_dict()
    assert da.keys() == db.keys()
    for key in da:
        assert da[key] == pytest.approx(db[key], abs=tol), key


def test_fields_types_and_ranges() -> None:
    probs = torch.full((12,), 0.2)
    fd = _orthogonal_dict(12, 16, bias=True)
    sae = ReluSAE(16, 24)
    res = eval_sae_on_synthetic_data(
        sae, fd, ReplayGenerator(_pool(3000, probs), sparse=True), num_samples=3000
    )
    assert isinstance(res.dead_latents, int) and 0 <= res.dead_latents <= 24
    assert isinstance(res.classification, ClassificationMetrics)
    for name in ("true_l0", "sae_l0", "shrinkage", "explained_variance", "mcc", "uniqueness"):
        assert isinstance(getattr(res, name), float), name
    assert 0 <= res.mcc <= 1 and 0 < res.uniqueness <= 1
    assert 0 <= res.sae_l0 <= 24 and res.shrinkage >= 0 and res.explained_variance <= 1
    for score in (
        res.classification.precision,
        res.classification.recall,
        res.classification.f1_score,
    ):
        assert 0 <= score <= 1


def test_true_l0_matches_sum_of_probabilities() -> None:
    probs = torch.linspace(0.05, 0.5, 16)
    fd = _orthogonal_dict(16, 32)
    res = eval_sae_on_synthetic_data(
        ReluSAE(32, 16), fd, ReplayGenerator(_pool(20_000, probs), sparse=True), 20_000
    )
    # sd of the mean is sqrt(sum p(1-p) / N) ~ 0.011; allow about 5 sd
    assert res.true_l0 == pytest.approx(float(probs.sum()), abs=0.06)


def test_ground_truth_initialised_sae_is_perfect() -> None:
    probs = torch.full((16,), 0.25)
    fd = _orthogonal_dict(16, 32)
    # a small threshold removes float round-off (~1e-8), which would count as firing
    sae = ReluSAE(32, 16, threshold=1e-4)
    init_sae_to_match_feature_dict(sae, fd)
    res = eval_sae_on_synthetic_data(
        sae, fd, ReplayGenerator(_pool(4000, probs), sparse=True), 4000, batch_size=1000
    )
    assert res.mcc == pytest.approx(1.0, abs=1e-5)
    assert res.uniqueness == 1.0
    assert res.explained_variance == pytest.approx(1.0, abs=1e-5)
    assert res.shrinkage == pytest.approx(1.0, abs=1e-5)
    assert res.sae_l0 == pytest.approx(res.true_l0)
    assert res.dead_latents == 0
    c = res.classification
    assert (c.precision, c.recall, c.f1_score, c.accuracy) == pytest.approx((1.0, 1.0, 1.0, 1.0))


def test_batched_equals_unbatched_for_per_sample_encoder() -> None:
    probs = torch.full((10,), 0.3)
    pool = _pool(2000, probs, seed=2)
    fd = _orthogonal_dict(10, 12, bias=True)
    sae = ReluSAE(12, 20, seed=3)
    whole = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, True), 2000, batch_size=2000)
    pieces = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, True), 2000, batch_size=333)
    default = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, True), 2000)
    _assert_results_close(whole, pieces, 1e-5)
    _assert_results_close(whole, default, 1e-5)
    assert whole.dead_latents == pieces.dead_latents


def test_sae_l0_and_dead_latents_match_direct_count() -> None:
    probs = torch.full((10,), 0.3)
    pool = _pool(800, probs, seed=10)
    fd = _orthogonal_dict(10, 12, bias=True)
    sae = ReluSAE(12, 40, seed=11)
    with torch.no_grad():
        sae.b_enc.copy_(torch.linspace(-3.0, 0.0, 40))  # some latents never fire
    res = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, True), 800, batch_size=300)
    with torch.no_grad():
        z = sae.encode(fd(pool))
    assert res.sae_l0 == pytest.approx(float((z != 0).sum()) / 800)
    assert res.dead_latents == int(((z != 0).sum(0) == 0).sum()) > 0


def test_sparse_and_dense_ground_truth_paths_agree() -> None:
    probs = torch.full((10,), 0.3)
    pool = _pool(1500, probs, seed=4)
    fd = _orthogonal_dict(10, 12)
    sae = ReluSAE(12, 20, seed=5)
    sparse = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, True), 1500, batch_size=500)
    dense = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, False), 1500, batch_size=500)
    assert sparse.classification == dense.classification
    assert sparse.true_l0 == dense.true_l0 and sparse.sae_l0 == dense.sae_l0
    _assert_results_close(sparse, dense, 1e-6)


def test_sparse_coo_generator_output_is_accepted() -> None:
    probs = torch.full((10,), 0.3)
    pool = _pool(600, probs, seed=6)
    fd = _orthogonal_dict(10, 12)
    sae = ReluSAE(12, 20, seed=7)

    class CooGenerator(ReplayGenerator):
        def sample(self, batch_size: int) -> torch.Tensor:
            return super().sample(batch_size).to_sparse()

    coo = eval_sae_on_synthetic_data(sae, fd, CooGenerator(pool, False), 600, batch_size=200)
    dense = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, False), 600, batch_size=200)
    _assert_results_close(coo, dense, 1e-6)


def test_scaler_equals_folded_sae() -> None:
    probs = torch.full((10,), 0.3)
    pool = _pool(1000, probs, seed=8)
    fd = _orthogonal_dict(10, 12, bias=True)
    sae = ReluSAE(12, 16, seed=9)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(16) * 0.1)
        sae.b_dec.copy_(torch.randn(12) * 0.1)
    s = 2.5
    scaled = eval_sae_on_synthetic_data(
        sae, fd, ReplayGenerator(pool, True), 1000, activation_scaler=ActivationScaler(s)
    )
    folded = ReluSAE(12, 16)
    with torch.no_grad():
        folded.W_enc.copy_(sae.W_enc * s)
        folded.W_dec.copy_(sae.W_dec / s)
        folded.b_dec.copy_(sae.b_dec / s)
        folded.b_enc.copy_(sae.b_enc)
    plain = eval_sae_on_synthetic_data(folded, fd, ReplayGenerator(pool, True), 1000)
    _assert_results_close(scaled, plain, 1e-4)
    # and the scaler really changes things relative to no scaler
    unscaled = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(pool, True), 1000)
    # (an ignored scaler would make all three identical; an untrained SAE moves each only a little)
    differences = [
        abs(unscaled.explained_variance - scaled.explained_variance),
        abs(unscaled.shrinkage - scaled.shrinkage),
        abs(unscaled.sae_l0 - scaled.sae_l0),
    ]
    assert max(differences) > 1e-3


def test_signed_latents_count_as_firing() -> None:
    probs = torch.full((8,), 0.3)
    fd = _orthogonal_dict(8, 8)

    class LinearSAE(ReluSAE):
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            pre = x @ self.W_enc
            return pre * (pre.abs() > 1e-4)

    sae = LinearSAE(8, 8)
    init_sae_to_match_feature_dict(sae, fd)
    with torch.no_grad():
        sae.W_enc.neg_()
        sae.W_dec.neg_()
    res = eval_sae_on_synthetic_data(sae, fd, ReplayGenerator(_pool(1000, probs), True), 1000)
    assert res.sae_l0 == pytest.approx(res.true_l0)
    assert res.classification.f1_score == pytest.approx(1.0)
    assert res.explained_variance == pytest.approx(1.0, abs=1e-5)


def test_training_mode_restored_and_no_grad() -> None:
    fd = _orthogonal_dict(6, 8)
    sae = ReluSAE(8, 6)
    seen = {}

    def spy_encode(x: torch.Tensor) -> torch.Tensor:
        seen["training"], seen["grad"] = sae.training, torch.is_grad_enabled()
        return ReluSAE.encode(sae, x)

    sae.encode = spy_encode  # type: ignore[method-assign]
    sae.train()
    eval_sae_on_synthetic_data(
        sae, fd, ReplayGenerator(_pool(100, torch.full((6,), 0.5)), True), 100
    )
    assert seen == {"training": False, "grad": False}
    assert sae.training
    sae.eval()
    eval_sae_on_synthetic_data(
        sae, fd, ReplayGenerator(_pool(100, torch.full((6,), 0.5)), True), 100
    )
    assert not sae.training


def test_plain_object_sae_without_nn_module() -> None:
    fd = _orthogonal_dict(6, 8)
    inner = ReluSAE(8, 6)

    class Foreign:
        W_dec = inner.W_dec.detach()

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return inner.encode(x)

        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return inner.decode(z)

    res = eval_sae_on_synthetic_data(
        Foreign(), fd, ReplayGenerator(_pool(100, torch.full((6,), 0.5)), False), 100
    )
    assert 0 <= res.mcc <= 1


def test_validation_errors() -> None:
    fd = _orthogonal_dict(6, 8)
    gen = ReplayGenerator(_pool(10, torch.full((6,), 0.5)), True)
    with pytest.raises(ValueError, match=r"d_in.*12.*hidden_dim.*8"):
        eval_sae_on_synthetic_data(ReluSAE(12, 6), fd, gen, 10)
    with pytest.raises(ValueError, match="num_samples"):
        eval_sae_on_synthetic_data(ReluSAE(8, 6), fd, gen, 0)
    with pytest.raises(ValueError, match="batch_size"):
        eval_sae_on_synthetic_data(ReluSAE(8, 6), fd, gen, 10, batch_size=-1)
    with pytest.raises(TypeError, match="encode"):
        eval_sae_on_synthetic_data(object(), fd, gen, 10)


def test_log_dict_and_dict_round_trip() -> None:
    res = SyntheticDataEvalResult(
        true_l0=3.0,
        sae_l0=4.0,
        dead_latents=2,
        shrinkage=0.9,
        explained_variance=0.8,
        mcc=0.7,
        uniqueness=0.6,
        classification=ClassificationMetrics(0.1, 0.2, 0.3, 0.4),
    )
    log = res.to_log_dict(prefix="synthetic/")
    assert log == {
        "synthetic/true_l0": 3.0,
        "synthetic/sae_l0": 4.0,
        "synthetic/dead_latents": 2,
        "synthetic/shrinkage": 0.9,
        "synthetic/explained_variance": 0.8,
        "synthetic/mcc": 0.7,
        "synthetic/uniqueness": 0.6,
        "synthetic/classification/precision": 0.1,
        "synthetic/classification/recall": 0.2,
        "synthetic/classification/f1_score": 0.3,
        "synthetic/classification/accuracy": 0.4,
    }
    assert "mcc" in res.to_log_dict()
    nested = res.to_dict()
    assert nested["classification"] == {
        "precision": 0.1,
        "recall": 0.2,
        "f1_score": 0.3,
        "accuracy": 0.4,
    }
    assert SyntheticDataEvalResult.from_dict(nested) == res


def test_default_batch_size_bounds_memory() -> None:
    from synthsae.evals.eval_sae import default_eval_batch_size

    assert default_eval_batch_size(4096, 768, 16_384, dense_ground_truth=False) == 4096
    assert default_eval_batch_size(4096, 768, 16_384, dense_ground_truth=True) == 1024
    assert default_eval_batch_size(16, 32, 16, dense_ground_truth=False) == 65536
