"""Sliding-window scoring of a whole light curve into one flare probability per cadence.

How window outputs become per-cadence probabilities
---------------------------------------------------
* The light curve is split into gap-free segments (:func:`flaredetect.data.windowing.segments`,
  the same rule as training windows, so no window spans a gap the model never saw).
* In each segment windows start every ``stride`` cadences and the last window is aligned
  to the segment end, so every cadence is covered (no blind zone at edges or gaps).
  A segment shorter than a window is padded at its end with its own median flux (quality
  0); the padded cadences are scored but dropped.
* ``head='cadence'``: each cadence's probability is the weighted mean of the cadence-head
  probabilities of all windows covering it. Weights are triangular over the window
  (floor 0.1 at the edges): a cadence near a window edge sees only one side of a flare,
  so the windows where it sits nearer the centre dominate.
* ``refine_above`` (cadence head, coarse to fine): the windows that tile each segment
  edge to edge are scored first, and a half-offset window only where that first pass
  reaches ``refine_above`` somewhere inside it, or where its middle half (the seam of two
  tiles) has two consecutive cadences ``refine_sigma`` above its median: a flare cut by a
  seam is half-seen by both tiles, which then both say ~0. On the quiet stretches that make
  up most of a light curve neither holds, the skipped windows would change nothing an event
  threshold sees, and ~30 % fewer windows are scored (same events on all 242 two-minute
  light curves of ../shared/data at the predict defaults 0.05 and 1.5).
* ``head='window'`` (the thesis head): each cadence gets the mean (or max) window
  probability of the windows covering it; localisation is then only as good as the
  stride and events come out about one window wide.

All windows of a light curve go through the network in a few large batches under
``torch.inference_mode`` (a full sector is a few hundred windows).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from flaredetect.data.features import n_features_of, window_features
from flaredetect.data.lightcurve import LightCurve
from flaredetect.data.windowing import segments
from flaredetect.models.transformer import FlareTransformer

HEADS = ("cadence", "window")
REDUCTIONS = ("mean", "max")


def window_starts(n_cadences: int, length: int, stride: int) -> np.ndarray:
    """Starts of windows covering ``[0, n_cadences)``: every ``stride``, the last one
    flush with the end. A span shorter than ``length`` gets one window at 0 (padded)."""
    if n_cadences <= length:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_cadences - length + 1, stride, dtype=np.int64)
    if starts[-1] != n_cadences - length:
        starts = np.append(starts, n_cadences - length)
    return starts


def _taper(length: int, floor: float = 0.1) -> np.ndarray:
    x = np.abs(np.linspace(-1.0, 1.0, length))
    return np.maximum(1.0 - x, floor)


def build_windows(lc: LightCurve, length: int, stride: int, max_gap_cadences: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All scoring windows of ``lc``.

    Returns ``flux`` (W, L) float32, ``quality`` (W, L) uint8, ``index`` (W, L) int64
    cadence index of each window position (-1 on padding) and ``segment_of_window`` (W,).
    """
    fluxes, quals, idxs, seg_ids = [], [], [], []
    flux_all = np.asarray(lc.flux_rel, dtype=np.float32)
    qual_all = (np.asarray(lc.quality) != 0).astype(np.uint8)
    for k, (a, b) in enumerate(segments(lc.time_btjd, max_gap_cadences)):
        n = b - a
        starts = window_starts(n, length, stride)
        take = starts[:, None] + np.arange(length)[None, :]
        valid = take < n
        index = np.where(valid, take + a, -1)
        safe = np.where(valid, take + a, a)
        flux = flux_all[safe]
        if not valid.all():
            flux = np.where(valid, flux, np.float32(np.median(flux_all[a:b])))
        fluxes.append(flux)
        quals.append(np.where(valid, qual_all[safe], 0).astype(np.uint8))
        idxs.append(index)
        seg_ids.append(np.full(len(starts), k))
    if not fluxes:
        empty = np.zeros((0, length))
        return empty.astype(np.float32), empty.astype(np.uint8), empty.astype(np.int64), np.zeros(0, np.int64)
    return (np.concatenate(fluxes), np.concatenate(quals), np.concatenate(idxs), np.concatenate(seg_ids))


def cadence_only(net: nn.Module) -> Callable | None:
    """For a :class:`FlareTransformer` with a cadence head, a forward pass that skips the
    window head (in the default model its flatten → 512 layer is a third of the FLOPs)."""
    if not isinstance(net, FlareTransformer) or net.cadence_head is None:
        return None

    def forward(x: torch.Tensor) -> dict:
        h = net.input_dropout(net.position(net.embed(x)))
        for layer in net.layers:
            h, _ = layer(h)
        return {"cadence_logit": net.cadence_head(h).squeeze(-1)}
    return forward


