"""Remove the periodic light curve of a fast rotator or close binary before detection.

On a star that turns in hours, one 100-cadence window (200 minutes at 2 min) holds most of a
rotation: the network sees percent-level slopes and the 3-sigma rule's running median lags
behind them, and small flares on the slopes are lost (the 5.4-hour rotator TIC 29928567 of
the ultracool-dwarf table: 9 of its 30 vetted flares found in sector 3 without this, 27 with
it; README "Fast rotators flattened"). The periodic part is the flux folded at the period: in
each stretch of a few periods, the median flux of each phase bin (a flare, short and at one phase of one cycle, does not move
a median over several cycles), interpolated in phase and blended between half-overlapping
stretches so spots may evolve. Unlike a sum of sinusoids it follows eclipses and
flat-bottomed minima. The period is the strongest Lomb–Scargle peak or twice it (a binary's
periodogram peaks at half its period), whichever leaves less scatter. Light curves with a
longer period, or a modulation below ``min_amplitude_sigma`` times the white noise, are left
alone: the network's windows follow those. So are detached eclipsing binaries (dips more than
:data:`ECLIPSE_RATIO` times deeper than the light curve rises): the slightest mismatch of a
subtracted eclipse leaves spikes at ingress and egress that look like flares. And so are light
curves one period does not explain (30-minute scatter left above :data:`UNEXPLAINED_RATIO` times
white noise: multi-mode pulsators), where the residual pulsations fired events (20-s benchmark).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from flaredetect.data.lightcurve import LightCurve, robust_noise_sigma

_SETTINGS = ("max_period_days", "min_amplitude_sigma", "cycles_per_stretch")
MAX_BINS = 100  # phase bins per period at most (fewer when a period spans few cadences)
ECLIPSE_RATIO = 3.0  # dips this many times deeper than the peaks are high: eclipses, left alone
UNEXPLAINED_RATIO = 4.0  # 30-min scatter left after the fold, in units of white noise: above it, left alone


@dataclass(frozen=True)
class PeriodicBackground:
    """``conf/predict.yaml`` ``periodic:`` (null there: light curves are scored as they are)."""

    max_period_days: float = 1.0
    min_amplitude_sigma: float = 5.0
    cycles_per_stretch: float = 4.0
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bad = [f"periodic.{key}={getattr(self, key)} must be {rule}"
               for key, rule, ok in (("max_period_days", "> 0", self.max_period_days > 0),
                                     ("min_amplitude_sigma", ">= 0", self.min_amplitude_sigma >= 0),
                                     ("cycles_per_stretch", ">= 2", self.cycles_per_stretch >= 2)) if not ok]
        if bad:
            raise ValueError("; ".join(bad))

    @classmethod
    def from_settings(cls, section) -> "PeriodicBackground | None":
        """The removal of predict's ``periodic:`` (a mapping; null or False: none; True: the
        defaults); a ``ValueError`` naming the key for unknown keys or values that are not numbers."""
        if section is None or section is False:
            return None
        if section is True:
            return cls()
        from omegaconf import OmegaConf

        settings = OmegaConf.to_container(section) if OmegaConf.is_config(section) else dict(section)
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise ValueError(f"periodic has unknown keys {unknown} (known: {', '.join(_SETTINGS)}; "
                             f"periodic=null: no removal)")
        for key, value in settings.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"periodic.{key}={value!r} must be a number")
        return cls(**settings)

    def settings(self) -> dict:
        return {k: getattr(self, k) for k in _SETTINGS}

    def period(self, lc: LightCurve) -> float | None:
        """The Lomb–Scargle period of ``lc`` if it is short and strong enough to remove, else None."""
        from flaredetect.evaluation.rotation import rotation_period

        sigma = robust_noise_sigma(lc.flux_rel)
        if _fast_range(lc.time_btjd, lc.flux_rel, self.max_period_days) < self.min_amplitude_sigma * sigma:
            return None  # no modulation that fast and strong: skip the periodogram
        period, amplitude = rotation_period(lc)
        strong = amplitude >= self.min_amplitude_sigma * sigma
        if not (np.isfinite(period) and period <= self.max_period_days and strong):
            return None
        return float(period)

    def model(self, lc: LightCurve) -> tuple[np.ndarray | None, float | None]:
        """``(periodic flux per cadence, period in days)``; ``(None, None)`` when ``lc`` is left alone."""
        period = self.period(lc)
        if period is None:
            return None, None
        time, flux = np.asarray(lc.time_btjd, dtype=np.float64), np.asarray(lc.flux_rel, dtype=np.float64)
        best = None
        for p in (period, 2.0 * period):
            model = folded_median(time, flux, p, self.cycles_per_stretch)
            residual = flux - model
            scatter = np.median(np.abs(residual - np.median(residual)))
            if best is None or scatter < 0.95 * best[0]:  # twice the period only when clearly better
                best = (scatter, model, p)
        low, middle, high = np.percentile(best[1], [0.5, 50, 99.5])
        if middle - low > ECLIPSE_RATIO * (high - middle):  # a detached binary: subtracting its sharp eclipses
            return None, None                               # leaves spikes at ingress and egress that look like flares
        if _slow_scatter(time, flux - best[1]) > UNEXPLAINED_RATIO:  # one period does not explain it (several
            return None, None                                         # pulsation modes): what is left fires events
        return best[1], best[2]

    def remove(self, lc: LightCurve) -> LightCurve:
        """``lc`` with its periodic part subtracted (``lc`` itself when left alone). The last
        few results are kept, so a predictor's scoring, gate and events share one fit."""
        return self._removed(lc)[0]

    def period_removed(self, lc: LightCurve) -> float | None:
        """The period (days) :meth:`remove` folded ``lc`` at; None when it left ``lc`` as read."""
        return self._removed(lc)[1]

    def _removed(self, lc: LightCurve) -> tuple[LightCurve, float | None]:
        key = id(lc.flux_rel)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] is lc.flux_rel and hit[1] is lc.time_btjd:
            return hit[2]
        model, period = self.model(lc)
        out = lc if model is None else lc.replace(flux_rel=(np.asarray(lc.flux_rel, dtype=np.float64) - model)
                                                  .astype(np.asarray(lc.flux_rel).dtype, copy=False))
        with self._lock:  # predict's reading threads and a user's may share one predictor
            self._cache[key] = (lc.flux_rel, lc.time_btjd, (out, period))  # holds the arrays: their ids stay theirs
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return out, period

    def __getstate__(self):  # a predictor pickled to worker processes travels without the cache
        return self.settings()

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_cache", OrderedDict())
        object.__setattr__(self, "_lock", threading.Lock())


