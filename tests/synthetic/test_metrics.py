"""Ground-truth metrics: MCC, uniqueness, classification and the streaming calculators."""

import itertools

import pytest
import torch

from synthsae.evals.metrics import (
    ClassificationMetrics,
    ClassificationMetricsCalculator,
    DeadLatentsCalculator,
    ExplainedVarianceCalculator,
    L0Calculator,
    ShrinkageCalculator,
    best_matching_features,
    compute_classification_metrics,
    feature_uniqueness,
    match_decoder_to_features,
    mean_correlation_coefficient,
)
from synthsae.synthetic.sparse_batch import SparseBatch


def _orthonormal(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    return q[:n].contiguous()


# --------------------------------------------------------------------------- MCC
class TestMeanCorrelationCoefficient:
    def test_identical_permuted_negated_scaled_give_one(self) -> None:
        feats = torch.randn(20, 32, generator=torch.Generator().manual_seed(1))
        perm = torch.randperm(20, generator=torch.Generator().manual_seed(2))
        signs = torch.where(torch.rand(20) > 0.5, 1.0, -1.0)[:, None]
        scales = torch.rand(20, 1) * 10 + 0.1
        assert mean_correlation_coefficient(feats, feats) == pytest.approx(1.0, abs=1e-5)
        assert mean_correlation_coefficient(feats[perm], feats) == pytest.approx(1.0, abs=1e-5)
        assert mean_correlation_coefficient(-feats, feats) == pytest.approx(1.0, abs=1e-5)
        assert mean_correlation_coefficient(feats * signs * scales, feats) == pytest.approx(
            1.0, abs=1e-5
        )

    def test_random_vectors_give_low_value(self) -> None:
        g = torch.Generator().manual_seed(3)
        a, b = torch.randn(30, 512, generator=g), torch.randn(30, 512, generator=g)
        assert mean_correlation_coefficient(a, b) < 0.15

    def test_partial_recovery_is_exact_mean(self) -> None:
        gt = _orthonormal(4, 8)
        extra = _orthonormal(8, 8)[7]
        sae = gt.clone()
        sae[3] = 0.5 * gt[3] + (0.75**0.5) * extra  # |cos| 0.5 with feature 3, 0 with others
        assert mean_correlation_coefficient(sae, gt) == pytest.approx((3 + 0.5) / 4, abs=1e-5)

    def test_matches_brute_force_on_4x4(self) -> None:
        g = torch.Generator().manual_seed(4)
        for _ in range(5):
            a, b = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
            an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
            cos = (an @ bn.T).abs()
            brute = max(
                sum(float(cos[i, p[i]]) for i in range(4)) / 4
                for p in itertools.permutations(range(4))
            )
            assert mean_correlation_coefficient(a, b) == pytest.approx(brute, abs=1e-6)

    def test_greedy_is_not_optimal_but_hungarian_is(self) -> None:
        # latent 0 is closest to feature 0, but the best assignment gives it feature 1
        gt = torch.eye(2)
        sae = torch.tensor([[1.0, 0.9], [1.0, 0.0]])
        an = sae / sae.norm(dim=1, keepdim=True)
        optimal = (float(an[0, 1]) + float(an[1, 0])) / 2
        assert mean_correlation_coefficient(sae, gt) == pytest.approx(optimal, abs=1e-6)

    def test_rectangular_both_ways_and_symmetric(self) -> None:
        gt = _orthonormal(6, 16)
        sae = torch.cat([gt[:3], torch.randn(0, 16)])  # 3 latents, all exact
        assert mean_correlation_coefficient(sae, gt) == pytest.approx(1.0, abs=1e-5)
        assert mean_correlation_coefficient(gt, sae) == pytest.approx(1.0, abs=1e-5)
        g = torch.Generator().manual_seed(5)
        a, b = torch.randn(7, 10, generator=g), torch.randn(12, 10, generator=g)
        assert mean_correlation_coefficient(a, b) == pytest.approx(
            mean_correlation_coefficient(b, a), abs=1e-6
        )

    def test_duplicates_count_once(self) -> None:
        gt = _orthonormal(4, 8)
        sae = torch.stack([gt[0], gt[0], gt[0], gt[0]])
        # one latent matches feature 0 exactly, the others get orthogonal features
        assert mean_correlation_coefficient(sae, gt) == pytest.approx(0.25, abs=1e-5)

    def test_zero_norm_rows_and_empty(self) -> None:
        gt = _orthonormal(3, 8)
        sae = torch.stack([gt[0], torch.zeros(8), gt[2]])
        assert mean_correlation_coefficient(sae, gt) == pytest.approx(2 / 3, abs=1e-5)
        assert mean_correlation_coefficient(torch.zeros(3, 8), gt) == 0.0
        assert mean_correlation_coefficient(torch.zeros(0, 8), gt) == 0.0

    def test_shape_errors(self) -> None:
        with pytest.raises(ValueError, match="dimension"):
            mean_correlation_coefficient(torch.randn(3, 4), torch.randn(3, 5))
        with pytest.raises(ValueError, match="2-D"):
            mean_correlation_coefficient(torch.randn(3), torch.randn(3, 5))


# --------------------------------------------------------------------------- uniqueness / matching
class TestUniqueness:
    def test_all_unique(self) -> None:
        gt = _orthonormal(5, 8)
        assert feature_uniqueness(gt[torch.tensor([4, 2, 0, 1, 3])], gt) == 1.0

    def test_all_same_gives_one_over_n(self) -> None:
        gt = _orthonormal(5, 8)
        assert feature_uniqueness(gt[[1, 1, 1, 1]], gt) == pytest.approx(0.25)

    def test_sign_and_scale_invariant(self) -> None:
        gt = _orthonormal(5, 8)
        sae = gt[[0, 1, 2]] * torch.tensor([[-3.0], [0.1], [7.0]])
        assert feature_uniqueness(sae, gt) == 1.0

    def test_empty(self) -> None:
        assert feature_uniqueness(torch.zeros(0, 8), _orthonormal(5, 8)) == 0.0

    def test_single_matrix_gives_same_values(self) -> None:
        g = torch.Generator().manual_seed(6)
        sae, gt = torch.randn(50, 16, generator=g), torch.randn(70, 16, generator=g)
        match = match_decoder_to_features(sae, gt, chunk_size=7)
        assert match.mcc == pytest.approx(mean_correlation_coefficient(sae, gt), abs=1e-6)
        assert match.uniqueness == feature_uniqueness(sae, gt)
        assert torch.equal(match.best_match, best_matching_features(sae, gt))
        sn, gn = sae / sae.norm(dim=1, keepdim=True), gt / gt.norm(dim=1, keepdim=True)
        assert torch.equal(match.best_match, (sn @ gn.T).abs().argmax(1))


# --------------------------------------------------------------------------- classification
def _two_latent_setup() -> tuple[torch.Tensor, torch.Tensor]:
    gt = _orthonormal(3, 4)
    decoder = torch.stack([gt[2], -gt[0]])  # latent 0 -> feature 2, latent 1 -> feature 0
    return decoder, gt


class TestClassification:
    def test_known_confusion_counts(self) -> None:
        decoder, gt = _two_latent_setup()
        # 6 samples. latent 0 vs feature 2; latent 1 vs feature 0 (latent 1 is signed)
        lat = torch.tensor(
            [[1.0, -2.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.5], [3.0, -1.0], [0.0, 0.0]]
        )
        f = torch.zeros(6, 3)
        f[[0, 1, 4], 2] = 1.0  # feature 2 active in rows 0, 1, 4
        f[[0, 5], 0] = 2.0  # feature 0 active in rows 0, 5
        f[:, 1] = 5.0  # feature 1 (unmatched) always on: must not matter
        calc = ClassificationMetricsCalculator(decoder, gt)
        calc.add_batch(lat, f)
        counts = calc.counts()
        # latent 0 fires rows 0, 2, 4: TP {0,4}=2, FP {2}=1, FN {1}=1, TN {3,5}=2
        # latent 1 fires rows 0, 3, 4: TP {0}=1, FP {3,4}=2, FN {5}=1, TN {1,2}=2
        assert counts["tp"].tolist() == [2, 1]
        assert counts["fp"].tolist() == [1, 2]
        assert counts["fn"].tolist() == [1, 1]
        assert counts["tn"].tolist() == [2, 2]
        m = calc.compute()
        p0, r0, p1, r1 = 2 / 3, 2 / 3, 1 / 3, 1 / 2
        f0, f1 = 2 * p0 * r0 / (p0 + r0), 2 * p1 * r1 / (p1 + r1)
        assert m.precision == pytest.approx((p0 + p1) / 2)
        assert m.recall == pytest.approx((r0 + r1) / 2)
        assert m.f1_score == pytest.approx((f0 + f1) / 2)
        assert m.accuracy == pytest.approx((4 / 6 + 3 / 6) / 2)

    def test_sparse_batch_and_coo_match_dense(self) -> None:
        g = torch.Generator().manual_seed(7)
        gt = torch.randn(40, 16, generator=g)
        decoder = torch.randn(24, 16, generator=g)
        f = torch.rand(64, 40, generator=g) * (torch.rand(64, 40, generator=g) < 0.2)
        f[0, 3] = 0.0
        lat = torch.randn(64, 24, generator=g) * (torch.rand(64, 24, generator=g) < 0.3)
        sb = SparseBatch.from_dense(f)
        # an explicitly stored zero must not count as active
        sb = SparseBatch.from_rows(
            torch.cat([sb.row_ids(), torch.tensor([0])]),
            torch.cat([sb.indices, torch.tensor([3])]),
            torch.cat([sb.values, torch.tensor([0.0])]),
            64,
            40,
        )
        calcs = []
        for strategy in ("sparse", "dense"):
            for gt_acts in (f, sb, f.to_sparse()):
                calc = ClassificationMetricsCalculator(decoder, gt, strategy=strategy)
                calc.add_batch(lat, gt_acts)
                calcs.append(calc)
            two_parts = ClassificationMetricsCalculator(decoder, gt, strategy=strategy)
            two_parts.add_batch(lat[:30], f[:30])
            two_parts.add_batch(lat[30:], SparseBatch.from_dense(f[30:]))
            calcs.append(two_parts)
        base = calcs[0].counts()
        assert int(base["tp"].sum()) > 0 and int(base["fn"].sum()) > 0
        for calc in calcs[1:]:
            for key, value in calc.counts().items():
                assert torch.equal(value, base[key]), key
        # and the dense path agrees with a per-latent loop
        best = best_matching_features(decoder, gt)
        for j in range(24):
            fires, active = lat[:, j] != 0, f[:, best[j]] > 0
            assert int(base["tp"][j]) == int((fires & active).sum())
            assert int(base["fp"][j]) == int((fires & ~active).sum())
            assert int(base["fn"][j]) == int((~fires & active).sum())

    def test_perfect_classifier(self) -> None:
        gt = _orthonormal(4, 8)
        f = (torch.rand(100, 4, generator=torch.Generator().manual_seed(8)) < 0.3).float()
        m = compute_classification_metrics(f * 2.0, f, gt, gt)
        assert (m.precision, m.recall, m.f1_score, m.accuracy) == pytest.approx(
            (1.0, 1.0, 1.0, 1.0)
        )

    def test_no_true_positives_and_undefined_scores_are_zero(self) -> None:
        gt = _orthonormal(2, 4)
        f = torch.zeros(10, 2)
        f[:5, 0] = 1.0
        lat = torch.zeros(10, 2)
        lat[5:, 0] = 1.0  # fires exactly when feature 0 is off; latent 1 never fires
        m = compute_classification_metrics(lat, f, gt, gt)
        # latent 0: TP 0 -> P=R=F1=0, acc 0; latent 1: nothing on either side -> 0,0,0, acc 1
        assert (m.precision, m.recall, m.f1_score) == (0.0, 0.0, 0.0)
        assert m.accuracy == pytest.approx(0.5)

    def test_firing_counts_and_bad_strategy(self) -> None:
        gt = _orthonormal(3, 4)
        lat = torch.tensor([[0.0, -1.0, 2.0], [0.0, 0.0, 1.0]])
        calc = ClassificationMetricsCalculator(gt, gt)
        calc.add_batch(lat, torch.zeros(2, 3))
        assert calc.firing_counts().tolist() == [0, 1, 2] and calc.num_samples == 2
        with pytest.raises(ValueError, match="strategy"):
            ClassificationMetricsCalculator(gt, gt, strategy="fast")

    def test_empty_calculator(self) -> None:
        gt = _orthonormal(2, 4)
        m = ClassificationMetricsCalculator(gt, gt).compute()
        assert m == ClassificationMetrics(0.0, 0.0, 0.0, 0.0)

    def test_shape_errors(self) -> None:
        gt = _orthonormal(2, 4)
        calc = ClassificationMetricsCalculator(gt, gt)
        with pytest.raises(ValueError, match="latents"):
            calc.add_batch(torch.zeros(3, 5), torch.zeros(3, 2))
        with pytest.raises(ValueError, match="features"):
            calc.add_batch(torch.zeros(3, 2), torch.zeros(3, 7))
        with pytest.raises(ValueError, match="rows"):
            calc.add_batch(torch.zeros(3, 2), torch.zeros(4, 2))


# --------------------------------------------------------------------------- calculators
class TestStreamingCalculators:
    def test_l0_counts_nonzero_and_positive_only(self) -> None:
        acts = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 2.0]])
        calc, pos = L0Calculator(), L0Calculator(positive_only=True)
        assert calc.compute() == 0.0
        calc.add_batch(acts)
        pos.add_batch(acts)
        assert calc.compute() == pytest.approx(1.5)
        assert pos.compute() == pytest.approx(1.0)
        sparse = L0Calculator()
        sparse.add_batch(SparseBatch.from_dense(acts))
        sparse.add_batch(acts.to_sparse())
        assert sparse.compute() == pytest.approx(1.5)

    def test_dead_latents_signed(self) -> None:
        calc = DeadLatentsCalculator(4)
        assert calc.compute() == 4
        calc.add_batch(torch.tensor([[0.0, -1.0, 0.0, 0.0]]))
        calc.add_batch(torch.tensor([[0.0, 0.0, 0.0, 3.0]]))
        assert calc.compute() == 2
        with pytest.raises(ValueError):
            calc.add_batch(torch.zeros(1, 5))

    def test_shrinkage(self) -> None:
        calc = ShrinkageCalculator()
        assert calc.compute() == 0.0
        x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
        x_hat = torch.tensor([[0.6, 0.8], [5.0, 5.0], [2.0, 0.0]])
        calc.add_batch(x_hat, x)
        assert calc.compute() == pytest.approx((0.2 + 2.0) / 2)  # the zero row is skipped

    def test_explained_variance_perfect_zero_and_known(self) -> None:
        g = torch.Generator().manual_seed(9)
        x = torch.randn(20_000, 1, generator=g)
        perfect = ExplainedVarianceCalculator(1)
        perfect.add_batch(x, x)
        assert perfect.compute() == pytest.approx(1.0, abs=1e-6)
        zero = ExplainedVarianceCalculator(1)
        zero.add_batch(torch.zeros_like(x), x)
        assert abs(zero.compute()) < 0.05
        known = ExplainedVarianceCalculator(1)
        known.add_batch(x + 0.5 * torch.randn(20_000, 1, generator=g), x)
        assert known.compute() == pytest.approx(0.75, abs=0.03)
        # exact: 1 - SSE / SST on a tiny hand case
        xs = torch.tensor([[1.0], [2.0], [3.0]])
        exact = ExplainedVarianceCalculator(1)
        exact.add_batch(torch.tensor([[1.0], [2.0], [4.0]]), xs)
        assert exact.compute() == pytest.approx(1 - 1 / 2)

    def test_explained_variance_constant_input_and_empty(self) -> None:
        assert ExplainedVarianceCalculator(4).compute() == 0.0
        x = torch.full((100, 4), 7.3)
        perfect = ExplainedVarianceCalculator(4)
        for chunk in x.split(33):
            perfect.add_batch(chunk, chunk)
        assert perfect.compute() == 1.0
        wrong = ExplainedVarianceCalculator(4)
        wrong.add_batch(x + 1.0, x)
        assert wrong.compute() == 0.0

    def test_explained_variance_batch_invariant(self) -> None:
        g = torch.Generator().manual_seed(10)
        x = torch.randn(1000, 8, generator=g) * 3 + 5
        x_hat = x + 0.3 * torch.randn(1000, 8, generator=g)
        single = ExplainedVarianceCalculator(8)
        single.add_batch(x_hat, x)
        batched = ExplainedVarianceCalculator(8)
        for a, b in zip(x_hat.split(77), x.split(77)):
            batched.add_batch(a, b)
        assert batched.compute() == pytest.approx(single.compute(), abs=1e-9)
        assert isinstance(batched.compute(), float)
