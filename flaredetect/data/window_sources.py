"""Where windows come from: each source makes sure a window file exists and says
which splits it contributes to. The DataModule combines any number of them, so
synthetic and real windows can be mixed by config."""
from __future__ import annotations

from pathlib import Path

from flaredetect.data.splits import SPLITS
from flaredetect.data.window_file import check_window_file


class WindowFileSource:
    """A prepared window file (e.g. from ``flaredetect-prepare``).

    Parameters
    ----------
    path : the HDF5 file.
    splits : which of its splits to use (e.g. ``[train]`` to add synthetic windows to a
        real training set while validating and testing on real data only).
    """

    def __init__(self, path: str | Path, splits: list[str] | tuple[str, ...] = SPLITS) -> None:
        self.path = Path(path)
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"splits={list(splits)} has unknown entries {bad}; allowed: {list(SPLITS)}")
        self.splits = tuple(splits)

    def prepare(self) -> Path:
        check_window_file(self.path)
        return self.path
