"""Sparse, non-negative feature activations with known firing statistics.

:class:`ActivationGenerator` decides which features fire (independently, or through a
Gaussian copula with a full or low-rank correlation matrix), gives each firing a
magnitude ``relu(mean + std * N(0, 1))``, then runs the activation modifiers (for
example a hierarchy) and a final ReLU. Sampling follows the active features only (see
:mod:`synthsae.synthetic.sampling_plan`); ``sample`` returns dense or sparse COO
tensors like the reference and ``sample_sparse`` a
:class:`~synthsae.synthetic.sparse_batch.SparseBatch`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Union

import torch
from torch import nn

from synthsae.config_values import check_device, check_int, torch_dtype
from synthsae.synthetic.correlation import (
    CorrelationMatrixInput,
    LowRankCorrelationMatrix,
    validate_correlation_matrix,
    validate_low_rank_correlation,
)
from synthsae.synthetic.generator_values import first_bad as _first_bad
from synthsae.synthetic.generator_values import per_feature as _per_feature
from synthsae.synthetic.hierarchy.modifier import HierarchyModifier, check_rescaling_means
from synthsae.synthetic.sampling_lanes import (
    lane_sizes,
    mapped_lane,
    merge_mapped,
    merge_rows,
    sample_in_lanes,
)
from synthsae.synthetic.sampling_plan import SamplingPlan
from synthsae.synthetic.sparse_batch import SparseBatch

ActivationsModifier = Union[
    Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor, "ActivationGenerator"], torch.Tensor]
]
"""A function of the activations, or of the activations and the generator (detected
from the number of positional parameters: two or more means the generator is passed)."""

ActivationsModifierInput = Union[ActivationsModifier, Sequence[ActivationsModifier], None]
"""One modifier, a sequence applied in order (empty: none), or ``None``."""


def _wants_generator(fn: Callable[..., Any]) -> bool:
    """Whether a modifier takes the generator as a second positional argument."""
    if isinstance(fn, HierarchyModifier):
        return True
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    return sum(p.kind in kinds for p in params) >= 2


@contextmanager
def _cpu_threads(limit: int | None, device: torch.device) -> Iterator[None]:
    """Run the block with at most ``limit`` intra-op CPU threads (no-op off CPU or for None)."""
    current = torch.get_num_threads()
    if limit is None or device.type != "cpu" or current <= limit:
        yield
        return
    torch.set_num_threads(limit)
    try:
        yield
    finally:
        torch.set_num_threads(current)


class ActivationGenerator(nn.Module):
    """Samples feature activations ``[batch, num_features]``.

    Args:
        num_features: number of features ``F`` (> 0).
        firing_probabilities: per-feature firing probability in (0, 1] (a float is
            broadcast to all features).
        std_firing_magnitudes: per-feature std (>= 0) of the magnitude of a firing.
        mean_firing_magnitudes: per-feature mean magnitude of a firing.
        modify_activations: a modifier or a sequence of them, run in order after the
            magnitudes; a final ReLU follows. A leading hierarchy modifier is fused into
            sampling (same distribution, far less work).
        correlation_matrix: a full ``[F, F]`` correlation matrix, or a low-rank
            ``(factor [F, R], diag [F])`` pair / :class:`LowRankCorrelationMatrix`; the
            firing pattern then follows a Gaussian copula with these correlations.
        device: where the activations live.
        dtype: dtype of the activations.
        use_sparse_tensors: ``sample`` returns a sparse COO tensor (and modifiers get one).
        seed: seed a private ``torch.Generator`` for a reproducible stream.
        generator: a ``torch.Generator`` (on ``device``) to draw from instead.

    Without ``seed`` or ``generator`` the global torch RNG is used.

    Attributes:
        sampling_threads: intra-op CPU threads used while drawing a batch (default 1;
            ``None`` keeps torch's setting). The sampler runs many small operations,
            which gain little from more threads and lose a lot when the CPU is shared;
            user modifiers and densification run with torch's setting.
        sampling_workers: the most worker threads for a large CPU batch, which is drawn
            as independent sub-batches (see :mod:`synthsae.synthetic.sampling_lanes`;
            the split depends only on the batch size, so a seed gives the same batch
            with any number of workers). ``None`` (default) uses torch's thread count;
            set 1 when sampling runs beside other work, e.g. in a data-loading thread.
            Workers are only used while ``sampling_threads`` is 1.
    """

    def __init__(
        self,
        num_features: int,
        firing_probabilities: torch.Tensor | float,
        std_firing_magnitudes: torch.Tensor | float = 0.0,
        mean_firing_magnitudes: torch.Tensor | float = 1.0,
        modify_activations: ActivationsModifierInput = None,
        correlation_matrix: CorrelationMatrixInput | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | str = "float32",
        use_sparse_tensors: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_features = check_int("num_features", num_features, at_least=1)
        self.dtype = torch_dtype(dtype)
        self._compute_dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        device = torch.device(check_device("device", device))
        self.use_sparse_tensors = bool(use_sparse_tensors)
        self.sampling_threads: int | None = 1
        self.sampling_workers: int | None = None
        self._plan: SamplingPlan | None = None
        self.register_buffer("_firing_probabilities", torch.empty(0, device=device), persistent=False)
        self.register_buffer("_std", torch.empty(0, device=device), persistent=False)
        self.register_buffer("_mean", torch.empty(0, device=device), persistent=False)
        self.register_buffer("_corr_factor", None, persistent=False)
        self.register_buffer("_corr_diag", None, persistent=False)
        self.register_buffer("_corr_full", None, persistent=False)
        self.register_buffer("_corr_cholesky", None, persistent=False)
        self.firing_probabilities = firing_probabilities
        self.std_firing_magnitudes = std_firing_magnitudes
        self.mean_firing_magnitudes = mean_firing_magnitudes
        self._set_correlation(correlation_matrix, device)
        self.modify_activations = modify_activations  # type: ignore[assignment]
        if seed is not None and generator is not None:
            raise ValueError("pass either seed or generator, not both")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if seed is not None:
            seed = check_int("seed", seed)
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
        self.generator: torch.Generator | None = generator

    # ------------------------------------------------------------ settings
    @property
    def device(self) -> torch.device:
        """The device the activations are produced on."""
        return self._firing_probabilities.device

    @property
    def firing_probabilities(self) -> torch.Tensor:
        """Per-feature firing probabilities ``[F]``; assigning re-derives the thresholds."""
        return self._firing_probabilities

    @firing_probabilities.setter
    def firing_probabilities(self, value: torch.Tensor | float) -> None:
        probs = _per_feature("firing_probabilities", value, self.num_features, self._compute_dtype, self.device)
        _first_bad("firing_probabilities", probs, ~((probs > 0) & (probs <= 1)), "finite and in (0, 1]")
        self._firing_probabilities = probs
        self._plan = None

    @property
    def std_firing_magnitudes(self) -> torch.Tensor:
        """Per-feature std of firing magnitudes ``[F]``."""
        return self._std

    @std_firing_magnitudes.setter
    def std_firing_magnitudes(self, value: torch.Tensor | float) -> None:
        std = _per_feature("std_firing_magnitudes", value, self.num_features, self._compute_dtype, self.device)
        _first_bad("std_firing_magnitudes", std, ~(torch.isfinite(std) & (std >= 0)), "finite and >= 0")
        self._std = std
        self._plan = None

    @property
    def mean_firing_magnitudes(self) -> torch.Tensor:
        """Per-feature mean of firing magnitudes ``[F]``."""
        return self._mean

    @mean_firing_magnitudes.setter
    def mean_firing_magnitudes(self, value: torch.Tensor | float) -> None:
        mean = _per_feature("mean_firing_magnitudes", value, self.num_features, self._compute_dtype, self.device)
        _first_bad("mean_firing_magnitudes", mean, ~torch.isfinite(mean), "finite")
        self._check_modifiers(self.__dict__.get("_modifiers", []), mean)
        self._mean = mean
        self._plan = None

    def _set_correlation(self, corr: CorrelationMatrixInput | None, device: torch.device) -> None:
        if corr is None:
            return
        if isinstance(corr, tuple):
            factor, diag = validate_low_rank_correlation(tuple(corr), None, self.num_features)
            self._corr_factor = factor.detach().to(device=device, dtype=self._compute_dtype)
            self._corr_diag = diag.detach().to(device=device, dtype=self._compute_dtype)
        elif isinstance(corr, torch.Tensor):
            validate_correlation_matrix(corr, self.num_features)
            full = corr.detach().to(device=device, dtype=torch.float64)
            self._corr_full = full.to(self._compute_dtype)
            self._corr_cholesky = torch.linalg.cholesky(0.5 * (full + full.T)).to(self._compute_dtype)
        else:
            raise TypeError(
                "correlation_matrix must be a [F, F] tensor, a LowRankCorrelationMatrix or a (factor, diag) tuple, "
                f"got {type(corr).__name__}"
            )

    @property
    def correlation_matrix(self) -> torch.Tensor | LowRankCorrelationMatrix | None:
        """The correlation given at construction (full tensor or low-rank pair), or ``None``."""
        if self._corr_factor is not None:
            return LowRankCorrelationMatrix(self._corr_factor, self._corr_diag)
        return self._corr_full

    @property
    def modify_activations(self) -> list[ActivationsModifier]:
        """The modifiers, in the order they run."""
        return list(self._modifiers)

    @modify_activations.setter
    def modify_activations(self, value: ActivationsModifierInput) -> None:
        if value is None:
            mods: list[Any] = []
        elif callable(value):
            mods = [value]
        else:
            mods = list(value)
        for m in mods:
            if not callable(m):
                raise TypeError(f"modify_activations must hold callables, got {type(m).__name__}: {m!r}")
        self._check_modifiers(mods, self._mean)
        self._modifiers = mods
        self._wants = [_wants_generator(m) for m in mods]
        self._plan = None

    def _check_modifiers(self, modifiers: list[Any], mean: torch.Tensor) -> None:
        """Hierarchy indices must fit ``num_features``; rescaling parents need a mean > 0."""
        for m in modifiers:
            if isinstance(m, HierarchyModifier):
                m.compiled.validate_against(self.num_features)
                if m.needs_generator:
                    check_rescaling_means(m.compiled, mean.to("cpu"))

    def _apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ActivationGenerator:
        out = super()._apply(fn, *args, **kwargs)
        self._plan = None
        return out

    # ------------------------------------------------------------ sampling
    def _rng(self) -> torch.Generator | None:
        gen = self.generator
        if gen is not None and gen.device.type != self.device.type:
            seed = int(torch.randint(0, 2**62, (1,), generator=gen))
            gen = torch.Generator(device=self.device)
            gen.manual_seed(seed)
            self.generator = gen
        return gen

    def _fused(self) -> HierarchyModifier | None:
        if self._modifiers and isinstance(self._modifiers[0], HierarchyModifier) and self._corr_full is None:
            return self._modifiers[0]
        return None

    def _get_plan(self) -> SamplingPlan:
        if self._plan is None or self._plan.device != self.device:
            fused = self._fused()
            hierarchy = None if fused is None else fused.compiled_on(self.device).padded(self.num_features)
            self._plan = SamplingPlan(
                self._firing_probabilities,
                self._mean,
                self._std,
                factor=self._corr_factor,
                diag=self._corr_diag,
                cholesky=self._corr_cholesky,
                hierarchy=hierarchy,
            )
        return self._plan

    def _lane_workers(self) -> int:
        """Threads for the lanes of a large CPU batch: the caller's torch thread count (at
        most ``sampling_workers``) when the sampler itself runs single-threaded, else 1."""
        if self.device.type != "cpu" or self.sampling_threads != 1:
            return 1
        workers = torch.get_num_threads()
        return workers if self.sampling_workers is None else max(1, min(workers, self.sampling_workers))

    def _user_form(self, acts: SparseBatch | torch.Tensor) -> torch.Tensor:
        if isinstance(acts, SparseBatch):
            return acts.to_sparse_coo() if self.use_sparse_tensors else acts.to_dense()
        return acts

    def _draw(self, batch_size: int, wrap: Callable[..., Any] | None = None, merge: Any = merge_rows) -> Any:
        """The plan's draw (or ``wrap(draw)``) in lanes, merged by ``merge`` (default: rows)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise ValueError(f"batch_size must be an int >= 0, got {batch_size!r}")
        rng = self._rng()
        no_autocast = (
            torch.autocast(self.device.type, enabled=False) if self.device.type in ("cpu", "cuda") else nullcontext()
        )
        workers = self._lane_workers()
        # the sampler's products feed probabilities: keep them in full precision under autocast
        with torch.no_grad(), no_autocast, _cpu_threads(self.sampling_threads, self.device):
            draw = self._get_plan().sample
            lane = draw if wrap is None else wrap(draw)
            return sample_in_lanes(lane, batch_size, rng, self.device, workers, merge)

    def _run(self, batch_size: int, form: str) -> SparseBatch | torch.Tensor:
        acts: SparseBatch | torch.Tensor = self._draw(batch_size)
        start = 1 if self._fused() is not None else 0
        for mod, wants in zip(self._modifiers[start:], self._wants[start:]):
            if not isinstance(mod, HierarchyModifier):
                acts = self._user_form(acts)
            acts = mod(acts, self) if wants else mod(acts)
        if self._modifiers:
            acts = self._relu(acts)
        if form == "batch":
            if isinstance(acts, SparseBatch):
                return acts.to(dtype=self.dtype)
            acts = SparseBatch.from_sparse_coo(acts) if acts.is_sparse else SparseBatch.from_dense(acts)
            return acts.to(dtype=self.dtype)
        if isinstance(acts, SparseBatch):
            acts = acts.to(dtype=self.dtype)
            return acts.to_sparse_coo() if form == "coo" else acts.to_dense()
        if form == "coo" and not acts.is_sparse:
            return acts.to(self.dtype).to_sparse()
        if form == "dense" and acts.is_sparse:
            return acts.to_dense().to(self.dtype)
        return acts.to(self.dtype)

    @staticmethod
    def _relu(acts: SparseBatch | torch.Tensor) -> SparseBatch | torch.Tensor:
        if isinstance(acts, SparseBatch):
            return SparseBatch(acts.offsets, acts.indices, torch.relu(acts.values), acts.num_features)
        if acts.is_sparse:
            acts = acts.coalesce()
            return torch.sparse_coo_tensor(
                acts.indices(), torch.relu(acts.values()), acts.shape, check_invariants=False
            ).coalesce()
        return torch.relu(acts)

    def sample(self, batch_size: int) -> torch.Tensor:
        """Activations ``[batch_size, F]``: dense, or sparse COO when ``use_sparse_tensors``."""
        return self._run(batch_size, "coo" if self.use_sparse_tensors else "dense")  # type: ignore[return-value]

    def forward(self, batch_size: int) -> torch.Tensor:
        """Same as :meth:`sample`."""
        return self.sample(batch_size)

    def sample_sparse(self, batch_size: int) -> SparseBatch:
        """Activations of ``batch_size`` samples as a :class:`SparseBatch` (no ``[B, F]`` tensor
        is formed unless a non-hierarchy modifier needs one)."""
        return self._run(batch_size, "batch")  # type: ignore[return-value]

    def sample_sparse_and_map(
        self, batch_size: int, fn: Callable[[SparseBatch], torch.Tensor]
    ) -> tuple[SparseBatch, torch.Tensor]:
        """``(batch, fn(batch))`` with ``batch`` as :meth:`sample_sparse` draws it.

        ``fn`` must work row by row (its value on a batch is its values on blocks of rows,
        concatenated), e.g. a :class:`~synthsae.synthetic.FeatureDictionary`. A CPU batch
        drawn in lanes on several threads, with no modifier after a fused hierarchy, is
        mapped inside each lane (see :func:`~synthsae.synthetic.sampling_lanes.mapped_lane`):
        the same values, without a multi-threaded step after the lanes. Lanes that run one
        after the other on one thread gain nothing from it, and the batch is mapped whole.
        """
        if isinstance(batch_size, int) and not isinstance(batch_size, bool):
            start = 1 if self._fused() is not None else 0
            if (start == len(self._modifiers) and len(lane_sizes(batch_size, self.device)) > 1
                    and self._lane_workers() > 1):
                finish = self._relu if self._modifiers else None
                return self._draw(batch_size, lambda draw: mapped_lane(draw, fn, finish, self.dtype), merge_mapped)
        batch = self.sample_sparse(batch_size)
        return batch, fn(batch)

    def extra_repr(self) -> str:
        corr = "none" if self.correlation_matrix is None else ("low-rank" if self._corr_factor is not None else "full")
        return (
            f"num_features={self.num_features}, correlation={corr}, modifiers={len(self._modifiers)}, "
            f"dtype={self.dtype}, device={self.device}, use_sparse_tensors={self.use_sparse_tensors}"
        )
