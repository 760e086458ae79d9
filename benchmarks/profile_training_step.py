"""Where the time of one SynthSAEBench-16k BatchTopK training step goes, on one CPU thread.

Usage::

    python benchmarks/profile_training_step.py --model-dir /tmp/synth16k [--steps 30] [--bf16] [--ops]

Runs the runner's training loop (BatchTopK 768 -> 4096, k = 25, batch 1024) with one torch
thread and no producer thread, so that every piece of work happens on the main thread, and
adds up the main thread's CPU time (``time.thread_time``, which a busy machine inflates far
less than wall time) per phase:

* sampling: drawing the batch (firing process + dictionary product);
* encoder product: the dense ``[1024, 768] x [768, 4096]`` product with bias and decoder-norm factor;
* selection: the batch top-k;
* backward: ``loss.backward()`` (sparse encoder, decoder and norm gradients);
* optimizer: gradient clipping and the fused Adam update;
* rest: everything else in the step (decode, losses, firing statistics, Python).

It then prints the floor these figures put on two cores: with the producer thread drawing
batches and taking half of the encoder product, of the backward pass's sparse products and
of Adam, a step cannot take less than ``max(the training thread's share, half of all the
work)``. ``--ops`` adds torch's
profiler table of the heaviest operations for a few steps.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PHASES = ("sampling", "encoder product", "selection", "backward", "  of which sparse products", "optimizer")
SPLIT = ("encoder product", "  of which sparse products", "optimizer")  # halves go to the producer thread


def _timed(owner: Any, name: str, phase: str, totals: dict[str, float]) -> None:
    """Wrap ``owner.name`` so that its main-thread CPU time is added to ``totals[phase]``."""
    fn = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[phase] += time.thread_time() - start

    setattr(owner, name, wrapper)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model-dir", default=None, help="saved SynthSAEBench-16k model (built without "
                   "orthogonalisation if absent: sampling cost does not depend on it)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the SAE (the dense product in bf16)")
    p.add_argument("--ops", action="store_true", help="also print torch's profiler table for 5 steps")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    import synthsae.runs.activation_iterator as iterator_mod
    import synthsae.saes.batchtopk as batchtopk_mod
    import synthsae.saes.sparse_encoder as encoder_mod
    import synthsae.saes.sparse_products as products_mod
    import synthsae.training.optim as optim_mod
    import synthsae.training.slot as slot_mod
    from synthsae.synthetic import SyntheticModel
    from synthsae.synthetic.presets import get_preset
    from synthsae.training.trainer import Trainer, TrainerConfig

    if args.model_dir and (Path(args.model_dir) / "synthetic_model_config.json").is_file():
        model = SyntheticModel.load_from_disk(args.model_dir)
    else:
        cfg = get_preset("synth_sae_bench_16k")
        cfg.orthogonalization = None
        model = SyntheticModel(cfg)
    model.set_sampling_seed(1)
    from synthsae.saes.batchtopk import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig

    torch.manual_seed(0)
    sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=model.hidden_dim, d_sae=4096, k=25))
    data = iterator_mod.SyntheticActivationIterator(model.feature_dict, model.activation_generator, 1024)
    trainer = Trainer(sae, data, TrainerConfig(total_training_samples=1024 * 10**6, autocast=args.bf16,
                                               show_progress=False))
    totals: dict[str, float] = defaultdict(float)
    _timed(iterator_mod.SyntheticActivationIterator, "_draw", "sampling", totals)
    _timed(encoder_mod, "_dense_pre_activations", "encoder product", totals)
    _timed(batchtopk_mod.BatchTopKTrainingSAE, "select", "selection", totals)
    _timed(torch.Tensor, "backward", "backward", totals)
    _timed(products_mod, "per_latent_sums", "  of which sparse products", totals)
    _timed(products_mod, "_entry_dots", "  of which sparse products", totals)
    encoder_mod.per_latent_sums = products_mod.per_latent_sums  # the encoder imported it by name
    _timed(optim_mod.Adam, "step", "optimizer", totals)
    _timed(slot_mod, "clip_scale", "optimizer", totals)
    trainer.fit(args.warmup)
    totals.clear()
    start = time.thread_time()
    trainer.fit(args.warmup + args.steps)
    total = time.thread_time() - start
    per_step = {k: v / args.steps * 1e3 for k, v in totals.items()}
    per_step["rest"] = total / args.steps * 1e3 - sum(v for k, v in per_step.items() if not k.startswith(" "))
    print(f"one training step, one thread, {'bf16' if args.bf16 else 'fp32'} encoder product "
          f"(CPU ms of the main thread, mean of {args.steps} steps):")
    for phase in (*PHASES, "rest"):
        print(f"  {phase:28s} {per_step.get(phase, 0.0):7.1f}")
    step_ms = total / args.steps * 1e3
    print(f"  {'total':28s} {step_ms:7.1f}  -> {1024 / step_ms * 1e3:,.0f} samples/s on one core")
    shared = sum(per_step.get(phase, 0.0) for phase in SPLIT) / 2
    trainer_share = step_ms - per_step.get("sampling", 0.0) - shared
    floor = max(trainer_share, step_ms / 2)
    print(f"two cores (producer draws, takes half of the product, the sparse products and Adam): training thread "
          f"{trainer_share:.1f} ms, producer {per_step.get('sampling', 0.0) + shared:.1f} ms -> a step >= "
          f"{floor:.1f} ms, <= {1024 / floor * 1e3:,.0f} samples/s")
    if args.ops:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.fit(args.warmup + args.steps + 5)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=55))


if __name__ == "__main__":
    main()
