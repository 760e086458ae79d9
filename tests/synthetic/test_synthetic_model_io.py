"""SyntheticModel directories: round trips, the reference layout, bad files, atomic saves, sources."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file
from synthetic_model_helpers import assert_same_model, small_config

from synthsae.synthetic import model_io
from synthsae.synthetic.model_build import build_magnitudes
from synthsae.synthetic.model_config import (
    SYNTHETIC_MODEL_CONFIG_FILENAME as CONFIG,
)
from synthsae.synthetic.model_config import (
    SYNTHETIC_MODEL_HIERARCHY_FILENAME as HIERARCHY,
)
from synthsae.synthetic.model_config import (
    SYNTHETIC_MODEL_WEIGHTS_FILENAME as WEIGHTS,
)
from synthsae.synthetic.synthetic_model import SyntheticModel


@pytest.fixture(scope="module")
def model() -> SyntheticModel:
    return SyntheticModel(small_config())


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"hierarchy": None},
        {"correlation": None},
        {"hierarchy": None, "correlation": None, "seed": None},
    ],
    ids=["full", "no-hierarchy", "no-correlation", "plain-unseeded"],
)
def test_save_load_round_trip(tmp_path, overrides) -> None:
    original = SyntheticModel(small_config(**overrides))
    assert original.save(tmp_path / "m") == tmp_path / "m"
    loaded = SyntheticModel.load_from_disk(tmp_path / "m")
    assert_same_model(original, loaded)
    original.set_sampling_seed(5)
    loaded.set_sampling_seed(5)
    for _ in range(2):
        a, fa = original.sample_with_features(128)
        b, fb = loaded.sample_with_features(128)
        assert torch.equal(a, b) and torch.equal(fa, fb)
    again = SyntheticModel.load_from_disk(str(tmp_path / "m"), sampling_seed=5)
    assert again.sampling_seed == 5


def test_saved_layout(model, tmp_path) -> None:
    model.save(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == sorted([CONFIG, WEIGHTS, HIERARCHY])
    text = (tmp_path / "m" / CONFIG).read_text()
    assert text.startswith('{\n  "num_features": 64')
    assert json.loads(text) == model.cfg.to_dict()
    tensors = load_file(str(tmp_path / "m" / WEIGHTS))
    assert set(tensors) == {
        "feature_vectors", "bias", "firing_probabilities", "correlation_factor",
        "correlation_diag", "mean_firing_magnitudes", "std_firing_magnitudes",
    }  # fmt: skip
    assert tensors["feature_vectors"].shape == (64, 16) and tensors["correlation_factor"].shape == (
        64,
        4,
    )
    assert json.loads((tmp_path / "m" / HIERARCHY).read_text()) == model.hierarchy.to_dict()
    plain = SyntheticModel(small_config(hierarchy=None, correlation=None))
    plain.save(tmp_path / "p")
    assert sorted(os.listdir(tmp_path / "p")) == sorted([CONFIG, WEIGHTS])
    assert "correlation_factor" not in load_file(str(tmp_path / "p" / WEIGHTS))


def _write_reference_dir(model: SyntheticModel, path, probabilities: torch.Tensor) -> None:
    """A directory as the reference writes it: no magnitude tensors."""
    path.mkdir()
    (path / CONFIG).write_text(json.dumps(model.cfg.to_dict(), indent=2))
    tensors = {
        "feature_vectors": model.feature_dict.feature_vectors.detach().clone(),
        "bias": model.feature_dict.bias.detach().clone(),
        "firing_probabilities": probabilities,
        "correlation_factor": model.correlation_matrix.correlation_factor.clone(),
        "correlation_diag": model.correlation_matrix.correlation_diag.clone(),
    }
    save_file(tensors, str(path / WEIGHTS))
    (path / HIERARCHY).write_text(json.dumps(model.hierarchy.to_dict(), indent=2))


def test_reference_layout_without_magnitudes_loads_and_regenerates_them(model, tmp_path) -> None:
    probabilities = torch.linspace(0.3, 0.01, 64)
    _write_reference_dir(model, tmp_path / "ref", probabilities)
    loaded = SyntheticModel.load_from_disk(tmp_path / "ref")
    ag = loaded.activation_generator
    assert torch.equal(ag.firing_probabilities, probabilities)
    std, mean = build_magnitudes(model.cfg)
    assert torch.equal(ag.std_firing_magnitudes, std) and torch.equal(
        ag.mean_firing_magnitudes, mean
    )
    assert torch.equal(ag.std_firing_magnitudes, model.activation_generator.std_firing_magnitudes)
    assert torch.equal(loaded.feature_dict.feature_vectors, model.feature_dict.feature_vectors)
    assert loaded.hierarchy.to_dict() == model.hierarchy.to_dict()


def test_loading_leaves_the_global_rng_alone(model, tmp_path) -> None:
    model.save(tmp_path / "m")
    state = torch.get_rng_state()
    SyntheticModel.load_from_disk(tmp_path / "m")
    assert torch.equal(torch.get_rng_state(), state)


# ------------------------------------------------------------------ bad files
def test_missing_directory_names_the_config_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=CONFIG):
        SyntheticModel.load_from_disk(tmp_path / "absent")


@pytest.mark.parametrize("name", [CONFIG, WEIGHTS, HIERARCHY])
def test_missing_file_is_named(model, tmp_path, name) -> None:
    model.save(tmp_path / "m")
    (tmp_path / "m" / name).unlink()
    with pytest.raises(FileNotFoundError, match=name.replace(".", r"\.")):
        SyntheticModel.load_from_disk(tmp_path / "m")


@pytest.mark.parametrize("name", [CONFIG, WEIGHTS, HIERARCHY])
def test_corrupt_file_is_named(model, tmp_path, name) -> None:
    model.save(tmp_path / "m")
    (tmp_path / "m" / name).write_bytes(b"\x00garbage{")
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        SyntheticModel.load_from_disk(tmp_path / "m")


def test_invalid_config_content_is_named(model, tmp_path) -> None:
    model.save(tmp_path / "m")
    data = model.cfg.to_dict() | {"unexpected": 1}
    (tmp_path / "m" / CONFIG).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{CONFIG}.*unexpected"):
        SyntheticModel.load_from_disk(tmp_path / "m")


@pytest.mark.parametrize(
    "tensor", ["feature_vectors", "bias", "firing_probabilities", "correlation_diag"]
)
def test_missing_tensor_is_named(model, tmp_path, tensor) -> None:
    model.save(tmp_path / "m")
    tensors = load_file(str(tmp_path / "m" / WEIGHTS))
    del tensors[tensor]
    save_file(tensors, str(tmp_path / "m" / WEIGHTS))
    with pytest.raises(ValueError, match=f"{tensor}.*{WEIGHTS}"):
        SyntheticModel.load_from_disk(tmp_path / "m")


def test_misshaped_tensor_is_named(model, tmp_path) -> None:
    model.save(tmp_path / "m")
    tensors = load_file(str(tmp_path / "m" / WEIGHTS))
    tensors["mean_firing_magnitudes"] = torch.ones(3)
    save_file(tensors, str(tmp_path / "m" / WEIGHTS))
    with pytest.raises(ValueError, match="mean_firing_magnitudes.*shape"):
        SyntheticModel.load_from_disk(tmp_path / "m")


# --------------------------------------------------------------- atomic saves
def _siblings(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_failed_save_leaves_nothing(model, tmp_path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model_io, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_existing_model(model, tmp_path, monkeypatch) -> None:
    model.save(tmp_path / "m")
    other = SyntheticModel(small_config(seed=99, hierarchy=None))
    monkeypatch.setattr(
        model_io, "save_file", lambda *a, **k: (_ for _ in ()).throw(OSError("boom"))
    )
    with pytest.raises(OSError):
        other.save(tmp_path / "m")
    assert _siblings(tmp_path / "m") == []
    assert_same_model(model, SyntheticModel.load_from_disk(tmp_path / "m"))


def test_save_replaces_an_existing_model(model, tmp_path) -> None:
    model.save(tmp_path / "m")
    other = SyntheticModel(small_config(seed=99, hierarchy=None))
    other.save(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == sorted([CONFIG, WEIGHTS])
    assert _siblings(tmp_path / "m") == []
    assert_same_model(other, SyntheticModel.load_from_disk(tmp_path / "m"))


def test_save_into_a_directory_with_other_files_keeps_them(model, tmp_path) -> None:
    model.save(tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("mine")
    other = SyntheticModel(small_config(seed=99, hierarchy=None))
    other.save(tmp_path / "m")
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "m" / HIERARCHY).exists()
    assert_same_model(other, SyntheticModel.load_from_disk(tmp_path / "m"))
    assert _siblings(tmp_path / "m") == []


def test_save_onto_a_file_is_refused(model, tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        model.save(tmp_path / "f")


def test_save_creates_parents(model, tmp_path) -> None:
    model.save(tmp_path / "a" / "b" / "m")
    assert (tmp_path / "a" / "b" / "m" / CONFIG).is_file()


# ---------------------------------------------------------------- sources
def test_load_from_source_routes_local_paths(model, tmp_path, monkeypatch) -> None:
    model.save(tmp_path / "m")
    assert_same_model(model, SyntheticModel.load_from_source(str(tmp_path / "m")))
    assert_same_model(model, SyntheticModel.load_from_source(tmp_path / "m"))
    monkeypatch.chdir(tmp_path)
    assert_same_model(model, SyntheticModel.load_from_source("./m"))
    assert_same_model(model, SyntheticModel.load_from_source("m"))
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert_same_model(model, SyntheticModel.load_from_source("../m"))


def test_load_from_source_builds_from_a_config() -> None:
    cfg = small_config(hierarchy=None)
    built = SyntheticModel.load_from_source(cfg)
    assert_same_model(built, SyntheticModel(cfg))


def test_load_from_source_refuses_impossible_ids_without_network(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for source in ["runs/a/model", "not a repo", "owner/name/", "-bad/name"]:
        with pytest.raises(FileNotFoundError, match="not an existing local directory"):
            SyntheticModel.load_from_source(source)
    with pytest.raises(FileNotFoundError, match=CONFIG):
        SyntheticModel.load_from_source("./missing")
    with pytest.raises(TypeError):
        SyntheticModel.load_from_source(42)  # type: ignore[arg-type]
