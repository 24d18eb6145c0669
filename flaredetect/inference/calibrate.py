"""Choose event settings on held-out synthetic light curves (never on the real stars
being scored): the threshold and minimum length that maximise event F1 against the
synthetic truth (detectable flares must be recovered; an event on any flare, detectable
or not, counts as true)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from flaredetect.data.synthetic import generate_light_curves
from flaredetect.inference.events import EventParams, extract_events
from flaredetect.inference.metrics import score_light_curve_predictions, summarise
from flaredetect.inference.pipeline import Predictor

CALIBRATION_SEED = 20_250_501  # not the training data's seed: independent synthetic stars


def calibrate_events(predictor: Predictor, n_stars: int = 40, seed: int = CALIBRATION_SEED,
                     thresholds=tuple(np.round(np.arange(0.15, 0.951, 0.05), 2)), min_cadences=(1, 2, 3, 4),
                     min_snr=(0.0, 3.0, 5.0),
                     generator: dict | None = None) -> tuple[EventParams, list[dict]]:
    """Best :class:`EventParams` by synthetic event F1, and the whole grid's results."""
    curves = generate_light_curves(n_stars, seed=seed, **(generator or {}))
    probs = [predictor.probabilities(lc) for lc in curves]
    grid = []
    for threshold, min_len, snr in ((t, m, s) for t in thresholds for m in min_cadences for s in min_snr):
        params = replace(predictor.events, threshold=float(threshold), min_cadences=int(min_len),
                         min_snr=float(snr), fit_template=False)
        parts = []
        for lc, prob in zip(curves, probs):
            det = lc.flares.detectable.astype(bool)
            events = extract_events(lc, prob, params)
            part = score_light_curve_predictions(lc.time_btjd, prob, events, lc.flares.peak_time_btjd[det],
                                                 lc.flares.amplitude[det], params.threshold)
            # events on undetectable flares are not false positives
            _, true_any = _match_all(events, lc.flares.peak_time_btjd)
            part["n_true_events"] = int(true_any.sum())
            parts.append(part)
        summary = summarise(parts)
        grid.append({"threshold": float(threshold), "min_cadences": int(min_len), "min_snr": float(snr),
                     **summary["event"],
                     "window_f1": summary["window"]["f1"]})
    best = max(grid, key=lambda g: (g["f1"], g["threshold"]))
    return replace(predictor.events, threshold=best["threshold"], min_cadences=best["min_cadences"],
                   min_snr=best["min_snr"]), grid


def _match_all(events, peaks):
    from flaredetect.inference.metrics import match_events

    return match_events(events["start_time_btjd"], events["stop_time_btjd"], peaks)
