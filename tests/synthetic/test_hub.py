"""Hub download through a real, offline huggingface_hub cache; upload at the HfApi boundary."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest
from synthetic_model_helpers import assert_same_model, small_config

from synthsae.synthetic.hub import (
    default_readme,
    download_synthetic_model,
    hierarchy_max_depth,
    parse_hub_source,
    upload_synthetic_model_to_huggingface,
)
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

hub = pytest.importorskip("huggingface_hub")
hub_constants = pytest.importorskip("huggingface_hub.constants")
hub_errors = pytest.importorskip("huggingface_hub.errors")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def model() -> SyntheticModel:
    return SyntheticModel(small_config())


@pytest.fixture(scope="module")
def plain_model() -> SyntheticModel:
    return SyntheticModel(small_config(hierarchy=None, seed=3))


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    """An empty hub cache under tmp_path, with the hub offline (env and constants)."""
    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads these variables once, at import; point its constants at the test cache
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    assert hub_constants.is_offline_mode()
    return cache


def publish(
    cache: Path, repo_id: str, folder: Path, subfolder: str | None = None, commit: str = COMMIT
) -> None:
    """Lay out ``folder``'s files as huggingface_hub caches a download: blobs + snapshot links + refs."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    target = snapshot / subfolder if subfolder else snapshot
    target.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for file in folder.iterdir():
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        try:
            (target / file.name).symlink_to(blob)
        except OSError:  # no symlinks on this filesystem: the hub then stores copies
            shutil.copy(blob, target / file.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


def test_from_pretrained_loads_from_the_offline_cache(model, offline_cache, tmp_path) -> None:
    model.save(tmp_path / "saved")
    publish(offline_cache, "owner/synth", tmp_path / "saved")
    loaded = SyntheticModel.from_pretrained("owner/synth")
    assert_same_model(model, loaded)
    folder = download_synthetic_model("owner/synth")
    assert folder.is_relative_to(offline_cache) and folder.name == COMMIT
    assert {p.name for p in folder.iterdir()} == {CONFIG, WEIGHTS, HIERARCHY}


def test_from_pretrained_subfolder_and_source_strings(
    model, plain_model, offline_cache, tmp_path
) -> None:
    model.save(tmp_path / "a")
    plain_model.save(tmp_path / "b")
    publish(offline_cache, "owner/many", tmp_path / "a", subfolder="models/large")
    publish(offline_cache, "owner/many", tmp_path / "b")
    assert_same_model(
        model, SyntheticModel.from_pretrained("owner/many", model_path="models/large")
    )
    assert_same_model(model, SyntheticModel.load_from_source("owner/many:models/large"))
    # no hierarchy.json in the repo root: the optional file is skipped
    assert_same_model(plain_model, SyntheticModel.load_from_source("owner/many"))


def test_missing_hierarchy_is_an_error_when_the_config_declares_one(
    model, offline_cache, tmp_path
) -> None:
    model.save(tmp_path / "saved")
    (tmp_path / "saved" / HIERARCHY).unlink()
    publish(offline_cache, "owner/broken", tmp_path / "saved")
    with pytest.raises(FileNotFoundError, match=HIERARCHY):
        SyntheticModel.from_pretrained("owner/broken")


def test_uncached_repo_fails_offline(offline_cache) -> None:
    with pytest.raises(Exception, match="(?i)offline|cache|not found|cannot"):
        SyntheticModel.from_pretrained("owner/never-downloaded")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("owner/name", ("owner/name", None)),
        ("owner/name:sub/dir", ("owner/name", "sub/dir")),
        ("gpt2", ("gpt2", None)),
    ],
)
def test_parse_hub_source(source, expected) -> None:
    assert parse_hub_source(source) == expected


@pytest.mark.parametrize("source", ["a/b/c", "owner/", "owner/na me", "owner/name:../x", "--x/y"])
def test_parse_hub_source_rejects(source) -> None:
    with pytest.raises(FileNotFoundError):
        parse_hub_source(source)


def test_missing_huggingface_hub_gives_a_clear_import_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r"synthsae\[hub\]"):
        download_synthetic_model("owner/name")


# ------------------------------------------------------------------ upload
class FakeApi:
    """Records HfApi calls; checks the uploaded folder while it still exists."""

    def __init__(self, repo_exists: bool = True, readme_exists: bool = False) -> None:
        self.repo_exists = repo_exists
        self.readme_exists = readme_exists
        self.calls: list[tuple[str, dict]] = []
        self.uploaded_files: dict[str, bytes] = {}

    def repo_info(self, repo_id, **kwargs):
        self.calls.append(("repo_info", {"repo_id": repo_id, **kwargs}))
        if not self.repo_exists:
            raise _repo_not_found()
        return object()

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        folder = Path(kwargs["folder_path"])
        for name in kwargs["allow_patterns"]:
            self.uploaded_files[name] = (folder / name).read_bytes()

    def file_exists(self, repo_id, filename, **kwargs):
        self.calls.append(("file_exists", {"repo_id": repo_id, "filename": filename, **kwargs}))
        return self.readme_exists

    def upload_file(self, **kwargs):
        self.calls.append(("upload_file", kwargs))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def call(self, name: str) -> dict:
        return next(kw for n, kw in self.calls if n == name)


