"""The eval's sparse decode: the same reconstruction as ``sae.decode``, or ``sae.decode`` itself."""

from __future__ import annotations

import torch

from synthsae import AbsTopKSAE, AbsTopKSAEConfig, TopKSAE, TopKSAEConfig
from synthsae.evals.sparse_decode import SparseDecodeShortcut


def _topk_latents(sae, rows: int = 64) -> torch.Tensor:
    torch.manual_seed(1)
    return sae.encode(torch.randn(rows, sae.cfg.d_in))


def _topk_sae(cls=TopKSAE, cfg_cls=TopKSAEConfig, **kw):
    torch.manual_seed(0)
    sae = cls(cfg_cls(d_in=12, d_sae=128, k=4, **kw))
    with torch.no_grad():
        sae.b_dec.normal_()
        sae.W_dec.mul_(torch.rand(128, 1) + 0.5)  # non-unit rows: the rescaling below matters
    return sae


def test_same_reconstruction_as_decode_including_rescaling_and_signed_latents() -> None:
    for sae in (_topk_sae(), _topk_sae(rescale_acts_by_decoder_norm=True),
                _topk_sae(AbsTopKSAE, AbsTopKSAEConfig)):
        z = _topk_latents(sae)
        decode = SparseDecodeShortcut(sae, num_batches=100, batch_size=64)
        decode(z)  # the first batch builds and checks the affine map
        assert decode.enabled and decode._weights is not None
        torch.testing.assert_close(decode(z * 2), sae.decode(z * 2), rtol=1e-5, atol=1e-5)


class _NonAffine(torch.nn.Module):
    """A decode with a non-linearity after the product: the shortcut must refuse it."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self.W_dec = inner, inner.W_dec

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.inner.decode(z))


class _BatchState(torch.nn.Module):
    """A decode that keeps a per-batch norm from encode (as layer-norm SAEs do)."""

    def __init__(self, inner, rows: int) -> None:
        super().__init__()
        self.inner, self.W_dec = inner, inner.W_dec
        self.norm = torch.rand(rows, 1) + 0.5

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner.decode(z) * self.norm  # fails to broadcast on other row counts


def test_falls_back_to_decode_when_decode_is_not_affine_or_keeps_state() -> None:
    inner = _topk_sae()
    z = _topk_latents(inner)
    for sae in (_NonAffine(inner), _BatchState(inner, z.shape[0])):
        decode = SparseDecodeShortcut(sae, num_batches=100, batch_size=64)
        torch.testing.assert_close(decode(z), sae.decode(z))
        assert not decode.enabled
        torch.testing.assert_close(decode(z), sae.decode(z))


def test_off_for_short_evals_and_dense_latents() -> None:
    sae = _topk_sae()
    assert not SparseDecodeShortcut(sae, num_batches=2, batch_size=64).enabled  # building would cost more
    decode = SparseDecodeShortcut(sae, num_batches=100, batch_size=64)
    dense = torch.randn(64, 128)  # every latent non-zero: the dense product is the fast one
    torch.testing.assert_close(decode(dense), sae.decode(dense))
    assert decode._weights is None
