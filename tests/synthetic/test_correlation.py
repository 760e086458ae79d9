"""Correlation matrices: builders, PSD repair, random generators and validation."""

import logging

import pytest
import torch

from synthsae.synthetic import (
    LowRankCorrelationMatrix,
    create_correlation_matrix_from_correlations,
    generate_random_correlation_matrix,
    generate_random_correlations,
    generate_random_low_rank_correlation_matrix,
)
from synthsae.synthetic.correlation import (
    validate_correlation_matrix,
    validate_low_rank_correlation,
)


def _assert_correlation_matrix(c: torch.Tensor) -> None:
    assert torch.equal(c, c.T)
    torch.testing.assert_close(torch.diagonal(c), torch.ones(c.shape[0], dtype=c.dtype))
    assert torch.linalg.eigvalsh(c.double()).min().item() >= -1e-6


# ------------------------------------------------------- from correlations


def test_identity_default_and_overrides():
    assert torch.equal(create_correlation_matrix_from_correlations(3), torch.eye(3))
    c = create_correlation_matrix_from_correlations(
        3, {(0, 2): 0.4, (2, 1): -0.3}, default_correlation=0.1
    )
    expected = torch.tensor([[1.0, 0.1, 0.4], [0.1, 1.0, -0.3], [0.4, -0.3, 1.0]])
    torch.testing.assert_close(c, expected)
    assert c.dtype == torch.float32
    _assert_correlation_matrix(c)


def test_repair_of_a_non_psd_request():
    request = {(0, 1): 0.9, (1, 2): 0.9, (0, 2): -0.9}  # impossible: 0~1~2 but 0 anti 2
    raw = torch.tensor([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]], dtype=torch.float64)
    assert torch.linalg.eigvalsh(raw).min() < -0.5
    c = create_correlation_matrix_from_correlations(3, request)
    _assert_correlation_matrix(c)
    validate_correlation_matrix(c, 3)
    # the repair moves the values but keeps their signs here
    assert c[0, 1] > 0 and c[1, 2] > 0 and c[0, 2] < 0
    assert not torch.allclose(c, raw.float())


def test_repair_of_a_too_negative_default():
    c = create_correlation_matrix_from_correlations(5, default_correlation=-0.6)
    _assert_correlation_matrix(c)
    validate_correlation_matrix(c, 5)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_features": 0}, "num_features"),
        (
            {"num_features": 3, "correlations": {(0, 3): 0.5}},
            r"correlations.*\(0, 3\).*out of range",
        ),
        ({"num_features": 3, "correlations": {(1, 1): 0.5}}, "diagonal"),
        (
            {"num_features": 3, "correlations": {(0, 1): 1.5}},
            r"correlations\[\(0, 1\)\].*\[-1, 1\]",
        ),
        ({"num_features": 3, "correlations": {(0, 1): float("nan")}}, "correlations"),
        ({"num_features": 3, "default_correlation": -2.0}, "default_correlation"),
    ],
)
def test_create_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        create_correlation_matrix_from_correlations(**kwargs)


def test_create_accepts_numpy_style_integers_and_last_entry_wins():
    np = pytest.importorskip("numpy")
    c = create_correlation_matrix_from_correlations(np.int64(3), {(np.int64(0), 1): 0.2, (1, 0): 0.5})
    assert c[0, 1].item() == c[1, 0].item() == 0.5


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_features": 3, "correlations": {(0, 1.0): 0.5}}, "int feature indices"),
        ({"num_features": 3, "correlations": {0: 0.5}}, r"\(i, j\) pairs"),
    ],
)
def test_create_bad_keys(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        create_correlation_matrix_from_correlations(**kwargs)


# ------------------------------------------------------ random correlations


def test_random_correlations_exact_counts_range_and_seed():
    out = generate_random_correlations(
        10,
        positive_ratio=0.25,
        uncorrelated_ratio=0.2,
        min_correlation_strength=0.3,
        max_correlation_strength=0.6,
        seed=4,
    )
    pairs = 45
    n_corr = pairs - int(pairs * 0.2)  # 36
    assert len(out) == n_corr
    assert sum(v > 0 for v in out.values()) == int(n_corr * 0.25)  # 9
    assert all(0 <= i < j < 10 for i, j in out)
    assert all(0.3 <= abs(v) <= 0.6 for v in out.values())
    assert out == generate_random_correlations(
        10,
        positive_ratio=0.25,
        uncorrelated_ratio=0.2,
        min_correlation_strength=0.3,
        max_correlation_strength=0.6,
        seed=4,
    )
    assert out != generate_random_correlations(10, 0.25, 0.2, 0.3, 0.6, seed=5)


def test_random_correlations_extremes():
    assert generate_random_correlations(6, uncorrelated_ratio=1.0, seed=0) == {}
    assert generate_random_correlations(1, seed=0) == {}
    every = generate_random_correlations(6, positive_ratio=1.0, uncorrelated_ratio=0.0, seed=0)
    assert len(every) == 15 and all(v > 0 for v in every.values())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"positive_ratio": 1.5}, "positive_ratio"),
        ({"uncorrelated_ratio": -0.1}, "uncorrelated_ratio"),
        ({"min_correlation_strength": -0.1}, "min_correlation_strength"),
        ({"max_correlation_strength": 1.2}, "max_correlation_strength"),
        (
            {"min_correlation_strength": 0.7, "max_correlation_strength": 0.5},
            "min_correlation_strength",
        ),
        ({"num_features": 0}, "num_features"),
    ],
)
@pytest.mark.parametrize("fn", [generate_random_correlations, generate_random_correlation_matrix])
def test_random_generators_validate(fn, kwargs, name):
    kwargs = {"num_features": 5, **kwargs}
    with pytest.raises(ValueError, match=name):
        fn(**kwargs)


