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

from flaredetect.data.lightcurve import CADENCE_DAYS, cadence_days
from flaredetect.evaluation.metrics import auroc, average_precision  # torchmetrics-backed

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
    half = 0.5 * cadence_days(time_btjd)
    t0, t1 = time_btjd[starts] - half, time_btjd[stops - 1] + half
    peaks = np.asarray(peaks_btjd, dtype=np.float64)
    labels = ((peaks[None, :] >= t0[:, None]) & (peaks[None, :] <= t1[:, None])).any(axis=1)
    scores = np.array([np.max(prob[a:b]) for a, b in zip(starts, stops)]) if len(starts) else np.zeros(0)
    return labels, scores, np.stack([starts, stops], axis=1) if len(starts) else np.zeros((0, 2), int)


def match_events(event_start_btjd, event_stop_btjd, peaks_btjd, tolerance_cadences: int = 3,
                 cadence_d: float = CADENCE_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """``(flare recovered (n_flares,), event true (n_events,))``: an event [start, stop]
    matches a flare when it covers a cadence (of ``cadence_d`` days) within
    ``tolerance_cadences`` of its peak."""
    tol = (tolerance_cadences + 0.5) * cadence_d
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
    labels, scores, bounds = window_labels_scores(np.asarray(time_btjd), np.asarray(prob), peaks_btjd, window_length)
    decided = scores >= threshold
    recovered, true_event = match_events(events["start_time_btjd"], events["stop_time_btjd"], peaks_btjd,
                                         cadence_d=cadence_days(np.asarray(time_btjd)))
    amps = np.asarray(amplitudes, dtype=np.float64)
    return {
        "window_labels": labels, "window_scores": scores if window_scores is None else np.asarray(window_scores),
        "window_decided": decided, "flare_recovered": recovered, "event_true": true_event,
        # times, for the block bootstrap
        "window_time_btjd": np.asarray(time_btjd, dtype=np.float64)[bounds[:, 0]],
        "flare_peak_btjd": np.asarray(peaks_btjd, dtype=np.float64),
        "event_time_btjd": np.asarray(events["start_time_btjd"], dtype=np.float64),
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


def _block_stats(parts: list[dict], block_days: float) -> np.ndarray:
    """Counts per block of ``block_days`` of each light curve, one row per block that holds a
    scored window: window tp, fp, fn; catalog flares, recovered flares; events, true events.

    Blocks are laid out from the light curve's window times only, so two detectors scored on
    the same light curves get the same blocks (flares and events outside are put in the
    first/last block)."""
    if not block_days > 0:
        raise ValueError(f"block_days={block_days} must be > 0")
    rows = []
    for p in parts:
        times = np.asarray(p["window_time_btjd"], dtype=np.float64)
        if not len(times):
            continue
        t0 = times.min()
        window_block = np.floor((times - t0) / block_days).astype(np.int64)
        n = int(window_block.max()) + 1

        def block(t):
            return np.clip(np.floor((np.asarray(t, dtype=np.float64) - t0) / block_days), 0, n - 1).astype(np.int64)

        labels, decided = p["window_labels"].astype(bool), p["window_decided"].astype(bool)
        flare_block, event_block = block(p["flare_peak_btjd"]), block(p["event_time_btjd"])
        columns = [(window_block, labels & decided), (window_block, ~labels & decided),
                   (window_block, labels & ~decided), (flare_block, np.ones(len(flare_block))),
                   (flare_block, p["flare_recovered"]), (event_block, np.ones(len(event_block))),
                   (event_block, p["event_true"])]
        stats = np.stack([np.bincount(b, weights=np.asarray(w, dtype=np.float64), minlength=n)
                          for b, w in columns], axis=1)
        rows.append(stats[np.bincount(window_block, minlength=n) > 0])
    return np.concatenate(rows) if rows else np.zeros((0, 7))


def _f1s(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window F1 and event F1 from summed block counts (``(..., 7)``)."""
    tp, fp, fn, n_flares, n_rec, n_events, n_true = np.moveaxis(totals, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        window = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        precision, recall = n_true / n_events, n_rec / n_flares
        event = np.nan_to_num(2 * precision * recall / (precision + recall))
    return window, event


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Central percentile interval holding ``level`` of ``values``."""
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _block_resamples(n_blocks: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each block is drawn in each resample (``(n_resamples, n_blocks)``)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=n_resamples) if n_blocks else \
        np.zeros((n_resamples, 0))


def bootstrap_f1(parts: list[dict], n_resamples: int = 2000, level: float = 0.95, seed: int = 0,
                 block_days: float = 1.0) -> dict:
    """Percentile intervals of the pooled window F1 and event F1.

    A block bootstrap: each light curve is cut into ``block_days`` blocks (windows, catalog
    flares and detected events by time) and blocks are drawn with replacement. Blocks, not
    single windows, because neighbouring windows share a flare's decay and the same noise.
    With a few dozen catalogued flares the interval is several hundredths wide, the scale on
    which detectors and targets can be told apart at all. Seeded."""
    stats = _block_stats(parts, block_days)
    window, event = _f1s(_block_resamples(len(stats), n_resamples, seed) @ stats)
    return {"level": level, "block_days": block_days, "window_f1": _interval(window, level),
            "event_f1": _interval(event, level)}


def bootstrap_f1_difference(parts_a: list[dict], parts_b: list[dict], n_resamples: int = 2000, level: float = 0.95,
                            seed: int = 0, block_days: float = 1.0) -> dict:
    """Pooled F1 of detector A minus detector B on the same light curves, with a paired block
    bootstrap interval (the same blocks drawn for both). Much narrower than comparing two
    separate intervals: both detectors see the same flares, noise and catalog gaps.
    ``parts_a[i]`` and ``parts_b[i]`` must score the same light curve."""
    if len(parts_a) != len(parts_b):
        raise ValueError(f"{len(parts_a)} light curves for detector A but {len(parts_b)} for detector B")
    for i, (a, b) in enumerate(zip(parts_a, parts_b)):
        if not (np.array_equal(a["window_time_btjd"], b["window_time_btjd"])
                and np.array_equal(a["flare_peak_btjd"], b["flare_peak_btjd"])):
            raise ValueError(f"light curve {i}: the two detectors were not scored on the same windows and flares")
    stats_a, stats_b = _block_stats(parts_a, block_days), _block_stats(parts_b, block_days)
    draws = _block_resamples(len(stats_a), n_resamples, seed)
    (wa, ea), (wb, eb) = _f1s(draws @ stats_a), _f1s(draws @ stats_b)
    (pwa, pea), (pwb, peb) = _f1s(stats_a.sum(0)), _f1s(stats_b.sum(0))
    return {"level": level, "block_days": block_days,
            "window_f1": float(pwa - pwb), "window_f1_interval": _interval(wa - wb, level),
            "event_f1": float(pea - peb), "event_f1_interval": _interval(ea - eb, level)}
