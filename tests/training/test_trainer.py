"""The training loop: one or many SAEs, exact resume, non-finite losses, callbacks, no host syncs."""

import copy
import io

import pytest
import torch
from training_helpers import (
    D_IN,
    ListData,
    fixed_batches,
    params_equal,
    standard_sae,
    synthetic_stream,
    topk_sae,
)

from synthsae.training.trainer import (
    NonFiniteLossError,
    SampleThresholdCallback,
    Trainer,
    TrainerCallback,
    TrainerConfig,
    checkpoint_thresholds,
)


def cfg(steps: int, batch: int = 64, **kw) -> TrainerConfig:
    return TrainerConfig(total_training_samples=steps * batch, batch_size=batch, show_progress=False, **kw)


class Recorder(TrainerCallback):
    def __init__(self):
        self.logs, self.step_ends, self.started, self.ended = [], [], 0, 0

    def on_fit_start(self, trainer):
        self.started += 1

    def on_log(self, step, metrics, sae_index):
        self.logs.append((step, sae_index, metrics))

    def on_step_end(self, trainer):
        self.step_ends.append((trainer.step, trainer.samples_seen))

    def on_fit_end(self, trainer):
        self.ended += 1


def test_single_sae_trains_and_counts():
    sae = standard_sae()
    rec = Recorder()
    trainer = Trainer(sae, synthetic_stream(), TrainerConfig(total_training_samples=64 * 60 + 10, batch_size=64,
                                                             show_progress=False, log_frequency=20, lr=3e-3), [rec])
    assert trainer.sae is sae and trainer.step == 0 and trainer.n_training_steps == 0
    trainer.fit()
    assert trainer.step == 61 and trainer.samples_seen == 61 * 64  # runs until the samples are covered
    assert trainer.n_training_samples == trainer.samples_seen
    assert [s for s, _ in rec.step_ends] == list(range(1, 62))
    assert [s for s, _, m in rec.logs if "losses/overall_loss" in m] == [20, 40, 60]
    assert rec.started == 1 and rec.ended == 1 and trainer.finished
    losses = [m["losses/overall_loss"] for _, _, m in rec.logs if "losses/overall_loss" in m]
    assert losses[-1] < losses[0]


def test_log_keys_and_values():
    rec = Recorder()
    sae = standard_sae(warm_up=100)
    Trainer(sae, ListData(fixed_batches(10)), cfg(10, log_frequency=5, lr=1e-3), [rec]).fit()
    step, idx, m = rec.logs[-1]
    assert (step, idx) == (10, 0)
    expected = {
        "losses/overall_loss", "losses/mse_loss", "losses/l1_loss", "metrics/explained_variance",
        "metrics/explained_variance_legacy", "metrics/explained_variance_legacy_std", "metrics/l0",
        "sparsity/mean_passes_since_fired", "sparsity/dead_features", "details/current_learning_rate",
        "details/n_training_samples", "details/l1_coefficient",
    }
    assert expected <= set(m)
    assert all(isinstance(v, float) for v in m.values())
    assert m["details/n_training_samples"] == 640.0
    assert m["details/l1_coefficient"] == pytest.approx(0.05 * 10 / 100)  # value for the next step
    assert m["details/current_learning_rate"] == pytest.approx(1e-3)
    assert m["losses/overall_loss"] == pytest.approx(m["losses/mse_loss"] + m["losses/l1_loss"], rel=1e-5)
    assert 0 < m["metrics/l0"] <= 12


def test_coefficient_and_lr_reach_the_sae_and_optimizer():
    seen = []
    sae = standard_sae(warm_up=4)
    orig = sae.training_forward_pass

    def spy(step_input):
        seen.append((step_input.n_training_steps, step_input.coefficients["l1"], step_input.dead_neuron_mask.dtype))
        return orig(step_input)

    sae.training_forward_pass = spy
    trainer = Trainer(sae, ListData(fixed_batches(6)), cfg(6, lr=1e-3, lr_warm_up_steps=2, lr_decay_steps=2))
    lrs = []
    trainer.callbacks.append(type("C", (), {"on_step_end": lambda self, t: lrs.append(t.optimizer.param_groups[0]["lr"])})())
    trainer.fit()
    assert [s for s, _, _ in seen] == list(range(6))
    assert [c for _, c, _ in seen] == pytest.approx([0.0, 0.0125, 0.025, 0.0375, 0.05, 0.05])
    assert seen[0][2] == torch.bool
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3, 1e-3, 5e-4])


