"""The L0 controller: its update rule, reaching a target, exact resume, no host syncs."""

import io

import pytest
import torch
from training_helpers import params_equal, standard_sae, synthetic_stream, topk_sae

from synthsae.training.l0_control import L0ControlConfig, L0Controller, supports_l0_control
from synthsae.training.trainer import Trainer, TrainerCallback, TrainerConfig

BATCH = 256


def cfg(steps: int, **kw) -> TrainerConfig:
    return TrainerConfig(total_training_samples=steps * BATCH, batch_size=BATCH, lr=3e-3, show_progress=False, **kw)


def eval_l0(sae, rows: int = 20_000) -> float:
    """Mean L0 of the inference SAE on fresh rows of the toy stream."""
    batch = next(synthetic_stream(seed=777, batch_size=rows))
    with torch.no_grad():
        return float((sae.to_inference_sae().encode(batch) != 0).sum(-1).float().mean())


def test_one_step_follows_the_update_rule():
    """One update by hand: average, predicted error, clipped push, damping, drift, multiplier."""
    c = L0ControlConfig(target_l0=4.0, window=5.0, gain=0.1, sharpness=3.0, horizon_windows=2.0,
                        drift_windows=8.0, approach_damping=0.05, arrival_windows=20.0)
    controller = L0Controller({0: c})
    trainer = Trainer(standard_sae(), synthetic_stream(), cfg(10), [controller])
    controller.on_fit_start(trainer)
    s0, r0, m0, v0, l0 = 4.2, 0.01, 2.0, 0.001, 4.5
    controller.updates = 3
    controller.smoothed_l0.fill_(s0)
    controller.l0_rate.fill_(r0)
    controller.multiplier.fill_(m0)
    controller.drift.fill_(v0)
    stats = trainer.slots[0].stats
    stats.last_counts, stats.last_rows = torch.tensor([l0 * 100.0, 0.0]), 100
    trainer.step = 5
    controller.on_step_end(trainer)

    s = s0 + (l0 - s0) / 5.0
    r = r0 + ((s - s0) - r0) / 5.0
    error = (s - 4.0) / 4.0
    push = min(1.0, 3.0 * (error + 10.0 * r / 4.0))  # H = 2 windows = 10 steps
    assert 0 < push < 1  # the linear range, so drift is learned; moving away: no damping
    drift = v0 + push * 0.1 / (8.0 * 5.0)
    rate = push * 0.1 + drift
    assert controller.smoothed_l0.item() == pytest.approx(s, rel=1e-12)
    assert controller.drift.item() == pytest.approx(drift, rel=1e-12)
    assert controller.multiplier.item() == pytest.approx(m0 * (1 + rate), rel=1e-12)
    # the SAE's next step sees the scheduled coefficient times the multiplier
    coef = trainer.slots[0].coefficients(5)["l1"]
    assert float(coef) == pytest.approx(0.05 * m0 * (1 + rate), rel=1e-6)


def test_multiplier_falls_symmetrically_and_respects_bounds():
    controller = L0Controller({0: L0ControlConfig(target_l0=4.0, window=1.0, gain=0.5, drift_windows=0.0,
                                                  min_multiplier=0.5)})
    trainer = Trainer(standard_sae(), synthetic_stream(), cfg(10), [controller])
    controller.on_fit_start(trainer)
    stats = trainer.slots[0].stats
    stats.last_counts, stats.last_rows = torch.tensor([100.0]), 100  # L0 1, far below 4: push -1
    controller.on_step_end(trainer)
    assert controller.multiplier.item() == pytest.approx(1 / 1.5)  # down by 1 / (1 + g)
    controller.on_step_end(trainer)
    assert controller.multiplier.item() == 0.5  # clamped at min_multiplier


def test_standard_saes_reach_their_target_l0_on_cpu_small():
    """The benchmark's default setting (cpu_small, width 256, 586 steps of 512 rows, lr 3e-3), one
    coefficient too small and one too large: the controlled SAEs land within 3%, the same SAEs
    left alone miss by far. All four share one trainer and one stream."""
    from synthsae import StandardTrainingSAE, StandardTrainingSAEConfig
    from synthsae.runs.activation_iterator import SyntheticActivationIterator
    from synthsae.synthetic.presets import cpu_small
    from synthsae.synthetic.synthetic_model import SyntheticModel

    model = SyntheticModel(cpu_small()).set_sampling_seed(1)
    setups = [(1.0, 5.0), (3.0, 20.0)]  # (starting l1 coefficient, target L0)
    saes = []
    for l1, _ in setups * 2:
        torch.manual_seed(0)
        saes.append(StandardTrainingSAE(StandardTrainingSAEConfig(d_in=64, d_sae=256, l1_coefficient=l1)))
    controller = L0Controller({0: setups[0][1], 1: setups[1][1]})
    data = SyntheticActivationIterator(model.feature_dict, model.activation_generator, 512)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster
    try:
        Trainer(saes, data, TrainerConfig(total_training_samples=300_000, batch_size=512, lr=3e-3,
                                          show_progress=False), [controller]).fit()
    finally:
        torch.set_num_threads(before)
    model.set_sampling_seed(2)
    x = model.sample(20_000)
    with torch.no_grad():
        l0 = [float((sae.to_inference_sae().encode(x) != 0).sum(-1).float().mean()) for sae in saes]
    for i, (_, target) in enumerate(setups):
        # 3%: what the benchmark promises; 20k rows measure the L0 to a fraction of a percent
        assert abs(l0[i] / target - 1) < 0.03, (target, l0[i])
        assert abs(l0[i + 2] / target - 1) > 0.1, (target, l0[i + 2])  # uncontrolled: far off
    assert controller.multipliers()[0] > 1 > controller.multipliers()[1]  # pushed up, and down


