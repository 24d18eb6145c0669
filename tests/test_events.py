"""Flare-table rows are physical: the event properties measured on the flux, on slopes and
on real rotating stars, whatever spans the detector hands over."""
from __future__ import annotations

import numpy as np
import pytest

from flaredetect.data.flare_model import equivalent_duration_s, flare_flux
from flaredetect.data.lightcurve import CADENCE_DAYS, LightCurve
from flaredetect.inference import EventParams, extract_events

SIGMA = 1e-3


def _flare_on(background: np.ndarray, time: np.ndarray, peak: float, fwhm_days: float, amplitude: float):
    model = flare_flux(time, peak, fwhm_days, amplitude)
    flux = background + model * (1 + background)
    return LightCurve(1, 2, time, flux, np.full(len(time), SIGMA), np.zeros(len(time), int)), model


def _oracle(model: np.ndarray, level: float) -> np.ndarray:
    """What a perfect detector marks: the cadences where the flare stands above ``level``."""
    return (model > level).astype(np.float32)


@pytest.mark.parametrize("slope_per_day", [-0.4, 0.4])
def test_flare_on_a_rotational_slope_keeps_its_peak_amplitude_and_ed(slope_per_day):
    """A short flare on a steep rotational slope (a 0.4 d^-1 ramp with curvature, as on a
    fast rotator): the peak is the flare's, not the event's last cadence; amplitude and ED
    are those of the same flare on a flat star (no integration up the slope)."""
    rng = np.random.default_rng(3)
    time = 1400.0 + np.arange(2000) * CADENCE_DAYS
    noise = rng.normal(0, SIGMA, len(time))
    x = time - time[1000]
    rotation = slope_per_day * x + 2.0 * x**2
    peak, fwhm, amp = time[1000] + 0.3 * CADENCE_DAYS, 6 / 1440, 0.03
    flat, model = _flare_on(noise, time, peak, fwhm, amp)
    sloped, _ = _flare_on(noise + rotation, time, peak, fwhm, amp)
    prob = _oracle(model, 3 * SIGMA)
    ev_flat = extract_events(flat, prob, EventParams())
    ev = extract_events(sloped, prob, EventParams())
    assert len(ev["peak_time_btjd"]) == len(ev_flat["peak_time_btjd"]) == 1
    assert ev["start_index"][0] <= ev["peak_index"][0] < ev["stop_index"][0]
    assert abs(ev["peak_index"][0] - int(np.argmax(model))) <= 1
    assert ev["amplitude"][0] == pytest.approx(model.max(), rel=0.1)
    assert ev["ed_s"][0] == pytest.approx(ev_flat["ed_s"][0], rel=0.15)
    assert ev["ed_s"][0] < 1.1 * equivalent_duration_s(amp, fwhm)


def test_spans_without_a_brightening_give_no_rows():
    time = 1400.0 + np.arange(600) * CADENCE_DAYS
    flux = 0.01 * np.sin(2 * np.pi * (time - time[0]) / 0.3)  # a fast rotator, no flare
    lc = LightCurve(1, 2, time, flux, np.full(len(time), SIGMA), np.zeros(len(time), int))
    prob = np.zeros(len(time), np.float32)
    for a in range(30, 570, 25):  # spans on rises, falls, maxima and minima
        prob[a:a + 6] = 1.0
    ev = extract_events(lc, prob, EventParams(merge_gap_minutes=0))
    assert (ev["amplitude"] > 0).all() and (ev["ed_s"] > 0).all()
    assert len(ev["peak_time_btjd"]) < 10  # most of the 22 spans hold no brightening at all


def test_rows_on_a_real_rotating_star_are_physical(shared_data):
    """Any detector's spans on the young fast rotators of tess_young (percent-level
    rotation): every row has amplitude > 0, ED > 0 and its peak inside the event. Spans are
    drawn at random, as an over-eager network hands them over (the old linear baseline gave
    negative amplitudes and EDs here)."""
    from flaredetect.sources.local import read_light_curve

    rng = np.random.default_rng(0)
    n_rows = 0
    for name in ("tic260351540_s09.npy", "tic339668420_s07.npy", "tic235056185_s05.npy"):
        lc = read_light_curve(shared_data / "tess_young" / name)
        prob = np.zeros(len(lc), np.float32)
        for a in rng.integers(0, len(lc) - 20, 300):
            prob[a:a + rng.integers(2, 15)] = 1.0
        ev = extract_events(lc, prob, EventParams())
        n_rows += len(ev["peak_time_btjd"])
        assert (ev["amplitude"] > 0).all() and (ev["ed_s"] > 0).all(), name
        assert ((ev["start_index"] <= ev["peak_index"]) & (ev["peak_index"] <= ev["stop_index"])).all(), name
    assert n_rows > 100


def test_a_flare_whose_peak_the_data_lost_is_one_event_and_other_gaps_still_split():
    """SPOC excludes cadences at the peak of a large flare (TIC 31740375, sector 1): the oracle's
    events before and after the 30-min gap are one event covering the lost peak, unless the gap is
    longer than bridge_gap_minutes or the probability fell below threshold before the gap."""
    rng = np.random.default_rng(0)
    time = 1400.0 + np.arange(1000) * CADENCE_DAYS
    peak = time[503]
    lost = (np.arange(1000) >= 502) & (np.arange(1000) < 517)  # 15 cadences from just before the peak
    lc, model = _flare_on(rng.normal(0, SIGMA, len(time)), time, peak, 10 / 1440, 0.2)
    prob = _oracle(model, 3 * SIGMA)
    kept = LightCurve(1, 2, time[~lost], lc.flux_rel[~lost], lc.flux_err[~lost], lc.quality[~lost])
    ev = extract_events(kept, prob[~lost], EventParams())
    assert len(ev["peak_time_btjd"]) == 1
    assert ev["start_time_btjd"][0] < peak < ev["stop_time_btjd"][0]
    split = extract_events(kept, prob[~lost], EventParams(bridge_gap_minutes=20))
    # unbridged, the one-cadence rise is dropped (min_cadences) and the event starts after the lost peak
    assert len(split["peak_time_btjd"]) == 1 and split["start_time_btjd"][0] > peak
    # bridged, the brightest cadence left (on the rise, 36 sigma) is its peak
    assert ev["peak_time_btjd"][0] < peak and ev["amplitude"][0] > split["amplitude"][0] > 0
    # a run that ended a cadence before the gap is not bridged
    ended = prob.copy()
    ended[499:501], ended[501] = 1.0, 0.0
    assert len(extract_events(kept, ended[~lost], EventParams())["peak_time_btjd"]) == 2
    with pytest.raises(ValueError, match=r"events.bridge_gap_minutes=-1 must be >= 0"):
        EventParams(bridge_gap_minutes=-1)
