"""The classical sigma-threshold flare detector (Chang et al. 2015 style), the thesis's
third baseline: a cadence belongs to a flare candidate when at least ``min_points``
consecutive cadences lie more than ``n_sigma`` robust sigma above a running median.

Two entry points share the rule:

* :func:`threshold_flags` works on a whole light curve (per-cadence flags); its running
  median is time-based, so it never reaches across data gaps, and its width follows the
  star's variability (short for fast rotators, whose spots change the flux within hours).
* :func:`threshold_window_scores` scores fixed-length windows (the evaluation's unit) with a
  continuous score so that ROC/PR curves can be drawn; ``score >= 1`` is a detection.

Examples
--------
>>> import numpy as np
>>> t = 1500 + np.arange(2000) * 120 / 86400
>>> f = np.random.default_rng(0).normal(0, 1e-3, t.size)
>>> f[1000:1006] += 0.02
>>> flags = threshold_flags(t, f)
>>> bool(flags[1000:1004].all()), int(flags.sum()) < 20
(True, True)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

from flaredetect.data.lightcurve import cadence_days

MAD_TO_SIGMA = 1.4826
DEFAULT_WINDOW_DAYS = 0.25      # 6 h: slow or no rotation; flares (minutes to ~1 h) stay well below half
MIN_WINDOW_DAYS = 2.0 / 24.0    # 2 h: shorter windows start to follow the flares themselves
WINDOW_PER_PERIOD = 1.0 / 8.0   # running-median width as a fraction of the rotation period


def _check_args(n_sigma: float, min_points: int) -> None:
    if not n_sigma > 0:
        raise ValueError(f"n_sigma={n_sigma} must be > 0")
    if int(min_points) < 1:
        raise ValueError(f"min_points={min_points} must be >= 1")


def variability_window_days(time_btjd: np.ndarray, flux_rel: np.ndarray, min_power: float = 0.1) -> float:
    """Running-median width that follows the star's variability.

    The dominant period between 0.1 and 15 days (Lomb–Scargle on 30-minute bins, each
    stretch between gaps longer than 0.1 d shifted to median 0) sets the
    width to ``period / 8`` clipped to [2 h, 6 h]; without a clear period (peak power below
    ``min_power``) the width is 6 h. A fast rotator (P = 0.5 d) thus gets 2 h, a quiet star 6 h.
    """
    from astropy.timeseries import LombScargle

    time = np.asarray(time_btjd, dtype=np.float64)
    flux = np.asarray(flux_rel, dtype=np.float64)
    ok = np.isfinite(time) & np.isfinite(flux)
    time, flux = time[ok], flux[ok].copy()
    if time.size < 50 or np.ptp(time) < 0.5:
        return DEFAULT_WINDOW_DAYS
    # Offsets between orbits/segments (common in TESS) would dominate the periodogram.
    breaks = np.flatnonzero(np.diff(time) > 0.1) + 1
    for seg in np.split(np.arange(time.size), breaks):
        flux[seg] = flux[seg] - np.median(flux[seg])
    bins = np.floor((time - time[0]) / (30.0 / 1440.0)).astype(np.int64)
    counts = np.bincount(bins)
    keep = counts > 0
    t_bin = (np.bincount(bins, time)[keep] / counts[keep])
    f_bin = (np.bincount(bins, flux)[keep] / counts[keep])
    if t_bin.size < 20:
        return DEFAULT_WINDOW_DAYS
    f_max = 10.0  # 1 / 0.1 d
    f_min = max(1.0 / 15.0, 1.0 / np.ptp(t_bin))
    frequency = np.linspace(f_min, f_max, 4000)
    power = LombScargle(t_bin, f_bin).power(frequency, method="fast")
    best = int(np.argmax(power))
    if not np.isfinite(power[best]) or power[best] < min_power:
        return DEFAULT_WINDOW_DAYS
    period = 1.0 / frequency[best]
    return float(np.clip(period * WINDOW_PER_PERIOD, MIN_WINDOW_DAYS, DEFAULT_WINDOW_DAYS))


def _running_median(time: np.ndarray, flux: np.ndarray, window_days: float) -> np.ndarray:
    """Centred, time-based running median ignoring NaN (so it never averages across a gap
    longer than half the window and masked cadences do not count)."""
    index = pd.to_datetime(time, unit="D")
    series = pd.Series(flux, index=index)
    med = series.rolling(pd.Timedelta(days=window_days), center=True, min_periods=1).median()
    return med.to_numpy()


def _runs_at_least(above: np.ndarray, contiguous: np.ndarray, min_points: int) -> np.ndarray:
    """Cadences inside runs of ``>= min_points`` consecutive ``above`` cadences; ``contiguous[i]``
    says whether cadence i follows cadence i-1 without a gap (a gap ends a run)."""
    continues = above & np.concatenate([[False], above[:-1]]) & contiguous
    run_id = np.cumsum(above & ~continues)
    length = np.bincount(run_id[above], minlength=run_id.max(initial=0) + 1)
    return above & (length[run_id] >= min_points)


def threshold_flags(time_btjd: np.ndarray, flux_rel: np.ndarray, n_sigma: float = 3.0, min_points: int = 3,
                    window_days: float | None = None) -> np.ndarray:
    """Per-cadence flare flags of one light curve.

    A cadence is flagged when it belongs to a run of at least ``min_points`` consecutive
    cadences (no gap between them) whose flux exceeds the running median by more than
    ``n_sigma`` times the robust sigma (1.4826 MAD) of the residuals. The median is computed
    twice, the second time with the first pass's candidates masked, so long flares do not
    lift their own baseline. ``window_days=None`` picks the width from the light curve
    (:func:`variability_window_days`). NaN fluxes are never flagged.

    Returns a boolean array aligned with ``time_btjd``.
    """
    return threshold_residuals(time_btjd, flux_rel, n_sigma, min_points, window_days)[1]


def threshold_residuals(time_btjd: np.ndarray, flux_rel: np.ndarray, n_sigma: float = 3.0, min_points: int = 3,
                        window_days: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(residual in sigma, flags)`` of :func:`threshold_flags`: the flux minus the rule's
    final running median in units of its robust sigma (NaN where unknown), and its flags."""
    _check_args(n_sigma, min_points)
    time = np.asarray(time_btjd, dtype=np.float64)
    flux = np.asarray(flux_rel, dtype=np.float64)
    if time.shape != flux.shape or time.ndim != 1:
        raise ValueError(f"time_btjd {time.shape} and flux_rel {flux.shape} must be 1-D arrays of equal length")
    if window_days is not None and not window_days > 0:
        raise ValueError(f"window_days={window_days} must be > 0 (or None to choose it from the light curve)")
    flags = np.zeros(time.size, dtype=bool)
    z = np.full(time.size, np.nan)
    ok = np.isfinite(time) & np.isfinite(flux)
    if ok.sum() < max(min_points, 3):
        return z, flags
    order = np.flatnonzero(ok)[np.argsort(time[ok], kind="stable")]
    t, f = time[order], flux[order]
    width = float(window_days) if window_days is not None else variability_window_days(t, f)
    contiguous = np.concatenate([[False], np.diff(t) < 1.5 * cadence_days(t)])

    masked = f.copy()
    for _ in range(2):
        baseline = _running_median(t, masked, width)
        resid = f - baseline
        good = np.isfinite(masked) & np.isfinite(resid)
        sigma = MAD_TO_SIGMA * np.median(np.abs(resid[good] - np.median(resid[good]))) if good.any() else np.nan
        if not np.isfinite(sigma) or sigma <= 0:
            return z, flags
        above = np.nan_to_num(resid, nan=-np.inf) > n_sigma * sigma
        run_flags = _runs_at_least(above, contiguous, min_points)
        masked = np.where(run_flags, np.nan, f)
    flags[order] = run_flags
    z[order] = resid / sigma
    return z, flags


