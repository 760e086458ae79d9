"""FeatureDictionary: construction, bias modes, seeding and the three forward paths."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from synthsae.synthetic import FeatureDictionary, SparseBatch, compute_superposition_stats


def _sparse_acts(batch: int, features: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, features, generator=gen) < p
    return torch.rand(batch, features, generator=gen) * 2 * mask


def test_shapes_and_unit_norms():
    fd = FeatureDictionary(20, 8, seed=0)
    assert fd.feature_vectors.shape == (20, 8) and fd.bias.shape == (8,)
    assert (fd.num_features, fd.hidden_dim) == (20, 8)
    torch.testing.assert_close(fd.feature_vectors.norm(dim=1), torch.ones(20), rtol=0, atol=1e-5)
    plain = FeatureDictionary(20, 8, initializer=None, seed=0)
    torch.testing.assert_close(plain.feature_vectors.norm(dim=1), torch.ones(20), rtol=0, atol=1e-6)


def test_square_dictionary_becomes_orthonormal():
    fd = FeatureDictionary(16, 16, seed=0)
    v = fd.feature_vectors.detach()
    torch.testing.assert_close(v @ v.T, torch.eye(16), rtol=0, atol=1e-4)


def test_overcomplete_orthogonalisation_beats_random():
    ortho = compute_superposition_stats(FeatureDictionary(16, 14, seed=1))
    rand = compute_superposition_stats(FeatureDictionary(16, 14, initializer=None, seed=1))
    assert ortho.max_abs_cos_sims.max() < 0.15
    assert ortho.max_abs_cos_sims.max() < rand.max_abs_cos_sims.max()
    assert ortho.mean_abs_cos_sim < rand.mean_abs_cos_sim


def test_seed_reproducibility_and_global_rng():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = FeatureDictionary(12, 5, bias=True, seed=3)
    assert torch.equal(torch.get_rng_state(), state), "a seeded build must not touch the global RNG"
    b = FeatureDictionary(12, 5, bias=True, seed=3)
    c = FeatureDictionary(12, 5, bias=True, seed=4)
    assert torch.equal(a.feature_vectors, b.feature_vectors) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.feature_vectors, c.feature_vectors)
    torch.manual_seed(9)
    d = FeatureDictionary(12, 5, initializer=None)
    torch.manual_seed(9)
    assert torch.equal(
        d.feature_vectors, FeatureDictionary(12, 5, initializer=None).feature_vectors
    )


def test_bias_modes():
    off = FeatureDictionary(6, 4, bias=False, seed=0)
    assert torch.equal(off.bias, torch.zeros(4)) and not off.bias.requires_grad
    on = FeatureDictionary(6, 4, bias=True, seed=0)
    assert on.bias.norm().item() == pytest.approx(1.0) and on.bias.requires_grad
    scaled = FeatureDictionary(6, 4, bias=2.5, seed=0)
    assert scaled.bias.norm().item() == pytest.approx(2.5) and scaled.bias.requires_grad
    # the same direction for every norm, and it is drawn after the vectors
    torch.testing.assert_close(scaled.bias, 2.5 * on.bias)
    assert torch.equal(on.feature_vectors, off.feature_vectors)


def test_initializer_is_called_with_the_dictionary():
    seen = []

    def init(fd):
        seen.append(fd)
        with torch.no_grad():
            fd.feature_vectors.mul_(-1)

    plain = FeatureDictionary(5, 3, initializer=None, seed=0)
    flipped = FeatureDictionary(5, 3, initializer=init, seed=0)
    assert seen == [flipped]
    assert torch.equal(flipped.feature_vectors, -plain.feature_vectors)


def test_forward_is_linear_combination_plus_bias_on_every_path():
    fd = FeatureDictionary(10, 6, bias=0.7, seed=2)
    acts = _sparse_acts(9, 10)
    acts[3] = 0  # an empty row
    expected = acts @ fd.feature_vectors.detach() + fd.bias.detach()
    dense = fd(acts)
    coo = fd(acts.to_sparse())
    batch = fd(SparseBatch.from_dense(acts))
    for out in (dense, coo, batch):
        assert out.shape == (9, 6) and out.dtype == torch.float32
        torch.testing.assert_close(out, expected)
    torch.testing.assert_close(batch[3], fd.bias.detach())


def test_forward_leading_dims_and_dtype_cast():
    fd = FeatureDictionary(4, 3, initializer=None, seed=0)
    acts = torch.rand(2, 5, 4)
    assert fd(acts).shape == (2, 5, 3)
    torch.testing.assert_close(fd(acts.double()), fd(acts))


def test_sparse_batch_gradients_match_dense():
    acts = _sparse_acts(7, 10)
    grads = []
    for make in (lambda a: a, SparseBatch.from_dense):
        fd = FeatureDictionary(10, 4, bias=True, seed=0)
        (fd(make(acts)) ** 2).sum().backward()
        grads.append((fd.feature_vectors.grad, fd.bias.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_bf16_autocast_and_bf16_values():
    fd = FeatureDictionary(10, 6, bias=True, seed=0)
    acts = _sparse_acts(8, 10)
    expected = fd(acts).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dense = fd(acts)
        batch = fd(SparseBatch.from_dense(acts))
        coo = fd(acts.to_sparse())
    # the sparse paths leave autocast and stay exact; dense matmul runs in bf16 (~3 digits)
    torch.testing.assert_close(batch, expected)
    torch.testing.assert_close(coo, expected)
    torch.testing.assert_close(dense.float(), expected, rtol=2e-2, atol=2e-2)
    bf16_batch = SparseBatch.from_dense(acts.bfloat16())
    torch.testing.assert_close(fd(bf16_batch), fd(SparseBatch.from_dense(acts.bfloat16().float())))


def test_sparse_batch_path_never_builds_batch_by_features():
    fd = FeatureDictionary(2000, 8, initializer=None, seed=0)
    gen = torch.Generator().manual_seed(0)
    rows = torch.arange(64).repeat_interleave(3)
    cols = torch.randint(0, 2000, (192,), generator=gen)
    batch = SparseBatch.from_rows(rows, cols, torch.rand(192, generator=gen), 64, 2000)

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    Largest.largest = max(Largest.largest, t.numel())
            return out

    with torch.no_grad(), Largest():
        fd(batch)
    assert Largest.largest < 64 * 2000 / 10  # a [64, 2000] tensor would be 128,000


def test_empty_batch():
    fd = FeatureDictionary(5, 3, initializer=None, seed=0)
    empty = SparseBatch(
        torch.zeros(1, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0), 5
    )
    assert fd(empty).shape == (0, 3)
    assert fd(torch.zeros(0, 5)).shape == (0, 3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_features": 0}, "num_features"),
        ({"num_features": -4}, "num_features"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"hidden_dim": -1}, "hidden_dim"),
        ({"bias": -1.0}, "bias"),
        ({"bias": float("nan")}, "bias"),
    ],
)
def test_bad_construction(kwargs, name):
    kwargs = {"num_features": 4, "hidden_dim": 3, "initializer": None, **kwargs}
    with pytest.raises(ValueError, match=name) as info:
        FeatureDictionary(**kwargs)
    value = kwargs.get("num_features") if name == "num_features" else kwargs.get(name)
    assert str(value) in str(info.value)


def test_non_integer_size_is_a_type_error():
    with pytest.raises(TypeError, match="hidden_dim"):
        FeatureDictionary(4, 3.5, initializer=None)  # type: ignore[arg-type]
    assert FeatureDictionary(4, 3.0, initializer=None).hidden_dim == 3  # integral, as YAML reads 3e0


def test_forward_shape_mismatch():
    fd = FeatureDictionary(5, 3, initializer=None, seed=0)
    with pytest.raises(ValueError, match="num_features"):
        fd(torch.rand(2, 4))
    with pytest.raises(ValueError, match="num_features"):
        fd(torch.rand(2, 6).to_sparse())
    with pytest.raises(ValueError, match="num_features"):
        fd(SparseBatch.from_dense(torch.rand(2, 6)))
    with pytest.raises(TypeError, match="SparseBatch"):
        fd([[0.0] * 5])  # type: ignore[arg-type]