# ----------------------------------------------------------- random matrix


def test_random_matrix_is_a_valid_correlation_matrix():
    for seed in range(3):
        c = generate_random_correlation_matrix(
            40, positive_ratio=0.7, min_correlation_strength=0.3, seed=seed
        )
        _assert_correlation_matrix(c)
        validate_correlation_matrix(c, 40)


def test_random_matrix_seed_dtype_device_and_global_rng():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = generate_random_correlation_matrix(12, seed=3, dtype=torch.float64)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.dtype == torch.float64 and a.device.type == "cpu"
    assert torch.equal(a, generate_random_correlation_matrix(12, seed=3, dtype=torch.float64))
    assert not torch.equal(a, generate_random_correlation_matrix(12, seed=4, dtype=torch.float64))


def test_random_matrix_small_sizes_are_identity():
    assert torch.equal(generate_random_correlation_matrix(1, seed=0), torch.eye(1))


def test_random_matrix_small_strengths_keep_exact_signs_and_ratios():
    # with strengths <= 0.01 the matrix is diagonally dominant, so no repair happens
    c = generate_random_correlation_matrix(
        60,
        positive_ratio=1.0,
        uncorrelated_ratio=0.4,
        min_correlation_strength=0.005,
        max_correlation_strength=0.01,
        seed=1,
    )
    off = c[~torch.eye(60, dtype=torch.bool)]
    assert (off >= 0).all()
    nonzero = off[off != 0]
    assert nonzero.min() >= 0.005 - 1e-7 and nonzero.max() <= 0.01 + 1e-7
    # 1770 independent pairs, each correlated with p = 0.6: sd of the fraction is
    # sqrt(0.24 / 1770) ~ 0.012, so 0.06 is 5 standard deviations.
    assert abs((off != 0).double().mean().item() - 0.6) < 0.06
    negative = generate_random_correlation_matrix(
        30,
        positive_ratio=0.0,
        uncorrelated_ratio=0.0,
        min_correlation_strength=0.005,
        max_correlation_strength=0.01,
        seed=1,
    )
    assert (negative[~torch.eye(30, dtype=torch.bool)] < 0).all()


def test_random_matrix_all_uncorrelated_is_identity():
    assert torch.equal(
        generate_random_correlation_matrix(8, uncorrelated_ratio=1.0, seed=0), torch.eye(8)
    )


# -------------------------------------------------------------- low rank


