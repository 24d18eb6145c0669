"""Evaluation figures (ROC/PR, confusion matrix, recall curves, error gallery, attention
by flare phase). Built on :mod:`flaredetect.plotting` (Agg backend, shared style)."""
from __future__ import annotations

import numpy as np

from flaredetect.evaluation.metrics import pr_curve, roc_curve
from flaredetect.interpret import PHASES
from flaredetect.plotting import plt, save  # noqa: F401  (Agg backend set there)


def roc_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> plt.Figure:
    """ROC and precision–recall curves of several models: ``{label: (y_true, prob)}``."""
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(9, 3.8))
    for label, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax_roc.plot(fpr, tpr, lw=1.4, label=label)
        precision, recall, _ = pr_curve(y, p)
        ax_pr.step(np.r_[0, recall], np.r_[precision[:1] if len(precision) else [1], precision], where="post",
                   lw=1.4, label=label)
    ax_roc.plot([0, 1], [0, 1], color="0.7", ls="--", lw=0.8)
    ax_roc.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision–recall", xlim=(0, 1), ylim=(0, 1.01))
    for ax in (ax_roc, ax_pr):
        ax.legend(fontsize=7, loc="lower right" if ax is ax_roc else "lower left")
    fig.tight_layout()
    return fig


def confusion_matrices(mats: dict[str, dict]) -> plt.Figure:
    """Confusion matrices ``{title: {tp, fp, tn, fn}}`` side by side (rows truth, columns prediction)."""
    fig, axes = plt.subplots(1, len(mats), figsize=(3.3 * len(mats), 3.0), squeeze=False)
    for ax, (title, c) in zip(axes[0], mats.items()):
        m = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
        ax.imshow(m, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(m[i, j]), ha="center", va="center",
                        color="white" if m[i, j] > m.max() / 2 else "black")
        ax.set_xticks([0, 1], ["no flare", "flare"])
        ax.set_yticks([0, 1], ["no flare", "flare"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=8)
        ax.grid(False)
    fig.tight_layout()
    return fig


def recall_bins(tables: dict[str, list[dict]], xlabel: str) -> plt.Figure:
    """Recall per bin for several models (bars), with the number of flares per bin."""
    labels = list(tables)
    bins = [r["bin"] for r in tables[labels[0]]]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(bins) + 2), 3.4))
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        rec = [r["recall"] if r["n"] else np.nan for r in tables[label]]
        ax.bar(np.arange(len(bins)) + (k - (len(labels) - 1) / 2) * width, rec, width, label=label)
    ax.set_xticks(np.arange(len(bins)), [f"{b}\n(n={r['n']})" for b, r in zip(bins, tables[labels[0]])], fontsize=7)
    ax.set(ylim=(0, 1.05), ylabel="recall", xlabel=xlabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fp_categories(table: list[dict], title: str = "false positives by category") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.barh([r["label"] for r in table][::-1], [r["count"] for r in table][::-1], color="tab:orange")
    for i, r in enumerate(table[::-1]):
        ax.text(r["count"], i, f" {r['count']} ({100 * r['share']:.0f}%)", va="center", fontsize=7)
    ax.set_xlabel("false-positive windows")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def gallery(panels: list[dict], title: str, weight_label: str) -> plt.Figure:
    """Grid of windows, each ``{flux, weight, flare_mask, quality, title}``: flux coloured by
    the per-cadence weight (attention rollout or |integrated gradients|)."""
    n = max(len(panels), 1)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, panel in zip(axes.ravel(), panels):
        ax.set_visible(True)
        flux = panel["flux"]
        x = np.arange(len(flux))
        fm = panel.get("flare_mask")
        if fm is not None and np.any(fm):
            ax.fill_between(x, np.nanmin(flux), np.nanmax(flux), where=np.asarray(fm) > 0, color="tab:red",
                            alpha=0.12, step="mid")
        q = panel.get("quality")
        if q is not None and np.any(q):
            for i in np.flatnonzero(q):
                ax.axvline(i, color="tab:blue", alpha=0.3, lw=0.8)
        ax.plot(x, flux, color="0.6", lw=0.7, zorder=1)
        w = panel["weight"]
        ax.scatter(x, flux, c=w / max(np.nanmax(w), 1e-12), cmap="magma", s=8, zorder=2, vmin=0, vmax=1)
        ax.set_title(panel["title"], fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{title} — colour: {weight_label}; red band: flare mask; blue lines: quality flags", fontsize=8)
    fig.tight_layout()
    return fig


def phase_mass_bars(summaries: dict[str, dict]) -> plt.Figure:
    """Mass share by flare phase against the share of cadences in that phase."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    labels = list(summaries)
    width = 0.8 / (len(labels) + 1)
    x = np.arange(len(PHASES))
    first = summaries[labels[0]]
    ax.bar(x - 0.4 + width / 2, [first[p]["cadence_share"] for p in PHASES], width, color="0.75",
           label="share of cadences")
    for k, label in enumerate(labels):
        ax.bar(x - 0.4 + width * (k + 1.5), [summaries[label][p]["mass"] for p in PHASES], width, label=label)
    ax.set_xticks(x, [p.replace("_", "-") for p in PHASES])
    ax.set_ylabel("mean share per flare window")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def integrated_gradients_plot(flux: np.ndarray, ig: np.ndarray, feature_names=("flux", "gradient", "quality"),
                              title: str = "") -> plt.Figure:
    """Light curve above the per-feature integrated-gradient attributions of one window."""
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(7, 4), sharex=True, gridspec_kw={"height_ratios": [1.2, 1]})
    x = np.arange(len(flux))
    ax0.plot(x, flux, color="k", lw=0.9)
    ax0.set_ylabel("relative flux")
    ax0.set_title(title, fontsize=8)
    for j, name in enumerate(feature_names[: ig.shape[1]]):
        ax1.plot(x, ig[:, j], lw=1.0, label=name)
    ax1.axhline(0, color="0.6", lw=0.6)
    ax1.set(xlabel="cadence in window (2 min)", ylabel="attribution (logit vs quiet star)")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    return fig
