"""Flare catalogs as per-star :class:`~flaredetect.data.lightcurve.Flares`.

Every reader returns a :class:`FlareCatalog`: a read-only ``Mapping[int, Flares]`` keyed
by TIC with ``for_star(tic, t_min, t_max)``. Times are BTJD (= BJD - 2457000).
Catalogued flares were found and vetted, so ``detectable`` is True for all of them.
A catalog is not the truth (it misses weak flares); it is the label set we have.

Flare extents (``start_time_btjd``/``stop_time_btjd``, used for the per-cadence mask)
are only given directly by the ultracool-dwarf table; elsewhere they are derived, as
documented in each reader, and never narrower than one cadence either side of the peak.

Rows that cannot be used are never dropped silently. A row without a usable TIC belongs
to no star: reading stops, naming the file, column and rows. A row without a usable peak
time leaves its star's flare times unknown, so the whole star is left out and listed in
``FlareCatalog.excluded`` (TIC -> one line): kept, that flare would be missing from its
masks and could sit inside a negative window. A peak column with no usable value at all
(wrong column or format) stops reading.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from flaredetect.data.lightcurve import BTJD_OFFSET, CADENCE_DAYS, SECONDS_PER_DAY, Flares, LightCurve


def davenport2014_template(t_half: np.ndarray) -> np.ndarray:
    """Davenport et al. 2014 (ApJ 797, 122, eqs. 1 and 4) flare template, peak = 1.

    ``t_half`` is time from peak in units of the FWHM (t_1/2).
    """
    x = np.asarray(t_half, dtype=np.float64)
    rise = 1 + 1.941 * x - 0.175 * x**2 - 2.246 * x**3 - 1.125 * x**4
    decay = 0.6890 * np.exp(-1.600 * x) + 0.3030 * np.exp(-0.2783 * x)
    return np.where(x < -1, 0.0, np.where(x <= 0, rise, decay))


def _template_area() -> float:
    # Analytic integral of the template in units of t_1/2: rise polynomial over [-1, 0]
    # plus the two exponentials over [0, inf) = 0.3077 + 1.5194 = 1.827.
    rise = 1 - 1.941 / 2 - 0.175 / 3 + 2.246 / 4 - 1.125 / 5
    decay = 0.6890 / 1.600 + 0.3030 / 0.2783
    return rise + decay


DAVENPORT_AREA = _template_area()  # ~1.827: ED = Amp * FWHM * 1.827 for a template flare


class FlareCatalog(Mapping):
    """Flares per TIC. ``catalog[tic]`` gives all flares of a star (time-ordered).

    ``excluded`` maps the TICs left out for unusable rows to a one-line reason; they are
    not in the mapping, and must not be taken for stars without flares.
    """

    def __init__(self, flares_by_tic: dict[int, Flares], name: str = "", excluded: dict[int, str] | None = None):
        self._by_tic = {int(k): v for k, v in flares_by_tic.items()}
        self.name = name
        self.excluded = {int(k): v for k, v in (excluded or {}).items()}

    def __getitem__(self, tic: int) -> Flares:
        return self._by_tic[int(tic)]

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_tic)

    def __len__(self) -> int:
        return len(self._by_tic)

    def __contains__(self, tic) -> bool:
        try:
            return int(tic) in self._by_tic
        except (TypeError, ValueError):
            return False

    @property
    def n_flares(self) -> int:
        return sum(len(f) for f in self._by_tic.values())

    def for_star(self, tic: int, t_min: float | None = None, t_max: float | None = None,
                 by: str = "overlap") -> Flares:
        """Flares of one star within ``[t_min, t_max]`` (BTJD); empty Flares if none.

        ``by='overlap'`` keeps flares whose [start, stop] overlaps the span (a flare
        peaking just before a light curve starts still marks its decay); ``by='peak'``
        keeps flares whose peak lies inside.
        """
        flares = self._by_tic.get(int(tic))
        if flares is None:
            return Flares()
        lo = -np.inf if t_min is None else float(t_min)
        hi = np.inf if t_max is None else float(t_max)
        if by == "overlap":
            keep = (flares.stop_time_btjd >= lo) & (flares.start_time_btjd <= hi)
        elif by == "peak":
            keep = (flares.peak_time_btjd >= lo) & (flares.peak_time_btjd <= hi)
        else:
            raise ValueError(f"by must be 'overlap' or 'peak', got {by!r}")
        return flares.select(keep)

    def for_light_curve(self, lc: LightCurve, by: str = "overlap") -> Flares:
        """Flares of ``lc``'s star within its time span."""
        if len(lc) == 0:
            return Flares()
        return self.for_star(lc.tic, float(np.min(lc.time_btjd)), float(np.max(lc.time_btjd)), by=by)

    def __repr__(self) -> str:
        excluded = f", {len(self.excluded)} excluded" if self.excluded else ""
        return f"FlareCatalog({self.name!r}, {len(self)} stars, {self.n_flares} flares{excluded})"


