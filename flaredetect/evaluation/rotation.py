"""Rotation period and amplitude of a light curve (Lomb–Scargle), to group stars by how
strongly their background varies (fast rotators: period < 1 d, percent-level amplitude)."""
from __future__ import annotations

import numpy as np
from astropy.timeseries import LombScargle
from scipy.stats import binned_statistic

from flaredetect.data.lightcurve import LightCurve

FAST_PERIOD_DAYS, FAST_AMPLITUDE = 1.0, 0.005


def is_fast_rotator(period_days: float, amplitude: float) -> bool:
    """Period below :data:`FAST_PERIOD_DAYS` with a sinusoid of at least :data:`FAST_AMPLITUDE`
    peak to peak (the strongly variable backgrounds of young stars)."""
    return bool(period_days < FAST_PERIOD_DAYS and amplitude >= FAST_AMPLITUDE)


def rotation_period(lc: LightCurve, min_period_days: float = 0.04, max_period_days: float = 13.0,
                    bin_days: float = 1.0 / 48) -> tuple[float, float]:
    """``(period in days, peak-to-peak amplitude of its sinusoid in relative flux)`` of the strongest
    Lomb–Scargle peak, on 30-minute medians (flares and noise hardly move them); NaN when the
    light curve is too short."""
    t, f = np.asarray(lc.time_btjd, dtype=np.float64), np.asarray(lc.flux_rel, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(f)
    t, f = t[ok], f[ok]
    if len(t) < 10 or t[-1] - t[0] < 2 * min_period_days:
        return float("nan"), float("nan")
    edges = np.arange(t[0], t[-1] + 2 * bin_days, bin_days)
    tb = binned_statistic(t, t, "mean", bins=edges).statistic
    fb = binned_statistic(t, f, "median", bins=edges).statistic
    filled = np.isfinite(tb)
    tb, fb = tb[filled], fb[filled]
    max_period = min(max_period_days, 0.5 * (t[-1] - t[0]))
    periodogram = LombScargle(tb, fb)
    frequency, power = periodogram.autopower(minimum_frequency=1.0 / max_period,
                                                    maximum_frequency=1.0 / min_period_days,
                                                    samples_per_peak=10)
    best = frequency[np.argmax(power)]
    model = periodogram.model(tb, best)  # the sinusoid: its amplitude is not the noise's
    return float(1.0 / best), float(np.ptp(model))
