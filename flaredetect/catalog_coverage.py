"""Where a flare table searched: the stretches of each sector that an AltaiPony table's own
indices show were analysed.

A flare table is silent where its authors never looked (cadences they cut for scattered light,
ramps after a gap, the edges of a sector), and silence there is not a label: a flare we find
there is not a false event, and a bump there is no hard negative. AltaiPony's ``find_flares``
rows say where the search ran: ``istart`` is the flare's first cadence as an index into the
light curve that was searched (its ``total_n_valid_data_points`` cadences), ``cstart`` the
same cadence's instrument cadence number. Against our file of that star and sector, (our
valid cadences before ``cstart``) − ``istart`` is how many of our cadences the search left out
before that flare: the *excluded count*. Sorted by time over every row of a sector (every
star of it whose searched light curve had the same number of valid cadences: the same cut),
two consecutive rows with the same excluded count enclose a stretch searched cadence for
cadence; where the count grows, something between them was cut, and what is unknown. Before
the first row the sector is searched when nothing was excluded before it, after the last row
when all of the excluded cadences lie before it. A row's own extent was searched.

On the vetted ultracool-dwarf table the first days of each orbit of sector 11 are cut, for
example; ``flaredetect-benchmark --searched-only`` prints the share of time left.
A star whose files have no row takes its sector's most common cut (the study searched it and
found nothing); a sector without rows is not known at all (:meth:`SearchedStretches.mask` is
None there).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

TABLE_COLUMNS = ("TIC", "sector", "tstart", "tstop", "cstart", "istart", "total_n_valid_data_points")


@dataclass(frozen=True)
class SearchedStretches:
    """BTJD intervals a table searched, per ``(sector, valid cadences)`` cut, and which cut each
    star's light curve of a sector had."""

    by_cut: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (sector, n_valid) -> (k, 2)
    cut_of: dict[tuple[int, int], int] = field(default_factory=dict)  # (tic, sector) -> n_valid
    tics: frozenset = frozenset()  # every star the table lists (in any sector): the study's stars

    def stretches(self, tic: int, sector: int) -> np.ndarray | None:
        """``(k, 2)`` searched BTJD intervals of that star's light curve of ``sector`` (None: unknown:
        a star the table never lists, or a sector it has no row of)."""
        n_valid = self.cut_of.get((int(tic), int(sector)))
        if n_valid is None and int(tic) not in self.tics:
            return None
        if n_valid is None:  # the study's star without a row here: its sector's most common cut (searched, none found)
            cuts = Counter(n for (_, s), n in self.cut_of.items() if s == int(sector))
            if not cuts:
                return None
            n_valid = cuts.most_common(1)[0][0]
        return self.by_cut.get((int(sector), n_valid))

    def summary(self) -> list:
        """JSON-able (cache keys): every cut's searched intervals."""
        return [[s, n, np.round(v, 5).tolist()] for (s, n), v in sorted(self.by_cut.items())]

    def mask(self, tic: int | None, sector: int | None, time_btjd: np.ndarray) -> np.ndarray | None:
        """Per cadence, whether the table searched it (None: the table says nothing about this light curve)."""
        if tic is None or sector is None:
            return None
        stretches = self.stretches(tic, sector)
        if stretches is None:
            return None
        time = np.asarray(time_btjd, dtype=np.float64)
        inside = np.zeros(time.shape, dtype=bool)
        for t0, t1 in stretches:
            inside |= (time >= t0) & (time <= t1)
        return inside


def _merge(intervals: list[tuple[float, float]]) -> np.ndarray:
    if not intervals:
        return np.zeros((0, 2))
    merged: list[list[float]] = []
    for t0, t1 in sorted(intervals):
        if merged and t0 <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], t1)
        else:
            merged.append([t0, t1])
    return np.array(merged, dtype=np.float64)


def _valid_cadences(raw) -> tuple[np.ndarray, np.ndarray | None]:
    ok = np.isfinite(raw.time_btjd) & np.isfinite(raw.flux)
    cadenceno = None if raw.cadenceno is None else np.sort(np.asarray(raw.cadenceno)[ok])
    return np.sort(np.asarray(raw.time_btjd, dtype=np.float64)[ok]), cadenceno


def searched_stretches(table: str | Path | pd.DataFrame, light_curves: Iterable) -> SearchedStretches:
    """:class:`SearchedStretches` of an AltaiPony-made table (its every row, vetted or not)
    against our files of the stars it lists: ``light_curves`` are raw light curves
    (:class:`~flaredetect.data.cleaning.RawLightCurve`: TIC, sector, times, flux and, when the
    file has them, cadence numbers) or files, directories and globs to read. Rows of stars or sectors without a file
    here are not used."""
    from flaredetect.sources.local import find_light_curve_files, read_raw_light_curve

    if isinstance(light_curves, (str, Path)):
        light_curves = [light_curves]
    light_curves = [p for item in light_curves
                    for p in (find_light_curve_files(item) if isinstance(item, (str, Path)) else [item])]
    df = pd.read_csv(table) if not isinstance(table, pd.DataFrame) else table
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{table if not isinstance(table, pd.DataFrame) else 'table'}: no column(s) {missing}; "
                         f"the searched stretches need AltaiPony's {list(TABLE_COLUMNS)}")
    df = df.dropna(subset=list(TABLE_COLUMNS))
    rows_by_lc = {key: rows for key, rows in df.groupby([df["TIC"].astype(np.int64), df["sector"].astype(np.int64)])}
    anchors: dict[tuple[int, int], list] = {}   # (sector, n_valid) -> [(tstart, tstop, excluded before)]
    deficits: dict[tuple[int, int], list[int]] = {}
    cut_of: dict[tuple[int, int], int] = {}
    for item in light_curves:
        raw = read_raw_light_curve(item) if isinstance(item, (str, Path)) else item
        if raw.tic is None or raw.sector is None:
            continue
        key = (int(raw.tic), int(raw.sector))
        if key not in rows_by_lc:
            continue
        time, cadenceno = _valid_cadences(raw)
        rows = rows_by_lc[key]
        n_valid = int(rows["total_n_valid_data_points"].iloc[0])
        cut_of[key] = n_valid
        deficits.setdefault((key[1], n_valid), []).append(len(time) - n_valid)
        if cadenceno is not None:
            before = np.searchsorted(cadenceno, rows["cstart"].to_numpy(np.int64), side="left")
        else:  # no cadence numbers: our cadences before the flare's first one, by time
            half = 0.5 * float(np.median(np.diff(time))) if len(time) > 1 else 0.0
            before = np.searchsorted(time, rows["tstart"].to_numpy(np.float64) - half, side="left")
        excluded = before - rows["istart"].to_numpy(np.int64)
        anchors.setdefault((key[1], n_valid), []).extend(
            zip(rows["tstart"].to_numpy(np.float64), rows["tstop"].to_numpy(np.float64), excluded.astype(int)))
    by_cut = {}
    for cut, points in anchors.items():
        points = sorted(set(points))
        deficit = int(np.median(deficits[cut]))
        intervals = [(t0, t1) for t0, t1, _ in points]
        for (t0, _, e0), (t1, _, e1) in zip(points[:-1], points[1:]):
            if e0 == e1:
                intervals.append((t0, t1))
        if points[0][2] == 0:
            intervals.append((-np.inf, points[0][0]))
        if points[-1][2] == deficit:
            intervals.append((points[-1][0], np.inf))
        by_cut[cut] = _merge(intervals)
    return SearchedStretches(by_cut, cut_of, frozenset(int(t) for t in df["TIC"].astype(np.int64)))
