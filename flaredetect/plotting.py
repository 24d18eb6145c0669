"""Figures shared by training callbacks, evaluation and prediction (matplotlib, Agg)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="paper")


def _window_axis(n: int, time_btjd: np.ndarray | None):
    """x values and label of a window's cadences: minutes from its first cadence (BTJD in
    the label) when times are known, else cadence numbers."""
    if time_btjd is not None and np.isfinite(time_btjd).all():
        t = np.asarray(time_btjd, dtype=np.float64)
        return (t - t[0]) * 1440.0, f"minutes from BTJD {t[0]:.4f}"
    return np.arange(n), "cadence in window (2 min)"


def _window_title(title: str, tic=None, sector=None, prob: float | None = None) -> str:
    parts = [title] if title else []
    if tic is not None:
        parts.append(f"TIC {int(tic)}" + (f" s{int(sector)}" if sector is not None else ""))
    if prob is not None:
        parts.append(f"p(flare) = {prob:.2f}")
    return "   ".join(parts)


def attention_overlay(flux: np.ndarray, rollout_received: np.ndarray, flare_mask: np.ndarray | None = None,
                      title: str = "", prob: float | None = None, time_btjd: np.ndarray | None = None,
                      quality: np.ndarray | None = None, tic=None, sector=None) -> plt.Figure:
    """Light curve of one window coloured by the attention each cadence receives
    (rollout, averaged over queries) — the thesis's figure style — with its TIC, time, the
    flare mask and the SPOC-quality-flagged cadences."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    x, xlabel = _window_axis(len(flux), time_btjd)
    if flare_mask is not None and np.asarray(flare_mask).any():
        ax.fill_between(x, np.min(flux), np.max(flux), where=np.asarray(flare_mask) > 0, color="tab:red", alpha=0.12,
                        step="mid", label="flare (truth)")
    ax.plot(x, flux, color="0.6", lw=0.8, zorder=1)
    sc = ax.scatter(x, flux, c=rollout_received, cmap="magma", s=12, zorder=2)
    if quality is not None and np.asarray(quality).any():
        flagged = np.asarray(quality) > 0
        ax.plot(x[flagged], np.asarray(flux)[flagged], "x", color="tab:blue", ms=6, zorder=3, label="quality flag")
    fig.colorbar(sc, ax=ax, label="attention received (rollout)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("relative flux")
    ax.set_title(_window_title(title, tic, sector, prob), fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig


def attention_heads(attention: list[np.ndarray], title: str = "", tic=None, sector=None,
                    prob: float | None = None) -> plt.Figure:
    """Per-layer, per-head attention heat maps of one window (rows layers, columns heads; x:
    key cadence, y: query cadence), on one colour scale with a colour bar."""
    n_layers, n_heads = len(attention), attention[0].shape[0]
    n = attention[0].shape[-1]
    vmax = float(max(np.max(a) for a in attention))
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(2.1 * n_heads + 1.2, 2.0 * n_layers + 0.8), squeeze=False)
    ticks = [0, n // 2, n - 1]
    im = None
    for i, layer in enumerate(attention):
        for j in range(n_heads):
            ax = axes[i, j]
            im = ax.imshow(layer[j], cmap="viridis", aspect="auto", interpolation="nearest", vmin=0.0, vmax=vmax)
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.tick_params(labelsize=6)
            ax.grid(False)
            if i == 0:
                ax.set_title(f"head {j}", fontsize=8)
            if i == n_layers - 1:
                ax.set_xlabel("key cadence", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"layer {i}\nquery cadence", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention weight")
    fig.suptitle(_window_title(title, tic, sector, prob), fontsize=9)
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
