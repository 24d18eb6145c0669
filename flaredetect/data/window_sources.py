"""Where windows come from: each source makes sure a window file exists and says
which splits it contributes to. The DataModule combines any number of them, so
synthetic and real windows can be mixed by config."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flaredetect.data.splits import SPLIT_CODES, SPLITS
from flaredetect.data.window_file import check_window_file


class WindowFileSource:
    """A prepared window file (e.g. from ``flaredetect-prepare``).

    Parameters
    ----------
    path : the HDF5 file.
    splits : which of its splits to use (e.g. ``[train]`` to add synthetic windows to a
        real training set while validating and testing on real data only).
    holdout_tics : stars whose windows are moved to the test split, whatever split the file
        gave them (leave-one-star-out folds: one prepared file, one run per held-out star).
    """

    def __init__(self, path: str | Path, splits: list[str] | tuple[str, ...] = SPLITS,
                 holdout_tics: list[int] | tuple[int, ...] | None = None) -> None:
        self.path = Path(path)
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"splits={list(splits)} has unknown entries {bad}; allowed: {list(SPLITS)}")
        self.splits = tuple(splits)
        try:
            self.holdout_tics = tuple(int(t) for t in (holdout_tics or ()))
        except (TypeError, ValueError):
            raise ValueError(f"holdout_tics={holdout_tics!r} must be a list of TIC ids") from None

    def split_rows(self, split: np.ndarray, tic: np.ndarray) -> dict[str, np.ndarray]:
        """Rows of the file per used split, held-out stars only ever in ``test``."""
        held = np.isin(tic, self.holdout_tics)
        missing = sorted(set(self.holdout_tics) - set(np.unique(tic[held]).tolist()))
        if missing:
            raise ValueError(f"holdout_tics {missing} have no windows in {self.path}")
        rows = {}
        for name in self.splits:
            own = (split == SPLIT_CODES[name]) & ~held
            rows[name] = np.flatnonzero(own | held if name == "test" else own)
        return rows

    def prepare(self) -> Path:
        check_window_file(self.path)
        return self.path
