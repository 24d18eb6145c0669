"""Score detectors against injected truth on real light curves (``tess20s/``): recall per
amplitude (white-noise sigma) and FWHM, and false events per day on the same light curves
without the injected flares.

Each item is one light curve twice: with the flares (``injected``, its ``flares`` the truth)
and without (``plain``, the same star's flux as observed). A flare counts as recovered when
an event covers a cadence within ``tolerance_minutes`` of its peak; every event on the plain
light curve is a false event (or a real flare no one labelled: the rate is an upper bound).
``binned_to`` scores the same light curves binned to a longer cadence
(:func:`~flaredetect.data.binning.bin_light_curve`), the flares' sigma still measured at the
native cadence, so both cadences are judged on the same flares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd

from flaredetect.data.binning import bin_light_curve
from flaredetect.data.lightcurve import LightCurve, robust_noise_sigma
from flaredetect.inference.metrics import match_events


@dataclass(frozen=True)
class TruthItem:
    name: str
    injected: LightCurve
    plain: LightCurve


def truth_trials(predictor_for: Callable, items: Sequence[TruthItem], binned_to: float | None = None,
                 tolerance_minutes: float = 3.0, thresholds: Sequence[float] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(trials, false_events)``: one row per truth flare and event threshold
    (``recovered``, ``amplitude_sigma``, ``fwhm_min``) and one per light curve and threshold
    (``n_events`` on the plain light curve, ``days``). ``thresholds``: the event thresholds
    to score from one set of probabilities (None: the predictor's own)."""
    from dataclasses import replace

    from flaredetect.inference.events import extract_events

    rows, false_rows = [], []
    for item in items:
        sigma = robust_noise_sigma(item.plain.flux_rel)  # at the native cadence
        injected, plain = item.injected, item.plain
        if binned_to is not None:
            injected, plain = bin_light_curve(injected, binned_to), bin_light_curve(plain, binned_to)
        predictor = predictor_for(injected)
        prob, _ = predictor.predict(injected)
        plain_prob, _ = predictor.predict(plain)
        truth = injected.flares
        tol_cadences = max(1, int(round(tolerance_minutes * 60.0 / injected.cadence_seconds)))
        days = len(plain) * plain.cadence_d
        for threshold in thresholds if thresholds is not None else [predictor.events.threshold]:
            params = replace(predictor.events, threshold=float(threshold))
            events = extract_events(injected, prob, params)
            recovered, _ = match_events(events["start_time_btjd"], events["stop_time_btjd"], truth.peak_time_btjd,
                                        tolerance_cadences=tol_cadences, cadence_d=injected.cadence_d)
            rows += [{"light_curve": item.name, "tic": injected.tic, "threshold": float(threshold),
                      "peak_time_btjd": truth.peak_time_btjd[k], "amplitude": truth.amplitude[k],
                      "amplitude_sigma": truth.amplitude[k] / sigma, "fwhm_min": truth.fwhm_days[k] * 1440.0,
                      "recovered": bool(recovered[k])} for k in range(len(truth))]
            false_rows.append({"light_curve": item.name, "tic": plain.tic, "threshold": float(threshold),
                               "n_events": len(extract_events(plain, plain_prob, params)["peak_time_btjd"]),
                               "days": days, "cadence_s": plain.cadence_seconds})
    return pd.DataFrame(rows), pd.DataFrame(false_rows)


def at_false_rate(trials: pd.DataFrame, false_events: pd.DataFrame, max_per_day: float = 0.5, **kw) -> dict:
    """:func:`summarise_truth` at the event threshold with the highest recall whose false
    events per day stay at most ``max_per_day`` (the lowest such threshold), with it."""
    best = None
    for threshold in sorted(trials["threshold"].unique()):
        summary = summarise_truth(trials[trials["threshold"] == threshold],
                                  false_events[false_events["threshold"] == threshold], **kw)
        if summary["false_events_per_day"] <= max_per_day and (best is None or summary["recall"]["value"]
                                                               > best["recall"]["value"]):
            best = {**summary, "threshold": float(threshold)}
    return best or {"threshold": None, "note": f"no threshold reaches <= {max_per_day} false events per day"}


def wilson_interval(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n (NaN for n = 0)."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def summarise_truth(trials: pd.DataFrame, false_events: pd.DataFrame, min_sigma: float = 5.0,
                    short_fwhm_min: float = 4.0) -> dict:
    """Recall above ``min_sigma`` (all, and for FWHM < ``short_fwhm_min``) with intervals, and
    false events per day."""
    out = {}
    bright = trials[trials["amplitude_sigma"] >= min_sigma]
    for name, sel in (("recall", bright), ("recall_short", bright[bright["fwhm_min"] < short_fwhm_min])):
        k, n = int(sel["recovered"].sum()), len(sel)
        out[name] = {"value": k / n if n else float("nan"), "interval": wilson_interval(k, n), "n": n}
    days = float(false_events["days"].sum())
    out["false_events_per_day"] = float(false_events["n_events"].sum() / days) if days else float("nan")
    out["days"] = days
    return out


def paired_recall_difference(trials_a: pd.DataFrame, trials_b: pd.DataFrame, min_sigma: float = 5.0,
                             max_fwhm_min: float | None = None, seed: int = 0) -> dict:
    """Recall of A minus recall of B on the same truth flares (above ``min_sigma``, FWHM
    below ``max_fwhm_min``), with a 95 % bootstrap interval resampling light curves (the
    flares of one light curve share its noise and its detector errors)."""
    from scipy.stats import bootstrap

    key = ["light_curve", "peak_time_btjd"]
    merged = trials_a.drop_duplicates(key).merge(trials_b[key + ["recovered"]].drop_duplicates(key), on=key,
                                                 suffixes=("_a", "_b"))  # a flare listed twice counts once
    sel = merged[merged["amplitude_sigma"] >= min_sigma]
    if max_fwhm_min is not None:
        sel = sel[sel["fwhm_min"] < max_fwhm_min]
    per = sel.groupby("light_curve").agg(diff=("recovered_a", "sum"), b=("recovered_b", "sum"),
                                         n=("recovered_a", "size"))
    per["diff"] = per["diff"] - per["b"]
    value = float(per["diff"].sum() / per["n"].sum()) if len(per) else float("nan")
    if len(per) < 2:
        return {"value": value, "interval": (float("nan"), float("nan")), "n": int(per["n"].sum())}
    ci = bootstrap((per["diff"].to_numpy(float), per["n"].to_numpy(float)), lambda d, n: d.sum() / n.sum(),
                   paired=True, vectorized=False, n_resamples=2000, random_state=seed, method="percentile")
    return {"value": value, "interval": (float(ci.confidence_interval.low), float(ci.confidence_interval.high)),
            "n": int(per["n"].sum())}