def test_many_saes_share_batches_and_train_independently():
    batches = fixed_batches(30)
    a, b, c = standard_sae(0), standard_sae(0), topk_sae(5)
    got = {0: [], 1: [], 2: []}
    for i, sae in enumerate((a, b, c)):
        orig = sae.training_forward_pass
        sae.training_forward_pass = lambda si, orig=orig, i=i: (got[i].append(si.sae_in.clone()), orig(si))[1]
    configs = [cfg(30, lr=1e-3), cfg(30, lr=3e-3), cfg(30, lr=2e-3, dead_feature_window=5)]
    Trainer([a, b, c], ListData(batches), configs).fit()
    assert all(torch.equal(x, y) and torch.equal(x, z) for x, y, z in zip(got[0], got[1], got[2]))
    assert all(torch.equal(x, batch) for x, batch in zip(got[0], batches))
    assert not params_equal(a, b)  # same init, different lr: independent optimizers
    # each SAE ends exactly where training it alone ends
    for sae, seed_sae, c_ in ((a, standard_sae(0), configs[0]), (b, standard_sae(0), configs[1]),
                              (c, topk_sae(5), configs[2])):
        Trainer(seed_sae, ListData(batches), c_).fit()
        assert params_equal(sae, seed_sae)


def test_shared_fields_must_agree():
    with pytest.raises(ValueError, match="batch_size"):
        Trainer([standard_sae(), standard_sae()], ListData([]),
                [cfg(4), TrainerConfig(total_training_samples=256, batch_size=32, show_progress=False)])
    with pytest.raises(ValueError, match="2 SAEs"):
        Trainer([standard_sae(), standard_sae()], ListData([]), [cfg(4)])


def _resume_setup(seed_sae: int):
    saes = [standard_sae(seed_sae, warm_up=15), topk_sae(seed_sae + 1)]
    configs = [
        cfg(40, lr=2e-3, lr_scheduler_name="cosineannealing", lr_warm_up_steps=5, lr_decay_steps=5,
            log_frequency=7, feature_sampling_window=9, dead_feature_window=3),
        cfg(40, lr=1e-3, log_frequency=7, feature_sampling_window=9, dead_feature_window=3),
    ]
    return saes, configs


def test_resume_is_bit_identical():
    saes, configs = _resume_setup(0)
    full = Trainer(saes, synthetic_stream(3), configs)
    full.fit()

    saes1, _ = _resume_setup(0)
    first = Trainer(saes1, synthetic_stream(3), configs)
    first.fit(num_steps=17)
    assert first.step == 17 and not first.finished
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    del first
    buf.seek(0)
    state = torch.load(buf, weights_only=False)

    saes2, _ = _resume_setup(99)  # different init: everything must come from the state
    resumed = Trainer(saes2, synthetic_stream(12345), configs)  # different stream position, restored too
    resumed.load_state_dict(state)
    assert resumed.step == 17
    resumed.fit()
    assert resumed.step == full.step == 40
    for x, y in zip(full.saes, resumed.saes):
        assert params_equal(x, y)
    for sx, sy in zip(full.slots, resumed.slots):
        assert torch.equal(sx.stats.steps_since_fired, sy.stats.steps_since_fired)
        assert torch.equal(sx.stats.fire_counts, sy.stats.fire_counts)
        ox, oy = sx.optimizer.state_dict()["state"], sy.optimizer.state_dict()["state"]
        assert all(torch.equal(ox[k]["exp_avg_sq"], oy[k]["exp_avg_sq"]) for k in ox)


def test_state_dict_is_a_copy():
    trainer = Trainer(standard_sae(), ListData(fixed_batches(4)), cfg(4))
    trainer.fit(num_steps=2)
    state = trainer.state_dict()
    w = state["saes"][0]["model"]["W_dec"].clone()
    trainer.fit()
    assert torch.equal(state["saes"][0]["model"]["W_dec"], w)


@pytest.mark.parametrize("log_frequency, message", [(1, "at step 8;"), (5, "between 6 and 10")])
def test_nan_loss_raises_naming_the_step(log_frequency, message):
    batches = fixed_batches(20)
    batches[7] = batches[7].clone()
    batches[7][3, 2] = float("nan")  # the 8th step sees a NaN input
    rec = Recorder()
    trainer = Trainer(standard_sae(), ListData(batches), cfg(20, log_frequency=log_frequency), [rec])
    with pytest.raises(NonFiniteLossError, match=message) as err:
        trainer.fit()
    assert "mse_loss=nan" in str(err.value) and "l1_loss" in str(err.value)
    assert set(err.value.losses) == {"overall_loss", "mse_loss", "l1_loss"}
    assert err.value.step == (8 if log_frequency == 1 else 10) and err.value.sae_index == 0


def test_huge_lr_diverges_and_is_caught():
    batches = [b * 1e20 for b in fixed_batches(30)]
    trainer = Trainer(standard_sae(), ListData(batches), cfg(30, lr=1e3, log_frequency=1000))
    with pytest.raises(NonFiniteLossError, match="non-finite training loss"):
        trainer.fit()  # never a logging step: the end-of-fit check catches it


def test_no_host_sync_between_logging_steps(monkeypatch):
    armed = [False]

    class Arm(TrainerCallback):  # forbid syncs from the end of step 2 to the end of step 28
        def on_step_end(self, trainer):
            armed[0] = 2 <= trainer.step < 28

    trainer = Trainer(standard_sae(), ListData(fixed_batches(30)), cfg(30, log_frequency=1000), [Arm()])
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