def threshold_window_scores(flux_rel_windows: np.ndarray, n_sigma: float = 3.0, min_points: int = 3) -> np.ndarray:
    """A detection score per window of shape ``(n, L)``.

    The baseline is a running median over half the window (edges: nearest value), sigma the
    robust sigma of the window's residuals. The score is the largest value, over all runs of
    ``min_points`` consecutive cadences, of the run's *smallest* residual in units of
    ``n_sigma * sigma``. Hence ``score >= 1`` exactly when the window holds ``min_points``
    consecutive cadences above ``n_sigma`` sigma — the detector's decision — and larger
    scores mean stronger candidates (for ROC/PR curves). NaN cadences never count as above.
    Use :func:`score_to_probability` to put scores on the networks' probability scale.
    """
    _check_args(n_sigma, min_points)
    flux = np.asarray(flux_rel_windows, dtype=np.float64)
    if flux.ndim != 2:
        raise ValueError(f"flux_rel_windows must have shape (n_windows, length), got {flux.shape}")
    n, length = flux.shape
    min_points = int(min_points)
    if n == 0:
        return np.zeros(0)
    if length < min_points:
        raise ValueError(f"windows of {length} cadences are shorter than min_points={min_points}")
    missing = ~np.isfinite(flux)
    fill = np.nanmedian(np.where(missing, np.nan, flux), axis=1, keepdims=True) if missing.any() else 0.0
    flux = np.where(missing, np.nan_to_num(fill, nan=0.0), flux)
    k = max(2 * min_points + 1, (length // 2) | 1)
    baseline = median_filter(flux, size=(1, k), mode="nearest")
    resid = flux - baseline
    mad = np.median(np.abs(resid - np.median(resid, axis=1, keepdims=True)), axis=1, keepdims=True)
    sigma = np.maximum(MAD_TO_SIGMA * mad, 1e-12)
    z = resid / (n_sigma * sigma)
    z[missing] = -np.inf
    runs = np.lib.stride_tricks.sliding_window_view(z, min_points, axis=1).min(axis=2)
    return runs.max(axis=1)


def score_to_probability(score: np.ndarray) -> np.ndarray:
    """Monotone map of window scores to (0, 1) with ``score = 1 -> 0.5``, so the networks'
    0.5 threshold is the detector's own decision and rankings (AUROC, AP) are unchanged:
    ``0.5 * exp(score - 1)`` below 1, ``score / (1 + score)`` above."""
    s = np.asarray(score, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        low = 0.5 * np.exp(np.minimum(s, 1.0) - 1.0)
        high = 1.0 - 1.0 / (1.0 + np.maximum(s, 1.0))
    return np.where(s >= 1.0, high, low)
