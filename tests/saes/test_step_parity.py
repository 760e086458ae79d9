"""One training step, from the reference's weights on the reference's batch, matches the reference.

The fixtures in ``tests/fixtures/reference/step/`` were written by the installed reference
(``benchmarks/reference_fixtures/make_step_fixtures.py``, run in its venv): for each case
the initial weights, the batch, the dead-latent mask, every loss, the latents, the
reconstruction, every gradient (before clipping) and the weights after clipping and one
Adam step. Here synthsae starts from the same weights and must agree to a relative
tolerance of 1e-5 (fp32; the two libraries order some sums differently, so bit equality
is not expected). The config comes from the reference's own ``to_dict()``, so these tests
also read every training config the reference writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from synthsae.saes.base import TrainingSAEConfig, TrainStepInput
from synthsae.saes.registry import get_sae_architecture
from synthsae.training.slot import SAESlot
from synthsae.training.trainer import TrainerConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "step"
INDEX = json.loads((FIXTURES / "cases.json").read_text())
CASES = sorted(INDEX["cases"])
RTOL = 1e-5


ADAM_EPS = 1e-8


def _atol(expected: torch.Tensor) -> float:
    """Absolute floor: 1e-6 of the tensor's largest entry (entries that are zero in one
    library can be rounding-sized in the other)."""
    return 1e-6 * max(float(expected.abs().max()) if expected.numel() else 0.0, 1e-3)


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, what: str, extra: torch.Tensor | None = None) -> None:
    """``|actual - expected| <= 1e-5 |expected| + atol (+ extra)`` element-wise."""
    actual = actual.detach().to(expected.dtype)
    allowed = RTOL * expected.abs() + _atol(expected)
    if extra is not None:
        allowed = allowed + extra
    excess = (actual - expected).abs() - allowed
    assert not (excess > 0).any(), (
        f"{what}: {int((excess > 0).sum())} of {expected.numel()} entries differ; "
        f"worst at {divmod(int(excess.argmax()), expected.shape[-1]) if expected.dim() > 1 else int(excess.argmax())}: "
        f"{actual.flatten()[excess.argmax()].item():.8g} vs {expected.flatten()[excess.argmax()].item():.8g}"
    )


def adam_tolerance(grads: dict[str, torch.Tensor], lr: float) -> dict[str, torch.Tensor]:
    """How far one clipped Adam step can move each weight when its gradient is off by the
    gradient check's tolerance ``d``.

    The first Adam step is ``lr * g / (|g| + eps)`` (with ``g`` after clipping); its
    derivative ``lr * eps / (|g| + eps)^2`` is negligible unless ``|g|`` is near ``eps``,
    where a rounding-sized gradient difference moves the weight by a fraction of ``lr``.
    """
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values()))
    clip = float(min(1.0, 1.0 / (float(norm) + 1e-6)))
    result = {}
    for name, g in grads.items():
        d = clip * (RTOL * g.abs() + _atol(g))
        nearest = (clip * g.abs() - d).clamp(min=0)
        result[name] = lr * ADAM_EPS * d / (nearest + ADAM_EPS) ** 2
    return result


def _load(name: str) -> tuple[dict, dict[str, torch.Tensor], torch.nn.Module]:
    case = INDEX["cases"][name]
    tensors = load_file(str(FIXTURES / f"{name}.safetensors"))
    cfg = TrainingSAEConfig.from_dict(case["config"])
    sae = get_sae_architecture(cfg.architecture()).training_cls(cfg)
    init = {k.removeprefix("init."): v for k, v in tensors.items() if k.startswith("init.")}
    sae.load_state_dict(init, strict=True)
    return case, tensors, sae


def _dead_mask(case: dict, tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    return tensors["dead_neuron_mask"] if case["dead_mask_given"] else None


def test_every_architecture_is_covered() -> None:
    covered = {INDEX["cases"][name]["config"]["architecture"] for name in CASES}
    assert covered == {"standard", "topk", "abstopk", "batchtopk", "matryoshka_batchtopk", "jumprelu", "gated",
                       "matching_pursuit"}


@pytest.mark.parametrize("name", CASES)
def test_losses_latents_and_gradients_match(name: str) -> None:
    case, tensors, sae = _load(name)
    sae.train()
    step_input = TrainStepInput(tensors["x"], dict(case["coefficients"]), _dead_mask(case, tensors), 0, False)
    out = sae.training_forward_pass(step_input)
    assert sorted(out.losses) == sorted(case["loss_names"])
    for loss_name in case["loss_names"]:
        assert_matches(out.losses[loss_name].reshape(()), tensors[f"loss.{loss_name}"], f"loss {loss_name}")
    assert_matches(out.loss.reshape(()), tensors["loss.__total__"], "total loss")
    assert_matches(out.feature_acts, tensors["feature_acts"], "feature_acts")
    assert_matches(out.sae_out, tensors["sae_out"], "sae_out")
    out.loss.backward()
    expected_grads = {k.removeprefix("grad."): v for k, v in tensors.items() if k.startswith("grad.")}
    for param_name, param in sae.named_parameters():
        expected = expected_grads.get(param_name)
        if expected is None:
            assert param.grad is None or not param.grad.any(), f"{param_name} has a gradient the reference lacks"
        else:
            assert param.grad is not None, f"no gradient for {param_name}"
            assert_matches(param.grad, expected, f"grad {param_name}")


@pytest.mark.parametrize("name", CASES)
def test_weights_after_the_optimizer_step_match(name: str) -> None:
    case, tensors, sae = _load(name)
    cfg = TrainerConfig(total_training_samples=len(tensors["x"]), batch_size=len(tensors["x"]), lr=case["lr"],
                        show_progress=False)
    slot = SAESlot(sae, cfg)
    dead = tensors["dead_neuron_mask"]  # all False when the case gives no mask
    slot.stats.load_state_dict({
        "steps_since_fired": torch.where(dead, cfg.dead_feature_window + 1, 0),
        "fire_counts": torch.zeros(len(dead)), "window_samples": 0, "window_steps": 0,
    })  # fmt: skip
    if not case["dead_mask_given"]:
        assert not slot.stats.dead_mask().any()
    slot.train_step(tensors["x"], step=0, is_logging_step=False)
    after = {k.removeprefix("after."): v for k, v in tensors.items() if k.startswith("after.")}
    grads = {k.removeprefix("grad."): v for k, v in tensors.items() if k.startswith("grad.")}
    extra = adam_tolerance(grads, case["lr"])
    state = sae.state_dict()
    assert sorted(state) == sorted(after)
    for tensor_name, expected in after.items():
        assert_matches(state[tensor_name], expected, f"{tensor_name} after the step", extra.get(tensor_name))


def test_matryoshka_aux_loss_from_dense_latents_matches_the_reference() -> None:
    """``calculate_matryoshka_aux_loss`` (the reference's signature) gives the fixture's aux loss."""
    case, tensors, sae = _load("matryoshka_aux_dead")
    out = sae.training_forward_pass(TrainStepInput(tensors["x"], {}, tensors["dead_neuron_mask"], 0, False))
    loss = sae.calculate_matryoshka_aux_loss(
        tensors["x"], out.sae_out, out.feature_acts, out.hidden_pre, tensors["dead_neuron_mask"]
    )
    assert_matches(loss.reshape(()), tensors["loss.auxiliary_reconstruction_loss"], "aux loss")
