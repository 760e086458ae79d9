"""Small SAEs and deterministic data streams for the training-loop tests."""

from __future__ import annotations

import glob
import struct
from pathlib import Path
from typing import Any

import torch

from synthsae import (
    StandardTrainingSAE,
    StandardTrainingSAEConfig,
    TopKTrainingSAE,
    TopKTrainingSAEConfig,
)
from synthsae.runs.activation_iterator import SyntheticActivationIterator
from synthsae.synthetic import ActivationGenerator, FeatureDictionary

D_IN, D_SAE, N_FEATURES = 8, 12, 12


def standard_sae(seed: int = 0, l1: float = 0.05, warm_up: int = 0, **kw: Any) -> StandardTrainingSAE:
    torch.manual_seed(seed)
    cfg = StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, l1_coefficient=l1, l1_warm_up_steps=warm_up, **kw)
    return StandardTrainingSAE(cfg)


def topk_sae(seed: int = 0, k: int = 3) -> TopKTrainingSAE:
    torch.manual_seed(seed)
    return TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=k))


def synthetic_stream(seed: int = 0, batch_size: int = 64) -> SyntheticActivationIterator:
    """A seeded (hence replayable) stream of toy activations, with state_dict support."""
    fd = FeatureDictionary(N_FEATURES, D_IN, seed=1234, initializer=None)
    gen = ActivationGenerator(N_FEATURES, 0.25, std_firing_magnitudes=0.1, seed=seed)
    return SyntheticActivationIterator(fd, gen, batch_size)


class ListData:
    """Yields the given batches in order (then raises StopIteration); resumable."""

    def __init__(self, batches: list[torch.Tensor]) -> None:
        self.batches, self.i = batches, 0

    def __iter__(self) -> ListData:
        return self

    def __next__(self) -> torch.Tensor:
        if self.i >= len(self.batches):
            raise StopIteration
        self.i += 1
        return self.batches[self.i - 1]

    def state_dict(self) -> dict[str, int]:
        return {"i": self.i}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.i = state["i"]


def fixed_batches(n: int, batch_size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    stream = synthetic_stream(seed, batch_size)
    return [next(stream) for _ in range(n)]


def params_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def read_wandb_offline_records(wandb_dir: str | Path, missing_ok: bool = False) -> list[Any]:
    """Every record of the (single) offline run under ``wandb_dir``, read from its .wandb file
    (``[]`` if it is not there yet and ``missing_ok``).

    The file is a LevelDB-style log (7-byte ``:W&B`` header, then 32 KiB blocks of
    records with a 7-byte header each) of ``wandb_internal_pb2.Record`` messages.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    found = glob.glob(str(Path(wandb_dir) / "wandb" / "offline-run-*" / "run-*.wandb"))
    if not found and missing_ok:
        return []
    (path,) = found
    raw = Path(path).read_bytes()
    assert raw[:4] == b":W&B"
    block, pos, buf, records = 32768, 7, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, n, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if kind == 0 and n == 0:
            break
        buf += raw[pos + 7:pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):  # FULL or LAST chunk: a complete record
            rec = pb.Record()
            rec.ParseFromString(buf)
            buf = b""
            records.append(rec)
    return records


def read_wandb_offline_history(wandb_dir: str | Path) -> list[dict[str, str]]:
    """History rows of the (single) offline run under ``wandb_dir``."""
    return [{item.key or "/".join(item.nested_key): item.value_json for item in rec.history.item}
            for rec in read_wandb_offline_records(wandb_dir) if rec.WhichOneof("record_type") == "history"]
