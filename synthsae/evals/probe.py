"""The probe ceiling: how well could any linear read-out detect each true feature?

An SAE latent is, at inference, a linear map of the activation followed by a threshold,
judged (``F1``) as a detector of its best-matching true feature. A supervised logistic
probe per true feature, trained on labelled activations, bounds what such a detector can
reach on this model. :func:`probe_ceiling`:

1. draws ``train_samples`` rows and keeps them (activations standardised per dimension);
2. trains one logistic regression per probed feature at once (a ``[d_in, n]`` weight and
   ``[n]`` bias; Adam on the binary cross-entropy summed over the features, ``steps``
   minibatches of ``batch_size`` rows drawn from the kept rows; the biases start at each
   feature's log-odds on them);
3. picks each probe's decision threshold on ``calibration_samples`` fresh rows to maximise
   its F1 (logit histograms with 1/8-wide bins);
4. reports precision, recall and F1 on ``eval_samples`` fresh rows, averaged over the
   probed features that fired there.

An SAE of width ``d_sae`` can track at most ``d_sae`` features, in practice the most
frequent ones, so ``max_features`` probes only the ``max_features`` most frequent features
(the benchmark passes its width): the mean then compares with an SAE's F1, which averages
over its latents. Every row scores every probed feature, a ``[rows, n]`` product: the probe
is inherently dense in the features, streamed in chunks of ``batch_size`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from synthsae._progress import progress_bar
from synthsae.evals.eval_sae import _sample
from synthsae.synthetic.sparse_batch import SparseBatch

__all__ = ["ProbeCeilingResult", "probe_ceiling"]

BIN_EDGES = torch.arange(-8.0, 8.0 + 1e-6, 0.125)
"""Edges of the logit histograms the thresholds are chosen from (1/8 wide: finer moves
change a probe's F1 by well under a percent)."""


@dataclass
class ProbeCeilingResult:
    """What :func:`probe_ceiling` measured (means over the ``scored`` features)."""

    f1: float
    precision: float
    recall: float
    num_features: int
    scored: int
    train_samples: int
    eval_samples: int
    per_feature_f1: torch.Tensor = field(repr=False)
    features: torch.Tensor = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the per-feature tensors as lists)."""
        return {"f1": self.f1, "precision": self.precision, "recall": self.recall,
                "num_features": self.num_features, "scored": self.scored, "train_samples": self.train_samples,
                "eval_samples": self.eval_samples, "per_feature_f1": self.per_feature_f1.tolist(),
                "features": self.features.tolist()}


def _labels(gt: Any, columns: torch.Tensor, rows: int, n: int) -> torch.Tensor:
    """``[rows, n]`` float labels: column ``columns[f]`` is 1 where true feature ``f`` is active
    (``columns[f] = -1``: not probed)."""
    if not isinstance(gt, SparseBatch):
        gt = SparseBatch.from_dense(gt.detach().reshape(rows, -1))
    out = torch.zeros(rows, n, device=gt.indices.device)
    row = torch.repeat_interleave(torch.arange(rows, device=gt.indices.device), gt.row_counts())
    col = columns.to(gt.indices.device)[gt.indices]
    keep = (col >= 0) & (gt.values != 0)
    out[row[keep], col[keep]] = 1.0
    return out


def _frequent_features(feature_dict: Any, generator: Any, num_features: int, limit: int, rows: int) -> torch.Tensor:
    """Indices (sorted) of the ``limit`` features that fire most often on ``rows`` sample rows."""
    gt, _ = _sample(feature_dict, generator, rows)
    if not isinstance(gt, SparseBatch):
        gt = SparseBatch.from_dense(gt.detach().reshape(rows, -1))
    counts = torch.bincount(gt.indices.cpu(), minlength=num_features)
    return torch.sort(torch.argsort(counts, descending=True, stable=True)[:limit]).values


class _Probe:
    """The probes' weights, the input standardisation, and the histogram-based scoring."""

    def __init__(self, d_in: int, n: int, device: torch.device) -> None:
        self.weight = torch.zeros(d_in, n, device=device, requires_grad=True)
        self.bias = torch.zeros(n, device=device, requires_grad=True)
        self.mean = torch.zeros(d_in, device=device)
        self.scale = torch.ones(d_in, device=device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.scale) @ self.weight + self.bias

    def histograms(self, logits: torch.Tensor, labels: torch.Tensor, out: torch.Tensor) -> None:
        """Add each probe's positive (``out[0]``) and negative (``out[1]``) logit counts per bin."""
        n, bins = logits.shape[1], BIN_EDGES.numel() + 1
        bucket = torch.bucketize(logits, BIN_EDGES.to(logits.device))  # [B, n], 0..bins-1
        flat = (bucket + torch.arange(n, device=logits.device) * bins).reshape(-1)
        out[0].view(-1).scatter_add_(0, flat, labels.reshape(-1))
        out[1].view(-1).scatter_add_(0, flat, (1.0 - labels).reshape(-1))


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return 2 * tp / (2 * tp + fp + fn).clamp_min(1e-12)


