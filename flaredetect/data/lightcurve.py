"""Plain containers for light curves and their flares.

Every data source (the synthetic generator, SPOC FITS files, ``.npy`` arrays, MAST)
produces these, and the windowing code consumes them, so the real-data pipeline and
the embedded synthetic data share one path to training windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

CADENCE_DAYS = 120.0 / 86400.0  # TESS 2-minute cadence: the default where none can be read or measured
SECONDS_PER_DAY = 86400.0
# TESS cadences (s): 20-s and 2-min target pixels; full-frame images at 30 min (sectors 1-26),
# 10 min (27-55) and 200 s (56 on)
TESS_CADENCES_S = (20.0, 120.0, 200.0, 600.0, 1800.0)
BTJD_OFFSET = 2457000.0  # BTJD = BJD - 2457000 (TESS Barycentric Julian Date)

# SPOC QUALITY bits (TESS Science Data Products Description Document, table 28).
QUALITY_BITS = {
    "attitude_tweak": 1,
    "safe_mode": 2,
    "coarse_point": 4,
    "earth_point": 8,
    "argabrightening": 16,
    "desat": 32,  # reaction-wheel desaturation (momentum dump)
    "aperture_cosmic": 64,
    "manual_exclude": 128,
    "discontinuity": 256,
    "impulsive_outlier": 512,
    "collateral_cosmic": 1024,
    "straylight": 2048,
    "scattered_light": 4096,
}


def _empty(dtype=np.float64) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(frozen=True)
class Flares:
    """Flares of one light curve, one row per flare component.

    Components of one complex (overlapping) flare share ``event_id``. Quantities that a
    source does not know are NaN (``ed_s``, ``energy_erg``, ``fwhm_days``).
    ``start_time_btjd``/``stop_time_btjd`` bound the cadences marked in the flare mask.
    """

    peak_time_btjd: np.ndarray = field(default_factory=_empty)
    amplitude: np.ndarray = field(default_factory=_empty)  # relative flux at peak
    fwhm_days: np.ndarray = field(default_factory=_empty)
    start_time_btjd: np.ndarray = field(default_factory=_empty)
    stop_time_btjd: np.ndarray = field(default_factory=_empty)
    event_id: np.ndarray = field(default_factory=lambda: _empty(np.int64))
    ed_s: np.ndarray = field(default_factory=_empty)  # equivalent duration, seconds
    energy_erg: np.ndarray = field(default_factory=_empty)
    detectable: np.ndarray = field(default_factory=lambda: _empty(bool))

    def __post_init__(self) -> None:
        n = len(self.peak_time_btjd)
        for name in self.__dataclass_fields__:
            value = np.asarray(getattr(self, name))
            if value.shape != (n,):
                raise ValueError(f"Flares.{name} has shape {value.shape}, expected ({n},)")
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.peak_time_btjd)

    def select(self, keep: np.ndarray) -> "Flares":
        """Return the rows where ``keep`` (bool mask or index array) is true."""
        return Flares(**{name: getattr(self, name)[keep] for name in self.__dataclass_fields__})


@dataclass(frozen=True)
class LightCurve:
    """One star observed in one sector (or several sectors stitched), cadence by cadence.

    ``flux_rel`` is relative flux: flux / median - 1, so the quiescent level is 0.
    Arrays are aligned and time-ordered but need not be contiguous: TESS light curves
    have gaps (downlinks, flagged cadences removed), so code must look at ``time_btjd``.
    ``quality`` holds SPOC QUALITY bits (0 where unknown). ``flare_mask`` marks flare
    cadences when the truth is known per cadence (synthetic data); otherwise the windowing
    code derives it from ``flares``' start/stop times. ``cadence_s`` is the time step (and
    exposure: a TESS cadence integrates over its whole step) as the file declares it
    (``TIMEDEL``) or as given; None: measured from the times (:attr:`cadence_d`).
    """

    tic: int | None  # None: unknown (a bare array scored by flaredetect-predict)
    sector: int | None
    time_btjd: np.ndarray
    flux_rel: np.ndarray
    flux_err: np.ndarray
    quality: np.ndarray
    flares: Flares = field(default_factory=Flares)
    flare_mask: np.ndarray | None = None
    noise_sigma: float | None = None  # white-noise sigma per cadence, when known
    cadence_s: float | None = None

    def __post_init__(self) -> None:
        n = len(self.time_btjd)
        if self.cadence_s is not None and not (np.isfinite(self.cadence_s) and self.cadence_s > 0):
            raise ValueError(f"LightCurve.cadence_s={self.cadence_s} must be a positive number of seconds")
        for name in ("time_btjd", "flux_rel", "flux_err", "quality"):
            value = np.asarray(getattr(self, name))
            if value.shape != (n,):
                raise ValueError(f"LightCurve.{name} has shape {value.shape}, expected ({n},)")
            object.__setattr__(self, name, value)
        if self.flare_mask is not None and np.asarray(self.flare_mask).shape != (n,):
            raise ValueError("LightCurve.flare_mask must align with time_btjd")

    def __len__(self) -> int:
        return len(self.time_btjd)

    def replace(self, **changes) -> "LightCurve":
        return replace(self, **changes)

    @property
    def cadence_d(self) -> float:
        """Cadence in days: the declared ``cadence_s``, else measured from the times and, within
        1 % of a TESS cadence, that cadence (so a file and its arrays give the same EDs)."""
        if self.cadence_s is not None:
            return self.cadence_s / SECONDS_PER_DAY
        return nominal_cadence_s(cadence_days(self.time_btjd) * SECONDS_PER_DAY, tolerance=0.01) / SECONDS_PER_DAY

    @property
    def cadence_seconds(self) -> float:
        """Cadence in seconds (declared, else measured), snapped to the TESS cadence it is."""
        return nominal_cadence_s(self.cadence_d * SECONDS_PER_DAY)


def nominal_cadence_s(seconds: float, tolerance: float = 0.05) -> float:
    """The TESS cadence (:data:`TESS_CADENCES_S`) within ``tolerance`` of ``seconds``,
    else ``seconds`` itself (a binned or non-TESS light curve keeps its own step)."""
    for nominal in TESS_CADENCES_S:
        if abs(seconds - nominal) <= tolerance * nominal:
            return nominal
    return float(seconds)


def same_cadence(a_s: float, b_s: float, tolerance: float = 0.05) -> bool:
    """Whether two cadences (s) are the same within ``tolerance`` (timing jitter, float32 times)."""
    return abs(a_s - b_s) <= tolerance * b_s


def cadence_days(time_btjd: np.ndarray) -> float:
    """Typical time step of a light curve (2 min if it cannot be measured).

    The mean of the steps within 50 % of the median step, not the median itself: times
    stored as float32 are quantised to ~10 s near BTJD 1400, and the median of the
    quantised 120-s steps is then 116 s (every ED and duration 3 % low), while their
    mean is 120 s to a fraction of a second.
    """
    step = np.diff(np.asarray(time_btjd, dtype=np.float64))
    step = step[np.isfinite(step) & (step > 0)]
    if not step.size:
        return CADENCE_DAYS
    median = np.median(step)
    return float(np.mean(step[np.abs(step - median) <= 0.5 * median]))


def robust_noise_sigma(flux_rel: np.ndarray) -> float:
    """White-noise sigma from point-to-point differences (insensitive to slow variability
    and to the few cadences inside flares): 1.4826 * MAD(diff) / sqrt(2)."""
    flux = np.asarray(flux_rel, dtype=np.float64)
    flux = flux[np.isfinite(flux)]
    if flux.size < 3:
        return float("nan")
    diff = np.diff(flux)
    mad = np.median(np.abs(diff - np.median(diff)))
    return float(1.4826 * mad / np.sqrt(2.0))


def segments(time_btjd: np.ndarray, max_gap_cadences: float,
             cadence_d: float | None = None) -> list[tuple[int, int]]:
    """Index ranges ``[start, stop)`` of a time-sorted light curve without a gap of more
    than ``max_gap_cadences`` missing cadences (TESS light curves are not contiguous) of
    ``cadence_d`` days (None: measured from the times)."""
    if len(time_btjd) == 0:
        return []
    step = np.diff(time_btjd) / (cadence_days(time_btjd) if cadence_d is None else cadence_d)
    breaks = np.flatnonzero(step > max_gap_cadences + 1.5) + 1
    edges = np.concatenate([[0], breaks, [len(time_btjd)]])
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def runs(flag: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges where ``flag`` is true."""
    padded = np.concatenate([[False], np.asarray(flag, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
