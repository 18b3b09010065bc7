"""Streaming torch datasets over lazy (dask-backed) xarray data larger than memory.

:func:`to_torch_lazy` is :func:`surrogates.data.common.to_torch` without loading the data: the
same split by sample, the same examples (bit for bit), but each batch reads only the samples it
needs from disk (:class:`LazyPairDataset`), and the normalisers are fitted on the training split
by streaming statistics over chunks of samples (:func:`streaming_normalizers`). Memory then
scales with the batch, not with the dataset. Open the data lazily first, e.g. with
:func:`surrogates.data.shards.open_dataset` (a set of shards or one file with ``lazy=True``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from operators.normalization import Normalizer
from surrogates.data.common import TorchSplits, lead_pairs, split_samples


class LazyPairDataset(torch.utils.data.Dataset):
    """Examples of :func:`~surrogates.data.common.lead_pairs` read per batch from a lazy dataset.

    Example ``i`` is frame ``i % n_frames`` of sample ``samples[i // n_frames]`` in the order
    :func:`~surrogates.data.common.to_torch` stacks them, so the two datasets agree item by
    item. ``__getitems__`` (used by ``DataLoader`` for a whole batch) reads the distinct samples
    of the batch in one ``isel`` (a dask computation touching only their chunks).

    Parameters
    ----------
    ds : xarray.Dataset
        Usually dask-backed (``open_mfdataset``, ``open_dataset(chunks=...)``).
    samples : sequence of int
        Positions along ``sample`` in this dataset (a split).
    inputs, targets, spatial_dims, lead, history
        As in :func:`~surrogates.data.common.lead_pairs`.
    dtype : torch.dtype, default float32
    """

    def __init__(self, ds: xr.Dataset, samples: Sequence[int] | np.ndarray, *,
                 inputs: Sequence[str], targets: Sequence[str], spatial_dims: Sequence[str],
                 lead: int = 0, history: int = 0, dtype: torch.dtype = torch.float32):
        missing = [n for n in (*inputs, *targets) if n not in ds.data_vars]
        if missing:
            raise ValueError(f"variables {missing} are not in the dataset; it has "
                             f"{sorted(ds.data_vars)}")
        self.ds = ds[list(dict.fromkeys((*inputs, *targets)))]
        self.samples = np.asarray(samples, dtype=np.int64)
        self.inputs, self.targets = list(inputs), list(targets)
        self.spatial_dims, self.lead, self.history = list(spatial_dims), lead, history
        self.dtype = dtype
        if "time" in ds[inputs[0]].dims:
            self.n_frames = ds.sizes["time"] - lead - history
        else:
            self.n_frames = 1
        if self.n_frames < 1:
            raise ValueError(f"lead = {lead} and history = {history} leave no frames of the "
                             f"{ds.sizes.get('time', 1)} in the dataset")

    def __len__(self) -> int:
        return len(self.samples) * self.n_frames

    def read(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets of examples ``indices`` as NumPy arrays (one read)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"example indices must lie in [0, {len(self)})")
        rows_of, frames = np.divmod(idx, self.n_frames)
        unique, inverse = np.unique(rows_of, return_inverse=True)
        subset = self.ds.isel(sample=self.samples[unique]).load()
        x, y = lead_pairs(subset, self.inputs, self.targets, self.spatial_dims, self.lead,
                          self.history)
        rows = inverse.reshape(-1) * self.n_frames + frames
        return x[rows], y[rows]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.read(indices)
        x = torch.as_tensor(x, dtype=self.dtype)
        y = torch.as_tensor(y, dtype=self.dtype)
        return list(zip(x, y, strict=True))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])[0]


class _Moments:
    """Per-channel count, mean and sum of squared deviations, merged chunk by chunk (Chan et
    al. 1979), in float64."""

    def __init__(self, n_channels: int):
        self.count = 0
        self.mean = np.zeros(n_channels)
        self.m2 = np.zeros(n_channels)

    def update(self, values: np.ndarray) -> None:
        v = np.moveaxis(np.asarray(values, dtype=np.float64), 1, 0).reshape(len(self.mean), -1)
        if not np.isfinite(v).all():
            raise ValueError("cannot fit a normaliser on non-finite data")
        n = v.shape[1]
        if n == 0:
            return
        mean = v.mean(axis=1)
        m2 = ((v - mean[:, None]) ** 2).sum(axis=1)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta ** 2 * (self.count * n / total)
        self.count = total

    def normalizer(self) -> Normalizer:
        norm = Normalizer(len(self.mean))
        norm.mean.copy_(torch.as_tensor(self.mean, dtype=norm.mean.dtype))
        norm.std.copy_(torch.as_tensor(np.sqrt(self.m2 / max(self.count, 1)),
                                       dtype=norm.std.dtype))
        return norm


#: Default memory budget of one read of :func:`streaming_normalizers` (float64 copies included).
CHUNK_BYTES = 32 * 2**20


def streaming_normalizers(dataset: LazyPairDataset, *, chunk_examples: int | None = None
                          ) -> tuple[Normalizer, Normalizer]:
    """Input and target normalisers of ``dataset`` from streaming per-channel moments.

    Reads ``chunk_examples`` examples at a time (whole samples; default: as many as fit in
    :data:`CHUNK_BYTES` in float64), so memory stays bounded; the result equals
    :meth:`operators.normalization.Normalizer.fit` on the stacked data up to floating-point
    rounding (population std, as there).
    """
    if len(dataset) == 0:
        raise ValueError("cannot fit normalisers on an empty training split")
    if chunk_examples is None:
        x, y = dataset.read([0])
        chunk_examples = max(1, CHUNK_BYTES // (8 * (x.size + y.size)))
    step = max(1, chunk_examples // dataset.n_frames) * dataset.n_frames
    x_moments = y_moments = None
    for start in range(0, len(dataset), step):
        x, y = dataset.read(np.arange(start, min(start + step, len(dataset))))
        if x_moments is None:
            x_moments, y_moments = _Moments(x.shape[1]), _Moments(y.shape[1])
        x_moments.update(x)
        y_moments.update(y)
    if x_moments is None:
        raise ValueError("cannot fit normalisers on an empty training split")
    return x_moments.normalizer(), y_moments.normalizer()


def to_torch_lazy(ds: xr.Dataset, *, inputs: Sequence[str], targets: Sequence[str],
                  spatial_dims: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  seed: int = 0, dtype: torch.dtype = torch.float32, lead: int = 0,
                  history: int = 0, chunk_examples: int | None = None) -> TorchSplits:
    """:func:`~surrogates.data.common.to_torch` for data larger than memory.

    The same split (:func:`~surrogates.data.common.split_samples`) and the same examples, as
    :class:`LazyPairDataset` s that read per batch; normalisers from
    :func:`streaming_normalizers` on the training split.
    """
    if "sample" not in ds.dims:
        raise ValueError(f"dataset needs a 'sample' dimension; it has {dict(ds.sizes)}")
    indices = split_samples(ds.sizes["sample"], fractions, seed=seed)
    parts = {split: LazyPairDataset(ds, idx, inputs=inputs, targets=targets,
                                    spatial_dims=spatial_dims, lead=lead, history=history,
                                    dtype=dtype)
             for split, idx in indices.items()}
    input_normalizer, target_normalizer = streaming_normalizers(
        parts["train"], chunk_examples=chunk_examples)
    return TorchSplits(parts["train"], parts["validation"], parts["test"], input_normalizer,
                       target_normalizer, indices)
