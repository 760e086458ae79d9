"""Start an SAE from the ground-truth feature vectors (for tests and baselines)."""

from __future__ import annotations

from typing import Any

import torch


def init_sae_to_match_feature_dict(
    sae: Any,
    feature_dict: Any,
    noise_level: float = 0.0,
    feature_ordering: torch.Tensor | None = None,
) -> None:
    """Set the SAE's weights so that its latents are the true feature directions.

    With ``m = min(d_sae, F)``, encoder column ``j < m`` becomes feature vector
    ``ordering[j]`` (``ordering`` defaults to ``0..F-1``) plus ``noise_level``
    times standard-normal noise, and then the whole decoder is set to the
    transposed encoder, latents beyond ``m`` included. Biases are not touched.
    An SAE without ``W_enc`` (matching pursuit) gets the vectors, plus noise,
    written directly into its first ``m`` decoder rows.

    Args:
        sae: object with ``W_dec`` ``[d_sae, d_in]`` and usually ``W_enc`` ``[d_in, d_sae]``.
        feature_dict: has ``feature_vectors`` ``[F, d_in]``.
        noise_level: standard deviation of the added Gaussian noise (>= 0).
        feature_ordering: optional 1-D index tensor selecting / permuting the features.

    Raises:
        ValueError: on a ``d_in`` mismatch, negative ``noise_level`` or bad ordering.
    """
    if noise_level < 0:
        raise ValueError(f"noise_level must be >= 0, got {noise_level}")
    vectors = feature_dict.feature_vectors.detach()
    d_sae, d_in = sae.W_dec.shape
    if vectors.shape[1] != d_in:
        raise ValueError(
            f"SAE d_in (W_dec.shape[1]) is {d_in} but the feature vectors have dimension {vectors.shape[1]}"
        )
    if feature_ordering is not None:
        ordering = torch.as_tensor(feature_ordering)
        if ordering.dim() != 1 or ordering.dtype == torch.bool or ordering.is_floating_point():
            raise ValueError(
                f"feature_ordering must be a 1-D integer tensor, got {ordering.dtype} {tuple(ordering.shape)}"
            )
        if ordering.numel() and (
            int(ordering.min()) < 0 or int(ordering.max()) >= vectors.shape[0]
        ):
            raise ValueError(f"feature_ordering holds indices outside [0, {vectors.shape[0]})")
        vectors = vectors[ordering.to(vectors.device).long()]
    m = min(d_sae, vectors.shape[0])
    with torch.no_grad():
        target = vectors[:m].to(device=sae.W_dec.device, dtype=sae.W_dec.dtype)
        if noise_level > 0:
            target = target + noise_level * torch.randn_like(target)
        w_enc = getattr(sae, "W_enc", None)
        if w_enc is None:
            sae.W_dec[:m].copy_(target)
            return
        w_enc[:, :m].copy_(target.T)
        sae.W_dec.copy_(w_enc.T)