def test_low_rank_shapes_unit_diagonal_and_seed():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    lr = generate_random_low_rank_correlation_matrix(50, rank=4, correlation_scale=0.2, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert isinstance(lr, LowRankCorrelationMatrix)
    assert lr.correlation_factor.shape == (50, 4) and lr.correlation_diag.shape == (50,)
    assert (lr.correlation_diag > 0).all()
    implied = lr.correlation_factor.square().sum(1) + lr.correlation_diag
    torch.testing.assert_close(implied, torch.ones(50))
    again = generate_random_low_rank_correlation_matrix(50, rank=4, correlation_scale=0.2, seed=0)
    assert torch.equal(lr.correlation_factor, again.correlation_factor)
    dense = lr.correlation_factor @ lr.correlation_factor.T + torch.diag(lr.correlation_diag)
    validate_correlation_matrix(dense, 50)
    signs = torch.sign(dense[~torch.eye(50, dtype=torch.bool)])
    assert (signs > 0).any() and (signs < 0).any()


def test_low_rank_scale_zero_is_identity_and_strength_grows_with_scale():
    lr = generate_random_low_rank_correlation_matrix(20, rank=3, correlation_scale=0.0, seed=0)
    assert torch.equal(lr.correlation_factor, torch.zeros(20, 3))
    assert torch.equal(lr.correlation_diag, torch.ones(20))
    weak = generate_random_low_rank_correlation_matrix(200, rank=5, correlation_scale=0.05, seed=1)
    strong = generate_random_low_rank_correlation_matrix(
        200, rank=5, correlation_scale=0.15, seed=1
    )
    assert strong.correlation_factor.abs().mean() > 2 * weak.correlation_factor.abs().mean()


def test_low_rank_capping_warns_and_caps(caplog):
    with caplog.at_level(logging.WARNING, logger="synthsae.synthetic.correlation"):
        lr = generate_random_low_rank_correlation_matrix(
            100, rank=30, correlation_scale=0.5, seed=0
        )
    assert any("shrunk" in r.getMessage() for r in caplog.records)
    torch.testing.assert_close(lr.correlation_diag, torch.full((100,), 0.01), atol=1e-6, rtol=0)
    implied = lr.correlation_factor.square().sum(1) + lr.correlation_diag
    torch.testing.assert_close(implied, torch.ones(100))


def test_low_rank_rank_above_num_features():
    lr = generate_random_low_rank_correlation_matrix(5, rank=12, correlation_scale=0.1, seed=0)
    assert lr.correlation_factor.shape == (5, 12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rank": 0}, "rank"),
        ({"rank": -2}, "rank"),
        ({"correlation_scale": -0.1}, "correlation_scale"),
        ({"num_features": 0}, "num_features"),
    ],
)
def test_low_rank_bad_input(kwargs, name):
    kwargs = {"num_features": 10, "rank": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        generate_random_low_rank_correlation_matrix(**kwargs)


# ---------------------------------------------------------------- validation


def test_validate_accepts_a_good_matrix():
    validate_correlation_matrix(torch.tensor([[1.0, 0.5], [0.5, 1.0]]), 2)


@pytest.mark.parametrize(
    ("matrix", "num_features", "pattern"),
    [
        (torch.eye(3)[:, :2], 3, "shape"),  # not square
        (torch.eye(3), 4, r"shape \(4, 4\)"),  # wrong size
        (torch.ones(3), 3, "shape"),  # not 2-D
        (torch.tensor([[1.0, 0.3], [0.1, 1.0]]), 2, "symmetric"),
        (torch.tensor([[1.0, 0.3], [0.3, 2.0]]), 2, "unit diagonal"),
        (
            torch.tensor([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]]),
            3,
            "positive definite",
        ),
        (torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]), 2, "finite"),
    ],
)
def test_validate_rejects(matrix, num_features, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        validate_correlation_matrix(matrix, num_features)
    assert "correlation_matrix" in str(info.value)


def test_validate_rejects_non_tensor():
    with pytest.raises(TypeError, match="correlation_matrix"):
        validate_correlation_matrix([[1.0, 0.0], [0.0, 1.0]], 2)  # type: ignore[arg-type]


def test_validate_low_rank_accepts_tuple_namedtuple_and_pair():
    factor, diag = torch.full((4, 2), 0.1), torch.full((4,), 0.98)
    for result in (
        validate_low_rank_correlation(factor, diag, 4),
        validate_low_rank_correlation((factor, diag), None, 4),
        validate_low_rank_correlation(LowRankCorrelationMatrix(factor, diag), None, 4),
    ):
        assert isinstance(result, LowRankCorrelationMatrix)
        assert result.correlation_factor is factor and result.correlation_diag is diag


@pytest.mark.parametrize(
    ("factor", "diag", "pattern"),
    [
        (torch.zeros(4), torch.ones(4), "correlation_factor must be 2-D"),
        (torch.zeros(3, 2), torch.ones(4), "correlation_factor.*4 rows"),
        (torch.zeros(4, 2), torch.ones(3), r"correlation_diag.*shape \(4,\)"),
        (torch.zeros(4, 2), torch.ones(4, 1), "correlation_diag.*shape"),
        (torch.zeros(4, 2), torch.tensor([1.0, 0.0, 1.0, 1.0]), r"correlation_diag.*> 0"),
        (torch.zeros(4, 2), torch.tensor([1.0, 1.0, -0.5, 1.0]), r"correlation_diag\[2\]"),
        (torch.full((4, 2), float("nan")), torch.ones(4), "correlation_factor.*finite"),
    ],
)
def test_validate_low_rank_rejects(factor, diag, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_low_rank_correlation(factor, diag, 4)


def test_validate_low_rank_type_errors():
    with pytest.raises(TypeError, match="correlation_diag"):
        validate_low_rank_correlation(torch.zeros(4, 2), [1.0] * 4, 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pair"):
        validate_low_rank_correlation((torch.zeros(4, 2),), None, 4)
