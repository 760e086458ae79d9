"""Fixtures for the SAE tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from sae_helpers import ARCHITECTURES


@pytest.fixture(params=ARCHITECTURES)
def architecture(request: pytest.FixtureRequest) -> str:
    """Each built-in architecture name in turn."""
    return request.param


@pytest.fixture(autouse=True)
def _one_thread_for_tiny_tensors() -> Iterator[None]:
    """Run these tests on one intra-op thread.

    Their tensors are tiny, so a second thread brings nothing; on a busy two-core machine
    the BLAS/OpenMP hand-off to it made small matrix products ~100x slower (53 ms instead
    of 0.1 ms for a 128x32 @ 32x32 product), which dominated the test time.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
