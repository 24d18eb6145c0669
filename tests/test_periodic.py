"""Removing a fast rotator's (or close binary's) periodic light curve before detection."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from flaredetect.data.flare_model import flare_flux
from flaredetect.data.lightcurve import CADENCE_DAYS, LightCurve
from flaredetect.data.periodic import PeriodicBackground, folded_median
from flaredetect.inference.candidates import threshold_scorer
from flaredetect.inference.events import EventParams
from flaredetect.inference.metrics import match_events
from flaredetect.inference.pipeline import Predictor

SIGMA = 1e-3
PEAKS = 1400.0 + np.arange(1.3, 26.0, 1.1)  # 23 flares, one every 1.1 d, at every phase of the rotation


def _star(period_days: float, shape, amplitude: float = 0.02, flare_sigma: float = 8.0, seed: int = 0) -> LightCurve:
    n = int(27 / CADENCE_DAYS)
    time = 1400.0 + np.arange(n) * CADENCE_DAYS
    keep = (time < 1413.0) | (time > 1414.0)  # the mid-sector gap
    time = time[keep]
    flux = amplitude * shape(2 * np.pi * time / period_days) + np.random.default_rng(seed).normal(0, SIGMA, len(time))
    for peak in PEAKS:
        flux += flare_flux(time, peak, 6 / 1440, flare_sigma * SIGMA)
    return LightCurve(tic=7, sector=3, time_btjd=time, flux_rel=flux, flux_err=np.full(len(time), SIGMA),
                      quality=np.zeros(len(time), np.int64))


def _away(time):
    return np.min(np.abs(time[:, None] - PEAKS[None, :]), axis=1) > 0.05  # the flares aside


def _scatter(flux, time):
    flux = flux[_away(time)]
    return 1.4826 * np.median(np.abs(flux - np.median(flux)))


def _worst(flux, time):
    flux = flux[_away(time)]
    return np.abs(flux - np.median(flux)).max()


@pytest.mark.parametrize("shape", [np.sin, lambda x: np.sin(x) + 0.5 * np.sin(2 * x + 1) + 0.3 * np.sin(3 * x),
                                   lambda x: np.cos(2 * x) - 0.3 * np.cos(x)])
def test_a_fast_periodic_light_curve_is_removed_to_the_noise_and_flares_are_kept(shape):
    lc = _star(0.23, shape)  # a sinusoid, spots of three harmonics, a contact binary's unequal minima
    flat = PeriodicBackground().remove(lc)
    assert _worst(lc.flux_rel, lc.time_btjd) > 15 * SIGMA
    assert _scatter(flat.flux_rel, flat.time_btjd) < 1.3 * SIGMA and _worst(flat.flux_rel, flat.time_btjd) < 7 * SIGMA
    at = np.searchsorted(lc.time_btjd, PEAKS)
    kept = np.array([flat.flux_rel[i - 1:i + 2].max() for i in at]) / (8 * SIGMA)
    assert np.median(kept) > 0.8  # the flares stand out as much as before, wherever they sit on the rotation
    assert np.array_equal(flat.time_btjd, lc.time_btjd) and len(flat) == len(lc)


def test_slow_or_weak_modulation_is_left_alone():
    background = PeriodicBackground()
    slow = _star(3.0, np.sin)
    weak = _star(0.23, np.sin, amplitude=1.5 * SIGMA)
    assert background.period(slow) is None and background.remove(slow) is slow
    assert background.period(weak) is None and background.remove(weak) is weak
    fast = _star(0.23, np.sin)
    assert background.period(fast) == pytest.approx(0.23, rel=0.02)


def test_a_contact_binary_is_folded_at_twice_the_periodogram_period_and_a_detached_one_left_alone():
    # two minima of different depth per orbit: the periodogram peaks at half the orbit
    orbit = 0.6
    contact = _star(orbit, lambda x: np.cos(2 * x) + 0.15 * np.cos(x), amplitude=0.05)
    model, period = PeriodicBackground().model(contact)
    assert period == pytest.approx(orbit, rel=0.02)
    residual = contact.flux_rel - model
    assert _scatter(residual, contact.time_btjd) < 1.3 * SIGMA and _worst(residual, contact.time_btjd) < 7 * SIGMA
    detached = _star(orbit, lambda x: -np.exp(-((np.mod(x, 2 * np.pi) - 1.0) ** 2) / 0.03)
                     - 0.5 * np.exp(-((np.mod(x, 2 * np.pi) - 1.0 - np.pi) ** 2) / 0.03), amplitude=0.05)
    assert PeriodicBackground().model(detached) == (None, None)
    assert PeriodicBackground().remove(detached) is detached


def test_the_folded_median_is_the_whole_light_curve_fold_where_a_stretch_is_too_sparse():
    time = np.concatenate([1400 + np.arange(2000) * CADENCE_DAYS, [1420.0, 1420.01]])  # two lone cadences
    flux = 0.01 * np.sin(2 * np.pi * time / 0.3)
    model = folded_median(time, flux, 0.3)
    assert np.all(np.isfinite(model)) and np.abs(model - flux).max() < 2e-3


def test_a_predictor_scores_events_and_gate_on_the_light_curve_without_its_rotation():
    lc = _star(0.23, np.sin)
    events = EventParams(threshold=0.5, min_cadences=1)
    as_is = Predictor(scorer=threshold_scorer(3.0, 2), events=events)
    flattened = Predictor(scorer=threshold_scorer(3.0, 2), events=events, periodic=PeriodicBackground())
    found = {}
    for name, predictor in (("as is", as_is), ("flattened", flattened)):
        prob, ev = predictor.predict(lc)
        found[name] = match_events(ev["start_time_btjd"], ev["stop_time_btjd"], PEAKS)[0].mean()
        if name == "flattened":  # events are measured on the flux the detector saw: amplitudes near the truth
            hit = match_events(ev["start_time_btjd"], ev["stop_time_btjd"], PEAKS)[1]
            assert np.median(ev["amplitude"][hit]) == pytest.approx(8 * SIGMA, rel=0.35)
    assert found["flattened"] >= 0.9 and found["flattened"] > found["as is"] + 0.2


def test_settings_are_checked_and_travel_to_worker_processes_without_the_fits():
    from omegaconf import OmegaConf

    with pytest.raises(ValueError, match=r"periodic.max_period_days=-1 must be > 0"):
        PeriodicBackground(max_period_days=-1)
    with pytest.raises(ValueError, match=r"periodic has unknown keys \['max_period'\]"):
        PeriodicBackground.from_settings(OmegaConf.create({"max_period": 1.0}))
    with pytest.raises(ValueError, match=r"periodic.min_amplitude_sigma='x' must be a number"):
        PeriodicBackground.from_settings({"min_amplitude_sigma": "x"})
    assert PeriodicBackground.from_settings(None) is None and PeriodicBackground.from_settings(True) == PeriodicBackground()
    background = PeriodicBackground.from_settings(OmegaConf.create({"max_period_days": 0.5}))
    lc = _star(0.23, np.sin)
    background.remove(lc)
    copy = pickle.loads(pickle.dumps(background))
    assert copy == background and copy.max_period_days == 0.5 and not copy._cache and background._cache


def test_predicts_batched_path_scores_the_same_flattened_light_curve_as_predict():
    from flaredetect.inference.candidates import SignificanceGate

    lc = _star(0.23, np.sin)
    predictor = Predictor(scorer=threshold_scorer(3.0, 2), events=EventParams(threshold=0.5, min_cadences=1),
                          gate=SignificanceGate(3.0, 2), periodic=PeriodicBackground())
    prob, events = predictor.predict(lc)
    (raw,) = predictor.raw_probabilities([lc])  # flaredetect-predict's path: scored together, then gated and measured
    gated = predictor.checked(lc, raw)
    batched = predictor.events_from(lc, gated)
    assert np.array_equal(prob, gated) and np.array_equal(events["peak_time_btjd"], batched["peak_time_btjd"])
    assert np.allclose(events["amplitude"], batched["amplitude"])


def test_a_light_curve_one_period_does_not_explain_is_left_alone():
    # two pulsation modes of equal amplitude: folding at either leaves the other, which fires events
    pulsator = _star(0.23, lambda x: np.sin(x) + np.sin(x * 0.23 / 0.37 + 0.5))
    background = PeriodicBackground()
    assert background.period(pulsator) is not None  # fast and strong enough to try
    assert background.model(pulsator) == (None, None) and background.remove(pulsator) is pulsator


def test_predict_outputs_say_the_period_each_light_curve_was_flattened_at(tmp_path):
    from astropy.table import QTable

    from flaredetect.inference.pipeline import run_prediction

    fast, slow = _star(0.23, np.sin), _star(3.0, np.sin)
    files = []
    for name, lc in (("tic7_s03.npy", fast), ("tic8_s03.npy", slow)):
        np.save(tmp_path / name, np.stack([lc.time_btjd, 1.0 + lc.flux_rel, lc.flux_err]))
        files.append(str(tmp_path / name))
    predictor = Predictor(scorer=threshold_scorer(3.0, 2), events=EventParams(threshold=0.5, min_cadences=1),
                          periodic=PeriodicBackground())
    result = run_prediction(predictor, files, tmp_path / "out", plot=False, progress=False, timeseries=False,
                            flare_tables=True, meta={"checkpoint": {"sha256": "test"}})
    periods = {Path(r["name"]).name: r["periodic_period_days"] for r in result["ok"]}
    assert periods["tic7_s03.npy"] == pytest.approx(0.23, rel=0.02) and periods["tic8_s03.npy"] is None
    table = QTable.read(tmp_path / "out" / "tic7_s03_flares.ecsv")
    assert table.meta["periodic_period_days"] == pytest.approx(0.23, rel=0.02)


def test_injected_training_windows_are_cut_from_the_flattened_background_when_asked(tmp_path):
    from flaredetect.data.injected_windows import InjectedWindows
    from flaredetect.data.window_file import read_window_file

    lc = _star(0.23, np.sin, flare_sigma=0.0)  # a 5.5-h rotator at 20 sigma peak to peak, no flares of its own
    (tmp_path / "lcs").mkdir()
    np.save(tmp_path / "lcs" / "tic000000007_s03.npy", np.stack([lc.time_btjd, 1 + lc.flux_rel, lc.flux_err]))
    settings = dict(cache_dir=tmp_path / "cache", realizations=1, unlabelled=None,
                    injection={"amplitude_sigma": [5, 50], "fwhm_minutes": [4, 20], "per_day": 1.0})
    as_read = InjectedWindows([tmp_path / "lcs"], **settings)
    flattened = InjectedWindows([tmp_path / "lcs"], periodic={"max_period_days": 1.0}, **settings)
    assert flattened.path != as_read.path  # a cached file of one is never taken for the other

    def negative_spread(source):
        windows = read_window_file(source.prepare())
        quiet = (windows["label"] == 0) & ~windows["flare_mask"].any(axis=1)
        assert quiet.sum() >= 10
        flux = windows["flux_rel"][quiet]
        return np.median(np.percentile(flux, 95, axis=1) - np.percentile(flux, 5, axis=1))

    # a 200-minute window spans most of a rotation as read; flattened, only the noise (3.3 sigma for 5-95 %)
    assert negative_spread(as_read) > 15 * SIGMA
    assert negative_spread(flattened) < 4.5 * SIGMA
    with pytest.raises(ValueError, match=r"data.sources.injected.periodic.max_period_days=0 must be > 0"):
        InjectedWindows([tmp_path / "lcs"], periodic={"max_period_days": 0}, **settings)
