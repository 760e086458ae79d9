"""The CPU fast path that lists non-zero latents gives exactly torch.nonzero's answer."""

import torch

from synthsae.evals.classification import ClassificationMetricsCalculator, _nonzero_2d


def test_nonzero_2d_matches_torch_on_signed_values():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(37, 53, generator=g)
    z[torch.rand(37, 53, generator=g) < 0.8] = 0.0
    z[0, 0], z[1, 1], z[2, 2] = -0.0, float("nan"), float("-inf")
    for tensor in (z, z.double(), z.T, z[:, ::2]):  # float32, float64, non-contiguous
        rows, cols = _nonzero_2d(tensor)
        expected = torch.nonzero(tensor, as_tuple=True)
        assert torch.equal(rows, expected[0]) and torch.equal(cols, expected[1])


def test_sparse_and_dense_counting_agree_with_signed_latents():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(64, 12, generator=g) * (torch.rand(64, 12, generator=g) < 0.3)
    gt = torch.relu(torch.randn(64, 20, generator=g))
    decoder, features = torch.randn(12, 8, generator=g), torch.randn(20, 8, generator=g)
    counts = []
    for strategy in ("sparse", "dense"):
        calc = ClassificationMetricsCalculator(decoder, features, strategy=strategy)
        calc.add_batch(z, gt)
        counts.append(calc.counts())
    for key in ("tp", "fp", "fn", "tn"):
        assert torch.equal(counts[0][key], counts[1][key])