def _require(df: pd.DataFrame, columns, path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing required column(s) {missing}; found {list(df.columns)}")


def _num(values, n: int | None = None) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)


def _row_list(labels, limit: int = 5) -> str:
    """Data rows counted from 1 after the header (the frame's index survives row filters)."""
    rows = [int(r) + 1 for r in labels]
    return ", ".join(map(str, rows[:limit])) + (" ..." if len(rows) > limit else "")


def _cell(value) -> str:
    """A raw table value for a message: empty cells (NaN after parsing) say so."""
    return "an empty cell" if pd.isna(value) else repr(str(value))


def _tic_column(values: pd.Series, path, column: str) -> np.ndarray:
    """TICs as int64; a row without a usable TIC belongs to no star, so it stops the read."""
    tic = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(tic) | (tic != np.round(tic))
    if bad.any():
        raise ValueError(f"{path}: column {column!r}: {int(bad.sum())} of {len(tic)} row(s) have no usable TIC "
                         f"(rows {_row_list(values.index[bad])}; e.g. {_cell(values[bad].iloc[0])})")
    return tic.astype(np.int64)


def _unusable_peaks(raw: pd.Series, peak: np.ndarray, tic: np.ndarray, path, column: str) -> dict[int, str]:
    """TIC -> one-line reason for each star with a row whose peak time is not a number."""
    bad = ~np.isfinite(peak)
    if len(peak) and bad.all():
        raise ValueError(f"{path}: column {column!r}: none of the {len(peak)} row(s) holds a usable peak time "
                         f"(e.g. {_cell(raw.iloc[0])}); check the column and its format")
    reasons = {}
    for star in np.unique(tic[bad]):
        rows = np.flatnonzero(bad & (tic == star))
        reasons[int(star)] = " ".join(
            f"TIC {star}: {path}: column {column!r}: {rows.size} row(s) without a usable peak time "
            f"(rows {_row_list(raw.index[rows])}; e.g. {_cell(raw.iloc[rows[0]])}); star excluded, "
            f"its flare times are unknown".split())
    return reasons


def _to_btjd(times: np.ndarray, time_offset: float | str, path) -> np.ndarray:
    """Subtract ``time_offset``; 'auto' means BJD if values > 2.4e6, BTJD if < 1e5."""
    if time_offset != "auto":
        return times - float(time_offset)
    finite = times[np.isfinite(times)]
    if finite.size == 0:
        return times
    if np.all(finite > 2.4e6):
        return times - BTJD_OFFSET
    if np.all(finite < 1e5):
        return times
    raise ValueError(f"{path}: cannot tell whether peak times are BJD or BTJD "
                     f"(range {finite.min()}..{finite.max()}); pass time_offset")


def _build(tic, peak_btjd, *, amplitude=None, fwhm_days=None, start_btjd=None, stop_btjd=None,
           event_id=None, ed_s=None, energy_erg=None, name: str = "",
           excluded: dict[int, str] | None = None) -> FlareCatalog:
    """Group flat arrays by TIC into a FlareCatalog (rows sorted by peak time), leaving out
    the ``excluded`` stars (see :func:`_unusable_peaks`)."""
    excluded = excluded or {}
    tic = np.asarray(tic, dtype=np.int64)
    n = tic.size
    peak = np.asarray(peak_btjd, dtype=np.float64)
    fill = lambda a: np.full(n, np.nan) if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    amplitude, fwhm_days, ed_s, energy_erg = map(fill, (amplitude, fwhm_days, ed_s, energy_erg))
    start = peak - CADENCE_DAYS if start_btjd is None else np.asarray(start_btjd, dtype=np.float64)
    stop = peak + CADENCE_DAYS if stop_btjd is None else np.asarray(stop_btjd, dtype=np.float64)
    if event_id is None:
        event_id = np.zeros(n, dtype=np.int64)
        for t in np.unique(tic):
            rows = np.flatnonzero(tic == t)
            event_id[rows[np.argsort(peak[rows], kind="stable")]] = np.arange(rows.size)
    event_id = np.asarray(event_id, dtype=np.int64)
    good = ~np.isin(tic, list(excluded))
    if not np.isfinite(peak[good]).all():  # a reader forgot _unusable_peaks: never drop rows silently
        raise ValueError(f"{name}: non-finite peak times outside the excluded stars")
    by_tic: dict[int, Flares] = {}
    for t in np.unique(tic[good]):
        rows = np.flatnonzero((tic == t) & good)
        rows = rows[np.argsort(peak[rows], kind="stable")]
        by_tic[int(t)] = Flares(
            peak_time_btjd=peak[rows], amplitude=amplitude[rows], fwhm_days=fwhm_days[rows],
            start_time_btjd=start[rows], stop_time_btjd=stop[rows], event_id=event_id[rows],
            ed_s=ed_s[rows], energy_erg=energy_erg[rows], detectable=np.ones(rows.size, dtype=bool),
        )
    return FlareCatalog(by_tic, name=name, excluded=excluded)


