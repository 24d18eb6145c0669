"""Scoring whole-light-curve predictions against a flare catalog (benchmarks, threshold
calibration on synthetic light curves).

Two views, as in issue 5:

* windows: non-overlapping ``length``-cadence windows (by cadence index), positive when a
  catalog peak falls inside, score = largest per-cadence probability inside;
* events: a catalog flare is recovered when an event covers a cadence within
  ``tolerance_cadences`` of its peak; an event is true when it recovers some flare.
"""
from __future__ import annotations

import numpy as np

from flaredetect.data.lightcurve import CADENCE_DAYS
from flaredetect.evaluation.metrics import auroc, average_precision  # noqa: F401 (torchmetrics; re-exported)

AMPLITUDE_BINS = ((0.0, 0.01), (0.01, 0.05), (0.05, np.inf))


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if tp else 0.0
    return {"precision": p, "recall": r, "f1": f1}


def window_labels_scores(time_btjd: np.ndarray, prob: np.ndarray, peaks_btjd: np.ndarray, length: int = 100
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, max-probability scores and ``(start, stop)`` indices of the non-overlapping
    windows of a light curve (the last partial window is kept when >= length/2)."""
    n = len(time_btjd)
    starts = np.arange(0, n, length)
    stops = np.minimum(starts + length, n)
    keep = stops - starts >= length // 2
    starts, stops = starts[keep], stops[keep]
    half = 0.5 * CADENCE_DAYS
    t0, t1 = time_btjd[starts] - half, time_btjd[stops - 1] + half
    peaks = np.asarray(peaks_btjd, dtype=np.float64)
    labels = ((peaks[None, :] >= t0[:, None]) & (peaks[None, :] <= t1[:, None])).any(axis=1)
    scores = np.array([np.max(prob[a:b]) for a, b in zip(starts, stops)]) if len(starts) else np.zeros(0)
    return labels, scores, np.stack([starts, stops], axis=1) if len(starts) else np.zeros((0, 2), int)


def match_events(event_start_btjd, event_stop_btjd, peaks_btjd, tolerance_cadences: int = 3
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(flare recovered (n_flares,), event true (n_events,))``: an event [start, stop]
    matches a flare when it covers a cadence within ``tolerance_cadences`` of its peak."""
    tol = (tolerance_cadences + 0.5) * CADENCE_DAYS
    s = np.asarray(event_start_btjd, dtype=np.float64)[None, :]
    e = np.asarray(event_stop_btjd, dtype=np.float64)[None, :]
    p = np.asarray(peaks_btjd, dtype=np.float64)[:, None]
    hit = (s <= p + tol) & (e >= p - tol)
    return hit.any(axis=1), hit.any(axis=0)


def score_light_curve_predictions(time_btjd, prob, events, peaks_btjd, amplitudes, threshold: float,
                                  window_length: int = 100, window_scores=None) -> dict:
    """Window and event counts of one light curve (pool the counts, then :func:`summarise`).

    ``window_scores`` overrides the max-probability window scores for AUROC/AP (the
    threshold detector's continuous window score)."""
    labels, scores, _ = window_labels_scores(np.asarray(time_btjd), np.asarray(prob), peaks_btjd, window_length)
    decided = scores >= threshold
    recovered, true_event = match_events(events["start_time_btjd"], events["stop_time_btjd"], peaks_btjd)
    amps = np.asarray(amplitudes, dtype=np.float64)
    return {
        "window_labels": labels, "window_scores": scores if window_scores is None else np.asarray(window_scores),
        "window_decided": decided, "flare_recovered": recovered, "event_true": true_event,
        "window_tp": int((decided & labels).sum()), "window_fp": int((decided & ~labels).sum()),
        "window_fn": int((~decided & labels).sum()),
        "n_flares": len(amps), "n_recovered": int(recovered.sum()), "n_events": len(true_event),
        "n_true_events": int(true_event.sum()),
        "recovered_by_amp": [(int(((amps >= lo) & (amps < hi) & recovered).sum()), int(((amps >= lo) & (amps < hi)).sum()))
                             for lo, hi in AMPLITUDE_BINS],
    }


def summarise(parts: list[dict]) -> dict:
    """Pooled metrics of one or more :func:`score_light_curve_predictions` results."""
    tp, fp, fn = (sum(p[k] for p in parts) for k in ("window_tp", "window_fp", "window_fn"))
    labels = np.concatenate([p["window_labels"] for p in parts]) if parts else np.zeros(0, bool)
    scores = np.concatenate([p["window_scores"] for p in parts]) if parts else np.zeros(0)
    window = {**prf(tp, fp, fn), "auroc": auroc(labels, scores), "ap": average_precision(labels, scores),
              "n_pos": int(labels.sum()), "n": len(labels)}
    n_flares = sum(p["n_flares"] for p in parts)
    n_rec = sum(p["n_recovered"] for p in parts)
    n_events = sum(p["n_events"] for p in parts)
    n_true = sum(p["n_true_events"] for p in parts)
    precision = n_true / n_events if n_events else float("nan")
    recall = n_rec / n_flares if n_flares else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if n_events and n_rec and n_true else 0.0
    by_amp = []
    for k in range(len(AMPLITUDE_BINS)):
        rec = sum(p["recovered_by_amp"][k][0] for p in parts)
        tot = sum(p["recovered_by_amp"][k][1] for p in parts)
        by_amp.append(rec / tot if tot else float("nan"))
    event = {"precision": precision, "recall": recall, "f1": f1, "n_flares": n_flares, "n_events": n_events,
             "recall_by_amp": by_amp}
    return {"window": window, "event": event}


def bootstrap_f1(parts: list[dict], n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Percentile intervals of the pooled window F1 and event F1.

    Windows are resampled with replacement; for events, catalog flares (recall) and
    detected events (precision) are resampled independently. With a few dozen catalogued
    flares the interval is several hundredths wide, the scale on which detectors and
    targets can be told apart at all. Seeded: the same parts give the same interval."""
    rng = np.random.default_rng(seed)
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])

    def f1(tp, fp, fn):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(2 * tp / (2 * tp + fp + fn))

    def resample(values: np.ndarray) -> np.ndarray:
        return values[rng.integers(0, len(values), (n_resamples, len(values)))] if len(values) else \
            np.zeros((n_resamples, 0), dtype=values.dtype)

    labels = np.concatenate([p["window_labels"] for p in parts]).astype(bool)
    decided = np.concatenate([p["window_decided"] for p in parts]).astype(bool)
    kind = resample(2 * labels.astype(np.int8) + decided)  # 3 tp, 1 fp, 2 fn
    window = f1((kind == 3).sum(1), (kind == 1).sum(1), (kind == 2).sum(1))
    recovered = resample(np.concatenate([p["flare_recovered"] for p in parts]).astype(bool))
    true_event = resample(np.concatenate([p["event_true"] for p in parts]).astype(bool))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = recovered.mean(1) if recovered.shape[1] else np.zeros(n_resamples)
        precision = true_event.mean(1) if true_event.shape[1] else np.zeros(n_resamples)
        event = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {"level": level, "window_f1": tuple(np.percentile(window, q)), "event_f1": tuple(np.percentile(event, q))}
