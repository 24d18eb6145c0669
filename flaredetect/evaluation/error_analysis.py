"""Why the detector errs: explicit rules that put every false positive in a category,
and false negatives by amplitude and duration.

False-positive rules (applied to the centre crop the model saw, first match wins):

1. ``instrumental`` — a SPOC quality flag (momentum dump, ...) or a data gap lies within
   ``near`` cadences of the candidate (the cadence furthest above the window median).
   Spacecraft evidence is the most specific, so it is checked first.
2. ``cosmic_ray`` — a single-cadence spike: the candidate is ``spike_sigma`` noise sigma
   above the baseline while neither neighbour keeps more than ``max(2 sigma,
   spike_decay_fraction * excess)``: a flare decays over several cadences, a cosmic ray
   does not.
3. ``step_ramp`` — the level changes and stays changed: for some split point the medians
   of the ``block`` cadences before and after differ by ``step_sigma`` sigma and the
   window's last ``block`` cadences still differ from its first by at least half that
   jump; or a straight line explains ``ramp_r2`` of the variance with a total change of
   ``step_sigma`` sigma (settling ramps after gaps and dumps, rotation slopes); or the rise
   is slow: the ``block`` cadences before the candidate already average more than
   ``ramp_pre_fraction`` of its excess (flares rise within a few cadences).
4. ``other`` — none of the above (e.g. noise bumps, flare-like variability).

Sigma is the window's white-noise sigma (``noise_sigma`` from the window file), or the
point-to-point robust sigma of the window when unknown.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flaredetect.data.lightcurve import robust_noise_sigma
from flaredetect.evaluation.metrics import _safe_div

FP_CATEGORIES = ("instrumental", "cosmic_ray", "step_ramp", "other")
FP_LABELS = {"instrumental": "instrumental (quality flag / momentum dump / gap edge)",
             "cosmic_ray": "single-cadence spike (cosmic ray)", "step_ramp": "step or ramp", "other": "other"}


@dataclass(frozen=True)
class FPRules:
    """Thresholds of the false-positive rules (see the module docstring)."""

    near: int = 5
    spike_sigma: float = 3.0
    spike_decay_fraction: float = 0.25
    step_sigma: float = 5.0
    block: int = 10
    ramp_r2: float = 0.7
    ramp_pre_fraction: float = 0.5
    gap_cadences: float = 1.5   # a time step longer than this many cadences is a gap


def _sigma(flux: np.ndarray, noise_sigma: float | None) -> float:
    if noise_sigma is not None and np.isfinite(noise_sigma) and noise_sigma > 0:
        return float(noise_sigma)
    s = robust_noise_sigma(flux)
    return s if np.isfinite(s) and s > 0 else float(np.nanstd(flux) or 1e-12)


def candidate_cadence(flux_rel: np.ndarray) -> int:
    """The cadence furthest above the window median: where a detector would see a flare."""
    flux = np.asarray(flux_rel, dtype=np.float64)
    return int(np.nanargmax(flux - np.nanmedian(flux)))


def categorise_false_positive(flux_rel: np.ndarray, quality: np.ndarray, time_btjd: np.ndarray | None = None,
                              noise_sigma: float | None = None, rules: FPRules = FPRules()) -> str:
    """Category of one false-positive window (one of :data:`FP_CATEGORIES`)."""
    flux = np.asarray(flux_rel, dtype=np.float64)
    quality = np.asarray(quality)
    n = len(flux)
    sigma = _sigma(flux, noise_sigma)
    c = candidate_cadence(flux)
    lo, hi = max(c - rules.near, 0), min(c + rules.near + 1, n)

    if np.any(quality[lo:hi] != 0):
        return "instrumental"
    if time_btjd is not None and n > 2:
        step = np.diff(np.asarray(time_btjd, dtype=np.float64))
        cadence = np.median(step)
        gaps = np.flatnonzero(step > rules.gap_cadences * cadence)  # gap between i and i+1
        if np.any((gaps + 1 >= lo) & (gaps < hi)):
            return "instrumental"

    baseline = np.nanmedian(flux)
    excess = flux - baseline
    neighbours = [excess[i] for i in (c - 1, c + 1) if 0 <= i < n]
    if excess[c] >= rules.spike_sigma * sigma and all(
            e < max(2.0 * sigma, rules.spike_decay_fraction * excess[c]) for e in neighbours):
        return "cosmic_ray"

    b = rules.block
    if n >= 2 * b:
        jumps = [abs(np.median(flux[j:j + b]) - np.median(flux[j - b:j])) for j in range(b, n - b + 1)]
        jump = max(jumps)
        lasting = abs(np.median(flux[-b:]) - np.median(flux[:b]))
        if jump >= rules.step_sigma * sigma and lasting >= 0.5 * jump:
            return "step_ramp"
    x = np.arange(n, dtype=np.float64)
    ok = np.isfinite(flux)
    if ok.sum() > 3:
        slope, intercept = np.polyfit(x[ok], flux[ok], 1)
        fit = slope * x[ok] + intercept
        ss_tot = np.sum((flux[ok] - flux[ok].mean()) ** 2)
        r2 = 1.0 - np.sum((flux[ok] - fit) ** 2) / ss_tot if ss_tot > 0 else 0.0
        if r2 >= rules.ramp_r2 and abs(slope) * (n - 1) >= rules.step_sigma * sigma:
            return "step_ramp"
    if c >= b and excess[c] > 0 and np.nanmean(excess[c - b:c]) >= rules.ramp_pre_fraction * excess[c]:
        return "step_ramp"
    return "other"


def categorise_false_positives(flux_rel: np.ndarray, quality: np.ndarray, time_btjd: np.ndarray,
                               noise_sigma: np.ndarray, rules: FPRules = FPRules()) -> list[str]:
    """:func:`categorise_false_positive` for each row of ``(n, L)`` arrays."""
    return [categorise_false_positive(flux_rel[i], quality[i], time_btjd[i], float(noise_sigma[i]), rules)
            for i in range(len(flux_rel))]


def category_table(categories: list[str]) -> list[dict]:
    """Counts and shares per category, in :data:`FP_CATEGORIES` order (the thesis's table)."""
    total = len(categories)
    return [{"category": cat, "label": FP_LABELS[cat], "count": categories.count(cat),
             "share": _safe_div(categories.count(cat), total)} for cat in FP_CATEGORIES]


def flare_duration_minutes(flare_mask: np.ndarray, peak_mask: np.ndarray, cadence_minutes: float = 2.0) -> np.ndarray:
    """Per window: length of the flare-mask run holding the (first) detectable peak, in minutes
    (NaN without a peak). Runs cut by the window edge count only their visible part."""
    fm = np.asarray(flare_mask).astype(bool)
    pm = np.asarray(peak_mask).astype(bool)
    out = np.full(len(fm), np.nan)
    for i in range(len(fm)):
        peaks = np.flatnonzero(pm[i])
        if not len(peaks):
            continue
        p = int(peaks[0])
        a = p
        while a > 0 and fm[i, a - 1]:
            a -= 1
        b = p
        while b < fm.shape[1] - 1 and fm[i, b + 1]:
            b += 1
        out[i] = (b - a + 1) * cadence_minutes
    return out