def read_guenther2020(path: str | Path, rise_fwhm: float = 1.0, decay_fwhm: float = 3.0) -> FlareCatalog:
    """Günther et al. 2020 (AJ 159, 60) flare table (CSV export of the VizieR table).

    * ``tpeak`` (BJD) -> BTJD. ``Outbst`` numbers the events of a star; the ``Flare``
      components of one complex event share ``event_id = Outbst``.
    * Extent: ``tpeak - rise_fwhm*FWHM`` to ``tpeak + decay_fwhm*FWHM`` (default 1 and 3,
      Davenport-like: the template rises over 1 FWHM; at +3 FWHM it is still at ~13 % of
      the peak, so the faint tail is left unmasked), at least one cadence either side.
    * ``ed_s``: the Davenport 2014 template integral, ED = Amp * FWHM * 1.827 * 86400 s
      (Günther et al. fitted that template, so this is their model's ED, not a measured one).
    * ``energy_erg`` = ``Ebol`` (NaN where empty).
    """
    df = pd.read_csv(path)
    _require(df, ["TIC", "Outbst", "tpeak", "Amp", "FWHMdt"], path)
    tic = _tic_column(df["TIC"], path, "TIC")
    peak = _to_btjd(_num(df["tpeak"]), BTJD_OFFSET, path)
    amp = _num(df["Amp"])
    fwhm = _num(df["FWHMdt"])
    width = np.where(np.isfinite(fwhm), fwhm, 0.0)
    energy = _num(df["Ebol"]) if "Ebol" in df.columns else None
    return _build(
        tic, peak, amplitude=amp, fwhm_days=fwhm,
        start_btjd=peak - np.maximum(rise_fwhm * width, CADENCE_DAYS),
        stop_btjd=peak + np.maximum(decay_fwhm * width, CADENCE_DAYS),
        event_id=_num(df["Outbst"]).astype(np.int64), ed_s=amp * fwhm * DAVENPORT_AREA * SECONDS_PER_DAY,
        energy_erg=energy, name=f"Günther 2020 ({Path(path).name})",
        excluded=_unusable_peaks(df["tpeak"], peak, tic, path, "tpeak"),
    )


# Column labels accepted for the Pietras et al. 2022 table. The exact labels of the VizieR
# ReadMe of J/ApJ/935/143 could not be checked when this was written (no copy reachable),
# so labels are matched case-insensitively against these aliases; extend them if a real
# export uses other names.
PIETRAS_ALIASES = {
    "tic": ("TIC", "TICID", "TIC_ID", "ID"),
    "sector": ("Sector", "Sect", "S"),
    "peak_time": ("Tpeak", "tpeak", "Tmax", "PeakTime", "BJDpeak", "BJD", "Peak"),
    "amplitude": ("Amp", "Ampl", "Amplitude"),
    "duration": ("Dur", "Duration"),
    "n_profiles": ("Nprof", "NProf", "Nprofiles", "Nfit", "Profiles"),
    "ed": ("ED", "EqDur", "EquivDur"),
    "energy": ("Energy", "E", "Eflare", "logE"),
}


def _match(columns, aliases) -> str | None:
    lookup = {str(c).lower(): c for c in columns}
    for alias in aliases:
        if alias.lower() in lookup:
            return lookup[alias.lower()]
    return None


