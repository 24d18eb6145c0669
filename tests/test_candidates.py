"""The significance gate: the network's probability survives only near 3-sigma candidates."""
import numpy as np
import pytest

from flaredetect.data.flare_model import flare_flux
from flaredetect.data.lightcurve import CADENCE_DAYS, LightCurve
from flaredetect.inference import EventParams, Predictor, SignificanceGate


def light_curve(flare_at: int | None = 3000, n: int = 6000, sigma: float = 1e-3, seed: int = 0) -> LightCurve:
    time = 1354.0 + np.arange(n) * CADENCE_DAYS
    time[n // 2:] += 1.0  # a one-day gap: the gate must work on both sides
    flux = np.random.default_rng(seed).normal(0.0, sigma, n)
    if flare_at is not None:
        flux += flare_flux(time, time[flare_at], 8.0 / 1440.0, 20 * sigma)
    return LightCurve(tic=1, sector=2, time_btjd=time, flux_rel=flux, flux_err=np.full(n, sigma),
                      quality=np.zeros(n, dtype=np.int32))


def test_gate_keeps_the_flare_and_its_padding_and_nothing_far_away():
    lc = light_curve()
    gate = SignificanceGate(n_sigma=3.0, min_points=3, pad_cadences=5)
    mask = gate.mask(lc)
    assert mask[3000:3004].all()  # peak and the first decay cadences are candidates
    first = np.flatnonzero(mask[2900:3100])[0] + 2900
    assert first == 3000 - 5  # the rise is reached through the padding
    assert mask[:2500].sum() + mask[3500:].sum() < 20  # pure noise: almost never 3 x 3 sigma in a row
    prob = np.full(len(lc), 0.9, dtype=np.float32)
    gated = gate.apply(lc, prob)
    assert gated.dtype == np.float32
    assert np.array_equal(gated > 0, mask) and np.all(gated[mask] == np.float32(0.9))


def test_predictor_with_gate_finds_the_flare_and_drops_noise_events():
    lc = light_curve()
    always = lambda lc_: np.full(len(lc_), 0.9, dtype=np.float32)  # noqa: E731 - fires everywhere
    params = EventParams(threshold=0.5, min_cadences=2)
    _, alone = Predictor(scorer=always, events=params).predict(lc)
    prob, gated = Predictor(scorer=always, events=params, gate=SignificanceGate()).predict(lc)
    # the scorer alone calls a whole segment a flare (the flare-free half has no net excess,
    # so its event is dropped) ... but no event crosses the data gap
    assert alone["n_cadences"].max() > 0.45 * len(lc)
    gap = lc.time_btjd[len(lc) // 2]
    assert 1 <= len(alone["peak_time_btjd"]) <= 2
    assert np.all((alone["stop_time_btjd"] < gap) | (alone["start_time_btjd"] >= gap))
    hits = np.abs(gated["peak_time_btjd"] - lc.time_btjd[3000]) < 3 * CADENCE_DAYS
    assert hits.sum() == 1
    assert (prob == 0).mean() > 0.95


def test_gate_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="candidates.n_sigma=0"):
        SignificanceGate(n_sigma=0)
    with pytest.raises(ValueError, match="candidates.pad_cadences=-1"):
        SignificanceGate(pad_cadences=-1)
