"""Torch datasets over window files, in memory or read lazily from HDF5."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, RandomSampler

# Fields a training batch needs; the rest (tic, energy, ...) stays in the file for evaluation.
BATCH_FIELDS = ("flux_rel", "quality", "flare_mask", "peak_mask", "noise_sigma")


class WindowDataset(Dataset):
    """Rows ``indices`` of one window file.

    ``in_memory=True`` reads the needed fields once; otherwise each item is read from the
    HDF5 file, opened lazily in each worker process (h5py handles must not cross a fork).
    """

    def __init__(self, path: str | Path, indices: np.ndarray, in_memory: bool = True,
                 fields: tuple[str, ...] = BATCH_FIELDS) -> None:
        self.path = str(path)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.fields = fields
        self._file: h5py.File | None = None
        self._arrays: dict[str, np.ndarray] | None = None
        if in_memory:
            with h5py.File(self.path, "r") as f:
                self._arrays = {k: f[k][...][self.indices] for k in fields}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._arrays is not None:
            row = {k: v[i] for k, v in self._arrays.items()}
        else:
            if self._file is None:
                self._file = h5py.File(self.path, "r")
            j = int(self.indices[i])
            row = {k: self._file[k][j] for k in self.fields}
        return {k: torch.as_tensor(np.asarray(v)) for k, v in row.items()}

    def __getstate__(self):  # never pickle an open h5py handle into a worker
        state = dict(self.__dict__)
        state["_file"] = None
        return state


class EpochShuffleSampler(RandomSampler):
    """A new permutation every epoch, drawn from ``seed + epoch`` alone (as
    ``DistributedSampler`` and :class:`flaredetect.gpu_data.DeviceWindowLoader` do).

    ``RandomSampler`` seeds itself from torch's global generator, which the augmentation
    and dropout also draw from, so a resumed run would see another data order. Lightning
    calls :meth:`set_epoch` before every epoch, also the first one after a resume; under
    DDP it replaces this sampler by a ``DistributedSampler`` (it is a ``RandomSampler``).
    """

    def __init__(self, data_source, seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class WeightedEpochSampler(EpochShuffleSampler):
    """Mix sources by weight: each epoch draws ``len(data_source)`` windows with replacement,
    source ``k`` with probability ``weights[k]`` (its windows equally likely among themselves),
    from ``seed + epoch`` alone like :class:`EpochShuffleSampler`.

    ``sizes`` are the sources' window counts in the order they are concatenated."""

    def __init__(self, data_source, sizes, weights, seed: int = 0) -> None:
        super().__init__(data_source, seed)
        sizes = np.asarray(sizes, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        if sizes.sum() != len(data_source) or len(sizes) != len(weights):
            raise ValueError(f"sizes {sizes.tolist()} and weights {weights.tolist()} do not describe "
                             f"{len(data_source)} windows")
        per_window = np.repeat(np.where(sizes > 0, weights / np.maximum(sizes, 1), 0.0), sizes)
        self.probabilities = torch.as_tensor(per_window / per_window.sum())

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.probabilities, len(self.data_source), replacement=True,
                                     generator=generator).tolist()
