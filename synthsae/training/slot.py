"""One SAE's share of a training run: optimizer, schedules, firing statistics, scaler.

:class:`SAESlot` performs the per-step work for its SAE without any host sync and
builds the logged metrics (one sync) on logging steps.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import torch

from synthsae.saes.base import TrainingSAE, TrainStepInput, TrainStepOutput
from synthsae.training.activation_scaler import ActivationScaler
from synthsae.training.distributed import all_reduce_
from synthsae.training.firing_stats import FiringStats, fire_counts
from synthsae.training.optim import Adam, clip_grad_norm_, clip_scale
from synthsae.training.schedules import CoefficientSchedule

if TYPE_CHECKING:  # pragma: no cover
    from synthsae.training.trainer import TrainerConfig


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite.

    Steps are counted from 1 (step ``n`` is the ``n``-th optimizer step). The loss is
    checked every ``log_frequency`` steps, so it first went non-finite at a step in
    ``[first_step, step]``. Attributes: ``step``, ``first_step``, ``sae_index`` and
    ``losses`` (each loss term's value at ``step``).
    """

    def __init__(self, step: int, first_step: int, sae_index: int, losses: dict[str, float]) -> None:
        self.step, self.first_step, self.sae_index, self.losses = step, first_step, sae_index, losses
        terms = ", ".join(f"{k}={v:.6g}" for k, v in losses.items())
        where = f"at step {step}" if first_step >= step else f"at a step between {first_step} and {step}"
        super().__init__(f"non-finite training loss for SAE {sae_index} {where}; at step {step}: {terms}")


