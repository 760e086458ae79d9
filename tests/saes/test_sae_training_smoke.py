"""A tiny training loop per architecture: the loss must go down and latents must be sparse."""

from __future__ import annotations

import torch
from sae_helpers import make_sae, orthogonal_features, toy_batch

from synthsae.saes.base import TrainCoefficientConfig, TrainingSAE, TrainStepInput

N_STEPS = 150
BATCH = 128
DEAD_WINDOW = 40
# sparsity settings that reach a low L0 within N_STEPS on the toy data
SETTINGS = {
    "standard": {"l1_coefficient": 0.3},
    "gated": {"l1_coefficient": 0.3},
    "jumprelu": {"l0_coefficient": 0.1, "jumprelu_init_threshold": 0.1},
}


def _coefficients(sae: TrainingSAE, step: int) -> dict[str, float]:
    values = {}
    for name, coefficient in sae.get_coefficients().items():
        if isinstance(coefficient, TrainCoefficientConfig):
            ramp = 1.0 if coefficient.warm_up_steps == 0 else min(step / coefficient.warm_up_steps, 1.0)
            values[name] = coefficient.value * ramp
        else:
            values[name] = coefficient
    return values


def train(sae: TrainingSAE, n_steps: int = N_STEPS, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Adam on fresh toy batches, with a dead-latent mask like the trainer's."""
    features = orthogonal_features(16, 32, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    steps_since_fired = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    losses = []
    for step in range(n_steps):
        x = toy_batch(features, BATCH, p=0.25, generator=generator)
        step_input = TrainStepInput(
            sae_in=x,
            coefficients=_coefficients(sae, step),
            dead_neuron_mask=steps_since_fired > DEAD_WINDOW,
            n_training_steps=step,
            is_logging_step=step % 50 == 0,
        )
        out = sae.training_forward_pass(step_input)
        optimizer.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            fired = (out.feature_acts != 0).any(dim=0)
            steps_since_fired = torch.where(fired, 0, steps_since_fired + 1)
        losses.append(out.losses["mse_loss"].item())
    return losses


def test_loss_decreases(architecture: str) -> None:
    sae = make_sae(architecture, d_in=32, d_sae=32, **SETTINGS.get(architecture, {}))
    losses = train(sae)
    start, end = sum(losses[:5]) / 5, sum(losses[-20:]) / 20
    assert end < 0.5 * start, f"{architecture}: MSE {start:.3f} -> {end:.3f}"
    features = orthogonal_features(16, 32, seed=0)
    x = toy_batch(features, 512, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        l0 = (sae.encode(x) != 0).float().sum(-1).mean().item()
    assert l0 < 24, f"{architecture}: L0 {l0:.1f} of 32 latents"