def test_nothing_moves_before_start_step():
    controller = L0Controller(L0ControlConfig(target_l0=1.5, start_step=30))
    seen = []

    class Watch(TrainerCallback):
        def on_step_end(self, trainer):
            seen.append((trainer.step, controller.multipliers()[0]))

    Trainer(standard_sae(), synthetic_stream(1, batch_size=BATCH), cfg(40), [controller, Watch()]).fit()
    assert all(m == 1.0 for step, m in seen if step < 30)  # steps 0..29 use the configured coefficient
    assert seen[-1][1] > 1.0


def test_resume_is_bit_identical_with_the_controller():
    def build(seed):
        saes = [standard_sae(seed, l1=0.05), standard_sae(seed + 1, l1=0.02)]
        return saes, L0Controller({0: 2.0, 1: 3.0})

    saes, ctl = build(0)
    Trainer(saes, synthetic_stream(3, batch_size=BATCH), cfg(60), [ctl]).fit()

    first_saes, first_ctl = build(0)
    first = Trainer(first_saes, synthetic_stream(3, batch_size=BATCH), cfg(60), [first_ctl])
    first.fit(num_steps=25)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=False)
    assert state["callbacks"]["l0_controller"]["updates"] == 25

    again_saes, again_ctl = build(50)  # different init: everything comes from the state
    resumed = Trainer(again_saes, synthetic_stream(99, batch_size=BATCH), cfg(60), [again_ctl])
    resumed.load_state_dict(state)
    resumed.fit()
    assert all(params_equal(a, b) for a, b in zip(saes, again_saes))
    assert torch.equal(ctl.multiplier, again_ctl.multiplier) and torch.equal(ctl.drift, again_ctl.drift)


def test_an_sae_steers_the_same_whatever_shares_the_controller():
    """Ten controlled SAEs (long enough for torch's vectorised loops) vs the first one alone."""
    alone = [standard_sae(0, l1=0.05)]
    Trainer(alone, synthetic_stream(2, batch_size=BATCH), cfg(30), [L0Controller({0: 2.0})]).fit()
    crowd = [standard_sae(i, l1=0.05) for i in range(10)]
    crowd_ctl = L0Controller({i: 2.0 + 0.1 * i for i in range(10)})
    Trainer(crowd, synthetic_stream(2, batch_size=BATCH), cfg(30), [crowd_ctl]).fit()
    assert params_equal(alone[0], crowd[0])


def test_no_host_sync_between_logging_steps(monkeypatch):
    armed = [False]

    class Arm(TrainerCallback):
        def on_step_end(self, trainer):
            armed[0] = 2 <= trainer.step < 28

    controller = L0Controller(L0ControlConfig(target_l0=2.0))
    trainer = Trainer(standard_sae(), synthetic_stream(batch_size=BATCH), cfg(30, log_frequency=1000),
                      [controller, Arm()])
    calls = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def guarded(self, *a, _orig=original, _name=name, **k):
            if armed[0]:
                calls.append(_name)
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, guarded)
    trainer.fit()
    monkeypatch.undo()
    assert trainer.step == 30 and calls == []


def test_logged_coefficient_is_the_steered_one():
    logs = []

    class Log(TrainerCallback):
        def on_log(self, step, metrics, sae_index):
            logs.append(metrics)

    controller = L0Controller(1.5)
    Trainer(standard_sae(l1=0.05), synthetic_stream(1, batch_size=BATCH), cfg(40, log_frequency=40),
            [controller, Log()]).fit()
    assert logs[-1]["details/l1_coefficient"] == pytest.approx(0.05 * controller.multipliers()[0], rel=1e-6)


def test_bad_targets_and_configs():
    assert supports_l0_control(standard_sae()) and not supports_l0_control(topk_sae())
    with pytest.raises(ValueError, match="SAE 1 .topk. has no sparsity coefficient"):
        Trainer([standard_sae(), topk_sae()], synthetic_stream(), cfg(2), [L0Controller({1: 2.0})]).fit()
    with pytest.raises(ValueError, match="index 3 is out of range"):
        Trainer(standard_sae(), synthetic_stream(), cfg(2), [L0Controller({3: 2.0})]).fit()
    with pytest.raises(ValueError, match="target_l0 must be > 0"):
        L0ControlConfig(target_l0=0)
    with pytest.raises(ValueError, match="start_step must be an integer >= 0"):
        L0ControlConfig(target_l0=2, start_step=-1)
    with pytest.raises(TypeError, match="sharpness must be a finite number"):
        L0ControlConfig(target_l0=2, sharpness="high")
    with pytest.raises(ValueError, match="needs at least one target"):
        L0Controller({})
    assert L0ControlConfig.from_dict(L0ControlConfig(3.0, start_step=5).to_dict()) == L0ControlConfig(3.0, 5)


def test_loading_a_state_for_other_saes_fails():
    a = L0Controller({0: 2.0})
    with pytest.raises(ValueError, match=r"steers SAEs \[0\], this one \[1\]"):
        L0Controller({1: 2.0}).load_state_dict(a.state_dict())