def _read_table(path: Path, readme: str | Path | None) -> tuple[pd.DataFrame, dict[str, str]]:
    """CDS/MRT fixed-width (with ``readme`` or an inline header) or CSV -> (frame, units)."""
    from astropy.io import ascii as astro_ascii

    head = path.read_text(errors="replace")[:4000] if path.stat().st_size else ""
    if readme is not None or "Byte-by-byte" in head:
        kwargs = {"readme": str(readme)} if readme is not None else {}
        try:
            table = astro_ascii.read(str(path), format="cds", **kwargs)
        except Exception as exc:
            raise ValueError(f"{path}: cannot read as a CDS table ({type(exc).__name__}: {exc})") from exc
        units = {name: str(table[name].unit) for name in table.colnames if table[name].unit is not None}
        frame = pd.DataFrame({name: np.ma.filled(np.ma.asarray(table[name]).astype(float), np.nan)
                              if table[name].dtype.kind in "fiu" else np.asarray(table[name])
                              for name in table.colnames})
        return frame, units
    return pd.read_csv(path, comment="#"), {}


def _in_unit(values: np.ndarray, unit: str | None, target: str, default: str) -> np.ndarray:
    import astropy.units as u

    source = unit if unit not in (None, "", "---") else default
    try:
        return (values * u.Unit(source)).to_value(u.Unit(target))
    except (ValueError, u.UnitConversionError) as exc:
        raise ValueError(f"cannot convert unit {source!r} to {target!r}") from exc


def read_pietras2022(path: str | Path, readme: str | Path | None = None, *,
                     time_offset: float | str = "auto", duration_unit: str = "min",
                     rise_fraction: float = 0.25) -> FlareCatalog:
    """Pietras et al. 2022 (ApJ 935, 143; VizieR J/ApJ/935/143) TESS flare table.

    Reads the CDS fixed-width table (``readme`` = its ReadMe, or an MRT file with the
    byte-by-byte header inline) or a CSV export. Columns (TIC, sector, peak time,
    amplitude, duration, number of profiles, ED, energy) are found by the aliases in
    ``PIETRAS_ALIASES``; TIC and peak time are required.

    * Peak time -> BTJD (``time_offset='auto'``: BJD if > 2.4e6, else already BTJD).
    * Units from the CDS ReadMe win; otherwise duration is taken in ``duration_unit``
      (minutes by default: an assumption, check your export), ED in s, energy in erg
      (a ``logE`` column is exponentiated).
    * The table gives no start/stop, so the extent is ``peak - rise_fraction*duration``
      to ``peak + (1 - rise_fraction)*duration`` (flares rise fast and decay slowly; the
      0.25 split is an assumption), at least one cadence either side.
    * Each row is one flare (event); the number of fitted profiles is not kept.
    """
    path = Path(path)
    frame, units = _read_table(path, readme)
    cols = {key: _match(frame.columns, aliases) for key, aliases in PIETRAS_ALIASES.items()}
    missing = [PIETRAS_ALIASES[k][0] for k in ("tic", "peak_time") if cols[k] is None]
    if missing:
        raise ValueError(f"{path}: missing required column(s) {missing}; found {list(frame.columns)}")
    n = len(frame)
    tic = _tic_column(frame[cols["tic"]], path, cols["tic"])
    peak = _to_btjd(_num(frame[cols["peak_time"]]), time_offset, path)
    get = lambda key: _num(frame[cols[key]]) if cols[key] is not None else np.full(n, np.nan)  # noqa: E731
    duration = get("duration")
    if cols["duration"] is not None:
        duration = _in_unit(duration, units.get(cols["duration"]), "d", duration_unit)
    ed = get("ed")
    if cols["ed"] is not None:
        ed = _in_unit(ed, units.get(cols["ed"]), "s", "s")
    energy = get("energy")
    if cols["energy"] is not None and (cols["energy"].lower().startswith("log")
                                       or "dex" in units.get(cols["energy"], "")):
        energy = 10.0 ** energy
    width = np.where(np.isfinite(duration), duration, 0.0)
    return _build(
        tic, peak, amplitude=get("amplitude"),
        start_btjd=peak - np.maximum(rise_fraction * width, CADENCE_DAYS),
        stop_btjd=peak + np.maximum((1 - rise_fraction) * width, CADENCE_DAYS),
        ed_s=ed, energy_erg=energy, name=f"Pietras 2022 ({path.name})",
        excluded=_unusable_peaks(frame[cols["peak_time"]], peak, tic, path, cols["peak_time"]),
    )


