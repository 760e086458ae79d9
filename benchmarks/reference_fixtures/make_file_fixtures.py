"""Write the file-parity fixtures: SAEs of every architecture saved by the reference itself.

Run with the reference venv's python (it imports ``sae_lens``, never synthsae)::

    ~/.cache/synthsae-reference-venv/bin/python benchmarks/reference_fixtures/make_file_fixtures.py

For each architecture in ``ARCHITECTURES`` it builds the reference's training SAE
(``d_in=8, d_sae=16``, seed-fixed, perturbed so that every parameter matters), and
writes under ``tests/fixtures/reference/files/<architecture>/``:

- ``checkpoint/``: ``TrainingSAE.save_model`` (the training checkpoint);
- ``inference/``: ``TrainingSAE.save_inference_model``;
- ``outputs.safetensors``: a probe batch ``x`` and the reference's ``encode``/``decode``
  of it by the training SAE (``training_latents``, ``training_recons``) and by
  ``SAE.load_from_disk(inference/)`` (``inference_latents``, ``inference_recons``),
  where ``*_recons`` is ``decode(encode(x))``.
"""

from __future__ import annotations

import json
from pathlib import Path

import sae_lens
import torch
from fixture_weights import perturb  # this folder (the script's own) is on sys.path
from sae_lens import SAE
from sae_lens.registry import get_sae_training_class
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference" / "files"
D_IN, D_SAE, N_PROBE = 8, 16, 12

ARCHITECTURES: dict[str, dict] = {
    "standard": {"l1_coefficient": 0.5},
    "topk": {"k": 3},
    "abstopk": {"k": 3},
    "batchtopk": {"k": 3.5},
    "matryoshka_batchtopk": {"k": 3.0, "matryoshka_widths": [4, 8, 16]},
    "jumprelu": {"jumprelu_sparsity_loss_mode": "quadratic", "target_l0": 4.0},
    "gated": {"l1_coefficient": 0.5},
    "matching_pursuit": {"residual_threshold": 0.05},
}


@torch.no_grad()
def _write(architecture: str, fields: dict, seed: int) -> None:
    sae_cls, cfg_cls = get_sae_training_class(architecture)
    torch.manual_seed(seed)
    sae = sae_cls(cfg_cls(d_in=D_IN, d_sae=D_SAE, **fields))
    generator = torch.Generator().manual_seed(seed + 1000)
    perturb(sae, generator, topk_threshold=0.15)
    sae.eval()
    folder = OUT / architecture
    sae.save_model(folder / "checkpoint")
    sae.save_inference_model(folder / "inference")
    x = torch.randn(N_PROBE, D_IN, generator=generator) + 0.2
    inference = SAE.load_from_disk(folder / "inference")
    outputs = {"x": x}
    for prefix, model in (("training", sae), ("inference", inference)):
        latents = model.encode(x)
        outputs[f"{prefix}_latents"] = latents.to_dense() if latents.is_sparse else latents
        outputs[f"{prefix}_recons"] = model.decode(latents)
    save_file({k: v.detach().clone().contiguous() for k, v in outputs.items()}, str(folder / "outputs.safetensors"))
    print(architecture, type(inference).__name__, sorted(json.loads((folder / "inference" / "cfg.json").read_text())))


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for seed, (architecture, fields) in enumerate(sorted(ARCHITECTURES.items())):
        _write(architecture, fields, seed)
    (OUT / "README.md").write_text(
        f"SAE folders written by SAELens {sae_lens.__version__} (torch {torch.__version__}) with\n"
        "`benchmarks/reference_fixtures/make_file_fixtures.py`; do not edit by hand.\n"
    )


if __name__ == "__main__":
    main()
