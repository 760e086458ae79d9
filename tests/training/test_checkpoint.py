"""Atomic checkpoints: pickle-free state files, RNG capture, and ignoring unfinished folders."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from synthsae.training.checkpoint import (
    COMPLETE_MARKER,
    capture_rng_state,
    flatten_state,
    is_complete_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_state,
    read_checkpoint_info,
    restore_rng_state,
    save_state,
    unflatten_state,
    write_checkpoint,
)


def _adam_state() -> dict:
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.95))
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    return opt.state_dict()


def test_flatten_round_trip_keeps_structure_and_values() -> None:
    state = {
        "opt": _adam_state(),  # int keys, tuples (betas), 0-dim tensors
        "mixed": (1, 2.5, float("nan"), float("-inf"), None, True, "s"),
        "arr": np.arange(5, dtype=np.uint32),
        7: [torch.zeros(0), torch.ones(2, 3, dtype=torch.bfloat16)],
        "__tensor__": "a key that looks like a marker",
    }
    skeleton, tensors = flatten_state(state)
    json.dumps(skeleton, allow_nan=False)  # pure JSON
    back = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert back["opt"]["param_groups"][0]["betas"] == (0.8, 0.95)
    assert set(back["opt"]["state"]) == {0, 1}
    for key, value in state["opt"]["state"][0].items():
        assert torch.equal(back["opt"]["state"][0][key], value)
    assert back["mixed"][:2] == (1, 2.5) and math.isnan(back["mixed"][2]) and back["mixed"][3] == -math.inf
    assert back["mixed"][4:] == (None, True, "s")
    assert back["arr"].dtype == np.uint32 and back["arr"].tolist() == [0, 1, 2, 3, 4]
    assert back[7][1].dtype == torch.bfloat16 and back[7][0].numel() == 0
    assert back["__tensor__"] == "a key that looks like a marker"


def test_flatten_rejects_arbitrary_objects() -> None:
    with pytest.raises(TypeError, match=r"\.bad"):
        flatten_state({"bad": object()})


def test_save_and_load_state_files(tmp_path: Path) -> None:
    state = {"opt": _adam_state(), "step": 3}
    save_state(tmp_path, state)
    back = load_state(tmp_path)
    assert back["step"] == 3
    opt = torch.optim.Adam(torch.nn.Linear(4, 3).parameters())
    opt.load_state_dict(back["opt"])  # loadable by torch
    (tmp_path / "trainer_state.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="trainer_state.safetensors"):
        load_state(tmp_path)


def test_rng_capture_restores_every_stream() -> None:
    gen = torch.Generator().manual_seed(5)
    state = capture_rng_state({"data": gen})
    first = (random.random(), np.random.rand(), torch.rand(3), torch.rand(3, generator=gen))
    skeleton, tensors = flatten_state(state)  # the state survives the file format
    restore_rng_state(unflatten_state(skeleton, tensors), {"data": gen})
    again = (random.random(), np.random.rand(), torch.rand(3), torch.rand(3, generator=gen))
    assert first[:2] == again[:2]
    assert torch.equal(first[2], again[2]) and torch.equal(first[3], again[3])
    with pytest.raises(KeyError, match="other"):
        restore_rng_state(state, {"other": torch.Generator()})


def _write(root: Path, name: str, samples: int) -> Path:
    def files(tmp: Path) -> None:
        (tmp / "payload.txt").write_text(name)

    return write_checkpoint(root / name, files, {"step": samples // 10, "samples_seen": samples})


def test_write_checkpoint_is_complete_and_listed_in_order(tmp_path: Path) -> None:
    for samples in (100, 2000, 300):
        _write(tmp_path, str(samples), samples)
    found = list_checkpoints(tmp_path)
    assert [p.name for p in found] == ["100", "300", "2000"]  # by samples seen, not by name
    info = read_checkpoint_info(found[0])
    assert info["samples_seen"] == 100 and info["files"] == ["payload.txt"]
    assert latest_checkpoint(tmp_path) == tmp_path / "2000"
    assert latest_checkpoint(tmp_path / "300") == tmp_path / "300"  # a checkpoint itself
    assert latest_checkpoint(tmp_path / "missing") is None
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_failed_write_leaves_nothing_and_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    _write(tmp_path, "100", 100)

    def broken(tmp: Path) -> None:
        (tmp / "payload.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_checkpoint(tmp_path / "100", broken, {"samples_seen": 100})
    assert (tmp_path / "100" / "payload.txt").read_text() == "100"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["100"]


def test_incomplete_checkpoints_are_ignored(tmp_path: Path) -> None:
    good = _write(tmp_path, "100", 100)
    no_marker = tmp_path / "900"
    no_marker.mkdir()
    (no_marker / "payload.txt").write_text("x")
    missing_file = _write(tmp_path, "800", 800)
    (missing_file / "payload.txt").unlink()
    bad_marker = _write(tmp_path, "700", 700)
    (bad_marker / COMPLETE_MARKER).write_text("{not json")
    hidden = tmp_path / ".1000.tmp-1-abc"
    hidden.mkdir()
    (hidden / COMPLETE_MARKER).write_text(json.dumps({"samples_seen": 1000, "files": []}))
    assert not any(is_complete_checkpoint(p) for p in (no_marker, missing_file, bad_marker, hidden))
    assert latest_checkpoint(tmp_path) == good


def test_checkpoint_killed_mid_write_is_never_picked_up(tmp_path: Path) -> None:
    _write(tmp_path, "100", 100)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from synthsae.training.checkpoint import write_checkpoint

        def files(tmp):
            (tmp / "payload.txt").write_text("partial")
            os._exit(9)  # killed: no cleanup, no marker, no rename

        write_checkpoint(Path({str(tmp_path)!r}) / "200", files, {{"samples_seen": 200}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".200.tmp")]
    assert leftovers  # the half-written folder is still there...
    assert latest_checkpoint(tmp_path) == tmp_path / "100"  # ...and ignored
