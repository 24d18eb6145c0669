"""Integrated gradients, rollout summaries and flare phases."""
from __future__ import annotations

import numpy as np
import torch

from flaredetect.interpret import PHASES, flare_phases, integrated_gradients, phase_mass, rollout_received
from flaredetect.models.cnn import FlareCNN
from flaredetect.models.transformer import FlareTransformer


def test_integrated_gradients_completeness():
    torch.manual_seed(0)
    for net in (FlareTransformer(seq_len=20, d_model=8, num_heads=2, d_ff=16, head_hidden=[8]),
                FlareCNN(seq_len=20, channels=[4, 4, 4], kernel_sizes=[3, 3, 3])):
        net.eval()
        x = torch.rand(3, 20, 3)
        ig = integrated_gradients(net, x, steps=64)
        assert ig.shape == x.shape
        with torch.no_grad():
            gap = net(x)["logit"] - net(torch.zeros_like(x))["logit"]
        torch.testing.assert_close(ig.sum(dim=(1, 2)), gap, atol=5e-3, rtol=3e-2)


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
