"""A batch of sparse feature activations in compressed-row (CSR) form.

Sampling produces a few dozen active features per row out of tens of thousands,
so the fast paths of synthsae pass activations around as a :class:`SparseBatch`
and only densify when a caller asks for a ``[batch, num_features]`` tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SparseBatch:
    """Active features of a batch, row by row.

    Row ``r`` holds the features ``indices[offsets[r]:offsets[r + 1]]`` with the
    activations ``values[offsets[r]:offsets[r + 1]]``. Within a row the indices
    are distinct but need not be sorted. Entries may hold the value 0 (a feature
    that fired with a magnitude clipped to 0); ``to_dense`` and friends keep them
    as explicit zeros only in the sparse formats.
    """

    offsets: torch.Tensor  # [batch_size + 1], int64, offsets[0] == 0
    indices: torch.Tensor  # [nnz], int64 feature ids
    values: torch.Tensor  # [nnz]
    num_features: int

    def __post_init__(self) -> None:
        if self.offsets.dim() != 1 or self.offsets.numel() < 1:
            raise ValueError(f"offsets must be a 1-D tensor of length batch_size + 1, got shape {tuple(self.offsets.shape)}")
        if self.indices.shape != self.values.shape or self.indices.dim() != 1:
            raise ValueError(
                f"indices and values must be 1-D tensors of equal length, got {tuple(self.indices.shape)} and {tuple(self.values.shape)}"
            )

    # ------------------------------------------------------------------ sizes
    @property
    def batch_size(self) -> int:
        return self.offsets.numel() - 1

    @property
    def nnz(self) -> int:
        return self.indices.numel()

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.batch_size, self.num_features))

    def row_counts(self) -> torch.Tensor:
        """Number of stored entries per row, ``[batch_size]``."""
        return self.offsets[1:] - self.offsets[:-1]

    def row_ids(self) -> torch.Tensor:
        """The row of every stored entry, ``[nnz]`` (rows in ascending order)."""
        return torch.repeat_interleave(
            torch.arange(self.batch_size, device=self.offsets.device), self.row_counts(), output_size=self.nnz
        )

    # ------------------------------------------------------------ conversion
    def to_dense(self) -> torch.Tensor:
        """The ``[batch_size, num_features]`` dense tensor."""
        dense = torch.zeros(self.batch_size, self.num_features, dtype=self.values.dtype, device=self.values.device)
        if self.nnz:
            dense[self.row_ids(), self.indices] = self.values
        return dense

    def to_sparse_coo(self) -> torch.Tensor:
        """A coalesced sparse COO tensor of shape ``[batch_size, num_features]``."""
        idx = torch.stack([self.row_ids(), self.indices])
        return torch.sparse_coo_tensor(idx, self.values, self.shape, check_invariants=False).coalesce()

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SparseBatch:
        return SparseBatch(
            self.offsets.to(device),
            self.indices.to(device),
            self.values.to(device=device, dtype=dtype),
            self.num_features,
        )

    @staticmethod
    def from_rows(
        rows: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, batch_size: int, num_features: int
    ) -> SparseBatch:
        """Build from unsorted (row, feature, value) triples; rows are stably sorted."""
        order = torch.argsort(rows, stable=True)
        counts = torch.bincount(rows, minlength=batch_size)
        offsets = torch.zeros(batch_size + 1, dtype=torch.long, device=rows.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        return SparseBatch(offsets, indices[order], values[order], num_features)

    @staticmethod
    def from_dense(acts: torch.Tensor) -> SparseBatch:
        """The non-zero entries of a dense ``[batch, features]`` tensor."""
        if acts.dim() != 2:
            raise ValueError(f"acts must be 2-D [batch, features], got shape {tuple(acts.shape)}")
        rows, cols = acts.nonzero(as_tuple=True)
        return SparseBatch.from_rows(rows, cols, acts[rows, cols], acts.shape[0], acts.shape[1])

    @staticmethod
    def from_sparse_coo(acts: torch.Tensor) -> SparseBatch:
        """The stored entries of a 2-D sparse COO tensor."""
        acts = acts.coalesce()
        rows, cols = acts.indices()
        return SparseBatch.from_rows(rows, cols, acts.values(), acts.shape[0], acts.shape[1])
