"""Flares injected into real light curves at known times: the truth that real data lacks.

:func:`inject_flares` adds exposure-integrated template flares
(:func:`flaredetect.data.flare_model.flare_flux`, Tovar Mendoza et al. 2022) to a real
light curve, multiplicatively (a flare brightens the star by a fraction of its own flux:
``F' = F + model * F``, i.e. ``flux_rel' = flux_rel + model * (1 + flux_rel)``), at
cadences drawn away from gaps, from the light curve's edges and from ``avoid`` (catalogued
or otherwise known flares). Each injected flare is returned as a row of :class:`Flares`
(peak time, amplitude, FWHM, start/stop, ED); its extent is where the injected flux stays
above ``extent_sigma`` of the star's white noise.

Amplitudes are given in units of the light curve's white-noise sigma (what decides whether
a flare can be seen at all), FWHMs in minutes; :class:`InjectionGrid` draws them
log-uniformly between bounds (a grid for injection–recovery, a distribution for training).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flaredetect.data.flare_model import RISE_PHASE, equivalent_duration_s, flare_flux, tail_phase
from flaredetect.data.lightcurve import Flares, LightCurve, cadence_days, robust_noise_sigma, runs, segments

MINUTES_PER_DAY = 1440.0
TAIL_PHASE = tail_phase(1e-7)  # beyond, the template is below 1e-7 of its peak
DETECT_ON = ("model", "observed")
DETECT_BASELINE_CADENCES = 61  # running median under the noise of detect_on="observed" (2 h at 2 min)


@dataclass(frozen=True)
class InjectionGrid:
    """Ranges of injected flares: amplitude in white-noise sigma, FWHM in minutes,
    both drawn log-uniformly; ``per_day`` flares per day of data (at least one per
    light curve), never closer than ``min_separation_days`` to each other."""

    amplitude_sigma: tuple[float, float] = (1.0, 100.0)
    fwhm_minutes: tuple[float, float] = (2.0, 30.0)
    per_day: float = 0.5
    min_separation_days: float = 0.2

    def __post_init__(self) -> None:
        for name in ("amplitude_sigma", "fwhm_minutes"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"injection.{name}=[{lo}, {hi}] must satisfy 0 < low <= high")
        if self.per_day <= 0 or self.min_separation_days <= 0:
            raise ValueError(f"injection.per_day={self.per_day} and injection.min_separation_days="
                             f"{self.min_separation_days} must be > 0")

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (amplitude in sigma, FWHM in minutes) pairs."""
        def log_uniform(lo, hi):
            return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        return log_uniform(*self.amplitude_sigma), log_uniform(*self.fwhm_minutes)


def free_peak_cadences(lc: LightCurve, avoid: np.ndarray | None = None, margin: int = 30,
                       max_gap_cadences: float = 5) -> np.ndarray:
    """Cadences where a flare peak may be injected: at least ``margin`` cadences inside a
    gap-free segment and at least ``margin`` cadences from any ``avoid`` cadence."""
    ok = np.zeros(len(lc), dtype=bool)
    for a, b in segments(lc.time_btjd, max_gap_cadences):
        if b - a > 2 * margin:
            ok[a + margin:b - margin] = True
    if avoid is not None and np.any(avoid):
        from scipy.ndimage import binary_dilation

        ok &= ~binary_dilation(np.asarray(avoid, dtype=bool), iterations=margin)
    return np.flatnonzero(ok)