def probe_ceiling(
    feature_dict: Any,
    activation_generator: Any,
    *,
    train_samples: int = 200_000,
    steps: int = 500,
    calibration_samples: int = 50_000,
    eval_samples: int = 100_000,
    batch_size: int = 4096,
    lr: float = 0.05,
    max_features: int | None = None,
    show_progress: bool = False,
) -> ProbeCeilingResult:
    """Train and score a logistic probe per true feature (see the module docstring).

    Samples come from ``activation_generator`` in order: the feature-frequency count (only
    with ``max_features``), ``train_samples``, ``calibration_samples``, ``eval_samples``;
    seed the generator for a reproducible result.
    """
    for name, value in (("train_samples", train_samples), ("steps", steps), ("eval_samples", eval_samples),
                        ("calibration_samples", calibration_samples), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    vectors = feature_dict.feature_vectors.detach()
    num_features, d_in = vectors.shape
    if max_features is not None and max_features < num_features:
        features = _frequent_features(feature_dict, activation_generator, num_features, max_features, 4 * batch_size)
    else:
        features = torch.arange(num_features)
    columns = torch.full((num_features,), -1, dtype=torch.long)
    columns[features] = torch.arange(features.numel())
    n, device = features.numel(), vectors.device

    def chunks(total: int, desc: str):
        bar = progress_bar(total=total, show=show_progress, desc=desc, unit="sample")
        with bar, torch.no_grad():
            for start in range(0, total, batch_size):
                rows = min(batch_size, total - start)
                gt, x = _sample(feature_dict, activation_generator, rows)
                yield x.float(), gt, rows
                bar.update(rows)

    kept = list(chunks(train_samples, "probe: sample"))
    probe = _Probe(d_in, n, device)
    with torch.no_grad():
        x_all = torch.cat([x for x, _, _ in kept])
        probe.mean, probe.scale = x_all.mean(0), x_all.std(0).clamp_min(1e-6)
        positives = sum(_labels(gt, columns, rows, n).sum(0) for _, gt, rows in kept)
        rate = ((positives + 0.5) / (train_samples + 1.0)).clamp(max=1 - 1e-6)  # +0.5: no log(0) for unseen ones
        probe.bias.copy_(torch.log(rate / (1 - rate)))
        del x_all
    opt = torch.optim.Adam([probe.weight, probe.bias], lr=lr)
    picks = torch.randint(len(kept), (steps,), generator=torch.Generator().manual_seed(0)).tolist()
    for i in progress_bar(picks, show=show_progress, desc="probe: train", unit="step"):
        x, gt, rows = kept[i]
        labels = _labels(gt, columns, rows, n)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe.logits(x), labels, reduction="sum") / rows
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    del kept

    hist = torch.zeros(2, n, BIN_EDGES.numel() + 1, device=device)
    with torch.no_grad():
        for x, gt, rows in chunks(calibration_samples, "probe: calibrate"):
            probe.histograms(probe.logits(x), _labels(gt, columns, rows, n), hist)
        # predicting "positive" from bin k on: the counts at or above each bin
        above = hist.flip(-1).cumsum(-1).flip(-1)
        f1 = _f1(above[0], above[1], above[0][:, :1] - above[0])
        best_bin = f1.argmax(-1)  # bin k holds logits in (edge[k-1], edge[k]]
        edges = torch.cat([BIN_EDGES.new_tensor([-float("inf")]), BIN_EDGES]).to(device)
        threshold = edges[best_bin]
        tp = torch.zeros(n, device=device)
        fp, fn = torch.zeros_like(tp), torch.zeros_like(tp)
        for x, gt, rows in chunks(eval_samples, "probe: eval"):
            labels = _labels(gt, columns, rows, n)
            pred = (probe.logits(x) > threshold).float()
            tp += (pred * labels).sum(0)
            fp += (pred * (1 - labels)).sum(0)
            fn += ((1 - pred) * labels).sum(0)
    scored = (tp + fn) > 0  # features that fired on the eval rows

    def mean(values: torch.Tensor) -> float:
        return float(values[scored].mean()) if bool(scored.any()) else float("nan")

    per_f1 = _f1(tp, fp, fn)
    return ProbeCeilingResult(
        f1=mean(per_f1), precision=mean(tp / (tp + fp).clamp_min(1e-12)), recall=mean(tp / (tp + fn).clamp_min(1e-12)),
        num_features=n, scored=int(scored.sum()), train_samples=train_samples, eval_samples=eval_samples,
        per_feature_f1=per_f1.cpu(), features=features.cpu())
