"""Check that SyntheticModel directories move both ways between synthsae and SAELens.

Usage::

    python benchmarks/interop_reference.py [--reference-python PATH] [--keep DIR]

1. synthsae builds a model (hierarchy, correlation, per-feature magnitudes) and saves it.
2. SAELens (in the reference venv, a subprocess) loads it, checks every tensor and the
   hierarchy against the files, samples from it, builds the same config itself, and
   saves its own copy.
3. synthsae loads SAELens's directory (no magnitude tensors: they are regenerated from
   the config) and checks it against the original.

Also reported: whether both libraries build identical tensors from the same config.
Exits non-zero if a model fails to load or a loaded tensor differs from the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = Path.home() / ".cache" / "synthsae-reference-venv" / "bin" / "python"

CONFIG = {
    "num_features": 300,
    "hidden_dim": 48,
    "firing_probability": {"generator_name": "zipfian", "exponent": 0.5, "max_prob": 0.4, "min_prob": 5e-3},
    "hierarchy": {
        "total_root_nodes": 6, "branching_factor": 3, "max_depth": 3, "mutually_exclusive_portion": 0.5,
        "compensate_probabilities": True, "scale_children_by_parent": True,
    },
    "orthogonalization": {"num_steps": 5, "lr": 3e-4, "chunk_size": 1024},
    "correlation": {"rank": 5, "correlation_scale": 0.1, "seed": None},
    "std_firing_magnitudes": {"generator_name": "folded_normal", "mean": 0.5, "std": 0.5, "min_value": None, "max_value": None},
    "mean_firing_magnitudes": {"generator_name": "linear", "start": 5.0, "end": 4.0},
    "bias": 0.5,
    "dtype": "float32",
    "seed": 42,
}  # fmt: skip

REFERENCE_SIDE = r"""
import json, sys, torch
from pathlib import Path
from safetensors.torch import load_file
from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig

ours, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
report = {}
model = SyntheticModel.load_from_disk(ours)
files = load_file(str(ours / "synthetic_model.safetensors"))
ag = model.activation_generator
loaded = {
    "feature_vectors": model.feature_dict.feature_vectors.detach(),
    "bias": model.feature_dict.bias.detach(),
    "firing_probabilities": ag.firing_probabilities,
    "correlation_factor": model.correlation_matrix.correlation_factor,
    "correlation_diag": model.correlation_matrix.correlation_diag,
}
report["reference_loaded_equals_file"] = {k: bool(torch.equal(v.cpu(), files[k])) for k, v in loaded.items()}
report["reference_regenerated_magnitudes_equal_ours"] = {
    "std": bool(torch.equal(ag.std_firing_magnitudes.cpu(), files["std_firing_magnitudes"])),
    "mean": bool(torch.equal(ag.mean_firing_magnitudes.cpu(), files["mean_firing_magnitudes"])),
}
report["reference_hierarchy_equals_file"] = model.hierarchy.to_dict() == json.loads((ours / "hierarchy.json").read_text())
x = model.sample(256)
report["reference_sample_shape"] = list(x.shape)
fresh = SyntheticModel(SyntheticModelConfig.from_dict(json.loads((ours / "synthetic_model_config.json").read_text())))
fresh.save(out_dir)
report["reference_fresh_build_equals_ours"] = {
    "feature_vectors_max_abs_diff": float((fresh.feature_dict.feature_vectors.detach() - files["feature_vectors"]).abs().max()),
    "bias": bool(torch.equal(fresh.feature_dict.bias.detach(), files["bias"])),
    "firing_probabilities": bool(torch.equal(fresh.activation_generator.firing_probabilities, files["firing_probabilities"])),
    "correlation_factor": bool(torch.equal(fresh.correlation_matrix.correlation_factor, files["correlation_factor"])),
    "hierarchy": fresh.hierarchy.to_dict() == json.loads((ours / "hierarchy.json").read_text()),
}
print(json.dumps(report))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", default=str(REFERENCE_PYTHON))
    parser.add_argument("--keep", default=None, metavar="DIR", help="keep both model directories under DIR")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch
    from safetensors.torch import load_file

    from synthsae.synthetic import SyntheticModel, SyntheticModelConfig

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        ours_dir, ref_dir = root / "synthsae_model", root / "reference_model"
        original = SyntheticModel(SyntheticModelConfig.from_dict(CONFIG))
        original.save(ours_dir)
        proc = subprocess.run(
            [args.reference_python, "-c", REFERENCE_SIDE, str(ours_dir), str(ref_dir)],
            capture_output=True, text=True, check=False, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )  # fmt: skip
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        report = json.loads(proc.stdout.strip().splitlines()[-1])

        back = SyntheticModel.load_from_disk(ref_dir)
        ref_files = load_file(str(ref_dir / "synthetic_model.safetensors"))
        ag, oag = back.activation_generator, original.activation_generator
        report["synthsae_loads_reference_dir"] = {
            "tensors_equal_reference_file": all(
                torch.equal(a, ref_files[k])
                for k, a in [
                    ("feature_vectors", back.feature_dict.feature_vectors.detach()),
                    ("bias", back.feature_dict.bias.detach()),
                    ("firing_probabilities", ag.firing_probabilities),
                    ("correlation_factor", back.correlation_matrix.correlation_factor),
                ]
            ),
            "magnitudes_regenerated_equal_original": bool(
                torch.equal(ag.std_firing_magnitudes, oag.std_firing_magnitudes)
                and torch.equal(ag.mean_firing_magnitudes, oag.mean_firing_magnitudes)
            ),
            "sample_shape": list(back.sample(256).shape),
        }
    print(json.dumps(report, indent=2))
    ok = all(report["reference_loaded_equals_file"].values()) and report["reference_hierarchy_equals_file"]
    ok = ok and report["synthsae_loads_reference_dir"]["tensors_equal_reference_file"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
