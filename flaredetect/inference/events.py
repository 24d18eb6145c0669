"""Flare events from per-cadence probabilities, and their properties measured on the flux.

An event is a run of cadences with probability >= ``threshold``; runs separated by at
most ``merge_gap_minutes`` (a short dip of the probability inside one flare's decay) are
merged, and events shorter than ``min_cadences`` are dropped (single-cadence spikes are
mostly cosmic rays). Runs never cross a data gap, except that a run reaching the last cadence
before a gap of at most ``bridge_gap_minutes`` and one starting at the first after it are one
event: SPOC excludes cadences at the peaks of large flares (sector 1: a 200-sigma flare of TIC
31740375 lost 15 peak cadences), which would otherwise split the flare in two and lose its
peak. Times are converted to cadences of each light curve's own cadence
(:meth:`EventParams.in_cadences`). Properties come from the light curve, not the network:

* baseline: a quadratic fitted to up to ``baseline_minutes`` of flux points (at least 5) on each side of
  the event (other events excluded; three passes that drop points 3 sigma above the fit),
  so rotation and other slow variability are removed. A straight line left percent-level
  curvature of fast rotators in the excess: on injected flares in the 80 young-star light
  curves of ``../shared/data/tess_young`` it gave 0.9 % of them a negative ED, and on
  quiet M dwarfs, pulsators and eclipsing stars 5.8 %; 20 flank points each side with the
  quadratic gave 0.0 % and 3.2 % (the rest on two stars pulsating at the flares' time scale);
* peak: the cadence of largest flux above the baseline, inside the event; ``amplitude``
  is that excess in units of the quiescent flux, ``(F - F_q) / F_q``;
* ``ed_s``: equivalent duration, the sum of ``(F - F_q) / F_q`` times the exposure (each
  cadence is the mean flux over its exposure) over the event and its faint tail:
  integration continues after the last event cadence while the 3-cadence mean excess over
  the baseline stays above the white-noise sigma (at most ``baseline_minutes``, never into
  the next event or a gap) — a detector stops where the flare sinks into the noise, but
  the gradual decay below that still holds a good part of the ED;
* events whose amplitude or ED is not positive are dropped: no brightening above the
  local baseline is not a flare, whatever the network said;
* ``ed_err_s``: the photometric error of that sum, ``sqrt(sum(err**2)) * exposure`` with
  each cadence's ``flux_err / F_q`` (the white-noise sigma where errors are unknown), as
  AltaiPony's ``ed_rec_err``; the baseline's own error is not included;
* ``energy_erg = ed_s * L_quiescent`` when the star's quiescent luminosity is given;
* ``fit_*`` (``fit_template=True``; NaN otherwise): a least-squares fit of the exposure-integrated flare template
  (:func:`flaredetect.data.flare_model.flare_flux`) to the excess around the event; its
  ED (``fit_ed_s``) includes the gradual tail lost in the noise, which the direct sum
  cannot see (for a 20-sigma flare the direct sum holds roughly half to two thirds of it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flaredetect.data.flare_model import equivalent_duration_s, flare_flux
from flaredetect.data.lightcurve import SECONDS_PER_DAY, LightCurve, cadence_days, robust_noise_sigma, runs, segments

EVENT_COLUMNS = ("start_time_btjd", "peak_time_btjd", "stop_time_btjd", "amplitude", "duration_min", "ed_s",
                 "ed_err_s", "energy_erg", "fit_amplitude", "fit_fwhm_min", "fit_ed_s", "prob_max", "n_cadences", "start_index", "peak_index", "stop_index")


@dataclass(frozen=True)
class EventParams:
    """Event extraction settings (``conf/predict.yaml`` ``events:``)."""

    threshold: float = 0.5
    merge_gap_minutes: float = 6.0   # 3 two-minute cadences
    min_cadences: int = 2
    baseline_minutes: float = 40.0   # 20 two-minute cadences
    fit_template: bool = False  # template fit per event: ~25 ms each, so opt-in
    min_snr: float = 0.0  # drop events whose amplitude is below this many white-noise sigma (0: keep all)
    bridge_gap_minutes: float = 60.0  # an event running into a data gap this short and one running out of it: one

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"events.threshold={self.threshold} must be in (0, 1)")
        if self.merge_gap_minutes < 0 or self.min_cadences < 1 or self.baseline_minutes <= 0:
            raise ValueError("events.merge_gap_minutes must be >= 0, events.min_cadences >= 1 and "
                             "events.baseline_minutes > 0")
        if not self.bridge_gap_minutes >= 0:
            raise ValueError(f"events.bridge_gap_minutes={self.bridge_gap_minutes} must be >= 0 (0: never bridge a gap)")

    @classmethod
    def from_settings(cls, settings, run_settings=None) -> "EventParams":
        """Event settings of a predict config (``conf/predict.yaml`` ``events:``); each one left
        null takes the run's own (its training config's ``events:``, e.g. an FFI run keeps
        single-cadence events), else the default here."""
        own = {k: v for k, v in (settings or {}).items() if v is not None}
        run = {k: v for k, v in (run_settings or {}).items() if v is not None}
        return cls(**{**run, **own})

    def in_cadences(self, cadence_d: float) -> tuple[int, int]:
        """``(merge gap, baseline points per side)`` in cadences of ``cadence_d`` days (the
        baseline at least 5 points: the quadratic needs them)."""
        minutes = cadence_d * 1440.0
        return int(round(self.merge_gap_minutes / minutes)), max(5, int(round(self.baseline_minutes / minutes)))


def event_spans(time_btjd: np.ndarray, prob: np.ndarray, params: EventParams,
                cadence_d: float | None = None) -> list[tuple[int, int]]:
    """Merged, length-filtered ``[start, stop)`` cadence ranges of events (``cadence_d``:
    the light curve's cadence, None: measured from the times)."""
    cadence = cadence_days(time_btjd) if cadence_d is None else cadence_d
    merge_gap, _ = params.in_cadences(cadence)
    # Runs never cross a data gap longer than the merge gap (bridged below only where a run
    # reaches the gap from each side).
    above = np.asarray(prob) >= params.threshold
    spans = [(s + a, s + b) for s, e in segments(np.asarray(time_btjd), merge_gap, cadence)
             for a, b in runs(above[s:e])]
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged:
            pa, pb = merged[-1]
            gap_index = a - pb
            gap_time = (time_btjd[a] - time_btjd[pb - 1]) / cadence - 1
            # a flare the data interrupt (e.g. SPOC's excluded cadences at its peak): above the
            # threshold up to the gap's last cadence and again from its first, is one event
            bridged = gap_index == 0 and gap_time * cadence * 1440.0 <= params.bridge_gap_minutes
            if (gap_index <= merge_gap and gap_time <= merge_gap + 0.5) or bridged:
                merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    return [(a, b) for a, b in merged if b - a >= params.min_cadences]


def _robust_quadratic(t: np.ndarray, y: np.ndarray, passes: int = 3, clip: float = 3.0) -> np.ndarray:
    """Quadratic coefficients fitted to ``(t, y)``, refitted without points ``clip`` robust
    sigma above the fit (an unflagged small flare or cosmic ray in a flank)."""
    keep = np.ones(len(t), dtype=bool)
    coef = np.polyfit(t, y, 2)
    for _ in range(passes - 1):
        resid = y - np.polyval(coef, t)
        sigma = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        new = resid < clip * sigma if sigma > 0 else keep
        if new.sum() < 6 or (new == keep).all():
            break
        keep = new
        coef = np.polyfit(t[keep], y[keep], 2)
    return coef


def _baseline(time, flux, a, b, busy, n_side) -> np.ndarray:
    """Quiescent flux under ``[a, b)`` from free flanking cadences (0 if none): a robust
    quadratic when both sides have 5 points, else the flanks' median."""
    left = np.flatnonzero(~busy[max(0, a - 3 * n_side):a])[-n_side:] + max(0, a - 3 * n_side)
    right = np.flatnonzero(~busy[b:b + 3 * n_side])[:n_side] + b
    flank = np.concatenate([left, right])
    t = time[a:b]
    if left.size >= 5 and right.size >= 5:
        coef = _robust_quadratic(time[flank] - t[0], flux[flank])
        return np.polyval(coef, t - t[0])
    if flank.size:
        return np.full(b - a, np.median(flux[flank]))
    return np.zeros(b - a)


def _tail_end(time, flux, busy, a, b, n_side, sigma, cadence) -> int:
    """End (exclusive) of the faint tail after an event ``[a, b)``: while the 3-cadence mean
    excess over the baseline (fitted without the event, extrapolated) exceeds ``sigma``.
    Against a constant reference, a flare on a rising rotational slope had its "tail" run
    ``n_side`` cadences up the slope."""
    if not np.isfinite(sigma) or sigma <= 0:
        return b
    hi = min(len(flux), b + n_side)
    stop = b
    while stop < hi and not busy[stop] and time[stop] - time[stop - 1] < 1.5 * cadence:
        stop += 1
    if stop == b:
        return b
    excess = flux[a:stop] - _baseline(time, flux, a, stop, busy, n_side)
    end = b
    while end < stop and np.mean(excess[end - a:end - a + 3]) >= sigma:
        end += 1
    return end


def _fit_template(time, flux, busy, a, tail, peak, amplitude, n_side, cadence) -> tuple[float, float]:
    """``(amplitude, fwhm_days)`` of the flare template fitted around one event (NaN on failure)."""
    from scipy.optimize import curve_fit

    lo = max(0, a - 5)
    hi = min(len(flux), tail + max(10, 2 * (tail - a)))
    own = np.zeros(len(flux), dtype=bool)
    own[a:tail] = True
    keep = np.arange(lo, hi)
    keep = keep[own[keep] | ~busy[keep]]  # other events out of the fit
    base = _baseline(time, flux, lo, hi, busy | own, n_side)[keep - lo]
    y = flux[keep] - base
    t = time[keep]
    width0 = max(cadence, (time[tail - 1] - time[a]) / 4)

    def model(tt, t_peak, log_fwhm, amp):
        return flare_flux(tt, t_peak, np.exp(log_fwhm), amp)
    try:
        popt, _ = curve_fit(model, t, y, p0=(time[peak], np.log(width0), amplitude * 1.2),
                            bounds=([time[peak] - 2 * cadence, np.log(cadence / 10), 0.0],
                                    [time[peak] + cadence, np.log(1.0), 10 * max(amplitude, 1e-6)]), maxfev=400)
    except (RuntimeError, ValueError):
        return np.nan, np.nan
    return float(popt[2]), float(np.exp(popt[1]))


def extract_events(lc: LightCurve, prob: np.ndarray, params: EventParams | None = None,
                   luminosity_erg_s: float | None = None) -> dict[str, np.ndarray]:
    """Events of one light curve as a dict of column arrays (see :data:`EVENT_COLUMNS`)."""
    params = params or EventParams()
    time = np.asarray(lc.time_btjd, dtype=np.float64)
    flux = np.asarray(lc.flux_rel, dtype=np.float64)
    prob = np.asarray(prob, dtype=np.float64)
    if prob.shape != time.shape:
        raise ValueError(f"probabilities have shape {prob.shape}, light curve {time.shape}")
    cadence = lc.cadence_d
    spans = event_spans(time, prob, params, cadence)
    _, n_side = params.in_cadences(cadence)
    busy = np.zeros(len(time), dtype=bool)
    for a, b in spans:
        busy[a:b] = True
    exposure_s = cadence * SECONDS_PER_DAY
    sigma = robust_noise_sigma(flux) if len(flux) >= 3 else np.nan
    err = np.asarray(lc.flux_err, dtype=np.float64)
    err = np.where(np.isfinite(err) & (err > 0), err, sigma)
    rows = {k: [] for k in EVENT_COLUMNS}
    for a, b in spans:
        tail = _tail_end(time, flux, busy, a, b, n_side, sigma, cadence)
        own = busy.copy()
        own[a:tail] = True  # the tail stays out of the baseline fit
        base = _baseline(time, flux, a, tail, own, n_side)
        excess_all = (flux[a:tail] - base) / (1.0 + base)
        excess = excess_all[: b - a]
        k = int(np.argmax(excess))
        ed = float(np.sum(excess_all) * exposure_s)
        if excess[k] <= 0 or ed <= 0:
            continue  # no brightening above the local baseline: not a flare
        if params.min_snr > 0 and np.isfinite(sigma) and excess[k] < params.min_snr * sigma:
            continue  # the network sees min-max normalised windows, not significance
        rows["start_time_btjd"].append(time[a])
        rows["peak_time_btjd"].append(time[a + k])
        rows["stop_time_btjd"].append(time[b - 1])
        rows["amplitude"].append(float(excess[k]))
        rows["duration_min"].append((time[b - 1] - time[a]) * 1440.0 + exposure_s / 60.0)
        rows["ed_s"].append(ed)
        rows["ed_err_s"].append(float(np.sqrt(np.sum((err[a:tail] / (1.0 + base)) ** 2)) * exposure_s))
        rows["energy_erg"].append(ed * luminosity_erg_s if luminosity_erg_s else np.nan)
        fit = (_fit_template(time, flux, busy, a, tail, a + k, float(excess[k]), n_side, cadence)
               if params.fit_template else (np.nan, np.nan))
        rows["fit_amplitude"].append(fit[0])
        rows["fit_fwhm_min"].append(fit[1] * 1440.0)
        rows["fit_ed_s"].append(equivalent_duration_s(fit[0], fit[1]) if np.isfinite(fit[0]) else np.nan)
        rows["prob_max"].append(float(prob[a:b].max()))
        rows["n_cadences"].append(b - a)
        rows["start_index"].append(a)
        rows["peak_index"].append(a + k)
        rows["stop_index"].append(b - 1)
    ints = ("n_cadences", "start_index", "peak_index", "stop_index")
    return {k: np.asarray(v, dtype=np.int64 if k in ints else np.float64) for k, v in rows.items()}


def event_mask(n: int, events: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean per-cadence mask of the cadences inside any event."""
    mask = np.zeros(n, dtype=bool)
    for a, b in zip(events["start_index"], events["stop_index"]):
        mask[a:b + 1] = True
    return mask


def union_events(events: dict[str, np.ndarray], extra: dict[str, np.ndarray], prob: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """``events`` plus the rows of ``extra`` that share no cadence with any of them, in time
    order; the added rows' ``prob_max`` is read from ``prob`` (the network's), not from the
    scorer that proposed them."""
    taken = event_mask(len(prob), events)
    new = np.array([not taken[a:b + 1].any() for a, b in zip(extra["start_index"], extra["stop_index"])], dtype=bool)
    added = {k: np.asarray(v)[new] for k, v in extra.items()}
    added["prob_max"] = np.array([float(np.max(prob[a:b + 1])) for a, b in
                                  zip(added["start_index"], added["stop_index"])], dtype=np.float64)
    order = np.argsort(np.concatenate([events["start_index"], added["start_index"]]), kind="stable")
    return {k: np.concatenate([np.asarray(events[k]), added[k]])[order] for k in events}
