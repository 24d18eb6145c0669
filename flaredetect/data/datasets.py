"""Torch datasets over window files, in memory or read lazily from HDF5."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

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