def _block_medians(time_btjd: np.ndarray, flux_rel: np.ndarray, bin_days: float = 1 / 48
                   ) -> tuple[np.ndarray, int] | None:
    """``(medians, cadences per block)`` of consecutive ``bin_days`` blocks of the finite
    cadences; None when there are fewer than 8 blocks."""
    time, flux = np.asarray(time_btjd, dtype=np.float64), np.asarray(flux_rel, dtype=np.float64)
    ok = np.isfinite(time) & np.isfinite(flux)
    time, flux = time[ok], flux[ok]
    if len(time) < 10:
        return None
    n = max(1, int(round(bin_days / max(float(np.median(np.diff(time))), 1e-9))))
    blocks = len(flux) // n
    if blocks < 8:
        return None
    return np.median(flux[: blocks * n].reshape(blocks, n), axis=1), n


def _slow_scatter(time_btjd: np.ndarray, flux_rel: np.ndarray) -> float:
    """Robust scatter of 30-minute medians in units of what white noise alone gives them: about 1
    when only noise is left, far above when a signal is."""
    sigma = robust_noise_sigma(flux_rel)
    binned = _block_medians(time_btjd, flux_rel)
    if binned is None or not sigma > 0:
        return 0.0
    medians, n = binned
    scatter = 1.4826 * np.median(np.abs(medians - np.median(medians)))
    return float(scatter / (1.2533 * sigma / np.sqrt(n)))  # 1.2533: a median's noise over a mean's


