"""Figures shared by training callbacks, evaluation and prediction (matplotlib, Agg)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="paper")


def attention_overlay(flux: np.ndarray, rollout_received: np.ndarray, flare_mask: np.ndarray | None = None,
                      title: str = "", prob: float | None = None) -> plt.Figure:
    """Light curve of one window coloured by the attention each cadence receives
    (rollout, averaged over queries) — the thesis's figure style."""
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(flux))
    if flare_mask is not None and flare_mask.any():
        ax.fill_between(x, flux.min(), flux.max(), where=flare_mask > 0, color="tab:red", alpha=0.12,
                        step="mid", label="flare mask")
    ax.plot(x, flux, color="0.6", lw=0.8, zorder=1)
    sc = ax.scatter(x, flux, c=rollout_received, cmap="magma", s=12, zorder=2)
    fig.colorbar(sc, ax=ax, label="attention received (rollout)")
    ax.set_xlabel("cadence in window (2 min)")
    ax.set_ylabel("relative flux")
    ax.set_title(title + (f"  p(flare)={prob:.2f}" if prob is not None else ""))
    if flare_mask is not None and flare_mask.any():
        ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig


def attention_heads(attention: list[np.ndarray], title: str = "") -> plt.Figure:
    """Per-layer, per-head attention heat maps of one window: rows layers, columns heads."""
    n_layers, n_heads = len(attention), attention[0].shape[0]
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(1.8 * n_heads + 1, 1.8 * n_layers + 0.6), squeeze=False)
    for i, layer in enumerate(attention):
        for j in range(n_heads):
            ax = axes[i, j]
            ax.imshow(layer[j], cmap="viridis", aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {j}", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"layer {i}\nquery", fontsize=7)
    fig.suptitle(title + " (x: key cadence, y: query cadence)", fontsize=8)
    fig.tight_layout()
    return fig


def rollout_map(rollout: np.ndarray, title: str = "") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    im = ax.imshow(rollout, cmap="viridis", aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax)
    ax.set_xlabel("key cadence")
    ax.set_ylabel("query cadence")
    ax.set_title(title or "attention rollout", fontsize=8)
    fig.tight_layout()
    return fig


def training_history(history: list[dict]) -> plt.Figure:
    """Train/val loss and accuracy; validation precision, recall and F1 per epoch."""
    epochs = [h["epoch"] for h in history]

    def series(key):
        return [h.get(key, np.nan) for h in history]

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for key, label in (("train/loss", "train"), ("val/loss", "val")):
        axes[0].plot(epochs, series(key), marker="o", ms=3, label=label)
    axes[0].set_title("loss")
    for key, label in (("train/acc", "train"), ("val/acc", "val")):
        axes[1].plot(epochs, series(key), marker="o", ms=3, label=label)
    axes[1].set_title("accuracy")
    for key in ("val/precision", "val/recall", "val/f1"):
        axes[2].plot(epochs, series(key), marker="o", ms=3, label=key.split("/")[1])
    axes[2].set_title("validation")
    f1 = np.asarray(series("val/f1"), dtype=np.float64)
    if np.isfinite(f1).any():  # the epoch the best checkpoint comes from
        best = epochs[int(np.nanargmax(f1))]
        for ax in axes:
            ax.axvline(best, color="0.5", ls="--", lw=0.8, label=f"best epoch {best}")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