def read_ilin_ucd(path: str | Path, real_only: bool = True, unvetted_only: bool = False) -> FlareCatalog:
    """The vetted ultracool-dwarf flare table (AltaiPony output).

    Keeps ``real == 1`` rows (NaN = not vetted, -1 = rejected); ``real_only=False``: every
    row; ``unvetted_only``: the NaN rows only (candidates nobody decided on). ``tstart``/``tstop`` (BTJD)
    are the extent. The table has no peak time: ``peak_time_btjd = tstart`` (the first
    flare cadence; for impulsive flares the peak is within a cadence or two). Use
    :func:`refine_peak_times` with the light curve to move it to the brightest cadence.
    ``amplitude = ampl_rec``, ``ed_s = ed_rec``, ``energy_erg = energy``; each row is
    one event (``complex`` rows are already single, merged events).
    """
    df = pd.read_csv(path)
    _require(df, ["TIC", "tstart", "tstop", "ampl_rec", "ed_rec", "real"], path)
    if unvetted_only:
        df = df[np.isnan(_num(df["real"]))]
    elif real_only:
        df = df[_num(df["real"]) == 1]
    tic = _tic_column(df["TIC"], path, "TIC")
    start = _num(df["tstart"])
    energy = _num(df["energy"]) if "energy" in df.columns else None
    return _build(
        tic, start, amplitude=_num(df["ampl_rec"]), start_btjd=start,
        stop_btjd=_num(df["tstop"]), ed_s=_num(df["ed_rec"]), energy_erg=energy,
        name=f"UCD vetted ({Path(path).name})", excluded=_unusable_peaks(df["tstart"], start, tic, path, "tstart"),
    )


GENERIC_KEYS = ("tic", "peak_time", "amplitude", "fwhm_days", "start_time", "stop_time",
                "event_id", "ed_s", "energy_erg")


def read_flare_csv(path: str | Path, columns: dict, *, query: str | None = None) -> FlareCatalog:
    """Any CSV flare table, given a column mapping.

    Parameters
    ----------
    columns
        Our name -> the file's column: ``tic`` and ``peak_time`` required; optional
        ``amplitude``, ``fwhm_days``, ``start_time``, ``stop_time``, ``event_id``, ``ed_s``,
        ``energy_erg``; plus ``time_offset`` (a number subtracted from all times to get
        BTJD, e.g. 2457000 for BJD; default 0).
        Example: ``{"tic": "TIC", "peak_time": "t_peak", "amplitude": "amp", "time_offset": 2457000}``.
    query
        Optional ``pandas.DataFrame.query`` string to select rows (e.g. ``"real == 1"``).
    """
    mapping = dict(columns)
    offset = float(mapping.pop("time_offset", 0.0))
    unknown = sorted(set(mapping) - set(GENERIC_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown mapping key(s) {unknown}; expected {GENERIC_KEYS} or time_offset")
    for key in ("tic", "peak_time"):
        if key not in mapping:
            raise ValueError(f"{path}: column mapping needs {key!r}")
    df = pd.read_csv(path)
    _require(df, list(mapping.values()), path)
    if query:
        df = df.query(query)
    col = lambda key: _num(df[mapping[key]]) if key in mapping else None  # noqa: E731
    shift = lambda a: None if a is None else a - offset  # noqa: E731
    event = col("event_id")
    tic = _tic_column(df[mapping["tic"]], path, mapping["tic"])
    peak = shift(col("peak_time"))
    return _build(
        tic, peak, amplitude=col("amplitude"),
        fwhm_days=col("fwhm_days"), start_btjd=shift(col("start_time")), stop_btjd=shift(col("stop_time")),
        event_id=None if event is None else event.astype(np.int64), ed_s=col("ed_s"),
        energy_erg=col("energy_erg"), name=Path(path).name,
        excluded=_unusable_peaks(df[mapping["peak_time"]], peak, tic, path, mapping["peak_time"]),
    )


def refine_peak_times(flares: Flares, lc: LightCurve) -> Flares:
    """Move each peak to the brightest cadence of ``lc`` within its [start, stop];
    flares with no cadence there keep their catalog peak."""
    peak = flares.peak_time_btjd.copy()
    for i, (a, b) in enumerate(zip(flares.start_time_btjd, flares.stop_time_btjd)):
        inside = np.flatnonzero((lc.time_btjd >= a) & (lc.time_btjd <= b))
        if inside.size:
            peak[i] = lc.time_btjd[inside[np.argmax(lc.flux_rel[inside])]]
    fields = {name: getattr(flares, name) for name in Flares.__dataclass_fields__}
    fields["peak_time_btjd"] = peak
    return Flares(**fields)