def _fast_range(time_btjd: np.ndarray, flux_rel: np.ndarray, max_period_days: float, bin_days: float = 1 / 48) -> float:
    """1st to 99th percentile of 30-minute medians less their running median over
    ``max_period_days``: a cheap upper bound on the peak-to-peak amplitude of a modulation that
    fast (slow trends and rotation taken out)."""
    from scipy.ndimage import median_filter

    binned = _block_medians(time_btjd, flux_rel, bin_days)
    if binned is None:
        return 0.0
    medians = binned[0]
    window = min(max(3, int(round(max_period_days / bin_days)) | 1), (len(medians) - 1) | 1)
    fast = medians - median_filter(medians, size=window, mode="nearest")
    low, high = np.percentile(fast, [1, 99])
    return float(high - low)


def _phase_median(phase: np.ndarray, flux: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Bin centres and median flux of the phase bins holding at least 3 cadences (None: under half do)."""
    which = np.minimum((phase * n_bins).astype(np.int64), n_bins - 1)
    order = np.lexsort((flux, which))  # by bin, then by flux within it
    ranked = flux[order]
    edges = np.searchsorted(which[order], np.arange(n_bins + 1))
    counts = np.diff(edges)
    good = counts >= 3
    if good.sum() < n_bins // 2:
        return None
    start, count = edges[:-1][good], counts[good]
    medians = 0.5 * (ranked[start + (count - 1) // 2] + ranked[start + count // 2])
    centres = (np.arange(n_bins) + 0.5) / n_bins
    return centres[good], medians


def _interp_periodic(phase: np.ndarray, centres: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.interp(phase, np.concatenate([centres - 1, centres, centres + 1]), np.tile(values, 3))


def folded_median(time_btjd: np.ndarray, flux_rel: np.ndarray, period_days: float,
                  cycles_per_stretch: float = 4.0) -> np.ndarray:
    """The periodic flux at ``period_days`` per cadence (see the module docstring): phase-bin
    medians over stretches of ``cycles_per_stretch`` periods (at least half a day), blended with
    triangular weights; where a stretch has too few cadences (edges, gaps), the medians of
    the whole light curve."""
    time = np.asarray(time_btjd, dtype=np.float64)
    flux = np.asarray(flux_rel, dtype=np.float64)
    ok = np.isfinite(time) & np.isfinite(flux)
    cadence = float(np.median(np.diff(time[ok]))) if ok.sum() > 1 else period_days
    n_bins = int(np.clip(period_days / cadence / 3.0, 8, MAX_BINS))
    phase = (time / period_days) % 1.0
    model = np.full(len(time), np.nanmedian(flux[ok]) if ok.any() else 0.0)
    whole = _phase_median(phase[ok], flux[ok], n_bins)
    if whole is None:
        return model
    model[ok] = _interp_periodic(phase[ok], *whole)
    stretch = max(cycles_per_stretch * period_days, 0.5)
    blended, weight = np.zeros(len(time)), np.zeros(len(time))
    for start in np.arange(time[ok].min() - stretch / 2, time[ok].max(), stretch / 2):
        inside = ok & (time >= start) & (time < start + stretch)
        if inside.sum() < 3 * n_bins:
            continue
        local = _phase_median(phase[inside], flux[inside], n_bins)
        if local is None:
            continue
        w = np.clip(1.0 - np.abs(2.0 * (time[inside] - start) / stretch - 1.0), 1e-3, None)
        blended[inside] += w * _interp_periodic(phase[inside], *local)
        weight[inside] += w
    covered = weight > 0
    model[covered] = blended[covered] / weight[covered]
    return model
