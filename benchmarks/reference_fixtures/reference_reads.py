"""The reference loads SAE folders written by synthsae and reports its outputs.

Run with the reference venv's python (used by ``tests/saes/test_file_parity.py``)::

    python reference_reads.py ROOT ARCH [ARCH ...]

``ROOT/<arch>/checkpoint`` (a ``save_model`` folder) and ``ROOT/<arch>/inference`` (a
``save_inference_model`` folder) are loaded with the reference: the checkpoint with the
architecture's training class, the inference save with ``SAE.load_from_disk``. Each
encodes ``x`` from ``ROOT/probe.safetensors``; latents and ``decode(latents)`` go to
``ROOT/reference_outputs.safetensors`` as ``<arch>.<training|inference>_<latents|recons>``.
The last line printed is a JSON map from architecture to the inference class name.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from sae_lens import SAE
from sae_lens.registry import get_sae_training_class
from safetensors.torch import load_file, save_file


@torch.no_grad()
def main() -> None:
    root, architectures = Path(sys.argv[1]), sys.argv[2:]
    x = load_file(str(root / "probe.safetensors"))["x"]
    results: dict[str, torch.Tensor] = {}
    classes = {}
    for architecture in architectures:
        training_cls = get_sae_training_class(architecture)[0]
        training = training_cls.load_from_disk(root / architecture / "checkpoint")
        inference = SAE.load_from_disk(root / architecture / "inference")
        classes[architecture] = type(inference).__name__
        for prefix, model in (("training", training), ("inference", inference)):
            model.eval()
            latents = model.encode(x)
            latents = latents.to_dense() if latents.is_sparse else latents
            results[f"{architecture}.{prefix}_latents"] = latents.clone()
            results[f"{architecture}.{prefix}_recons"] = model.decode(latents).clone()
    save_file(results, str(root / "reference_outputs.safetensors"))
    print(json.dumps(classes))


if __name__ == "__main__":
    main()