def _repo_not_found() -> Exception:
    err_cls = hub_errors.RepositoryNotFoundError
    try:
        import httpx

        response = httpx.Response(
            404, request=httpx.Request("GET", "https://huggingface.invalid/api/models/x")
        )
        return err_cls("repository not found", response=response)
    except Exception:  # older huggingface_hub signatures
        return err_cls("repository not found")


def test_upload_model_object_creates_repo_and_readme(model, tmp_path) -> None:
    api = FakeApi(repo_exists=False)
    upload_synthetic_model_to_huggingface(model, "me/synth", private=True, api=api)
    assert api.names() == [
        "repo_info",
        "create_repo",
        "upload_folder",
        "file_exists",
        "upload_file",
    ]
    assert api.call("create_repo")["private"] is True
    up = api.call("upload_folder")
    assert up["repo_id"] == "me/synth" and up["path_in_repo"] == "." and up["revision"] == "main"
    assert up["commit_message"] == "Upload SyntheticModel"
    assert sorted(up["allow_patterns"]) == sorted([CONFIG, WEIGHTS, HIERARCHY])
    model.save(tmp_path / "ref")
    for name in (CONFIG, HIERARCHY):
        assert api.uploaded_files[name] == (tmp_path / "ref" / name).read_bytes()
    readme = api.call("upload_file")
    assert readme["path_in_repo"] == "README.md" and readme["revision"] == "main"
    text = readme["path_or_fileobj"].decode()
    assert text.startswith("---\nlibrary_name: saelens\n") and "- synthsae" in text
    assert "Features: 64" in text and "Hidden dimension: 16" in text
    assert "Hierarchy: yes (4 root features" in text and "max depth 3" in text
    assert "Feature correlation: yes (low rank 4, scale 0.1)" in text
    assert 'SyntheticModel.from_pretrained("me/synth")' in text


def test_upload_saved_directory_to_a_subfolder_and_branch(plain_model, tmp_path) -> None:
    plain_model.save(tmp_path / "m")
    for source in (tmp_path / "m", str(tmp_path / "m")):
        api = FakeApi(readme_exists=False)
        upload_synthetic_model_to_huggingface(
            source, "me/synth", hf_path="runs/a", hf_revision="dev", api=api
        )
        assert "create_repo" not in api.names()
        assert api.call("create_branch") == {
            "repo_id": "me/synth",
            "branch": "dev",
            "repo_type": "model",
            "exist_ok": True,
        }
        up = api.call("upload_folder")
        assert up["path_in_repo"] == "runs/a" and up["revision"] == "dev"
        assert up["commit_message"] == "Upload SyntheticModel runs/a"
        assert sorted(up["allow_patterns"]) == sorted([CONFIG, WEIGHTS])
        text = api.call("upload_file")["path_or_fileobj"].decode()
        assert (
            'from_pretrained("me/synth", model_path="runs/a")' in text and "Hierarchy: no" in text
        )


def test_upload_skips_an_existing_or_unwanted_readme(model) -> None:
    api = FakeApi(readme_exists=True)
    upload_synthetic_model_to_huggingface(model, "me/synth", api=api)
    assert "upload_file" not in api.names()
    api = FakeApi()
    upload_synthetic_model_to_huggingface(model, "me/synth", add_default_readme=False, api=api)
    assert "file_exists" not in api.names() and "upload_file" not in api.names()


def test_upload_validates_before_touching_the_hub(model, tmp_path) -> None:
    model.save(tmp_path / "m")
    (tmp_path / "m" / WEIGHTS).unlink()
    api = FakeApi()
    with pytest.raises(FileNotFoundError, match=WEIGHTS):
        upload_synthetic_model_to_huggingface(tmp_path / "m", "me/synth", api=api)
    with pytest.raises(FileNotFoundError, match=CONFIG):
        upload_synthetic_model_to_huggingface(tmp_path / "absent", "me/synth", api=api)
    assert api.calls == []


def test_upload_uses_hfapi_by_default(model, monkeypatch) -> None:
    fake = FakeApi()
    monkeypatch.setattr(hub, "HfApi", lambda *a, **k: fake)
    upload_synthetic_model_to_huggingface(model, "me/synth")
    assert "upload_folder" in fake.names()


def test_hierarchy_max_depth_and_readme(model) -> None:
    from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
    from synthsae.synthetic.hierarchy.node import HierarchyNode

    lone = Hierarchy.from_dict({"roots": [HierarchyNode(0).to_dict()]})
    assert hierarchy_max_depth(lone) == 1
    chain = HierarchyNode(0, children=[HierarchyNode(1, children=[HierarchyNode(2)])])
    assert hierarchy_max_depth(Hierarchy.from_dict({"roots": [chain.to_dict()]})) == 3
    assert hierarchy_max_depth(model.hierarchy) == 3
    assert "Seed: 7" in default_readme(model, "a/b")