def inject_flares(lc: LightCurve, amplitude_sigma: np.ndarray, fwhm_minutes: np.ndarray,
                  rng: np.random.Generator, avoid: np.ndarray | None = None, min_separation_days: float = 0.2,
                  extent_sigma: float = 1.0, detect_sigma: float = 3.0, detect_min_points: int = 1,
                  sigma: float | None = None, detect_on: str = "model") -> tuple[LightCurve, Flares]:
    """``lc`` with one flare injected per (amplitude, FWHM) pair, and their truth.

    Peaks are drawn uniformly among :func:`free_peak_cadences` (a random fraction of a
    cadence off the cadence centre, as real flares are), at least ``min_separation_days``
    apart; pairs that find no free place are left out (fewer rows than pairs). The
    returned light curve's ``flare_mask`` marks the injected flares' extents; a flare is
    ``detectable`` when ``detect_min_points`` consecutive cadences of its exposure-integrated
    flux reach ``detect_sigma`` (1 point: the rule of the synthetic data; 3 points at 3 sigma:
    the rule by which flare catalogs list a flare), and ``amplitude`` is the continuous
    template's peak. ``detect_on="model"`` applies that rule to the noise-free template in
    units of ``sigma``; ``"observed"`` to the template plus the light curve's own noise at
    those cadences (its flux minus a running median of :data:`DETECT_BASELINE_CADENCES`), in
    units of that residual's robust sigma (1.4826 MAD, red noise included), as the
    catalogs' rule sees a flare: a 3-sigma template on a downward fluctuation is not listed.
    """
    if detect_on not in DETECT_ON:
        raise ValueError(f"detect_on={detect_on!r} must be one of {list(DETECT_ON)}")
    amplitude_sigma = np.atleast_1d(np.asarray(amplitude_sigma, dtype=np.float64))
    fwhm_days = np.atleast_1d(np.asarray(fwhm_minutes, dtype=np.float64)) / MINUTES_PER_DAY
    if amplitude_sigma.shape != fwhm_days.shape:
        raise ValueError(f"{amplitude_sigma.size} amplitudes but {fwhm_days.size} FWHMs")
    sigma = robust_noise_sigma(lc.flux_rel) if sigma is None else float(sigma)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"TIC {lc.tic} sector {lc.sector}: white-noise sigma {sigma} is not positive; "
                         "cannot scale injected amplitudes")
    time = np.asarray(lc.time_btjd, dtype=np.float64)
    exposure = cadence_days(time)
    candidates = free_peak_cadences(lc, avoid)
    peaks: list[float] = []
    for _ in amplitude_sigma:
        if candidates.size == 0:
            break
        i = int(rng.choice(candidates))
        peaks.append(time[i] + rng.uniform(-0.5, 0.5) * exposure)
        candidates = candidates[np.abs(time[candidates] - time[i]) >= min_separation_days]
    n = len(peaks)
    peak = np.asarray(peaks, dtype=np.float64)
    amplitude = amplitude_sigma[:n] * sigma
    fwhm = fwhm_days[:n]
    flux = np.asarray(lc.flux_rel, dtype=np.float64)
    noise = np.zeros(len(time))
    if detect_on == "observed":
        from scipy.ndimage import median_filter

        noise = np.nan_to_num(flux - median_filter(flux, DETECT_BASELINE_CADENCES, mode="nearest"))
        detect_level = detect_sigma * max(sigma, 1.4826 * float(np.median(np.abs(noise - np.median(noise)))))
    else:
        detect_level = detect_sigma * sigma
    model = np.zeros(len(time))
    mask = np.zeros(len(time), dtype=bool)
    start, stop, longest = np.empty(n), np.empty(n), np.zeros(n, dtype=np.int64)
    for k in range(n):
        phase = (time - peak[k]) / fwhm[k]
        near = np.flatnonzero((phase > RISE_PHASE - exposure / fwhm[k]) & (phase < TAIL_PHASE + exposure / fwhm[k]))
        one = flare_flux(time[near], peak[k], fwhm[k], amplitude[k], exposure_days=exposure)
        model[near] += one
        seen = one * (1.0 + flux[near]) + noise[near]
        longest[k] = max((b - a for a, b in runs(seen >= detect_level)), default=0)
        above = near[one > extent_sigma * sigma]
        if above.size == 0:  # below the noise at every cadence: its peak cadence alone
            above = near[[int(np.argmax(one))]]
        mask[above] = True
        start[k], stop[k] = time[above[0]], time[above[-1]]
    truth = Flares(peak_time_btjd=peak, amplitude=amplitude, fwhm_days=fwhm, start_time_btjd=start,
                   stop_time_btjd=stop, event_id=np.arange(n, dtype=np.int64),
                   ed_s=equivalent_duration_s(amplitude, fwhm), energy_erg=np.full(n, np.nan),
                   detectable=longest >= max(1, int(detect_min_points)))
    return lc.replace(flux_rel=flux + model * (1.0 + flux), flare_mask=mask, noise_sigma=sigma), truth
