"""init_sae_to_match_feature_dict."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthsae.evals.initialization import init_sae_to_match_feature_dict


class TiedSAE(nn.Module):
    def __init__(self, d_in: int, d_sae: int) -> None:
        super().__init__()
        self.W_enc = nn.Parameter(torch.randn(d_in, d_sae))
        self.W_dec = nn.Parameter(torch.randn(d_sae, d_in))
        self.b_enc = nn.Parameter(torch.full((d_sae,), 0.3))
        self.b_dec = nn.Parameter(torch.full((d_in,), -0.2))


class DecoderOnlySAE(nn.Module):
    def __init__(self, d_in: int, d_sae: int) -> None:
        super().__init__()
        self.W_dec = nn.Parameter(torch.randn(d_sae, d_in))


class Dict:
    def __init__(self, num_features: int, hidden_dim: int) -> None:
        v = torch.randn(num_features, hidden_dim, generator=torch.Generator().manual_seed(0))
        self.feature_vectors = v / v.norm(dim=1, keepdim=True)


def test_encoder_columns_are_features_and_decoder_is_transpose() -> None:
    fd, sae = Dict(6, 8), TiedSAE(8, 6)
    b_enc, b_dec = sae.b_enc.detach().clone(), sae.b_dec.detach().clone()
    init_sae_to_match_feature_dict(sae, fd)
    assert torch.equal(sae.W_enc.T, fd.feature_vectors)
    assert torch.equal(sae.W_dec, sae.W_enc.T)
    assert torch.equal(sae.b_enc, b_enc) and torch.equal(sae.b_dec, b_dec)
    assert sae.W_enc.requires_grad  # still a trainable parameter


def test_noise_is_added_and_decoder_follows() -> None:
    fd, sae = Dict(6, 8), TiedSAE(8, 6)
    torch.manual_seed(0)
    init_sae_to_match_feature_dict(sae, fd, noise_level=0.1)
    diff = sae.W_enc.detach().T - fd.feature_vectors
    assert 0.05 < float(diff.std()) < 0.2
    assert torch.equal(sae.W_dec, sae.W_enc.T)


def test_permutation() -> None:
    fd, sae = Dict(5, 8), TiedSAE(8, 5)
    perm = torch.tensor([3, 0, 4, 1, 2])
    init_sae_to_match_feature_dict(sae, fd, feature_ordering=perm)
    assert torch.equal(sae.W_dec, fd.feature_vectors[perm])


def test_wider_sae_keeps_extra_columns_and_ties_whole_decoder() -> None:
    fd, sae = Dict(4, 8), TiedSAE(8, 7)
    extra = sae.W_enc[:, 4:].detach().clone()
    init_sae_to_match_feature_dict(sae, fd)
    assert torch.equal(sae.W_enc[:, :4].T, fd.feature_vectors)
    assert torch.equal(sae.W_enc[:, 4:], extra)
    assert torch.equal(sae.W_dec, sae.W_enc.T)


def test_narrower_sae_takes_first_features() -> None:
    fd, sae = Dict(9, 8), TiedSAE(8, 3)
    init_sae_to_match_feature_dict(sae, fd)
    assert torch.equal(sae.W_dec, fd.feature_vectors[:3])


def test_decoder_only_sae() -> None:
    fd, sae = Dict(3, 8), DecoderOnlySAE(8, 5)
    rest = sae.W_dec[3:].detach().clone()
    init_sae_to_match_feature_dict(sae, fd)
    assert torch.equal(sae.W_dec[:3], fd.feature_vectors)
    assert torch.equal(sae.W_dec[3:], rest)


def test_validation() -> None:
    with pytest.raises(ValueError, match="d_in"):
        init_sae_to_match_feature_dict(TiedSAE(7, 4), Dict(4, 8))
    with pytest.raises(ValueError, match="noise_level"):
        init_sae_to_match_feature_dict(TiedSAE(8, 4), Dict(4, 8), noise_level=-1.0)
    with pytest.raises(ValueError, match="feature_ordering"):
        init_sae_to_match_feature_dict(
            TiedSAE(8, 4), Dict(4, 8), feature_ordering=torch.tensor([0, 9])
        )
    with pytest.raises(ValueError, match="feature_ordering"):
        init_sae_to_match_feature_dict(TiedSAE(8, 4), Dict(4, 8), feature_ordering=torch.rand(4))
