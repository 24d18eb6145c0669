"""Threshold detector and the stella-like CNN baseline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from flaredetect.baselines.threshold import (score_to_probability, threshold_flags, threshold_window_scores,
                                             variability_window_days)
from flaredetect.data.lightcurve import CADENCE_DAYS
from flaredetect.models.cnn import FlareCNN

SIGMA = 1e-3


def _light_curve(seed=0, period=0.8, amp=0.01, n=6000):
    rng = np.random.default_rng(seed)
    t = 1400.0 + np.arange(n) * CADENCE_DAYS
    keep = np.ones(n, bool)
    keep[2500:2800] = False  # a 10-hour gap
    t = t[keep]
    flux = amp * np.sin(2 * np.pi * t / period) + rng.normal(0, SIGMA, t.size)
    flux[t > t[2499]] += 0.02  # offset across the gap: must not look like a flare
    return t, flux


def _inject(t, flux, peaks, amps, decay_cadences=6.0):
    flux = flux.copy()
    for i, a in zip(peaks, amps):
        k = np.arange(t.size) - i
        flux += np.where(k >= 0, a * np.exp(-np.clip(k, 0, None) / decay_cadences), 0.0)
    return flux


def test_threshold_recovers_injected_flares_above_5_sigma():
    t, flux = _light_curve()
    peaks = np.array([300, 900, 1500, 2100, 3000, 3600, 4300, 5200])
    amps = np.array([5.5, 6, 8, 10, 15, 20, 30, 50]) * SIGMA
    flags = threshold_flags(t, _inject(t, flux, peaks, amps))
    assert flags[peaks].all(), f"missed flares at {peaks[~flags[peaks]]}"
    events = np.flatnonzero(np.diff(flags.astype(int)) == 1)
    assert len(events) <= len(peaks) + 3  # hardly any false alarms on a 1 % fast rotator
    assert not threshold_flags(t, flux).any() or threshold_flags(t, flux).sum() < 10
    # the gap and the offset across it are not flagged
    assert not flags[2495:2505].any()


def test_threshold_needs_min_points_consecutive():
    t = 1400.0 + np.arange(3000) * CADENCE_DAYS
    flux = np.random.default_rng(1).normal(0, SIGMA, t.size)
    flux[1000] += 50 * SIGMA           # a cosmic ray: one cadence
    flux[2000:2002] += 50 * SIGMA      # two cadences
    flags = threshold_flags(t, flux, window_days=0.2)
    assert not flags[995:1005].any() and not flags[1995:2005].any()
    flags2 = threshold_flags(t, flux, min_points=1, window_days=0.2)
    assert flags2[1000] and flags2[2000:2002].all()


def test_window_width_follows_rotation():
    t, fast = _light_curve(period=0.4, amp=0.02)
    quiet = np.random.default_rng(2).normal(0, SIGMA, t.size)
    assert variability_window_days(t, fast) < variability_window_days(t, quiet)


def test_threshold_flags_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        threshold_flags(np.arange(5.0), np.arange(4.0))
    with pytest.raises(ValueError, match="n_sigma"):
        threshold_flags(np.arange(5.0), np.arange(5.0), n_sigma=0)
    nan_flux = np.full(100, np.nan)
    assert not threshold_flags(np.arange(100) * CADENCE_DAYS, nan_flux).any()


def test_window_scores_decision_at_one():
    rng = np.random.default_rng(3)
    w = rng.normal(0, SIGMA, (4, 100))
    w[0, 50:53] += 8 * SIGMA       # three consecutive points far above 3 sigma
    w[1, 50:52] += 8 * SIGMA       # only two
    w[2, 40:70] += np.linspace(0, 1, 30) * 0  # nothing
    w[3, 50:56] = np.nan           # NaNs never count
    scores = threshold_window_scores(w)
    assert scores[0] >= 1 > scores[1] and scores[2] < 1 and np.isfinite(scores[3]) and scores[3] < 1
    assert threshold_window_scores(w, min_points=2)[1] >= 1
    p = score_to_probability(np.array([-5.0, 0.0, 1.0, 2.0, 1e6, np.inf]))
    assert p[2] == 0.5 and np.all(np.diff(p) > 0) and p[-1] == 1.0
    with pytest.raises(ValueError, match="shape"):
        threshold_window_scores(np.zeros(10))


def test_cnn_forward_contract():
    net = FlareCNN(seq_len=100)
    x = torch.randn(5, 100, 3)
    out = net(x, return_attention=True)
    assert set(out) == {"logit"} and out["logit"].shape == (5,)
    assert net.seq_len == 100
    with pytest.raises(ValueError, match="seq_len=100"):
        net(torch.randn(2, 50, 3))
    with pytest.raises(ValueError, match="kernel_sizes"):
        FlareCNN(kernel_sizes=(7, 4, 3))


def test_cnn_config_instantiates():
    from flaredetect.train import CONFIG_DIR

    cfg = OmegaConf.load(f"{CONFIG_DIR}/model/cnn.yaml")
    net = instantiate(cfg)
    assert isinstance(net, FlareCNN) and len([m for m in net.modules() if isinstance(m, torch.nn.Conv1d)]) == 3