def run_net(net: nn.Module | Callable, flux: np.ndarray, quality: np.ndarray, batch_size: int = 1024,
            cadence_only_pass: bool = False, device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Window and (when present) cadence probabilities of raw windows, batched; on ``device``
    (None: where the network's parameters are) the features are computed there too."""
    probs, cadence = [], []
    fast = cadence_only(net) if cadence_only_pass else None
    device = torch.device(device) if device is not None else device_of(net)
    with torch.inference_mode():
        for i in range(0, len(flux), batch_size):
            x = window_features(torch.from_numpy(flux[i:i + batch_size]).to(device),
                                torch.from_numpy(quality[i:i + batch_size]).to(device), n_features_of(net))
            out = fast(x) if fast is not None else net(x)
            if "logit" in out:
                probs.append(torch.sigmoid(out["logit"].float()).cpu().numpy())
            if "cadence_logit" in out:
                cadence.append(torch.sigmoid(out["cadence_logit"].float()).cpu().numpy())
    result = {"window_prob": np.concatenate(probs) if probs else np.zeros(0, np.float32)}
    if cadence:
        result["cadence_prob"] = np.concatenate(cadence)
    return result


def device_of(net) -> torch.device:
    """Where a network's parameters are (the CPU for a parameterless callable)."""
    params = getattr(net, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


def tiling_windows(index: np.ndarray, segment_of_window: np.ndarray, length: int) -> np.ndarray:
    """Mask of the windows (of :func:`build_windows`) that tile each segment edge to edge:
    those starting a multiple of ``length`` into it, and each segment's last (end-flush)
    one, which together cover every cadence when the stride divides ``length``."""
    first = index[:, 0]
    seg_start = np.full(segment_of_window.max() + 1 if len(first) else 0, np.iinfo(np.int64).max)
    np.minimum.at(seg_start, segment_of_window, first)
    tiles = (first - seg_start[segment_of_window]) % length == 0
    last = np.r_[segment_of_window[1:] != segment_of_window[:-1], True] if len(first) else tiles
    return tiles | last


def _weighted_mean(index: np.ndarray, prob: np.ndarray, length: int, n: int) -> np.ndarray:
    valid = index >= 0
    weight = np.broadcast_to(_taper(length), index.shape)[valid]
    num = np.bincount(index[valid], weights=weight * prob[valid], minlength=n)
    den = np.bincount(index[valid], weights=weight, minlength=n)
    return num / np.maximum(den, 1e-12)


def _in_one_pass(net, parts: list[tuple[np.ndarray, np.ndarray]], batch_size: int, cadence: bool,
                 device) -> list[dict[str, np.ndarray]]:
    """:func:`run_net` of several light curves' windows ``(flux, quality)`` in shared batches
    (the network sees full batches however short each light curve is), split back per part."""
    counts = [len(f) for f, _ in parts]
    if not sum(counts):
        return [{"window_prob": np.zeros(0, np.float32), "cadence_prob": np.zeros(f.shape, np.float32)}
                for f, _ in parts]
    out = run_net(net, np.concatenate([f for f, _ in parts]), np.concatenate([q for _, q in parts]), batch_size,
                  cadence_only_pass=cadence, device=device)
    if cadence and "cadence_prob" not in out:
        raise ValueError("head='cadence' but the model has no cadence head (train with model.cadence_head=true, "
                         "or predict with head=window)")
    bounds = np.cumsum([0, *counts])
    return [{k: v[a:b] for k, v in out.items()} for a, b in zip(bounds[:-1], bounds[1:])]


def seam_excess(flux: np.ndarray, n_sigma: float) -> np.ndarray:
    """Per window: two consecutive cadences of its middle half ``n_sigma`` above the window
    median, in the point-to-point robust sigma (the white noise, as feature 4)."""
    diff = np.diff(flux, axis=1)
    mad = np.median(np.abs(diff - np.median(diff, axis=1, keepdims=True)), axis=1, keepdims=True)
    sigma = np.maximum(1.4826 * mad / np.sqrt(2.0), 1e-12)
    length = flux.shape[1]
    high = flux[:, length // 4: 3 * length // 4] - np.median(flux, axis=1, keepdims=True) > n_sigma * sigma
    return (high[:, 1:] & high[:, :-1]).any(axis=1)


def _refined(net, windows: list[tuple], length: int, sizes: list[int], refine_above: float, refine_sigma: float,
             batch_size: int, device) -> list[np.ndarray]:
    """Cadence probabilities from the tiling windows plus the half-offset windows in which the
    tiling pass reaches ``refine_above`` or the flux has a seam excess, for several light
    curves, each pass in shared batches. A light curve whose tiling does not cover every
    cadence (a stride that does not divide the length) has every window scored."""
    first_pass = []
    for (flux, quality, index, segment_of_window), n in zip(windows, sizes):
        coarse = tiling_windows(index, segment_of_window, length)
        covered = np.zeros(n, bool)
        covered[index[coarse][index[coarse] >= 0]] = True
        first_pass.append(coarse if covered.all() else np.ones(len(index), bool))
    scored = _in_one_pass(net, [(w[0][m], w[1][m]) for w, m in zip(windows, first_pass)], batch_size, True, device)
    second_pass = []
    for (flux, quality, index, _), n, coarse, out in zip(windows, sizes, first_pass, scored):
        first = _weighted_mean(index[coarse], out["cadence_prob"], length, n)
        fine = ~coarse & (np.where(index >= 0, first[np.maximum(index, 0)], 0.0).max(axis=1) >= refine_above)
        rest = ~coarse & ~fine
        fine[rest] = seam_excess(flux[rest], refine_sigma)
        second_pass.append(fine)
    rescored = _in_one_pass(net, [(w[0][m], w[1][m]) for w, m in zip(windows, second_pass)], batch_size, True,
                            device)
    result = []
    for (_, _, index, _), n, coarse, fine, out, more in zip(windows, sizes, first_pass, second_pass, scored,
                                                           rescored):
        prob = np.zeros(index.shape, np.float32)
        prob[coarse] = out["cadence_prob"]
        prob[fine] = more["cadence_prob"]
        keep = coarse | fine
        result.append(_weighted_mean(index[keep], prob[keep], length, n).astype(np.float32))
    return result


def _window_head(index: np.ndarray, window_prob: np.ndarray, n: int, reduce: str) -> np.ndarray:
    valid = index >= 0
    flat_idx = index[valid]
    window = np.broadcast_to(window_prob[:, None], index.shape)[valid]
    if reduce == "mean":
        return np.bincount(flat_idx, weights=window, minlength=n) / np.maximum(np.bincount(flat_idx, minlength=n), 1)
    prob = np.zeros(n)
    np.maximum.at(prob, flat_idx, window)
    return prob


def score_light_curve(net: nn.Module | Callable, lc: LightCurve, length: int, stride: int | None = None,
                      head: str = "cadence", max_gap_cadences: int = 5, reduce: str = "mean",
                      batch_size: int = 1024, refine_above: float | None = None, refine_sigma: float = 1.5,
                      device: str | torch.device | None = None) -> np.ndarray:
    """Flare probability for every cadence of ``lc`` (float32, aligned with ``lc.time_btjd``).

    ``stride`` defaults to ``length // 2`` for the cadence head (every cadence in two windows;
    the triangular weights then sum to a constant) and ``length // 10`` for the window head
    (which needs a fine stride to localise anything). ``refine_above`` (cadence head): score
    the overlapping windows only where the edge-to-edge windows reach this probability or the
    flux ``refine_sigma`` (module docstring); None scores every window. ``device``: where the
    network runs (None: where its parameters are).
    """
    return score_light_curves(net, [lc], length, stride, head, max_gap_cadences, reduce, batch_size, refine_above,
                              refine_sigma, device)[0]


def score_light_curves(net: nn.Module | Callable, lcs: list[LightCurve], length: int, stride: int | None = None,
                       head: str = "cadence", max_gap_cadences: int = 5, reduce: str = "mean",
                       batch_size: int = 1024, refine_above: float | None = None, refine_sigma: float = 1.5,
                       device: str | torch.device | None = None) -> list[np.ndarray]:
    """:func:`score_light_curve` of several light curves whose windows share the network's
    batches (what keeps a GPU busy: a 2-minute sector is only a few hundred windows). Each
    result is that of scoring the light curve alone, up to float rounding."""
    if head not in HEADS:
        raise ValueError(f"head={head!r} must be one of {list(HEADS)}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce={reduce!r} must be one of {list(REDUCTIONS)}")
    for lc in lcs:
        if len(lc) == 0:
            raise ValueError(f"TIC {lc.tic}: light curve has no cadences")
    if stride is None:
        stride = max(1, length // 2 if head == "cadence" else length // 10)
    if stride < 1:
        raise ValueError(f"stride={stride} must be >= 1")
    if refine_above is not None and not 0.0 <= refine_above <= 1.0:
        raise ValueError(f"refine_above={refine_above} must be a probability in [0, 1] (or null: every window)")
    windows = [build_windows(lc, length, stride, max_gap_cadences) for lc in lcs]
    sizes = [len(lc) for lc in lcs]
    if head == "cadence" and refine_above is not None:
        return _refined(net, windows, length, sizes, refine_above, refine_sigma, batch_size, device)
    scored = _in_one_pass(net, [(w[0], w[1]) for w in windows], batch_size, head == "cadence", device)
    if head == "cadence":
        return [_weighted_mean(w[2], out["cadence_prob"], length, n).astype(np.float32)
                for w, out, n in zip(windows, scored, sizes)]
    return [_window_head(w[2], out["window_prob"], n, reduce).astype(np.float32)
            for w, out, n in zip(windows, scored, sizes)]
