"""Interpretability: where does the network look?

* attention rollout (:func:`flaredetect.models.transformer.attention_rollout`), reduced to
  the attention each cadence *receives* (:func:`rollout_received`);
* integrated gradients (Sundararajan et al. 2017) for any network, attention or not,
  against quiet-star baselines (:func:`quiet_baselines`);
* a quantitative summary of where attention (or attribution) mass falls relative to the
  flare: pre-flare baseline, rise, peak, decay, elsewhere (:func:`flare_phases`).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from flaredetect.data.features import window_features
from flaredetect.models.transformer import attention_rollout

PHASES = ("pre_flare", "rise", "peak", "decay", "elsewhere")
QUIET_BASELINES = 8  # quiet-star windows integrated gradients average over by default


def rollout_received(attention: list[torch.Tensor]) -> torch.Tensor:
    """Rollout averaged over queries: (B, L), each row sums to 1."""
    return attention_rollout(attention).mean(dim=1)


@torch.no_grad()
def attention_and_probability(net: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Probability per window and, for attention networks, the per-layer attention (numpy)."""
    net.eval()
    out = net(x, return_attention=True)
    prob = torch.sigmoid(out["logit"].float()).cpu().numpy()
    att = out.get("attention")
    if att is None or any(a is None for a in att):
        return prob, None
    return prob, [a.float().cpu().numpy() for a in att]


class BaselineScoredAsFlareWarning(UserWarning):
    """The integrated-gradients baseline is itself scored as a flare, so the attributions
    explain the window against a flare instead of against a quiet star."""


def quiet_baselines(seq_len: int, n_features: int = 3, n: int = QUIET_BASELINES, seed: int = 0,
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """Features ``(n, seq_len, n_features)`` of quiet-star windows: white-noise flux N(0, 1),
    no quality flags, through the model's own :func:`window_features` (min–max normalisation
    and the significance feature are scale-free, so the noise level does not matter).
    Fixed ``seed``: the same windows every call, so attributions are reproducible."""
    flux = torch.randn(n, seq_len, generator=torch.Generator().manual_seed(seed))
    return window_features(flux, torch.zeros_like(flux), n_features).to(device)


def _warn_if_scored_as_flare(net: torch.nn.Module, baselines: torch.Tensor) -> None:
    with torch.no_grad():
        prob = torch.sigmoid(net(baselines)["logit"].float())
    if prob.mean() >= 0.5:
        warnings.warn(f"the network scores the quiet-star baselines as flares (mean p={prob.mean():.2f}, "
                      f"{int((prob >= 0.5).sum())} of {len(prob)} at p >= 0.5): integrated gradients then "
                      "explain the window against a flare, not against a quiet star; pass baseline= explicitly "
                      "or use a better-trained network", BaselineScoredAsFlareWarning, stacklevel=3)


def _path_integral(net: torch.nn.Module, x: torch.Tensor, base: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrated gradients from one baseline: midpoint Riemann sum with ``steps`` points."""
    total = torch.zeros_like(x)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        point = (base + alpha * (x - base)).requires_grad_(True)
        logit = net(point)["logit"].float().sum()
        (grad,) = torch.autograd.grad(logit, point)
        total += grad
    return (x - base) * total / steps


def integrated_gradients(net: torch.nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None,
                         steps: int = 32, n_baselines: int = QUIET_BASELINES) -> torch.Tensor:
    """Integrated gradients of the window logit w.r.t. the input features, (B, L, F).

    Default baseline: ``n_baselines`` quiet-star windows (:func:`quiet_baselines`), the
    attributions averaged over them (expected-gradients style). Why: attributions mean
    "evidence for a flare" only against a reference the network scores as no flare; the
    all-zeros window is none (no real window's min–max flux is 0 everywhere, and trained
    networks score it p ≈ 1, which turned a flare's peak negative), and averaging keeps one
    noise draw's spikes out of the result. Warns (:class:`BaselineScoredAsFlareWarning`)
    when the network scores these baselines p >= 0.5 on average. An explicit ``baseline``
    (broadcastable to ``x``) replaces them.

    Completeness: the attributions of a window sum to ``logit(x) - logit(baseline)``
    (averaged over the baselines) up to the discretisation error of ``steps`` midpoints.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    if n_baselines < 1:
        raise ValueError(f"n_baselines={n_baselines} must be >= 1")
    net.eval()
    x = x.detach().float()
    if baseline is None:
        bases = quiet_baselines(x.shape[1], x.shape[2], n_baselines, device=x.device)
        _warn_if_scored_as_flare(net, bases)
    else:
        bases = baseline.detach().float().to(x.device).expand_as(x)[None]
    return torch.stack([_path_integral(net, x, b.expand_as(x), steps) for b in bases]).mean(dim=0)


def flare_phases(flux_rel: np.ndarray, flare_mask: np.ndarray, peak_mask: np.ndarray,
                 pre_cadences: int = 10) -> np.ndarray:
    """Phase index (into :data:`PHASES`) of every cadence of one flare window.

    The peak is the brightest cadence marked in ``peak_mask`` (detectable peaks); the flare
    is the contiguous ``flare_mask`` run around it; rise = the run before the peak, decay
    = after it, pre-flare baseline = the ``pre_cadences`` cadences before the run (20 min
    at 2-min cadence); everything else (other flares included) is "elsewhere".
    """
    flux = np.asarray(flux_rel, dtype=np.float64)
    fm = np.asarray(flare_mask).astype(bool)
    peaks = np.flatnonzero(np.asarray(peak_mask).astype(bool))
    phase = np.full(len(flux), PHASES.index("elsewhere"), dtype=np.int64)
    if not len(peaks):
        return phase
    p = int(peaks[np.argmax(flux[peaks])])
    a = p
    while a > 0 and fm[a - 1]:
        a -= 1
    b = p
    while b < len(fm) - 1 and fm[b + 1]:
        b += 1
    phase[max(a - pre_cadences, 0):a] = PHASES.index("pre_flare")
    phase[a:p] = PHASES.index("rise")
    phase[p] = PHASES.index("peak")
    phase[p + 1:b + 1] = PHASES.index("decay")
    return phase


def phase_mass(weights: np.ndarray, phases: np.ndarray) -> dict:
    """Where the mass of non-negative per-cadence ``weights`` (B, L) falls by phase.

    Each window's weights are normalised to sum 1. Returns, per phase, the mean mass
    share over windows, the mean share of cadences in that phase, and their ratio
    ("enrichment": > 1 means the phase gets more than its share of cadences).
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    w = w / np.clip(w.sum(axis=1, keepdims=True), 1e-300, None)
    ph = np.asarray(phases)
    out = {"n_windows": int(len(w))}
    for k, name in enumerate(PHASES):
        mass = float((w * (ph == k)).sum(axis=1).mean()) if len(w) else float("nan")
        share = float((ph == k).mean(axis=1).mean()) if len(w) else float("nan")
        out[name] = {"mass": mass, "cadence_share": share, "enrichment": mass / share if share > 0 else float("nan")}
    return out
