"""Model inputs from raw windows: the thesis's three features per cadence, plus an
optional fourth.

1. flux min–max normalised within the window (the thesis's key fix: each window on its
   own scale, stellar variability kept, no detrending);
2. its gradient (difference to the previous cadence, 0 at the first cadence);
3. the binary quality indicator;
4. (``n_features=4``) significance: flux above the window median in units of the
   window's own robust white-noise sigma (point-to-point MAD), clipped to [-10, 50] and
   divided by 10. Min–max normalisation makes a 3-sigma noise spike and a 30-sigma flare
   look alike; this feature gives the network the signal-to-noise back, using only the
   window itself, so prediction needs nothing else.
5. (``n_features=5``: 1–4 plus) detrended significance: the same, measured against a robust
   quadratic trend of the window (least squares, flare-side outliers replaced by the trend and
   refitted twice) instead of its median. On a fast rotator (period < 1 d, percent-level
   amplitude) the median of a 200-minute window sits far from the local flux, so feature 4
   reads the rotation as tens of sigma; the trend follows it. A fixed linear projection per
   window length, so it stays ONNX-exportable.

A network's ``input_dim`` chooses the set (:func:`n_features_of`), so a checkpoint
carries its feature set. Works on batches of torch tensors on any device (data loader,
GPU after transfer, prediction, ONNX export: no ``torch.diff``/``median`` ops).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

FEATURE_SETS = {3: ("flux_minmax", "gradient", "quality"), 4: ("flux_minmax", "gradient", "quality", "significance"),
                5: ("flux_minmax", "gradient", "quality", "significance", "detrended_significance")}
TREND_CLIP_SIGMA = 2.5


@lru_cache(maxsize=16)
def _hat(length: int) -> np.ndarray:
    u = np.linspace(-1.0, 1.0, length)
    design = np.stack([np.ones_like(u), u, u * u], axis=1)
    return design @ np.linalg.inv(design.T @ design) @ design.T


def _quadratic_projection(length: int, device, dtype=torch.float32) -> torch.Tensor:
    """``(L, L)`` hat matrix of a least-squares quadratic in time: ``y @ P`` is the fit (a
    constant: computed in NumPy, so an exported graph holds the matrix, not its inversion)."""
    return torch.as_tensor(_hat(int(length)), dtype=dtype, device=device)


def detrended_significance(flux: torch.Tensor, sigma: torch.Tensor, passes: int = 3) -> torch.Tensor:
    """``(flux - robust quadratic trend) / sigma`` per window (see the module docstring)."""
    hat = _quadratic_projection(flux.shape[-1], flux.device, flux.dtype)
    trend = flux @ hat
    for _ in range(passes - 1):
        trend = torch.where(flux - trend > TREND_CLIP_SIGMA * sigma, trend, flux) @ hat
    return (flux - trend) / sigma.clamp_min(1e-9)


def n_features_of(net) -> int:
    """The feature count a network was built for (its ``input_dim``; 3 when it has none)."""
    return int(getattr(net, "input_dim", 3))


def _middle(x: torch.Tensor) -> torch.Tensor:
    """Median along the last axis (upper middle for even lengths), ONNX-exportable."""
    return x.sort(dim=-1).values[..., x.shape[-1] // 2: x.shape[-1] // 2 + 1]


def window_features(flux_rel: torch.Tensor, quality: torch.Tensor, n_features: int = 3) -> torch.Tensor:
    """``(B, L)`` relative flux and quality flags → ``(B, L, n_features)`` float32 features."""
    if n_features not in FEATURE_SETS:
        raise ValueError(f"model.input_dim={n_features} has no feature set; choose one of {sorted(FEATURE_SETS)}")
    flux = flux_rel.float()
    low = flux.amin(dim=-1, keepdim=True)
    span = (flux.amax(dim=-1, keepdim=True) - low).clamp_min(1e-12)
    norm = (flux - low) / span
    grad = torch.cat([torch.zeros_like(norm[..., :1]), norm[..., 1:] - norm[..., :-1]], dim=-1)
    features = [norm, grad, (quality != 0).float()]
    if n_features >= 4:
        diff = flux[..., 1:] - flux[..., :-1]
        sigma = 1.4826 * _middle((diff - _middle(diff)).abs()) / math.sqrt(2.0)
        features.append(((flux - _middle(flux)) / sigma.clamp_min(1e-9)).clamp(-10.0, 50.0) / 10.0)
    if n_features == 5:
        features.append(detrended_significance(flux, sigma).clamp(-10.0, 50.0) / 10.0)
    return torch.stack(features, dim=-1)
