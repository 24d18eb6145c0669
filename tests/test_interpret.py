"""Integrated gradients, rollout summaries and flare phases."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from flaredetect.data.features import window_features
from flaredetect.data.synthetic_windows import SyntheticWindows
from flaredetect.interpret import (PHASES, BaselineScoredAsFlareWarning, flare_phases, integrated_gradients,
                                   phase_mass, quiet_baselines, rollout_received)
from flaredetect.models.cnn import FlareCNN
from flaredetect.models.transformer import FlareTransformer


@pytest.mark.filterwarnings("ignore::flaredetect.interpret.BaselineScoredAsFlareWarning")  # untrained nets
def test_integrated_gradients_completeness():
    torch.manual_seed(0)
    for net in (FlareTransformer(seq_len=20, d_model=8, num_heads=2, d_ff=16, head_hidden=[8]),
                FlareCNN(seq_len=20, channels=[4, 4, 4], kernel_sizes=[3, 3, 3])):
        net.eval()
        x = torch.rand(3, 20, 3)
        ig = integrated_gradients(net, x, steps=64, n_baselines=2)
        assert ig.shape == x.shape
        explicit = integrated_gradients(net, x, baseline=torch.zeros(20, 3), steps=64)
        with torch.no_grad():
            logit = net(x)["logit"]
            quiet_gap = logit - net(quiet_baselines(20, 3, n=2))["logit"].mean()  # the default: mean over baselines
            zero_gap = logit - net(torch.zeros_like(x))["logit"]
        torch.testing.assert_close(ig.sum(dim=(1, 2)), quiet_gap, atol=5e-3, rtol=3e-2)
        torch.testing.assert_close(explicit.sum(dim=(1, 2)), zero_gap, atol=5e-3, rtol=3e-2)


class _AlwaysFlare(torch.nn.Module):
    def forward(self, x):
        return {"logit": x.sum(dim=(1, 2)) * 0 + 5.0}


def test_integrated_gradients_warns_when_quiet_baseline_is_scored_as_flare():
    with pytest.warns(BaselineScoredAsFlareWarning, match="scores the quiet-star baselines as flares"):
        integrated_gradients(_AlwaysFlare(), torch.rand(2, 20, 3), steps=2)


def _confident_flares_of_a_small_trained_detector(tmp_path, seed: int = 2, epochs: int = 25):
    """A small 4-feature transformer trained for seconds on synthetic windows (a plain loop:
    the Lightning path gives no confident detections within a test's time), and its training
    windows with a detected flare at p > 0.9: features, centre-cropped windows."""
    torch.manual_seed(seed)
    source = SyntheticWindows(n_stars=40, seed=seed, cache_dir=tmp_path)
    crop = slice(source.spec.context, source.spec.context + source.spec.length)
    w = {k: v[:, crop] if v.ndim == 2 else v for k, v in source.build().items()}
    x = window_features(torch.as_tensor(w["flux_rel"]), torch.as_tensor(w["quality"]), n_features=4)
    y = torch.as_tensor(w["label"]).float()
    net = FlareTransformer(seq_len=source.spec.length, input_dim=4, d_model=16, num_heads=2, d_ff=32,
                           head_hidden=[32], dropout=0.0, pooling="mean")
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(y)).split(32):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[batch])["logit"], y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        prob = torch.sigmoid(net(x)["logit"]).numpy()
    keep = np.flatnonzero((w["label"] > 0) & (prob > 0.9))[:32]
    return net, x[keep], {k: v[keep] for k, v in w.items()}


def test_integrated_gradients_attribute_flare_peak_positively(tmp_path):
    """Regression: against the all-zeros baseline (scored p ~ 1) a detected flare's own
    cadences got negative attribution."""
    net, x, w = _confident_flares_of_a_small_trained_detector(tmp_path)
    assert len(x) >= 10, "the small detector found too few confident flares to test on"
    ig = integrated_gradients(net, x, steps=16).sum(-1).numpy()
    phases = np.stack([flare_phases(*(w[k][i] for k in ("flux_rel", "flare_mask", "peak_mask")))
                       for i in range(len(x))])
    flare = np.isin(phases, [PHASES.index(p) for p in ("rise", "peak", "decay")])
    on_flare = (ig * flare).sum(axis=1)
    assert np.mean(on_flare > 0) >= 0.9, f"attribution on the flare's rise, peak and decay: {np.round(on_flare, 2)}"


def test_rollout_received_sums_to_one_and_follows_attention():
    b, h, n = 2, 2, 6
    att = torch.full((b, h, n, n), 1e-6)
    att[..., 3] = 1.0  # every query attends to cadence 3
    att = att / att.sum(-1, keepdim=True)
    received = rollout_received([att, att])
    torch.testing.assert_close(received.sum(-1), torch.ones(b))
    assert (received.argmax(-1) == 3).all()
    out = FlareTransformer(seq_len=6, d_model=8, num_heads=2, d_ff=16, head_hidden=[8])(torch.rand(2, 6, 3),
                                                                                     return_attention=True)
    torch.testing.assert_close(rollout_received(out["attention"]).sum(-1), torch.ones(2))


def test_flare_phases_on_constructed_window():
    flux = np.zeros(40)
    fm = np.zeros(40, int)
    pm = np.zeros(40, int)
    fm[20:30] = 1          # flare cadences 20..29
    flux[20:30] = [1, 3, 9, 6, 4, 3, 2, 1, 1, 0.5]
    pm[22] = 1             # detectable peak
    phase = flare_phases(flux, fm, pm, pre_cadences=5)
    names = [PHASES[k] for k in phase]
    assert names[15:20] == ["pre_flare"] * 5 and names[14] == "elsewhere"
    assert names[20:22] == ["rise"] * 2 and names[22] == "peak" and names[23:30] == ["decay"] * 7
    assert names[30] == "elsewhere"
    assert set(flare_phases(flux, fm, np.zeros(40, int))) == {PHASES.index("elsewhere")}


def test_phase_mass_normalises_and_measures_enrichment():
    phases = np.array([[0, 1, 2, 3, 4, 4, 4, 4]])
    weights = np.array([[0, 0, 6, 0, 1, 1, 1, 1]], float)
    s = phase_mass(weights, phases)
    assert s["peak"]["mass"] == 0.6 and s["elsewhere"]["mass"] == 0.4
    assert s["peak"]["cadence_share"] == 1 / 8 and np.isclose(s["peak"]["enrichment"], 4.8)
    assert np.isclose(sum(s[p]["mass"] for p in PHASES), 1.0)
