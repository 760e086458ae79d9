"""LR and coefficient schedules: hand-computed values, boundaries, errors, and torch's schedulers as an oracle."""

import math
import warnings

import pytest
import torch
from torch.optim import lr_scheduler as tls

from synthsae.training.schedules import CoefficientSchedule, LRSchedule


def lrs(sched: LRSchedule, steps) -> list[float]:
    return [sched.lr_at(s) for s in steps]


def test_constant_is_flat():
    assert lrs(LRSchedule(1e-3, 10), range(10)) == [1e-3] * 10


def test_warm_up_linear_from_lr_over_w_to_lr():
    s = LRSchedule(1.0, 10, warm_up_steps=4)
    assert lrs(s, range(6)) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert LRSchedule(1.0, 10, warm_up_steps=1).lr_at(0) == 1.0


def test_constant_decay_starts_at_lr_and_goes_to_zero():
    s = LRSchedule(2.0, 10, decay_steps=4, lr_end=0.5)  # constant ignores lr_end
    assert s.lr_end == 2.0
    assert lrs(s, range(5, 10)) == pytest.approx([2.0, 2.0, 1.5, 1.0, 0.5])
    assert s.lr_at(10) == 0.0 and s.lr_at(50) == 0.0  # past the end: clamped at 0


def test_cosine_annealing_values():
    s = LRSchedule(1.0, 10, scheduler_name="cosineannealing", lr_end=0.1)
    assert s.lr_at(0) == pytest.approx(1.0)
    assert s.lr_at(5) == pytest.approx(0.55)
    assert s.lr_at(2) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.2)) / 2)


def test_cosine_with_warm_up_and_decay_boundaries():
    s = LRSchedule(1.0, 12, warm_up_steps=2, decay_steps=2, scheduler_name="CosineAnnealing", lr_end=0.1)
    assert s.scheduler_name == "cosineannealing"
    assert lrs(s, [0, 1]) == pytest.approx([0.5, 1.0])
    assert s.lr_at(2) == pytest.approx(1.0)  # main phase starts at its top
    assert s.lr_at(6) == pytest.approx(0.55)  # halfway through 8 main steps
    assert lrs(s, [10, 11]) == pytest.approx([0.1, 0.05])  # decay from lr_end


def test_warm_restarts_period():
    s = LRSchedule(1.0, 10, scheduler_name="cosineannealingwarmrestarts", lr_end=0.0, n_restart_cycles=2)
    assert lrs(s, [0, 5]) == pytest.approx([1.0, 1.0])
    assert s.lr_at(2) == pytest.approx(s.lr_at(7))
    assert s.lr_at(2) == pytest.approx((1 + math.cos(math.pi * 2 / 5)) / 2)


def test_lr_end_defaults_to_tenth():
    assert LRSchedule(1.0, 10, scheduler_name="cosineannealing").lr_end == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"decay_steps": 2, "lr_end": 0.0, "scheduler_name": "cosineannealing"}, "lr_end"),
        ({"warm_up_steps": 6, "decay_steps": 5}, "exceed"),
        ({"scheduler_name": "linear"}, "lr_scheduler_name"),
        ({"lr": 0.0}, "lr must be"),
        ({"warm_up_steps": -1}, "lr_warm_up_steps"),
        ({"n_restart_cycles": 0}, "n_restart_cycles"),
        ({"scheduler_name": "cosineannealingwarmrestarts", "n_restart_cycles": 11}, "warmrestarts"),
    ],
)
def test_bad_schedules_raise(kwargs, match):
    args = {"lr": 1.0, "total_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        LRSchedule(**args)


def _torch_schedule(name, total, warm, decay, lr, lr_end, cycles):
    """The same schedule assembled from torch's schedulers (SequentialLR), stepped once per step."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    main_steps = total - warm - decay
    if name == "constant":
        main = tls.LambdaLR(opt, lambda _: 1.0)
        lr_end = lr
    elif name == "cosineannealing":
        main = tls.CosineAnnealingLR(opt, T_max=main_steps, eta_min=lr_end)
    else:
        main = tls.CosineAnnealingWarmRestarts(opt, T_0=main_steps // cycles, eta_min=lr_end)
    parts, milestones = [], []
    if warm:
        parts.append(tls.LinearLR(opt, start_factor=1 / warm, end_factor=1.0, total_iters=warm - 1))
        milestones.append(warm)
    parts.append(main)
    if decay:
        parts.append(tls.LinearLR(opt, start_factor=lr_end / lr, end_factor=0.0, total_iters=decay))
        milestones.append(total - decay)
    seq = tls.SequentialLR(opt, parts, milestones)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        seq.step()
    return out


@pytest.mark.parametrize("name", ["constant", "cosineannealing", "cosineannealingwarmrestarts"])
@pytest.mark.parametrize("total, warm, decay, cycles", [(40, 0, 0, 1), (40, 5, 0, 2), (40, 0, 7, 3), (57, 4, 9, 2)])
def test_matches_torch_sequential_lr(name, total, warm, decay, cycles):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _torch_schedule(name, total, warm, decay, 3e-4, 3e-5, cycles)
    ours = lrs(LRSchedule(3e-4, total, warm, decay, name, 3e-5, cycles), range(total))
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_coefficient_warm_up():
    c = CoefficientSchedule(2.0, warm_up_steps=4)
    assert [c.value_at(s) for s in range(7)] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    assert CoefficientSchedule(0.3).value_at(0) == 0.3
    with pytest.raises(TypeError, match="must be a number"):
        CoefficientSchedule("0.3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warm_up_steps"):
        CoefficientSchedule(1.0, -2)
