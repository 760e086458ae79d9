"""Write the step-parity fixtures: one training step of each reference SAE, recorded.

Run with the reference venv's python (it imports ``sae_lens``, never synthsae)::

    ~/.cache/synthsae-reference-venv/bin/python benchmarks/reference_fixtures/make_step_fixtures.py

For each case in ``CASES`` (architecture, config fields, coefficients, whether a dead
mask is given) it builds the reference's training SAE with seed-fixed weights, perturbs
them so that every parameter matters (uneven decoder norms, non-zero biases, positive
JumpReLU thresholds, a non-zero BatchTopK threshold), and takes the step the reference's
``SAETrainer._train_step`` takes: ``training_forward_pass``, ``loss.backward()``,
``clip_grad_norm_(params, 1.0)``, one ``torch.optim.Adam`` step (betas 0.9/0.999).

Written to ``tests/fixtures/reference/step/``: ``cases.json`` (each case's config as the
reference's ``to_dict()``, coefficients, lr, loss names) and ``<case>.safetensors`` with
``x``, ``dead_neuron_mask``, ``init.*`` (state dict before), ``loss.*``, ``feature_acts``,
``sae_out``, ``grad.*`` (before clipping) and ``after.*`` (state dict after the step).
"""

from __future__ import annotations

import json
from pathlib import Path

import sae_lens
import torch
from fixture_weights import perturb  # this folder (the script's own) is on sys.path
from sae_lens.registry import get_sae_training_class
from sae_lens.saes.sae import TrainStepInput
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference" / "step"
D_IN, D_SAE, BATCH, LR = 8, 16, 32, 1e-3
DEAD = [i % 3 == 0 for i in range(D_SAE)]  # 6 of 16 latents dead: more than k_aux = d_in // 2

# name -> (architecture, config fields, coefficients, dead mask given)
CASES: dict[str, tuple[str, dict, dict, bool]] = {
    "standard": ("standard", {"l1_coefficient": 0.7}, {"l1": 0.7}, False),
    "standard_lp2": ("standard", {"l1_coefficient": 0.3, "lp_norm": 2.0}, {"l1": 0.3}, False),
    "gated": ("gated", {"l1_coefficient": 0.5}, {"l1": 0.5}, False),
    "topk": ("topk", {"k": 3}, {}, False),
    "topk_dead": ("topk", {"k": 3, "aux_loss_coefficient": 0.5}, {}, True),
    "topk_no_rescale_dead": ("topk", {"k": 3, "rescale_acts_by_decoder_norm": False}, {}, True),
    "abstopk_dead": ("abstopk", {"k": 3}, {}, True),
    "abstopk_no_rescale": ("abstopk", {"k": 4, "rescale_acts_by_decoder_norm": False}, {}, False),
    "batchtopk_dead": ("batchtopk", {"k": 3.5, "topk_threshold_lr": 0.05}, {}, True),
    "matryoshka_dead": ("matryoshka_batchtopk", {"k": 3.0, "matryoshka_widths": [4, 8, 16]}, {}, True),
    "matryoshka_aux_dead": (
        "matryoshka_batchtopk",
        {"k": 3.0, "matryoshka_widths": [4, 8, 16], "use_matryoshka_aux_loss": True, "aux_loss_coefficient": 0.7},
        {},
        True,
    ),
    "matching_pursuit": ("matching_pursuit", {"residual_threshold": 0.05}, {}, False),
}
for _mode in ("step", "tanh", "quadratic"):
    for _ste in (False, True):
        _fields = {"jumprelu_sparsity_loss_mode": _mode, "jumprelu_ste_to_input": _ste, "l0_coefficient": 0.4,
                   "jumprelu_bandwidth": 0.2}
        if _mode == "quadratic":
            _fields["target_l0"] = 5.0
        CASES[f"jumprelu_{_mode}{'_ste' if _ste else ''}"] = ("jumprelu", _fields, {"l0": 0.4}, False)
CASES["jumprelu_pre_act_dead"] = (
    "jumprelu", {"l0_coefficient": 0.4, "jumprelu_bandwidth": 0.2, "pre_act_loss_coefficient": 0.3}, {"l0": 0.4}, True
)


def _write_case(name: str, architecture: str, fields: dict, coefficients: dict, with_dead: bool, seed: int) -> dict:
    sae_cls, cfg_cls = get_sae_training_class(architecture)
    torch.manual_seed(seed)
    sae = sae_cls(cfg_cls(d_in=D_IN, d_sae=D_SAE, **fields))
    generator = torch.Generator().manual_seed(seed + 1000)
    perturb(sae, generator, topk_threshold=0.3)
    x = torch.randn(BATCH, D_IN, generator=generator) + 0.2
    dead = torch.tensor(DEAD) if with_dead else None
    init = {k: v.detach().clone() for k, v in sae.state_dict().items()}
    optimizer = torch.optim.Adam(sae.parameters(), lr=LR, betas=(0.9, 0.999))
    sae.train()
    out = sae.training_forward_pass(TrainStepInput(x, dict(coefficients), dead, 0, False))
    out.loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in sae.named_parameters() if p.grad is not None}
    torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
    optimizer.step()
    tensors = {"x": x, "dead_neuron_mask": (dead if dead is not None else torch.zeros(D_SAE, dtype=torch.bool))}
    tensors.update({f"init.{k}": v for k, v in init.items()})
    tensors.update({f"loss.{k}": v.detach().reshape(()) for k, v in out.losses.items()})
    tensors["loss.__total__"] = out.loss.detach().reshape(())
    tensors["feature_acts"] = out.feature_acts.detach().to_dense()
    tensors["sae_out"] = out.sae_out.detach()
    tensors.update({f"grad.{k}": v for k, v in grads.items()})
    tensors.update({f"after.{k}": v.detach().clone() for k, v in sae.state_dict().items()})
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(OUT / f"{name}.safetensors"))
    cfg = sae.cfg.to_dict()
    return {"config": cfg, "coefficients": coefficients, "lr": LR, "dead_mask_given": with_dead,
            "loss_names": list(out.losses), "seed": seed}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    index = {"sae_lens_version": sae_lens.__version__, "torch_version": torch.__version__, "cases": {}}
    for seed, (name, (architecture, fields, coefficients, with_dead)) in enumerate(sorted(CASES.items())):
        index["cases"][name] = _write_case(name, architecture, fields, coefficients, with_dead, seed)
        print(name, index["cases"][name]["loss_names"])
    (OUT / "cases.json").write_text(json.dumps(index, indent=1, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    main()
