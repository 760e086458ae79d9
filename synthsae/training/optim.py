"""Adam and gradient clipping with little per-step overhead.

For the small SAEs of toy experiments, ``torch.optim.Adam.step()`` and
``torch.nn.utils.clip_grad_norm_`` spend most of their time in Python bookkeeping,
and building a ``torch.optim`` optimizer imports ``torch._dynamo`` (seconds on a
small CPU). :class:`Adam` is plain Adam (no weight decay, no amsgrad) that calls
the fused kernel ``torch.optim.Adam(fused=True)`` itself uses where the device
supports it, else a few ``torch._foreach_*`` ops. Its ``state_dict`` has
``torch.optim.Adam``'s layout, so either optimizer can load the other's state.
On a CPU training thread with one torch thread, a large fused update is cut into two
halves by parameter, the second run by an idle helper thread when there is one
(:mod:`synthsae._work_share`); every parameter's update is the same either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from synthsae._work_share import run_pair


def _fused_kernel_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``torch._fused_adam_`` runs on this device/dtype (probed once on a scalar)."""
    if not hasattr(torch, "_fused_adam_") or device.type not in ("cpu", "cuda") or not dtype.is_floating_point:
        return False
    t = [torch.zeros(1, device=device, dtype=dtype) for _ in range(4)]
    step = [torch.ones((), device=device, dtype=torch.float32)]
    try:
        torch._fused_adam_([t[0]], [t[1]], [t[2]], [t[3]], [], step, lr=1e-3, beta1=0.9, beta2=0.999,
                           weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    except (RuntimeError, NotImplementedError, TypeError):
        return False
    return True


# Split the update over two threads (see synthsae._work_share) from this many elements on.
_MIN_SPLIT_NUMEL = 1 << 20


def _balanced_cut(params: list[torch.Tensor]) -> int | None:
    """Where to cut the parameter list into two halves of about equal size for a two-thread
    update, or None (one parameter, small, off the CPU, or a multi-threaded caller)."""
    total = sum(p.numel() for p in params)
    if len(params) < 2 or total < _MIN_SPLIT_NUMEL or params[0].device.type != "cpu" or torch.get_num_threads() != 1:
        return None
    running = 0
    for i, p in enumerate(params[:-1]):
        running += p.numel()
        if 2 * running >= total:
            return i + 1
    return len(params) - 1


class Adam:
    """Adam over one parameter group (default eps 1e-8, no weight decay).

    ``step(lr)`` takes the learning rate of this step; parameters whose ``grad`` is
    ``None`` are skipped (their state does not advance), as in ``torch.optim.Adam``.
    ``param_groups[0]["lr"]`` holds the last learning rate used.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam needs at least one parameter")
        p0 = self.params[0]
        self.fused = all(p.device == p0.device and p.dtype == p0.dtype for p in self.params) and \
            _fused_kernel_works(p0.device, p0.dtype)
        self.param_groups = [{
            "params": self.params, "lr": float(lr), "betas": tuple(betas), "eps": float(eps), "weight_decay": 0.0,
            "amsgrad": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
            "fused": True if self.fused else None,
        }]
        self.state: dict[torch.nn.Parameter, dict[str, torch.Tensor]] = {}
        self._steps: dict[torch.nn.Parameter, int] = {}  # host copy of each parameter's step count
        self._lists: tuple[list[torch.Tensor], ...] | None = None  # per-step lists when all params have grads

    def _state_for(self, p: torch.nn.Parameter) -> dict[str, torch.Tensor]:
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
            self._steps[p] = 0
        return state

    @torch.no_grad()
    def step(self, lr: float | None = None, grad_scale: torch.Tensor | None = None) -> None:
        """One update of every parameter that has a gradient.

        ``grad_scale`` (a scalar tensor) divides the gradients first, inside the fused kernel
        where there is one (this is how :func:`clip_scale` clipping is applied).
        """
        group = self.param_groups[0]
        if lr is not None:
            group["lr"] = lr
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        grads = [p.grad for p in self.params]
        if self._lists is not None and all(g is not None for g in grads):
            params, exp_avgs, exp_avg_sqs, steps = self._lists  # the usual case: every parameter has a grad
        else:
            params = [p for p in self.params if p.grad is not None]
            if not params:
                return
            states = [self._state_for(p) for p in params]
            grads = [p.grad for p in params]
            exp_avgs = [s["exp_avg"] for s in states]
            exp_avg_sqs = [s["exp_avg_sq"] for s in states]
            steps = [s["step"] for s in states]
            if len(params) == len(self.params):
                self._lists = (params, exp_avgs, exp_avg_sqs, steps)
        torch._foreach_add_(steps, 1)
        for p in params:
            self._steps[p] += 1
        if self.fused:
            def update(lo: int, hi: int) -> None:
                torch._fused_adam_(params[lo:hi], grads[lo:hi], exp_avgs[lo:hi], exp_avg_sqs[lo:hi], [], steps[lo:hi],
                                   lr=lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False,
                                   maximize=False, grad_scale=grad_scale, found_inf=None)

            cut = _balanced_cut(params)
            if cut is None:
                update(0, len(params))
            else:  # each parameter's update is elementwise: the same values, half of them on a helper
                run_pair(lambda: update(0, cut), lambda: update(cut, len(params)))
            return
        if grad_scale is not None:
            torch._foreach_div_(grads, grad_scale)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        for p, m, v in zip(params, exp_avgs, exp_avg_sqs):
            n = self._steps[p]
            denom = v.sqrt().div_(math.sqrt(1 - beta2 ** n)).add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - beta1 ** n))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    # ------------------------------------------------------------------ state (torch.optim.Adam layout)
    def state_dict(self) -> dict[str, Any]:
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": {i: dict(self.state[p]) for i, p in enumerate(self.params) if p in self.state},
                "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state written by this class or by ``torch.optim.Adam`` for the same parameters."""
        groups = state_dict["param_groups"]
        ids = [i for g in groups for i in g["params"]]
        if len(ids) != len(self.params):
            raise ValueError(f"optimizer state covers {len(ids)} parameters, this optimizer has {len(self.params)}")
        saved = groups[0]
        self.param_groups[0].update(lr=saved["lr"], betas=tuple(saved["betas"]), eps=saved["eps"])
        self.state, self._steps, self._lists = {}, {}, None
        for i, p in zip(ids, self.params):
            s = state_dict["state"].get(i)
            if s is None:
                continue
            self.state[p] = {
                "step": torch.as_tensor(s["step"], dtype=torch.float32).to(p.device).clone(),
                "exp_avg": s["exp_avg"].to(device=p.device, dtype=p.dtype).clone(),
                "exp_avg_sq": s["exp_avg_sq"].to(device=p.device, dtype=p.dtype).clone(),
            }
            self._steps[p] = int(self.state[p]["step"].item())


def _total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    norms = torch._foreach_norm(grads) if hasattr(torch, "_foreach_norm") else [g.norm() for g in grads]
    return torch.linalg.vector_norm(torch.stack(norms))


def clip_scale(params: list[torch.nn.Parameter], max_norm: float) -> torch.Tensor | None:
    """The divisor that clips the gradients' global L2 norm to ``max_norm``: ``max(1, (norm + 1e-6) / max_norm)``.

    Dividing by it equals ``torch.nn.utils.clip_grad_norm_``'s multiplication by
    ``min(1, max_norm / (norm + 1e-6))``. Pass it to :meth:`Adam.step` as ``grad_scale``.
    ``None`` when no parameter has a gradient. Never read back to the host.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    return (_total_norm(grads) + 1e-6).div_(max_norm).clamp_(min=1.0)


def clip_grad_norm_(params: list[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """Scale gradients in place so their global L2 norm is at most ``max_norm``.

    Same rule as ``torch.nn.utils.clip_grad_norm_`` (factor ``max_norm / (norm + 1e-6)``,
    capped at 1) with fewer Python steps. Returns the pre-clipping norm as a tensor
    (never read back here, so no host sync).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = _total_norm(grads)
    torch._foreach_mul_(grads, (total + 1e-6).reciprocal_().mul_(max_norm).clamp_(max=1.0))
    return total
