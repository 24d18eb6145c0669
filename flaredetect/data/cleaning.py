"""Light-curve cleaning: the thesis recipe, made safe for flares.

The reference thesis removed NaNs, removed 5-sigma outliers, divided by the median and
subtracted 1, and appended the sectors of a star. Two parts of that are wrong for a flare
detector and are fixed here:

* A symmetric sigma clip deletes exactly the cadences we want to find (flare peaks are
  the high outliers). :func:`low_outlier_mask` clips only *low* outliers of a
  running-median-detrended flux; nothing above the running median is ever removed.
* Appending sectors before normalising mixes baselines (each sector has its own
  aperture and calibration). :func:`stitch` normalises every sector by its own median.

Quality flags: the named bitmasks are lightkurve's ('none', 'default', 'hard',
'hardest') **with the SPOC "impulsive outlier" bit (512) removed**, because SPOC sets
that bit on real flare peaks (in the shared sector-1 SPOC files, 2 of the 29 Günther
flare peaks with finite PDCSAP flux carry bit 512; lightkurve's own 'default' would
delete them). Pass an int (e.g. ``lightkurve.utils.TessQualityFlags.DEFAULT_BITMASK``)
for exact lightkurve behaviour. 'default' therefore removes attitude tweaks, safe mode,
coarse/Earth pointing, Argabrightening, momentum dumps (desaturation, bit 32), manual
excludes and bad-calibration cadences; stray light (2048) and cosmic-ray bits stay.
In SPOC 2-min files nearly every flagged cadence except 512 and 2048 already has NaN
PDCSAP flux, so the choice mainly matters for 512. The QUALITY bits of the kept
cadences are returned in ``LightCurve.quality`` so that "is this cadence flagged" remains
an input feature.

Times and errors as files give them: a time column in BJD (> 2,400,000) is converted to
BTJD with a logged note, one in other units (time steps of hours or more: seconds?) is
refused; cadences whose ``flux_err`` is zero or negative are dropped with a logged count
(in the shared custom-aperture files they are the scattered-light cadences, with fluxes
of up to 1000 times the star's); a light curve with no positive error at all keeps its
cadences, its errors marked unknown (NaN).

All functions return new objects and never mutate their inputs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from lightkurve.utils import TessQualityFlags

from flaredetect.data.lightcurve import (BTJD_OFFSET, SECONDS_PER_DAY, Flares, LightCurve, cadence_days, runs,
                                         segments)

log = logging.getLogger(__name__)
IMPULSIVE_OUTLIER_BIT = 512
BJD_MIN = 2_400_000.0       # a time column above this is a (B)JD, not BTJD
MAX_CADENCE_DAYS = 0.1      # 2.4 h: no TESS cadence is longer (30-min FFIs are 0.021 d)
BITMASK_NAMES = ("none", "default", "hard", "hardest")


@dataclass(frozen=True)
class RawLightCurve:
    """Un-normalised photometry of one star in one sector, as read from a file.

    ``flux`` and ``flux_err`` are in the file's units (e-/s, counts, or already
    relative). ``source`` names where it came from, for error messages; ``cadenceno``
    the instrument's cadence numbers when the file has them (None: unknown); ``cadence_s``
    the time step the file declares (``TIMEDEL``; None: measured from the times).
    """

    tic: int | None  # None: unknown
    sector: int | None
    time_btjd: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    quality: np.ndarray
    source: str = ""
    cadenceno: np.ndarray | None = None
    cadence_s: float | None = None

    def __post_init__(self) -> None:
        n = len(np.asarray(self.time_btjd))
        if self.cadence_s is not None and not (np.isfinite(self.cadence_s) and self.cadence_s > 0):
            raise ValueError(f"{self.source or 'RawLightCurve'}: cadence_s={self.cadence_s} must be a positive "
                             f"number of seconds")
        names = ("time_btjd", "flux", "flux_err", "quality") + (("cadenceno",) if self.cadenceno is not None else ())
        for name in names:
            value = np.asarray(getattr(self, name))
            if value.shape != (n,):
                raise ValueError(
                    f"{self.source or 'RawLightCurve'}: {name} has shape {value.shape}, expected ({n},)"
                )
        object.__setattr__(self, "time_btjd", np.asarray(self.time_btjd, dtype=np.float64))
        object.__setattr__(self, "flux", np.asarray(self.flux, dtype=np.float64))
        object.__setattr__(self, "flux_err", np.asarray(self.flux_err, dtype=np.float64))
        object.__setattr__(self, "quality", np.asarray(self.quality).astype(np.int64))
        if self.cadenceno is not None:
            object.__setattr__(self, "cadenceno", np.asarray(self.cadenceno).astype(np.int64))

    def __len__(self) -> int:
        return len(self.time_btjd)

    def select(self, keep: np.ndarray) -> "RawLightCurve":
        """Return the cadences where ``keep`` is true (bool mask or index array)."""
        return RawLightCurve(
            tic=self.tic,
            sector=self.sector,
            time_btjd=self.time_btjd[keep],
            flux=self.flux[keep],
            flux_err=self.flux_err[keep],
            quality=self.quality[keep],
            source=self.source,
            cadenceno=None if self.cadenceno is None else self.cadenceno[keep],
            cadence_s=self.cadence_s,
        )


def resolve_bitmask(bitmask: str | int | None) -> int:
    """Integer QUALITY bitmask for a name or int.

    Names are lightkurve's bitmasks minus the impulsive-outlier bit (512), which SPOC
    sets on flare peaks. Ints are used as given. ``None`` means 0 (keep everything).
    """
    if bitmask is None:
        return 0
    if isinstance(bitmask, str):
        key = bitmask.lower()
        if key not in TessQualityFlags.OPTIONS:
            raise ValueError(f"unknown quality bitmask {bitmask!r}; expected one of {BITMASK_NAMES} or an int")
        return int(TessQualityFlags.OPTIONS[key]) & ~IMPULSIVE_OUTLIER_BIT
    value = int(bitmask)
    if value < 0:
        raise ValueError(f"quality bitmask must be >= 0, got {value}")
    return value


def quality_mask(quality: np.ndarray, bitmask: str | int | None = "default") -> np.ndarray:
    """Boolean mask, True where a cadence passes the bitmask (see :func:`resolve_bitmask`)."""
    # The bit test lightkurve's TessQualityFlags.create_quality_mask does, without its
    # per-call INFO line ("0% of the cadences will be ignored ...") for every light curve.
    return (np.asarray(quality).astype(np.int64) & resolve_bitmask(bitmask)) == 0


def finite_mask(raw: RawLightCurve) -> np.ndarray:
    """True where time and flux are finite (SPOC sets PDCSAP flux and its error to NaN
    together on excluded cadences)."""
    return np.isfinite(raw.time_btjd) & np.isfinite(raw.flux)


def error_mask(flux_err: np.ndarray) -> np.ndarray | None:
    """True where ``flux_err`` is a usable error (finite and > 0); None when no cadence
    has one (the errors are unknown, which says nothing against the flux)."""
    ok = np.isfinite(flux_err) & (flux_err > 0)
    return ok if ok.any() else None


def time_in_btjd(time: np.ndarray, label: str) -> np.ndarray:
    """The time column in BTJD: BJD values are converted (with a logged note); a column
    whose typical step is longer than any TESS cadence is refused (not days)."""
    finite = time[np.isfinite(time)]
    if finite.size and np.median(finite) > BJD_MIN:
        log.warning("%s: time looks like BJD (median %.1f); converted to BTJD = BJD - %.0f",
                    label, float(np.median(finite)), BTJD_OFFSET)
        time = time - BTJD_OFFSET
        finite = finite - BTJD_OFFSET
    step = np.diff(np.sort(finite))
    step = step[step > 0]
    if step.size and np.median(step) > MAX_CADENCE_DAYS:
        raise ValueError(f"{label}: time steps of {np.median(step):.4g} are not TESS cadences in days "
                         f"(seconds?); give time in BTJD days")
    return time


def running_median(time_btjd: np.ndarray, flux: np.ndarray, window_days: float = 0.25,
                   max_gap_days: float = 0.5, cadence_d: float | None = None) -> np.ndarray:
    """Running median over ``window_days`` (in cadences of ``cadence_d`` days; None:
    measured from the times), computed per contiguous segment.

    The window (6 h by default) is long compared with most flares (minutes to ~1 h), so a
    flare barely moves it, and short compared with rotation periods of most flare stars.
    """
    from scipy.ndimage import median_filter

    cadence_d = cadence_days(time_btjd) if cadence_d is None else cadence_d
    size = max(3, int(round(window_days / cadence_d)) | 1)
    out = np.empty_like(flux, dtype=np.float64)
    for a, b in segments(time_btjd, max_gap_days / cadence_d, cadence_d):
        chunk = flux[a:b]
        out[a:b] = median_filter(chunk, size=min(size, chunk.size | 1), mode="nearest")
    return out


def low_outlier_mask(time_btjd: np.ndarray, flux: np.ndarray, n_sigma: float = 5.0,
                     window_days: float = 0.25, max_run: int | None = 3,
                     cadence_d: float | None = None) -> np.ndarray:
    """True for cadences to keep: drops only short dips far *below* the running median.

    Flares only ever raise the flux, so a one-sided clip cannot delete one. The noise is
    the robust sigma (1.4826 MAD) of the residual from :func:`running_median`. Only dips
    at most ``max_run`` cadences long (measured at 2 sigma) are dropped: instrumental
    dropouts. Longer dips are astrophysical (eclipses, transits) and are kept, because
    the model will meet them at inference time. ``max_run=None`` drops every low cadence (measured
    on the shared SPOC files, that would delete 1,221 eclipse cadences of TIC 32150630).
    """
    time_btjd = np.asarray(time_btjd, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if flux.size < 3:
        return np.ones(flux.size, dtype=bool)
    resid = flux - running_median(time_btjd, flux, window_days, cadence_d=cadence_d)
    mad = np.median(np.abs(resid - np.median(resid)))
    sigma = 1.4826 * mad
    if not np.isfinite(sigma) or sigma <= 0:
        return np.ones(flux.size, dtype=bool)
    low = resid < -n_sigma * sigma
    if max_run is not None and low.any():
        # A dip's extent is measured where it is 2 sigma low, so noise inside a long
        # eclipse cannot split it into "short" 5-sigma runs.
        dip = resid < -min(2.0, n_sigma) * sigma
        long_dip = np.zeros(flux.size, dtype=bool)
        for a, b in runs(dip):
            if b - a > max_run:
                long_dip[a:b] = True
        low &= ~long_dip
    return ~low


def normalise(raw: RawLightCurve) -> LightCurve:
    """``flux_rel = flux / median - 1`` and ``flux_err / median``; no other change."""
    if len(raw) == 0:
        raise ValueError(f"{raw.source or f'TIC {raw.tic}'}: no cadences left to normalise")
    median = float(np.median(raw.flux))
    if not np.isfinite(median) or median <= 0:
        raise ValueError(f"{raw.source or f'TIC {raw.tic}'}: median flux is {median:.6g} (over-subtracted "
                         f"background?), cannot normalise")
    return LightCurve(
        tic=None if raw.tic is None else int(raw.tic),
        sector=None if raw.sector is None else int(raw.sector),
        time_btjd=raw.time_btjd.copy(),
        flux_rel=raw.flux / median - 1.0,
        flux_err=raw.flux_err / median,
        quality=raw.quality.copy(),
        cadence_s=raw.cadence_s,
    )


def clean(raw: RawLightCurve, quality_bitmask: str | int | None = "default", *,
          low_sigma: float | None = 5.0, window_days: float = 0.25,
          max_low_run: int | None = 3) -> LightCurve:
    """Raw photometry -> normalised, flare-safe :class:`LightCurve`.

    Steps: BJD times to BTJD; drop non-finite time/flux; drop cadences with
    ``flux_err <= 0`` (errors all missing: kept, as NaN); drop cadences failing
    ``quality_bitmask``; sort by time and drop duplicate times; drop short low outliers
    (runs of at most ``max_low_run`` cadences ``low_sigma`` robust sigma below a
    ``window_days`` running median; ``low_sigma=None`` disables); divide by the median
    and subtract 1. What is dropped is logged, one line per reason.

    Raises
    ------
    ValueError
        One line naming the source when no usable cadence is left, or the time column is
        not in days.
    """
    label = raw.source or f"TIC {raw.tic}"
    raw = replace(raw, time_btjd=time_in_btjd(raw.time_btjd, label))
    keep = finite_mask(raw)
    if not keep.any():
        raise ValueError(f"{label}: no cadence has finite time and flux (all-NaN flux?)")
    errors = error_mask(raw.flux_err)
    if errors is None:
        log.info("%s: no positive flux_err; errors unknown (NaN)", label)
        raw = replace(raw, flux_err=np.full(len(raw), np.nan))
    elif (keep & ~errors).any():
        log.info("%s: dropped %d cadences with flux_err <= 0 or non-finite", label, int((keep & ~errors).sum()))
        keep &= errors
    keep &= quality_mask(raw.quality, quality_bitmask)
    if not keep.any():
        raise ValueError(f"{label}: every finite cadence is removed by quality bitmask {quality_bitmask!r}")
    cur = raw.select(keep)
    order = np.argsort(cur.time_btjd, kind="stable")
    cur = cur.select(order)
    unique = np.concatenate([[True], np.diff(cur.time_btjd) > 0])
    cur = cur.select(unique)
    if low_sigma is not None:
        cadence_d = None if cur.cadence_s is None else cur.cadence_s / SECONDS_PER_DAY
        cur = cur.select(low_outlier_mask(cur.time_btjd, cur.flux, low_sigma, window_days, max_low_run, cadence_d))
    return normalise(cur)


def _concat_flares(parts: Sequence[Flares]) -> Flares:
    names = list(Flares.__dataclass_fields__)
    merged = Flares(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})
    if len(merged) == 0:
        return merged
    # The same catalog queried per sector can repeat a flare; keep one copy.
    key = np.stack([merged.peak_time_btjd, merged.event_id.astype(np.float64)], axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)
    merged = merged.select(first)
    return merged.select(np.argsort(merged.peak_time_btjd, kind="stable"))


def stitch(light_curves: Sequence[LightCurve]) -> LightCurve:
    """Join several sectors of one star into one time-ordered :class:`LightCurve`.

    Each sector is re-normalised by its own median (``(1 + flux_rel) / median - 1``)
    before concatenation, so every baseline sits at 0 even when the inputs were not
    normalised alike. ``sector`` is the common sector if all inputs share it, else -1
    (a stitched curve has no single sector). Flares are merged (duplicates dropped);
    ``flare_mask`` is kept only if every input has one (otherwise None, and the windowing
    code derives it from the flares); ``noise_sigma`` is kept only if all inputs agree.
    Light curves of different cadences are refused: each cadence is scored on its own.

    Raises
    ------
    ValueError
        On an empty list, different TICs, different cadences, or a sector whose median is
        not positive.
    """
    lcs = list(light_curves)
    if not lcs:
        raise ValueError("stitch: no light curves given")
    tics = {int(lc.tic) for lc in lcs}
    if len(tics) != 1:
        raise ValueError(f"stitch: light curves of different stars {sorted(tics)}")
    lcs = [lc for lc in lcs if len(lc) > 0] or lcs[:1]
    cadences = sorted({lc.cadence_seconds for lc in lcs if len(lc) > 1})
    if len(cadences) > 1:
        raise ValueError(f"stitch: TIC {lcs[0].tic} has light curves at cadences "
                         f"{', '.join(f'{c:g} s' for c in cadences)}; stitch each cadence separately")
    lcs.sort(key=lambda lc: float(np.min(lc.time_btjd)) if len(lc) else np.inf)
    times, fluxes, errs, quals, masks = [], [], [], [], []
    for lc in lcs:
        level = 1.0 + np.asarray(lc.flux_rel, dtype=np.float64)
        median = float(np.median(level)) if level.size else 1.0
        if not np.isfinite(median) or median <= 0:
            raise ValueError(f"stitch: TIC {lc.tic} sector {lc.sector} has median level {median}")
        times.append(np.asarray(lc.time_btjd, dtype=np.float64))
        fluxes.append(level / median - 1.0)
        errs.append(np.asarray(lc.flux_err, dtype=np.float64) / median)
        quals.append(np.asarray(lc.quality))
        masks.append(lc.flare_mask)
    time = np.concatenate(times)
    order = np.argsort(time, kind="stable")
    flare_mask = None
    if all(m is not None for m in masks):
        flare_mask = np.concatenate([np.asarray(m) for m in masks])[order]
    sectors = {int(lc.sector) for lc in lcs}
    sigmas = {lc.noise_sigma for lc in lcs}
    return LightCurve(
        tic=tics.pop(),
        sector=sectors.pop() if len(sectors) == 1 else -1,
        time_btjd=time[order],
        flux_rel=np.concatenate(fluxes)[order],
        flux_err=np.concatenate(errs)[order],
        quality=np.concatenate(quals)[order],
        flares=_concat_flares([lc.flares for lc in lcs]),
        flare_mask=flare_mask,
        noise_sigma=sigmas.pop() if len(sigmas) == 1 else None,
        cadence_s=next(iter(declared)) if len(declared := {lc.cadence_s for lc in lcs}) == 1 else None,
    )
