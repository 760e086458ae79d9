"""SyntheticModel: a whole synthetic world (features, firing process, dictionary) in one object.

A model is declared by a :class:`SyntheticModelConfig`, built deterministically from
its seed without touching the global RNG, sampled in ``O(active features)`` time
through :class:`SparseBatch`, saved to a directory in the reference layout (plus the
per-feature magnitudes) and shared through the Hugging Face hub.

Building is done by :mod:`synthsae.synthetic.model_build` (seed offsets listed there).

Sampling is a separate random stream. By default it uses the global torch RNG (as
the reference does); :meth:`SyntheticModel.set_sampling_seed` (or the
``sampling_seed`` argument) gives the model its own ``torch.Generator`` so that the
same seed yields the same batches on the same device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from synthsae.config_values import check_device, check_int
from synthsae.synthetic.activation_generator import ActivationGenerator
from synthsae.synthetic.correlation import LowRankCorrelationMatrix
from synthsae.synthetic.feature_dictionary import FeatureDictionary
from synthsae.synthetic.hierarchy.hierarchy import Hierarchy
from synthsae.synthetic.model_build import (
    build_correlation,
    build_feature_dict,
    build_firing_probabilities,
    build_hierarchy,
    build_magnitudes,
    make_activation_generator,
)
from synthsae.synthetic.model_config import SyntheticModelConfig
from synthsae.synthetic.sparse_batch import SparseBatch

__all__ = ["SyntheticModel"]

class SyntheticModel(nn.Module):
    """A synthetic data source with known ground-truth features.

    Args:
        cfg: The model definition.
        feature_dict: A prebuilt dictionary (else built from ``cfg``).
        activation_generator: A prebuilt generator (else built from ``cfg``).
        hierarchy: A prebuilt hierarchy (else generated when ``cfg.hierarchy`` is set).
        correlation_matrix: A prebuilt low-rank correlation (else generated when
            ``cfg.correlation`` is set); a ``(factor, diag)`` tuple is accepted.
        device: Where the tensors live and batches are produced.
        sampling_seed: Seed of a private sampling generator (see :meth:`set_sampling_seed`).

    The arguments are kept as attributes of the same names (``cfg``, ``feature_dict``,
    ``activation_generator``, ``hierarchy``, ``correlation_matrix``, ``device``).
    """

    cfg: SyntheticModelConfig
    feature_dict: FeatureDictionary
    activation_generator: ActivationGenerator
    hierarchy: Hierarchy | None
    correlation_matrix: LowRankCorrelationMatrix | None
    device: str

    def __init__(
        self,
        cfg: SyntheticModelConfig,
        feature_dict: FeatureDictionary | None = None,
        activation_generator: ActivationGenerator | None = None,
        hierarchy: Hierarchy | None = None,
        correlation_matrix: LowRankCorrelationMatrix | tuple[torch.Tensor, torch.Tensor] | None = None,
        device: str | torch.device = "cpu",
        sampling_seed: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(cfg, SyntheticModelConfig):
            raise TypeError(f"cfg must be a SyntheticModelConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.device = check_device("device", device)
        self._sampling_seed: int | None = None
        self.hierarchy = hierarchy if hierarchy is not None else build_hierarchy(cfg)
        if correlation_matrix is not None:
            self.correlation_matrix = LowRankCorrelationMatrix(*correlation_matrix)
        else:
            self.correlation_matrix = build_correlation(cfg, self.device)
        self._check_correlation()
        self.feature_dict = feature_dict if feature_dict is not None else build_feature_dict(cfg, self.device)
        if activation_generator is None:
            std, mean = build_magnitudes(cfg)
            probabilities = build_firing_probabilities(cfg, self.hierarchy)
            activation_generator = make_activation_generator(
                cfg, probabilities, std, mean, self.hierarchy, self.correlation_matrix, self.device
            )
        self.activation_generator = activation_generator
        self._check_parts()
        if sampling_seed is not None:
            self.set_sampling_seed(sampling_seed)

    def _check_correlation(self) -> None:
        f = self.cfg.num_features
        if self.correlation_matrix is not None:
            factor, diag = self.correlation_matrix
            if factor.dim() != 2 or factor.shape[0] != f or tuple(diag.shape) != (f,):
                raise ValueError(
                    f"correlation_matrix must be (factor [{f}, R], diag [{f}]), got "
                    f"{tuple(factor.shape)} and {tuple(diag.shape)}"
                )

    def _check_parts(self) -> None:
        f, d = self.cfg.num_features, self.cfg.hidden_dim
        fd = self.feature_dict
        if tuple(fd.feature_vectors.shape) != (f, d):
            raise ValueError(
                f"feature_dict has feature_vectors of shape {tuple(fd.feature_vectors.shape)}, "
                f"expected ({f}, {d}) from cfg.num_features and cfg.hidden_dim"
            )
        if self.activation_generator.num_features != f:
            raise ValueError(
                f"activation_generator has {self.activation_generator.num_features} features, "
                f"expected cfg.num_features={f}"
            )
        if self.hierarchy is not None:
            used = self.hierarchy.feature_indices_used
            if used and (min(used) < 0 or max(used) >= f):
                raise ValueError(
                    f"hierarchy uses feature indices {min(used)}..{max(used)}, outside 0..{f - 1}"
                )

    # ---------------------------------------------------------- properties
    @property
    def num_features(self) -> int:
        """Number of ground-truth features."""
        return self.cfg.num_features

    @property
    def hidden_dim(self) -> int:
        """Dimension of the hidden activations."""
        return self.cfg.hidden_dim

    @property
    def use_sparse_tensors(self) -> bool:
        """Whether :meth:`sample_with_features` returns sparse COO feature activations."""
        return bool(self.activation_generator.use_sparse_tensors)

    @use_sparse_tensors.setter
    def use_sparse_tensors(self, value: bool) -> None:
        self.activation_generator.use_sparse_tensors = bool(value)

    @property
    def sampling_seed(self) -> int | None:
        """The seed given to :meth:`set_sampling_seed` (``None``: global RNG or a user generator)."""
        return self._sampling_seed

    def set_sampling_seed(self, seed: int | torch.Generator | None) -> SyntheticModel:
        """Give sampling its own random stream; returns ``self`` for chaining.

        ``seed`` may be an int (a fresh ``torch.Generator`` on the model's device is
        seeded with it), a ``torch.Generator`` on the model's device (used as is), or
        ``None`` (go back to the global torch RNG). Two models with the same
        parameters and the same sampling seed produce identical batches on the same
        device; different devices give different (equally valid) streams.
        ``to(device)`` re-creates the generator on the new device from the seed.
        """
        if seed is None:
            gen = None
        elif isinstance(seed, torch.Generator):
            if seed.device.type != torch.device(self.device).type:
                raise ValueError(f"sampling generator is on {seed.device}, the model on {self.device}")
            gen = seed
        else:
            seed = check_int("sampling seed", seed, at_least=0)
            gen = torch.Generator(device=self.device).manual_seed(seed)
        self._sampling_seed = seed if isinstance(seed, int) else None
        self.activation_generator.generator = gen
        return self

    # ------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_sparse_features(self, batch_size: int) -> SparseBatch:
        """Ground-truth feature activations of ``batch_size`` samples, in CSR form."""
        return self.activation_generator.sample_sparse(batch_size)

    @torch.no_grad()
    def sample(self, batch_size: int) -> torch.Tensor:
        """Hidden activations ``[batch_size, hidden_dim]`` (no dense feature tensor is formed)."""
        return self.sample_with_sparse_features(batch_size)[0]

    @torch.no_grad()
    def sample_with_sparse_features(self, batch_size: int) -> tuple[torch.Tensor, SparseBatch]:
        """``(hidden [B, D], features as a SparseBatch)``: the fast path for evaluation.

        A batch drawn in lanes gets its dictionary product in the lanes too (same values).
        """
        features, hidden = self.activation_generator.sample_sparse_and_map(batch_size, self.feature_dict)
        return hidden, features

    @torch.no_grad()
    def sample_with_features(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hidden [B, D], features [B, F])``; features are sparse COO if ``use_sparse_tensors``."""
        hidden, features = self.sample_with_sparse_features(batch_size)
        if self.use_sparse_tensors:
            return hidden, features.to_sparse_coo()
        return hidden, features.to_dense()

    def forward(self, batch_size: int) -> torch.Tensor:
        """Same as :meth:`sample`."""
        return self.sample(batch_size)

    # -------------------------------------------------------------- device
    def to(self, *args: Any, **kwargs: Any) -> SyntheticModel:  # type: ignore[override]
        """Move every tensor (dictionary, probabilities, magnitudes, correlation factor,
        hierarchy indices) to a device, keeping the loaded values and the sparse flag.

        Only the device may change: a dtype argument raises ``ValueError`` (the dtype
        is part of the model definition, ``cfg.dtype``).
        """
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is not None:
            raise ValueError("SyntheticModel.to() only changes the device; set cfg.dtype to change the dtype")
        if device is None:
            return self
        target = torch.device(check_device("device", device))
        moved = target != torch.device(self.device)
        self.device = str(target)
        self.feature_dict.to(target)
        if self.correlation_matrix is not None:
            self.correlation_matrix = LowRankCorrelationMatrix(*(t.to(target) for t in self.correlation_matrix))
        old = self.activation_generator
        old.to(target)
        if moved:
            seed = self._sampling_seed
            gen = getattr(old, "generator", None)
            if seed is None and gen is not None:
                seed = gen.initial_seed()
            self.activation_generator.generator = None if seed is None else torch.Generator(device=target).manual_seed(seed)
        return self

    def cpu(self) -> SyntheticModel:  # type: ignore[override]
        """Same as ``to("cpu")``."""
        return self.to("cpu")

    def cuda(self, device: int | torch.device | None = None) -> SyntheticModel:  # type: ignore[override]
        """Same as ``to("cuda")`` (or the given CUDA device)."""
        return self.to(torch.device("cuda") if device is None else torch.device("cuda", device) if isinstance(device, int) else device)

    # ------------------------------------------------------------- storage
    def save(self, path: str | Path) -> Path:
        """Write the model to directory ``path`` atomically; returns the path.

        The layout is the reference's (config JSON, safetensors with ``feature_vectors``,
        ``bias``, ``firing_probabilities`` and the correlation factor, ``hierarchy.json``)
        plus ``mean_firing_magnitudes`` and ``std_firing_magnitudes`` tensors. Files are
        written to a temporary sibling directory first, then moved into place.
        """
        from synthsae.synthetic.model_io import save_model_dir

        return save_model_dir(self, Path(path))

    @classmethod
    def load_from_disk(
        cls, path: str | Path, device: str | torch.device = "cpu", sampling_seed: int | None = None
    ) -> SyntheticModel:
        """Load a directory written by :meth:`save` (or by the reference library).

        Raises:
            FileNotFoundError: when the directory or a required file is missing (named).
            ValueError: when a file is corrupt or a tensor is missing or mis-shaped (named).
        """
        from synthsae.synthetic.model_io import load_model_dir

        model = load_model_dir(cls, Path(path), check_device("device", device))
        if sampling_seed is not None:
            model.set_sampling_seed(sampling_seed)
        return model

    @classmethod
    def from_pretrained(
        cls,
        repo_id: str,
        model_path: str | None = None,
        device: str | torch.device = "cpu",
        force_download: bool = False,
    ) -> SyntheticModel:
        """Load a model from a Hugging Face hub repo (optionally from a subfolder).

        Needs ``huggingface_hub`` (``pip install synthsae[hub]``). Honours the hub's
        cache and offline settings (``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``).
        """
        from synthsae.synthetic.hub import download_synthetic_model

        check_device("device", device)  # before any download
        local = download_synthetic_model(repo_id, model_path=model_path, force_download=force_download)
        return cls.load_from_disk(local, device=device)

    @classmethod
    def load_from_source(
        cls, source: SyntheticModelConfig | str | Path, device: str | torch.device = "cpu"
    ) -> SyntheticModel:
        """Build from a config, load a local directory, or download from the hub.

        A string is local when it starts with ``/``, ``./``, ``../`` or ``~``, contains a
        backslash, or exists on disk; otherwise it is a hub id ``"owner/name"`` or
        ``"owner/name:subfolder"``. A string that is neither an existing path nor a
        valid hub id raises ``FileNotFoundError`` without any network access.
        """
        if isinstance(source, SyntheticModelConfig):
            return cls(source, device=device)
        if isinstance(source, Path):
            return cls.load_from_disk(source, device=device)
        if not isinstance(source, str):
            raise TypeError(f"source must be a SyntheticModelConfig, a path or a hub id, got {type(source).__name__}")
        from synthsae.synthetic.hub import is_local_path, parse_hub_source

        if is_local_path(source):
            return cls.load_from_disk(source, device=device)
        repo_id, model_path = parse_hub_source(source)
        return cls.from_pretrained(repo_id, model_path=model_path, device=device)
