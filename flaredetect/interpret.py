"""Interpretability: where does the network look?

* attention rollout (:func:`flaredetect.models.transformer.attention_rollout`), reduced to
  the attention each cadence *receives* (:func:`rollout_received`);
* integrated gradients (Sundararajan et al. 2017) for any network, attention or not;
* a quantitative summary of where attention (or attribution) mass falls relative to the
  flare: pre-flare baseline, rise, peak, decay, elsewhere (:func:`flare_phases`).
"""
from __future__ import annotations

import numpy as np
import torch

from flaredetect.models.transformer import attention_rollout

PHASES = ("pre_flare", "rise", "peak", "decay", "elsewhere")


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


def integrated_gradients(net: torch.nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None,
                         steps: int = 32) -> torch.Tensor:
    """Integrated gradients of the window logit w.r.t. the input features, (B, L, F).

    The default baseline is all zeros: a flat, unflagged window (min–max normalised flux 0,
    gradient 0, quality 0), i.e. "no signal". Midpoint Riemann sum with ``steps`` points;
    the attributions sum to ``logit(x) - logit(baseline)`` up to the discretisation error.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    net.eval()
    x = x.detach().float()
    base = torch.zeros_like(x) if baseline is None else baseline.detach().float().expand_as(x)
    total = torch.zeros_like(x)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        point = (base + alpha * (x - base)).requires_grad_(True)
        logit = net(point)["logit"].float().sum()
        (grad,) = torch.autograd.grad(logit, point)
        total += grad
    return (x - base) * total / steps


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
