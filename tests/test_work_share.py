"""The work mailbox between the training thread and an idle helper thread."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from synthsae._work_share import WorkShare
from synthsae.runs.prefetch import training_threads


def _helper(share: WorkShare, stop: threading.Event) -> threading.Thread:
    def serve() -> None:
        with share.condition:
            while not stop.is_set():
                if not share.run_posted():
                    with share.idle():
                        share.condition.wait(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_without_a_helper_both_halves_run_here_in_order() -> None:
    share, ran = WorkShare(), []
    share.run_pair(lambda: ran.append(("first", threading.get_ident())),
                   lambda: ran.append(("second", threading.get_ident())))
    assert [name for name, _ in ran] == ["first", "second"]
    assert {ident for _, ident in ran} == {threading.get_ident()}
    assert share.pairs_started == 1


def test_an_idle_helper_takes_the_second_half() -> None:
    share, stop = WorkShare(), threading.Event()
    thread = _helper(share, stop)
    where: dict[str, int] = {}
    for _ in range(200):  # the helper must be waiting when the pair is posted
        time.sleep(0.01)
        share.run_pair(lambda: (time.sleep(0.02), where.setdefault("first", threading.get_ident())),
                       lambda: where.setdefault("second", threading.get_ident()))
        if where["second"] != where["first"]:
            break
        where.clear()
    stop.set()
    thread.join(5)
    assert where["first"] == threading.get_ident() and where["second"] == thread.ident


def test_a_helper_error_reaches_the_poster() -> None:
    share, stop = WorkShare(), threading.Event()
    thread = _helper(share, stop)

    def fail() -> None:
        raise RuntimeError("second half failed")

    with pytest.raises(RuntimeError, match="second half failed"):
        for _ in range(200):  # raised whether the helper or this thread ran it
            time.sleep(0.01)
            share.run_pair(lambda: time.sleep(0.02), fail)
    stop.set()
    thread.join(5)


def test_training_threads_leaves_a_core_to_the_producer() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with training_threads("cpu", prefetching=True) as inside:
            assert inside == torch.get_num_threads() == 2
        assert torch.get_num_threads() == 3
        with training_threads("cpu", prefetching=False) as inside:
            assert inside == 3
        torch.set_num_threads(1)
        with training_threads("cpu", prefetching=True) as inside:
            assert inside == 1
    finally:
        torch.set_num_threads(before)
