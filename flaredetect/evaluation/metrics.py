"""Binary-classification metrics on window probabilities (numpy in, numpy out).

Curves, AUROC and average precision come from torchmetrics (the same implementation as
the training metrics); counts and thresholded metrics are a few lines here so grouped
metrics (by energy, amplitude, variability) are one call per group. Precision is 0 when
nothing is predicted positive.
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (binary_auroc, binary_average_precision,
                                                    binary_precision_recall_curve, binary_roc)


def _as_arrays(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(bool).ravel()
    p = np.asarray(prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in length")
    return y, p


def confusion(y_true, prob, threshold: float = 0.5) -> dict[str, int]:
    """Counts ``tp, fp, tn, fn`` with ``prob >= threshold`` predicted positive."""
    y, p = _as_arrays(y_true, prob)
    pred = p >= threshold
    return {"tp": int(np.sum(pred & y)), "fp": int(np.sum(pred & ~y)),
            "tn": int(np.sum(~pred & ~y)), "fn": int(np.sum(~pred & y))}


def _safe_div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def thresholded_metrics(y_true, prob, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and the confusion counts at one threshold."""
    c = confusion(y_true, prob, threshold)
    n = sum(c.values())
    precision = _safe_div(c["tp"], c["tp"] + c["fp"])
    recall = _safe_div(c["tp"], c["tp"] + c["fn"])
    return {"threshold": float(threshold), "acc": _safe_div(c["tp"] + c["tn"], n), "precision": precision,
            "recall": recall, "f1": _safe_div(2 * precision * recall, precision + recall), **c}


