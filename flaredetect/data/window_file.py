"""HDF5 files of prepared windows: the one on-disk format for synthetic and real data.

Layout: one dataset per field of :data:`~flaredetect.data.windowing.WINDOW_FIELDS`
plus ``split`` (0 train, 1 val, 2 test), and attributes ``length``, ``context``,
``complete`` and a JSON ``provenance``. Files are written to a temporary name and
renamed, and readers refuse files without ``complete=True``, so an interrupted write
never looks like a finished data set.
"""
from __future__ import annotations

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


def read_window_file(path: str | Path, fields=None) -> dict[str, np.ndarray]:
    """Read whole fields into memory (default: all, and ``split``)."""
    check_window_file(path)
    with h5py.File(path, "r") as f:
        keys = list(fields) if fields is not None else [*WINDOW_FIELDS, "split"]
        return {k: f[k][...] for k in keys}
