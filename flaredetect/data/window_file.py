"""HDF5 files of prepared windows: the one on-disk format for synthetic and real data.

Layout: one dataset per field of :data:`~flaredetect.data.windowing.WINDOW_FIELDS`
plus ``split`` (0 train, 1 val, 2 test), and attributes ``length``, ``context``,
``complete`` and a JSON ``provenance``. Files are written to a temporary name and
renamed, and readers refuse files without ``complete=True``, so an interrupted write
never looks like a finished data set.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from flaredetect.data.windowing import WINDOW_FIELDS, WindowSpec

PER_CADENCE = ("flux_rel", "quality", "flare_mask", "peak_mask", "time_btjd")


def write_window_file(path: str | Path, windows: dict[str, np.ndarray], split: np.ndarray,
                      spec: WindowSpec, provenance: dict | None = None) -> Path:
    """Write windows atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        for key, dtype in WINDOW_FIELDS.items():
            data = np.asarray(windows[key], dtype=dtype)
            chunks = (min(256, max(len(data), 1)),) + data.shape[1:] if data.ndim > 1 else None
            f.create_dataset(key, data=data, chunks=chunks if len(data) else None)
        f.create_dataset("split", data=np.asarray(split, dtype=np.uint8))
        f.attrs["length"] = spec.length
        f.attrs["context"] = spec.context
        f.attrs["provenance"] = json.dumps(provenance or {}, default=str)
        f.attrs["complete"] = True
    os.replace(tmp, path)
    return path


def check_window_file(path: str | Path) -> dict:
    """Open a window file's header; raise a clear error if it is missing or incomplete."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"window file {path} does not exist (run flaredetect-prepare, or check data.path)")
    try:
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete", False):
                raise ValueError(f"window file {path} is incomplete (an interrupted write); re-run the preparation")
            missing = [k for k in (*WINDOW_FIELDS, "split") if k not in f]
            if missing:
                raise ValueError(f"window file {path} lacks datasets {missing}")
            return {"length": int(f.attrs["length"]), "context": int(f.attrs["context"]),
                    "n_windows": int(f["label"].shape[0]),
                    "provenance": json.loads(f.attrs.get("provenance", "{}"))}
    except OSError as err:
        raise ValueError(f"window file {path} is not a readable HDF5 file: {err}") from err


def cached_window_file(cache_dir: str | Path, prefix: str, params: dict) -> tuple[Path, bool]:
    """``(path, valid)`` of a generated source's window file, named by a hash of every
    parameter that shapes it, and whether a complete file is already there."""
    key = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{prefix}-{key}.h5"
    try:
        check_window_file(path)
        return path, True
    except (FileNotFoundError, ValueError):
        return path, False


def read_window_file(path: str | Path, fields=None) -> dict[str, np.ndarray]:
    """Read whole fields into memory (default: all, and ``split``)."""
    check_window_file(path)
    with h5py.File(path, "r") as f:
        keys = list(fields) if fields is not None else [*WINDOW_FIELDS, "split"]
        return {k: f[k][...] for k in keys}


class WindowFileWriter:
    """Build a window file by appending batches, so a data set never has to fit in memory.

    Writes to ``<path>.partial`` with resizable datasets; :meth:`close` sets
    ``complete=True`` and renames it into place. Leaving the ``with`` block through an
    exception removes the partial file, and a killed process leaves only the
    ``.partial`` file, which readers never open, so nothing half-written looks finished.

    ``extra`` names additional per-window fields and their dtypes (e.g. the prepared
    real data's ``start_time_btjd`` and ``peak_time_btjd``); they are stored beside
    :data:`WINDOW_FIELDS` and ignored by readers that do not ask for them.
    """

    def __init__(self, path: str | Path, spec: WindowSpec, extra: dict[str, str] | None = None,
                 provenance: dict | None = None, chunk_rows: int = 256) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.spec = spec
        self.fields = {**WINDOW_FIELDS, **(extra or {}), "split": "uint8"}
        self.n = 0
        self._file = h5py.File(self.tmp, "w")
        width = spec.stored_length
        for key, dtype in self.fields.items():
            shape = (0, width) if key in PER_CADENCE else (0,)
            self._file.create_dataset(key, shape=shape, maxshape=(None,) + shape[1:], dtype=dtype,
                                      chunks=(chunk_rows,) + shape[1:])
        self._file.attrs["length"] = spec.length
        self._file.attrs["context"] = spec.context
        self._file.attrs["provenance"] = json.dumps(provenance or {}, default=str)
        self._file.attrs["complete"] = False

    def append(self, windows: dict[str, np.ndarray], split: np.ndarray) -> None:
        """Append rows; ``windows`` must hold every field (``split`` given separately)."""
        rows = {**windows, "split": split}
        missing = [k for k in self.fields if k not in rows]
        if missing:
            raise ValueError(f"window batch for {self.path} lacks fields {missing}")
        n = len(rows["label"])
        if n == 0:
            return
        for key, dtype in self.fields.items():
            data = np.asarray(rows[key], dtype=dtype)
            if len(data) != n:
                raise ValueError(f"window batch field {key!r} has {len(data)} rows, expected {n}")
            dset = self._file[key]
            dset.resize(self.n + n, axis=0)
            dset[self.n:self.n + n] = data
        self.n += n

    def set_provenance(self, provenance: dict) -> None:
        self._file.attrs["provenance"] = json.dumps(provenance, default=str)

    def close(self) -> Path:
        """Mark complete and move into place (atomic rename)."""
        self._file.attrs["complete"] = True
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "WindowFileWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