def _tensors(y: np.ndarray, p: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(p), torch.from_numpy(y.astype(np.int64))


def roc_curve(y_true, prob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (torchmetrics)."""
    y, p = _as_arrays(y_true, prob)
    fpr, tpr, thresholds = binary_roc(*_tensors(y, p))
    return fpr.numpy(), tpr.numpy(), thresholds.numpy()


def auroc(y_true, prob) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, p = _as_arrays(y_true, prob)
    if y.all() or not y.any():
        return float("nan")
    return float(binary_auroc(*_tensors(y, p)))


def pr_curve(y_true, prob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct threshold, thresholds increasing (torchmetrics;
    the final (precision 1, recall 0) point without a threshold is dropped)."""
    y, p = _as_arrays(y_true, prob)
    precision, recall, thresholds = binary_precision_recall_curve(*_tensors(y, p))
    return precision[:-1].numpy(), recall[:-1].numpy(), thresholds.numpy()


def average_precision(y_true, prob) -> float:
    """Step-wise area under the PR curve; NaN without positives."""
    y, p = _as_arrays(y_true, prob)
    if not y.any():
        return float("nan")
    return float(binary_average_precision(*_tensors(y, p)))


def best_f1_threshold(y_true, prob) -> tuple[float, float]:
    """The probability threshold maximising F1 (on validation data) and that F1.

    Candidates are the distinct probabilities; ties go to the highest threshold (fewest
    positives). Returns (0.5, 0.0) when there are no positives.
    """
    y, p = _as_arrays(y_true, prob)
    if not y.any():
        return 0.5, 0.0
    precision, recall, thresholds = pr_curve(y, p)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    best = len(f1) - 1 - int(np.argmax(f1[::-1]))
    return float(thresholds[best]), float(f1[best])


def classification_report(y_true, prob, threshold: float = 0.5, tuned_threshold: float | None = None) -> dict:
    """Everything for one set of windows: metrics at 0.5 (or ``threshold``), at the tuned
    threshold, AUROC, AP and the window counts."""
    y, p = _as_arrays(y_true, prob)
    out = {"n": int(len(y)), "n_pos": int(y.sum()), "n_neg": int((~y).sum()),
           "at_default": thresholded_metrics(y, p, threshold), "auroc": auroc(y, p), "ap": average_precision(y, p)}
    if tuned_threshold is not None:
        out["at_tuned"] = thresholded_metrics(y, p, tuned_threshold)
    return out


def recall_by_bins(y_true, prob, values, edges, threshold: float = 0.5, unit: str = "") -> list[dict]:
    """Recall of the positives grouped by ``values`` (e.g. energy, amplitude) into
    ``[edges[i], edges[i+1])``; positives with non-finite values are left out."""
    y, p = _as_arrays(y_true, prob)
    v = np.asarray(values, dtype=np.float64)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = y & np.isfinite(v) & (v >= lo) & (v < hi)
        n = int(sel.sum())
        hit = int(np.sum(p[sel] >= threshold))
        rows.append({"bin": _bin_label(lo, hi, unit), "low": float(lo), "high": float(hi), "n": n,
                     "detected": hit, "recall": _safe_div(hit, n) if n else float("nan")})
    return rows


def metrics_by_group(y_true, prob, groups, names: dict | None = None, threshold: float = 0.5) -> list[dict]:
    """Thresholded metrics and AUROC within each value of ``groups`` (all windows, both classes)."""
    y, p = _as_arrays(y_true, prob)
    g = np.asarray(groups)
    rows = []
    for value in np.unique(g):
        sel = g == value
        m = thresholded_metrics(y[sel], p[sel], threshold)
        rows.append({"group": (names or {}).get(value, str(value)), "n": int(sel.sum()), "n_pos": int(y[sel].sum()),
                     "acc": m["acc"], "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                     "auroc": auroc(y[sel], p[sel])})
    return rows


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.0e}" if abs(x) >= 1e4 else f"{x:g}"


def _bin_label(lo: float, hi: float, unit: str) -> str:
    u = f" {unit}" if unit else ""
    if not np.isfinite(lo) or lo <= 0 and unit == "erg":
        return f"< {_fmt(hi)}{u}"
    if not np.isfinite(hi):
        return f">= {_fmt(lo)}{u}"
    return f"{_fmt(lo)}–{_fmt(hi)}{u}"


def mean_std(rows: list[dict], keys) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation of ``keys`` over several runs' metric dicts."""
    import warnings

    out = {}
    for k in keys:
        values = np.array([r[k] for r in rows], dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN metrics (e.g. unknown energies) stay NaN
            out[k] = (float(np.nanmean(values)), float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0)
    return out


def out_of_flare_range_sigma(flux_rel: np.ndarray, flare_mask: np.ndarray, noise_sigma: np.ndarray) -> np.ndarray:
    """Per window: 5–95 percentile range of the flux outside flares, in noise sigma — how
    much stellar variability (rotation, pulsation) the window holds. White noise alone
    gives ~3.3; a spotted fast rotator tens to hundreds."""
    flux = np.where(np.asarray(flare_mask) > 0, np.nan, np.asarray(flux_rel, dtype=np.float64))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nanpercentile(flux, 95, axis=1) - np.nanpercentile(flux, 5, axis=1)
    sigma = np.asarray(noise_sigma, dtype=np.float64)
    return np.where(np.isfinite(sigma) & (sigma > 0), spread / np.where(sigma > 0, sigma, 1.0), np.nan)


def window_metrics(y_val, p_val, y, p, meta: dict, bins: dict, threshold: float = 0.5,
                   low_energy_erg: float = 1e32) -> dict:
    """The full metric set of one detector on one split.

    ``meta`` holds per-window ``energy_erg``, ``amp_sigma`` (peak amplitude / noise sigma),
    ``n_flares`` and ``variability_sigma``; ``bins`` the edges for energy, amplitude and
    variability. The tuned threshold maximises F1 on the validation windows.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    tuned, val_f1 = best_f1_threshold(y_val, p_val)
    out = classification_report(y, p, threshold, tuned)
    out["tuned_threshold"] = tuned
    out["val_f1_at_tuned"] = val_f1
    out["val_f1_at_default"] = thresholded_metrics(y_val, p_val, threshold)["f1"]

    energy = np.asarray(meta["energy_erg"], dtype=np.float64)
    known = y & np.isfinite(energy)
    out["energy_known_fraction"] = _safe_div(int(known.sum()), int(y.sum()))
    if known.any():
        out["recall_by_energy"] = recall_by_bins(y, p, energy, bins["energy_erg"], threshold, unit="erg")
        low = known & (energy < low_energy_erg)
        out["low_energy_recall"] = {"max_energy_erg": low_energy_erg, "n": int(low.sum()),
                                    "recall": _safe_div(int(np.sum(p[low] >= threshold)), int(low.sum()))
                                    if low.any() else float("nan")}
    out["recall_by_amplitude_sigma"] = recall_by_bins(y, p, meta["amp_sigma"], bins["amplitude_sigma"], threshold,
                                                      unit="sigma")

    n_flares = np.asarray(meta["n_flares"])
    for name, sel_pos in (("multi_flare", y & (n_flares >= 2)), ("single_flare", y & (n_flares == 1))):
        subset = sel_pos | ~y  # these positives against all negatives
        m = thresholded_metrics(y[subset], p[subset], threshold)
        out[name] = {"n_pos": int(sel_pos.sum()), "recall": m["recall"] if sel_pos.any() else float("nan"),
                     "precision": m["precision"], "f1": m["f1"] if sel_pos.any() else float("nan"),
                     "auroc": auroc(y[subset], p[subset])}

    edges = bins["variability_sigma"]
    var = np.asarray(meta["variability_sigma"], dtype=np.float64)
    cls = np.digitize(np.nan_to_num(var, nan=-1.0), edges[1:-1])
    cls = np.where(np.isfinite(var), cls, -1)
    names = {i: _bin_label(lo, hi, "sigma") for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))}
    names[-1] = "unknown"
    out["by_variability"] = metrics_by_group(y, p, cls, names, threshold)
    return out


HEADLINE = ("acc", "precision", "recall", "f1", "f1_tuned", "tuned_threshold", "auroc", "ap",
            "low_energy_recall", "multi_flare_f1", "multi_flare_recall")


def headline(m: dict) -> dict[str, float]:
    """The comparison-table numbers of a :func:`window_metrics` result."""
    return {"acc": m["at_default"]["acc"], "precision": m["at_default"]["precision"],
            "recall": m["at_default"]["recall"], "f1": m["at_default"]["f1"],
            "f1_tuned": m["at_tuned"]["f1"], "tuned_threshold": m["tuned_threshold"], "auroc": m["auroc"],
            "ap": m["ap"], "low_energy_recall": m.get("low_energy_recall", {}).get("recall", float("nan")),
            "multi_flare_f1": m["multi_flare"]["f1"], "multi_flare_recall": m["multi_flare"]["recall"]}
