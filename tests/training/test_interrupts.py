"""InterruptGuard / StopOnInterrupt: the first SIGINT/SIGTERM becomes a request honoured after the
step, a second one stops at once, handlers are restored, other threads are left alone."""

from __future__ import annotations

import os
import signal
import threading
from types import SimpleNamespace

import pytest

from synthsae.training.interrupts import (
    InterruptGuard,
    StopOnInterrupt,
    TrainingInterrupted,
    exit_code_for,
    signal_name,
)


def fake_trainer(step: int) -> SimpleNamespace:
    return SimpleNamespace(step=step, world_size=1, device="cpu")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_is_a_request_the_second_stops_at_once(signum: int, capsys: pytest.CaptureFixture[str]) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    guard = InterruptGuard("finishing the step")
    stop = StopOnInterrupt(guard)
    with guard:
        assert guard.active
        stop.on_step_end(fake_trainer(3))  # no signal yet: nothing happens
        os.kill(os.getpid(), signum)
        assert guard.requested == signum  # the handler ran; training would go on to the end of the step
        with pytest.raises(TrainingInterrupted) as info:
            stop.on_step_end(fake_trainer(4))
        assert (info.value.signum, info.value.step) == (signum, 4)
        assert isinstance(info.value, KeyboardInterrupt)  # `except Exception` does not swallow it
        with pytest.raises(KeyboardInterrupt, match="stopped at once"):
            os.kill(os.getpid(), signum)
    assert {s: signal.getsignal(s) for s in before} == before
    assert f"{signal_name(signum)} received: finishing the step" in capsys.readouterr().err


def test_handlers_are_restored_after_an_exception_and_threads_are_left_alone() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RuntimeError), InterruptGuard():
        raise RuntimeError("boom")
    assert signal.getsignal(signal.SIGTERM) is before
    seen: list[bool] = []

    def in_thread() -> None:
        with InterruptGuard() as guard:
            seen.append(guard.active)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert seen == [False]  # Python allows signal handlers only in the main thread
    assert signal.getsignal(signal.SIGTERM) is before


def test_messages_and_exit_codes() -> None:
    assert exit_code_for(signal.SIGINT) == 130 and exit_code_for(signal.SIGTERM) == 143  # 128 + signal number
    stop = TrainingInterrupted(signal.SIGTERM, 7, checkpoint="ck/448", resume_from="runs/a")
    assert str(stop) == ("training interrupted by SIGTERM after step 7; checkpoint written to ck/448; continue "
                         "with SyntheticSAERunner.resume('runs/a').run() or `synthsae train --resume runs/a`")
    assert "no checkpoint written" in str(TrainingInterrupted(signal.SIGINT, 1))
