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
    folds, fold : star-grouped cross-validation: the file's stars are dealt into ``folds``
        groups in a fixed shuffled order (the same for every run on the same file) and
        group ``fold`` is held out like ``holdout_tics``; a multirun over ``fold=0..folds-1``
        scores every star with a model that never saw it.
    """

    def __init__(self, path: str | Path, splits: list[str] | tuple[str, ...] = SPLITS,
                 holdout_tics: list[int] | tuple[int, ...] | None = None,
                 folds: int | None = None, fold: int | None = None) -> None:
        self.path = Path(path)
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"splits={list(splits)} has unknown entries {bad}; allowed: {list(SPLITS)}")
        self.splits = tuple(splits)
        try:
            self.holdout_tics = tuple(int(t) for t in (holdout_tics or ()))
        except (TypeError, ValueError):
            raise ValueError(f"holdout_tics={holdout_tics!r} must be a list of TIC ids") from None
        if folds is None and fold is None:
            self.folds = self.fold = None
        elif not (isinstance(folds, int) and isinstance(fold, int) and folds >= 2 and 0 <= fold < folds):
            raise ValueError(f"folds={folds} and fold={fold}: set both, folds >= 2 and 0 <= fold < folds")
        else:
            self.folds, self.fold = folds, fold

    def fold_tics(self, tic: np.ndarray) -> tuple[int, ...]:
        """Stars of fold ``fold``: the sorted unique TICs in a shuffled order fixed by the file's
        set of stars (seed 0), dealt round-robin into ``folds`` groups."""
        if self.folds is None:
            return ()
        stars = np.random.default_rng(0).permutation(np.unique(tic))
        if len(stars) < self.folds:
            raise ValueError(f"folds={self.folds} but {self.path} has only {len(stars)} stars")
        return tuple(int(t) for t in stars[self.fold::self.folds])

    def split_rows(self, split: np.ndarray, tic: np.ndarray) -> dict[str, np.ndarray]:
        """Rows of the file per used split, held-out stars only ever in ``test``."""
        held_tics = self.holdout_tics + self.fold_tics(tic)
        held = np.isin(tic, held_tics)
        missing = sorted(set(self.holdout_tics) - set(np.unique(tic[held]).tolist()))
        if missing:
            raise ValueError(f"holdout_tics {missing} have no windows in {self.path}")
        rows = {}
        for name in self.splits:
            own = (split == SPLIT_CODES[name]) & ~held
            rows[name] = np.flatnonzero(own | held if name == "test" else own)
        return rows

    def emptied_split_note(self, name: str, split: np.ndarray, tic: np.ndarray) -> str:
        """Why :meth:`split_rows` left split ``name`` empty: the held-out stars took all of it."""
        n_stars = len(np.unique(tic[split == SPLIT_CODES[name]]))
        held = [f"holdout_tics={list(self.holdout_tics)}"] if self.holdout_tics else []
        if self.folds is not None:
            held.append(f"fold={self.fold} of folds={self.folds}")
        return (f"{' and '.join(held)} takes all {n_stars} star(s) of its file's {name} split "
                f"(hold out fewer stars, or prepare more {name} stars)")

    def prepare(self) -> Path:
        check_window_file(self.path)
        return self.path