class SAESlot:
    """Everything that belongs to one SAE in a (multi-SAE) run.

    With ``world_size > 1`` (data-parallel training, see
    :mod:`synthsae.training.distributed`) each step also makes one ``all_reduce`` per
    SAE and dtype (one for float32 SAEs; BatchTopK's float64 threshold adds a second),
    right after the backward pass: gradients and floating-point buffers (such as
    BatchTopK's threshold average) are averaged over the ranks, and the per-latent
    fire counts are summed, so the firing statistics and the dead-latent mask are those
    of the global batch and identical on every rank. Clipping and Adam then see the
    averaged gradients. The LR schedule counts global steps:
    ``total_training_samples // (batch_size * world_size)``.
    """

    def __init__(self, sae: TrainingSAE, cfg: TrainerConfig, world_size: int = 1) -> None:
        device = torch.device(cfg.device)
        self.sae = sae.to(device)
        self.cfg = cfg
        self.world_size = int(world_size)
        self.params = [p for p in sae.parameters() if p.requires_grad]
        self.lr_schedule = cfg.lr_schedule(self.world_size)
        self.coef_schedules: dict[str, CoefficientSchedule] = {}
        for name, coef in sae.get_coefficients().items():
            if isinstance(coef, (int, float)) and not isinstance(coef, bool):
                self.coef_schedules[name] = CoefficientSchedule(coef, 0)
            else:  # TrainCoefficientConfig(value, warm_up_steps)
                self.coef_schedules[name] = CoefficientSchedule(coef.value, int(coef.warm_up_steps))
        self.stats = FiringStats(sae.cfg.d_sae, device, cfg.dead_feature_window, cfg.feature_sampling_window)
        self.scaler = ActivationScaler()
        dtype = getattr(torch, cfg.autocast_dtype)
        self.autocast = (torch.autocast(device.type, dtype=dtype) if cfg.autocast else contextlib.nullcontext())
        use_grad_scaler = cfg.autocast and dtype == torch.float16 and device.type == "cuda"
        self.grad_scaler = None
        betas = (cfg.adam_beta1, cfg.adam_beta2)
        self.optimizer: Adam | torch.optim.Adam = Adam(self.params, cfg.lr, betas)
        if use_grad_scaler:  # fp16 on CUDA: the scaler needs a torch optimizer
            scaler_cls = getattr(torch.amp, "GradScaler", None) or torch.cuda.amp.GradScaler  # torch < 2.3
            self.grad_scaler = scaler_cls(device.type)
            self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, betas=betas)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # non-finite detector
        self.checked_step = 0  # loss_sum covers the steps after this one
        self.last_losses: dict[str, torch.Tensor] = {}
        # name -> 0-d tensor multiplying that coefficient's schedule (set by an L0 controller)
        self.coefficient_scales: dict[str, torch.Tensor] = {}

    def coefficients(self, step: int) -> dict[str, float | torch.Tensor]:
        """Each coefficient's scheduled value at ``step``, times its scale when one is set
        (a 0-d device tensor then, so that steering a coefficient needs no host sync)."""
        values: dict[str, float | torch.Tensor] = {name: s.value_at(step) for name, s in self.coef_schedules.items()}
        for name, scale in self.coefficient_scales.items():
            values[name] = values[name] * scale
        return values

    def train_step(self, batch: torch.Tensor, step: int, is_logging_step: bool) -> TrainStepOutput:
        """Forward, firing stats, backward, clip, Adam step, zero grads (no host sync)."""
        if not self.sae.training:
            self.sae.train()
        step_input = TrainStepInput(
            sae_in=self.scaler.scale(batch),
            coefficients=self.coefficients(step),
            dead_neuron_mask=self.stats.dead_mask(),
            n_training_steps=step,
            is_logging_step=is_logging_step,
        )
        with self.autocast:
            out = self.sae.training_forward_pass(step_input)
        sync = self.world_size > 1
        counts = out.fire_counts if out.fire_counts is not None else fire_counts(out.feature_acts, self.stats.d_sae)
        rows = math.prod(out.sae_in.shape[:-1])
        if not sync:
            self.stats.update_counts(counts, rows)
        self.loss_sum.add_(out.loss.detach())
        self.last_losses = {"overall_loss": out.loss, **out.losses}
        if self.grad_scaler is not None:
            self.grad_scaler.scale(out.loss).backward()
        else:
            out.loss.backward()
        if sync:
            self._sync_step(counts, rows)
        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)
        lr = self.lr_schedule.lr_at(step)
        max_norm = self.cfg.max_grad_norm
        if self.grad_scaler is not None:
            if max_norm is not None:
                clip_grad_norm_(self.params, max_norm)
            self.optimizer.param_groups[0]["lr"] = lr
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:  # clipping is applied inside the Adam kernel, as a gradient divisor
            scale = clip_scale(self.params, max_norm) if max_norm is not None else None
            self.optimizer.step(lr, grad_scale=scale)  # type: ignore[call-arg]
        for p in self.params:
            p.grad = None
        return out

    @torch.no_grad()
    def _sync_step(self, counts: torch.Tensor, rows: int) -> None:
        """The data-parallel step: one collective, then the global firing statistics."""
        grads = [p.grad for p in self.params if p.grad is not None]
        buffers = [b for b in self.sae.buffers() if b.is_floating_point()]
        all_reduce_(mean=grads + buffers, total=[counts])
        self.stats.update_counts(counts, rows * self.world_size)

    def all_reduce_loss_sum(self) -> torch.Tensor:
        """``loss_sum`` summed over the ranks (one collective; itself when single-process)."""
        if self.world_size == 1:
            return self.loss_sum
        total = self.loss_sum.clone()
        all_reduce_(total=[total])
        return total

    @torch.no_grad()
    def log_metrics(self, out: TrainStepOutput, step: int, samples_seen: int, sae_index: int) -> dict[str, float]:
        """The §6.4 training-step keys for the step just completed (one host sync).

        Also checks the non-finite flag accumulated since the last check. With several
        ranks, every value is the mean over the ranks of that rank's value (one
        ``all_reduce``; the firing-statistics keys are already global), and a non-finite
        loss on any rank raises on every rank.
        """
        d_in = out.sae_in.shape[-1]
        x = out.sae_in.reshape(-1, d_in).float()
        err = (out.sae_out.reshape(-1, d_in).float() - x).pow(2).sum(-1)
        var = (x - x.mean(0)).pow(2).sum(-1)
        ev_rows = 1 - err / var
        if out.fire_counts is not None:  # rows x mean latents per row = total firings
            l0 = out.fire_counts.sum() / max(x.shape[0], 1)
        else:
            acts = out.feature_acts
            l0 = (acts.coalesce().values() != 0).sum() / max(acts.shape[0], 1) if acts.is_sparse else \
                (acts != 0).sum(-1).float().mean()
        names = ["losses/overall_loss", *(f"losses/{k}" for k in out.losses), "metrics/explained_variance",
                 "metrics/explained_variance_legacy", "metrics/explained_variance_legacy_std", "metrics/l0",
                 "sparsity/mean_passes_since_fired", "sparsity/dead_features"]
        tensors = [out.loss, *(torch.as_tensor(v) for v in out.losses.values()), 1 - err.mean() / var.mean(),
                   ev_rows.mean(), ev_rows.std(), l0,
                   self.stats.steps_since_fired.float().mean(), self.stats.dead_mask().sum()]
        extra: dict[str, float] = {}
        for key, value in out.metrics.items():
            value = value() if callable(value) else value
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                names.append(f"metrics/{key}")
                tensors.append(value)
            elif isinstance(value, (int, float)):
                extra[f"metrics/{key}"] = float(value)
        device = self.loss_sum.device
        values = torch.stack([t.detach().float().reshape(()).to(device) for t in tensors] + [self.loss_sum.float()])
        if self.world_size > 1:
            all_reduce_(mean=[values])
        values = values.tolist()
        loss_flag = values.pop()
        metrics = dict(zip(names, values))
        metrics.update(extra)
        metrics["details/current_learning_rate"] = self.lr_schedule.lr_at(step)  # lr of the next step
        metrics["details/n_training_samples"] = float(samples_seen)
        for name, value in self.coefficients(step).items():  # the value the next step uses
            metrics[f"details/{name}_coefficient"] = float(value)
        if not math.isfinite(loss_flag):
            losses = {"overall_loss": metrics["losses/overall_loss"]}
            losses.update({k: metrics[f"losses/{k}"] for k in out.losses})
            raise NonFiniteLossError(step, self.checked_step + 1, sae_index, losses)
        self.loss_sum.zero_()
        self.checked_step = step
        return metrics