def test_fit_in_pieces_equals_one_fit():
    a, b = standard_sae(1), standard_sae(1)
    batches = fixed_batches(12)
    Trainer(a, ListData(batches), cfg(12)).fit()
    t = Trainer(b, ListData(batches), cfg(12))
    for stop in (3, 3, 7):
        t.fit(num_steps=stop)
    t.fit()
    assert params_equal(a, b) and t.step == 12
    assert t.fit() == [b]  # finished: no more steps


def test_sparsity_window_logged_and_reset():
    rec = Recorder()
    trainer = Trainer(standard_sae(), ListData(fixed_batches(10)), cfg(10, feature_sampling_window=4, log_frequency=100), [rec])
    trainer.fit()
    windows = [(s, m) for s, _, m in rec.logs if "metrics/mean_log10_feature_sparsity" in m]
    assert [s for s, _ in windows] == [4, 8]
    assert trainer.slots[0].stats.window_steps == 2  # the last, partial window is kept


def test_activation_scaler_estimated_applied_and_folded():
    batches = [b * 7.0 for b in fixed_batches(40)]
    sae = standard_sae(normalize_activations="expected_average_only_in")
    seen, before_fold = [], []
    orig = sae.training_forward_pass
    sae.training_forward_pass = lambda si: (seen.append(si.sae_in), orig(si))[1]

    class KeepLast(TrainerCallback):
        def on_step_end(self, trainer):
            if trainer.samples_seen >= trainer.cfg.total_training_samples:
                before_fold.append((copy.deepcopy(trainer.sae.state_dict()), trainer.activation_scaler.scaling_factor))

    trainer = Trainer(sae, ListData(batches), cfg(30, n_batches_for_norm_estimate=10), [KeepLast()])
    trainer.fit()
    weights, factor = before_fold[0]
    mean_norm = torch.cat(batches[:10]).norm(dim=-1).double().mean().item()
    assert factor == pytest.approx(D_IN ** 0.5 / mean_norm, rel=1e-6)
    assert torch.allclose(seen[0], batches[10] * factor)  # training starts after the estimate batches
    assert trainer.activation_scaler.scaling_factor is None and sae.cfg.normalize_activations == "none"
    unfolded = standard_sae()
    unfolded.load_state_dict(weights)
    x = batches[-1]
    with torch.no_grad():
        assert torch.allclose(sae(x), unfolded(x * factor) / factor, rtol=1e-4, atol=1e-5)


def test_autocast_bf16_runs():
    rec = Recorder()
    trainer = Trainer(standard_sae(), ListData(fixed_batches(6)), cfg(6, autocast=True, log_frequency=3), [rec])
    trainer.fit()
    assert trainer.slots[0].grad_scaler is None  # bf16 needs no scaler
    assert all(torch.isfinite(torch.tensor(m["losses/overall_loss"])) for _, _, m in rec.logs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"total_training_samples": 10, "batch_size": 64}, "total_training_samples"),
        ({"adam_beta1": 1.0}, "adam_beta1"),
        ({"lr_scheduler_name": "nope"}, "lr_scheduler_name"),
        ({"lr_decay_steps": 2, "lr_end": 0.0, "lr_scheduler_name": "cosineannealing"}, "lr_end"),
        ({"autocast_dtype": "float8"}, "autocast_dtype"),
        ({"log_frequency": 0}, "log_frequency"),
        ({"lr_warm_up_steps": 20}, "exceed"),
    ],
)
def test_trainer_config_validation(kwargs, match):
    args = {"total_training_samples": 640, "batch_size": 64, **kwargs}
    with pytest.raises(ValueError, match=match):
        TrainerConfig(**args)


def test_trainer_config_defaults():
    c = TrainerConfig(total_training_samples=10_000)
    assert (c.batch_size, c.lr, c.lr_end, c.adam_beta1, c.adam_beta2) == (1024, 3e-4, pytest.approx(3e-5), 0.9, 0.999)
    assert (c.dead_feature_window, c.feature_sampling_window, c.max_grad_norm) == (1000, 2000, 1.0)
    assert c.total_training_steps == 9


def test_checkpoint_thresholds_and_resumed_threshold_callback():
    assert checkpoint_thresholds(4096, 4) == [820, 1640, 2460, 3280]
    assert checkpoint_thresholds(4096, 0) == []
    fired = []
    cb = SampleThresholdCallback(checkpoint_thresholds(64 * 20, 3), lambda t: fired.append(t.samples_seen))
    first = Trainer(standard_sae(), ListData(fixed_batches(20)), cfg(20), [cb])
    first.fit(num_steps=8)  # thresholds 320, 640, 960: the first two fire at 384 and 704
    assert fired == [384]
    state = first.state_dict()
    cb2 = SampleThresholdCallback(checkpoint_thresholds(64 * 20, 3), lambda t: fired.append(t.samples_seen))
    resumed = Trainer(standard_sae(), ListData(fixed_batches(20)), cfg(20), [cb2])
    resumed.load_state_dict(state)
    resumed.fit()
    assert fired == [384, 704, 1024]  # nothing re-fired for the threshold passed before the resume
