"""Flares injected into real light curves, and injection–recovery of detectors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flaredetect.data.flare_model import equivalent_duration_s
from flaredetect.data.lightcurve import CADENCE_DAYS, LightCurve, robust_noise_sigma
from flaredetect.evaluation.recovery import (RecoveryCorrection, amplitude_at_recovery, injection_recovery,
                                             injection_recovery_by_threshold, recovery_summary)
from flaredetect.inference import EventParams, Predictor
from flaredetect.injection import InjectionGrid, inject_flares

SIGMA = 1e-3


def _quiet(n=6000, seed=0, gap_at=3000) -> LightCurve:
    time = 1400.0 + np.arange(n) * CADENCE_DAYS
    time[gap_at:] += 0.5
    flux = np.random.default_rng(seed).normal(0, SIGMA, n)
    return LightCurve(1, 2, time, flux, np.full(n, SIGMA), np.zeros(n, dtype=int))


def test_injection_places_flares_where_the_truth_says_and_labels_follow():
    lc = _quiet()
    rng = np.random.default_rng(1)
    injected, truth = inject_flares(lc, [20, 50, 2], [5, 10, 3], rng)
    assert len(truth) == 3
    sigma = robust_noise_sigma(lc.flux_rel)
    added = injected.flux_rel - lc.flux_rel
    for k in range(3):
        i = int(np.argmin(np.abs(lc.time_btjd - truth.peak_time_btjd[k])))
        assert abs(int(np.argmax(np.where(np.abs(lc.time_btjd - lc.time_btjd[i]) < 0.05, added, -1))) - i) <= 1
        assert truth.amplitude[k] == pytest.approx([20, 50, 2][k] * sigma)
        inside = (lc.time_btjd >= truth.start_time_btjd[k]) & (lc.time_btjd <= truth.stop_time_btjd[k])
        assert injected.flare_mask[inside].all() and injected.flare_mask[i]
    assert truth.detectable.tolist() == [True, True, False]  # 2 sigma stays below the 3-sigma rule
    np.testing.assert_allclose(truth.ed_s, equivalent_duration_s(truth.amplitude, truth.fwhm_days))
    # nothing outside the flares but their faint gradual tails
    far = np.ones(len(lc), bool)
    for t in truth.peak_time_btjd:
        far &= np.abs(lc.time_btjd - t) > 0.2
    assert np.abs(added[far]).max() < 0.1 * sigma and (added >= -1e-12).all()
    # the injected ED is the sum of the added flux over the exposures
    assert np.sum(added) * CADENCE_DAYS * 86400 == pytest.approx(truth.ed_s.sum(), rel=0.02)


def test_observed_detectability_follows_the_light_curves_own_noise():
    """detect_on="observed": a flare on a downward fluctuation of the star's own noise misses
    the 3 x 3-sigma rule that the noise-free template passes; with no noise both agree."""
    n = 12000
    time = 1400.0 + np.arange(n) * CADENCE_DAYS
    flux = np.random.default_rng(3).normal(0, SIGMA, n)
    phase = np.arange(n) % 100
    dip = phase < 10                       # 20-min dips at -8 sigma, every 200 min
    flux[dip] -= 8 * SIGMA
    lc = LightCurve(1, 2, time, flux, np.full(n, SIGMA), np.zeros(n, dtype=int))
    amp, fwhm = np.full(60, 8.0), np.full(60, 6.0)
    kw = dict(min_separation_days=0.05, detect_sigma=3.0, detect_min_points=3, sigma=SIGMA)
    _, model = inject_flares(lc, amp, fwhm, np.random.default_rng(4), detect_on="model", **kw)
    _, seen = inject_flares(lc, amp, fwhm, np.random.default_rng(4), detect_on="observed", **kw)
    np.testing.assert_array_equal(model.peak_time_btjd, seen.peak_time_btjd)  # same draws, only the label differs
    at = phase[np.clip(np.searchsorted(time, seen.peak_time_btjd), 0, n - 1)]
    in_dip, clear = (at >= 2) & (at < 8), (at >= 30) & (at < 90)
    assert model.detectable.all()
    assert in_dip.sum() >= 3 and not seen.detectable[in_dip].any()
    assert clear.sum() >= 20 and seen.detectable[clear].mean() > 0.8
    flat = LightCurve(1, 2, time, np.zeros(n), np.full(n, SIGMA), np.zeros(n, dtype=int))
    _, a = inject_flares(flat, [2.5, 3.5, 10.0], [6.0, 6.0, 6.0], np.random.default_rng(5), detect_on="model", **kw)
    _, b = inject_flares(flat, [2.5, 3.5, 10.0], [6.0, 6.0, 6.0], np.random.default_rng(5), detect_on="observed", **kw)
    np.testing.assert_array_equal(a.detectable, b.detectable)
    with pytest.raises(ValueError, match="detect_on"):
        inject_flares(flat, [3.0], [6.0], np.random.default_rng(5), detect_on="noisy", **kw)


def test_injection_avoids_given_cadences_such_as_catalogued_flares():
    lc = _quiet()
    avoid = np.zeros(len(lc), bool)
    avoid[:2500] = True  # e.g. a catalogued flare's stretch
    _, truth = inject_flares(lc, np.full(10, 10.0), np.full(10, 5.0), np.random.default_rng(2), avoid=avoid,
                             min_separation_days=0.05)
    assert len(truth) == 10 and (truth.peak_time_btjd > lc.time_btjd[2500 + 29]).all()


def _oracle(lc: LightCurve) -> np.ndarray:
    """A perfect detector: exactly the injected flares' cadences (their truth mask)."""
    return np.zeros(len(lc), np.float32) if lc.flare_mask is None else lc.flare_mask.astype(np.float32)


def test_recovery_of_a_perfect_oracle_is_one_and_of_a_null_detector_zero():
    grid = InjectionGrid(amplitude_sigma=(5, 50), fwhm_minutes=(4, 20), per_day=1.0)
    events = EventParams(min_cadences=1)
    curves = [("a", _quiet(seed=1)), ("b", _quiet(seed=2))]
    oracle = injection_recovery(Predictor(scorer=_oracle, events=events), curves, grid, trials=2)
    null = injection_recovery(Predictor(scorer=lambda lc: np.zeros(len(lc), np.float32), events=events), curves,
                              grid, trials=2)
    assert len(oracle.trials) >= 20 and oracle.trials["recovered"].all()
    assert not null.trials["recovered"].any()
    assert oracle.false_events_per_day == 0 and null.false_events_per_day == 0
    summary = recovery_summary(oracle.trials, [5, 10, 50], [4, 10, 20])
    assert set(summary["recovery_probability"].dropna()) == {1.0}
    assert np.isnan(amplitude_at_recovery(null.trials, fwhm_range=(4, 20)))


def test_recovery_runs_each_light_curve_with_the_detector_chosen_for_its_star():
    """As for cross-validation folds: the detector is picked per light curve (by its star), and
    the same seeds inject the same flares whichever detector measures them."""
    grid = InjectionGrid(amplitude_sigma=(5, 50), fwhm_minutes=(4, 20), per_day=1.0)
    events = EventParams(min_cadences=1)
    a, b = _quiet(seed=1), _quiet(seed=2)
    b = LightCurve(2, 2, b.time_btjd, b.flux_rel, b.flux_err, b.quality)
    oracle = Predictor(scorer=_oracle, events=events)
    null = Predictor(scorer=lambda lc: np.zeros(len(lc), np.float32), events=events)
    mixed = injection_recovery(lambda lc: oracle if lc.tic == 1 else null, [("a", a), ("b", b)], grid, trials=2)
    by_star = mixed.trials.groupby("light_curve")["recovered"].mean()
    assert by_star["a"] == 1.0 and by_star["b"] == 0.0
    alone = injection_recovery(oracle, [("a", a), ("b", b)], grid, trials=2)
    np.testing.assert_array_equal(alone.trials["peak_time_btjd"], mixed.trials["peak_time_btjd"])


def _graded(lc: LightCurve) -> np.ndarray:
    """Injected flares at 0.8, a blip of 0.6 every 997 cadences (false events below 0.6)."""
    prob = 0.8 * _oracle(lc)
    prob[::997] = np.maximum(prob[::997], 0.6)
    return prob


def test_recovery_at_several_thresholds_uses_the_same_injections_and_counts_each():
    grid = InjectionGrid(amplitude_sigma=(5, 50), fwhm_minutes=(4, 20), per_day=1.0)
    curves = [("a", _quiet(seed=1)), ("b", _quiet(seed=2))]
    calls = []

    def scorer(lc):
        calls.append(len(lc))
        return _graded(lc)

    results = injection_recovery_by_threshold(Predictor(scorer=scorer, events=EventParams(min_cadences=1)), curves,
                                              grid, [0.9, 0.5, 0.7], trials=2)
    assert sorted(results) == [0.5, 0.7, 0.9]
    assert len(calls) == 2 * (2 + 2)  # once per uninjected (and inverted) and injected light curve, not per threshold
    peaks = [r.trials["peak_time_btjd"].to_numpy() for r in results.values()]
    assert all(np.array_equal(peaks[0], p) for p in peaks[1:]) and len(peaks[0]) >= 20
    assert results[0.5].trials["recovered"].all() and results[0.5].false_events_per_day > 0
    assert results[0.7].trials["recovered"].all() and results[0.7].false_events_per_day == 0
    assert not results[0.9].trials["recovered"].any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        injection_recovery_by_threshold(Predictor(scorer=scorer), curves, grid, [1.5])


def test_inverted_light_curves_count_false_events_without_the_real_flares():
    """A real flare of the uninjected data is a false event on the data, not on the data
    turned upside down; a symmetric artefact (a dip, bright when inverted) is one there."""
    lc = _quiet(seed=3)
    flux = lc.flux_rel.copy()
    flux[1000:1004] += 30 * SIGMA  # a real flare
    flux[4500:4504] -= 30 * SIGMA  # a dip: a bump of the inverted light curve
    lc = LightCurve(1, 2, lc.time_btjd, flux, lc.flux_err, lc.quality)
    bright = Predictor(scorer=lambda c: (c.flux_rel > 10 * SIGMA).astype(np.float32), events=EventParams(min_cadences=1))
    result = injection_recovery(bright, [("a", lc)], InjectionGrid(amplitude_sigma=(20, 50), per_day=1.0), trials=1)
    row = result.false_events.iloc[0]
    assert row["n_events"] == 1 and row["n_events_inverted"] == 1
    np.testing.assert_array_equal(lc.flux_rel, flux)  # the light curve itself is left as it was
    lc = LightCurve(1, 2, lc.time_btjd, np.where(flux < -10 * SIGMA, 0.0, flux), lc.flux_err, lc.quality)
    grid = InjectionGrid(amplitude_sigma=(20, 50), fwhm_minutes=(10, 20), per_day=1.0)
    result = injection_recovery(bright, [("a", lc)], grid, trials=1)
    assert result.false_events_per_day > 0 and result.false_events_per_day_inverted == 0
    assert result.trials["recovered"].all()


def test_recovery_at_several_vetter_thresholds_keeps_the_networks_events_and_refilters_them():
    from dataclasses import dataclass

    from flaredetect.inference.vetting import EventVetter

    @dataclass
    class ByPeak(EventVetter):  # a vetter whose probability is the event's peak network probability
        def scores(self, lc, prob, events):
            return np.asarray(events["prob_max"], float)

    grid = InjectionGrid(amplitude_sigma=(5, 50), fwhm_minutes=(4, 20), per_day=1.0)
    curves = [("a", _quiet(seed=1)), ("b", _quiet(seed=2))]
    vetted = Predictor(scorer=_graded, events=EventParams(threshold=0.5, min_cadences=1), vetter=ByPeak(threshold=0.99))
    results = injection_recovery_by_threshold(vetted, curves, grid, [0.9, 0.5, 0.7], trials=2, of="vetter")
    assert sorted(results) == [0.5, 0.7, 0.9]
    assert results[0.5].trials["recovered"].all() and results[0.5].false_events_per_day > 0  # the blips pass
    assert results[0.7].trials["recovered"].all() and results[0.7].false_events_per_day == 0
    assert not results[0.9].trials["recovered"].any()
    assert vetted.vetter.threshold == 0.99  # the predictor itself is left as it was
    with pytest.raises(ValueError, match="has none"):
        injection_recovery_by_threshold(Predictor(scorer=_graded, name="plain"), curves, grid, [0.5], of="vetter")


def test_recovery_reports_the_threshold_that_recovers_most_at_the_false_rate_asked(tmp_path):
    import json

    from omegaconf import OmegaConf

    from flaredetect.config_checks import ConfigError
    from flaredetect.recovery import choose_threshold, event_thresholds

    def numbers(rate, amp):
        return {"false_events_per_day": rate, "amplitude_sigma_at_50pc_all": amp}
    sweep = {0.5: numbers(0.40, 3.0), 0.7: numbers(0.20, 4.0), 0.8: numbers(0.10, 5.0), 0.9: numbers(0.05, 9.0)}
    assert choose_threshold(sweep, 0.25) == 0.7
    assert choose_threshold(sweep, 0.10) == 0.8
    assert choose_threshold(sweep, 0.01) == 0.9  # none reaches it: the fewest false events
    assert choose_threshold(sweep, None) == 0.5
    by_ed = {t: {**n, "ed_s_at_50pc_all": ed} for (t, n), ed in zip(sweep.items(), (9.0, 3.0, 4.0, 6.0))}
    assert choose_threshold(by_ed, 0.5) == 0.5 and choose_threshold(by_ed, 0.5, by="ed_s") == 0.7  # smallest ED
    assert choose_threshold(by_ed, 0.10, by="ed_s") == 0.8
    inverted = {t: {**n, "false_events_per_day_inverted": n["false_events_per_day"] / 4} for t, n in sweep.items()}
    assert choose_threshold(inverted, 0.10, on="inverted") == 0.5  # 0.40 / 4: the real flares are not charged
    rule = tmp_path / "rule"
    rule.mkdir()
    (rule / "recovery.json").write_text(json.dumps({"false_events_per_day": 0.232}))

    def cfg(**kw):
        return OmegaConf.create({"detector": "model", "thresholds": None, "vet_thresholds": None, "vetter": None,
                                 "false_rate": None, **kw})
    assert event_thresholds(cfg(thresholds=[0.9, 0.5], false_rate=str(rule))) == ([0.5, 0.9], 0.232, "events")
    assert event_thresholds(cfg(thresholds=[0.7], false_rate=0.1)) == ([0.7], 0.1, "events")
    assert event_thresholds(cfg()) == (None, None, "events")
    assert event_thresholds(cfg(vet_thresholds=[0.4, 0.2], vetter="v", false_rate=0.1)) == ([0.2, 0.4], 0.1, "vetter")
    for bad, match in ((cfg(thresholds=[0.5, 1.2]), r"\[1.2\] not strictly between"),
                       (cfg(vet_thresholds=[0.0], vetter="v"), r"vet_thresholds=\[0.0\]: \[0.0\] not strictly"),
                       (cfg(vet_thresholds=[0.3]), "needs vetter="),
                       (cfg(vet_thresholds=[0.3], thresholds=[0.5], vetter="v"), "give one of them"),
                       (cfg(false_rate=0.2), "needs thresholds"),
                       (cfg(thresholds=[0.5], false_rate=str(tmp_path / "none")), "neither a number"),
                       (cfg(thresholds=[0.5], false_rate=-1), "non-negative"),
                       (cfg(thresholds=[0.5], false_rate=0.1, false_rate_on="quiet"), "false_rate_on=quiet must be"),
                       (cfg(thresholds=[0.5], false_rate=0.1, choose_by="energy"), "choose_by=energy must be"),
                       (cfg(thresholds=[0.5], false_rate=str(rule), false_rate_on="inverted"),
                        "no false_events_per_day_inverted"),
                       (cfg(thresholds=[0.5], detector="threshold"), "3-sigma rule")):
        with pytest.raises(ConfigError, match=match):
            event_thresholds(bad)


def test_recovery_corrected_ed_of_a_flare_recovered_at_ratio_r_is_ed_over_r():
    rng = np.random.default_rng(0)
    n = 400
    amplitude = np.exp(rng.uniform(np.log(0.005), np.log(0.5), n))
    ed = amplitude * 300.0
    trials = pd.DataFrame({"amplitude": amplitude, "ed_s": ed, "recovered": np.ones(n, bool),
                           "ampl_rec": amplitude * 0.9, "ed_rec": ed * 0.6})
    correction = RecoveryCorrection.from_trials(trials, n_bins=5)
    prob, ed_corr = correction.correct([0.05 * 0.9], [0.05 * 300 * 0.6])
    assert ed_corr[0] == pytest.approx(0.05 * 300, rel=1e-9) and prob[0] == 1.0
    half = trials.assign(recovered=np.arange(n) % 2 == 0)  # half of the injected flares missed
    prob, _ = RecoveryCorrection.from_trials(half, n_bins=1).correct([0.05 * 0.9], [0.05 * 300 * 0.6])
    assert prob[0] == pytest.approx(0.5)


def test_recovery_command_writes_its_tables_and_predict_attaches_the_correction(tmp_path):
    import json
    from pathlib import Path

    from astropy.table import QTable
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from flaredetect.predict import predict
    from flaredetect.recovery import run_recovery
    from test_predict import _predict_cfg, _save_star, make_run_dir

    for seed in (1, 2):
        _save_star(tmp_path / "in" / f"tic00000000{seed}_s02.npy", seed=seed, n=6000)
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(__file__).resolve().parents[1] / "conf")):
        cfg = compose("recovery", overrides=["detector=threshold", f"input={tmp_path / 'in'}", "trials=2",
                                             f"out_dir={tmp_path / 'rec'}", "progress=false",
                                             f"paths.data_dir={tmp_path / 'data'}"])
    GlobalHydra.instance().clear()
    report = run_recovery(cfg)
    out = tmp_path / "rec"
    for name in ("recovery_trials.csv", "recovery_summary.csv", "recovery_heatmap.png", "recovery_correction.json",
                 "recovery.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "recovery.json").read_text())
    assert saved["injected"] == report["injected"] >= 10 and 0 < saved["recovered"] < saved["injected"]
    assert saved["light_curves"] == 2 and saved["false_events_per_day"] >= 0
    assert 1 < saved["amplitude_sigma_at_50pc_all"] < 30  # the 3-sigma rule needs a few sigma

    run = make_run_dir(tmp_path / "run")
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(__file__).resolve().parents[1] / "conf")):
        swept = compose("recovery", overrides=[f"ckpt={run}", f"input={tmp_path / 'in'}", "trials=1",
                                               "thresholds=[0.2,0.6,0.99]", f"false_rate={out}", "by_rotation=false",
                                               f"out_dir={tmp_path / 'swept'}", "progress=false",
                                               f"paths.data_dir={tmp_path / 'data'}"])
    GlobalHydra.instance().clear()
    matched = run_recovery(swept)
    rows = {row["threshold"]: row for row in matched["by_threshold"]}
    assert sorted(rows) == [0.2, 0.6, 0.99] and matched["false_rate_matched"] == saved["false_events_per_day"]
    assert matched["event_threshold"] in rows
    assert 0 <= saved["false_events_per_day_inverted"] and all("false_events_per_day_inverted" in r for r in rows.values())
    assert matched["false_events_per_day"] == rows[matched["event_threshold"]]["false_events_per_day"]
    assert rows[0.2]["false_events_per_day"] >= rows[0.99]["false_events_per_day"]
    assert rows[0.2]["recovered"] >= rows[0.6]["recovered"] >= rows[0.99]["recovered"]
    summary = predict(_predict_cfg(tmp_path, run, str(tmp_path / "in"), events={"threshold": 0.01},
                                   recovery=str(out / "recovery_correction.json")))
    table = QTable.read(summary["ok"][0]["outputs"]["flares"], format="ascii.ecsv")
    assert {"recovery_probability", "ed_corr"} <= set(table.colnames) and str(table["ed_corr"].unit) == "s"


def _star_file(folder, tic: int, seed: int, flare_at: int | None = None, n: int = 6000):
    """A quiet sector-like (3, N) .npy light curve, optionally with one real (catalogued) flare."""
    from flaredetect.data.flare_model import flare_flux

    lc = _quiet(n=n, seed=seed)
    flux = 1 + lc.flux_rel
    if flare_at is not None:
        flux = flux * (1 + flare_flux(lc.time_btjd, lc.time_btjd[flare_at], 0.01, 0.05))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"tic{tic:09d}_s02.npy", np.stack([lc.time_btjd, flux, np.full(n, SIGMA)]))
    return lc.time_btjd[flare_at] if flare_at is not None else None


def test_injected_windows_label_injected_flares_and_mask_catalogued_ones(tmp_path):
    from flaredetect.catalogs import FlareCatalog
    from flaredetect.data.injected_windows import InjectedWindows
    from flaredetect.data.window_file import read_window_file
    from flaredetect.data.lightcurve import Flares

    peak = _star_file(tmp_path / "lcs", 11, 1, flare_at=2000)
    for tic in (12, 13, 14):
        _star_file(tmp_path / "lcs", tic, tic)
    _star_file(tmp_path / "lcs", 99, 99)
    catalog = FlareCatalog({11: Flares(peak_time_btjd=np.array([peak]), amplitude=np.array([0.05]),
                                       fwhm_days=np.array([0.01]), start_time_btjd=np.array([peak - 0.01]),
                                       stop_time_btjd=np.array([peak + 0.03]), event_id=np.array([0]),
                                       ed_s=np.array([np.nan]), energy_erg=np.array([np.nan]),
                                       detectable=np.array([True]))}, name="test")
    source = InjectedWindows([tmp_path / "lcs"], catalogs=[catalog], cache_dir=tmp_path / "cache", realizations=2,
                             injection={"amplitude_sigma": [5, 50], "fwhm_minutes": [4, 20], "per_day": 1.0},
                             unlabelled=None, exclude_tics=[99])
    windows = read_window_file(source.prepare())
    assert set(np.unique(windows["tic"])) == {11, 12, 13, 14}  # TIC 99 never read
    pos = windows["label"] == 1
    assert pos.sum() >= 4 * 2 * 5  # ~8 injected flares per light curve and realization, most detectable
    # every positive window holds a peak the injection put there, none the catalogued flare
    near_catalog = np.abs(windows["time_btjd"] - peak).min(axis=1) < 0.05
    assert not (windows["peak_mask"][near_catalog & (windows["tic"] == 11)] & (
        np.abs(windows["time_btjd"][near_catalog & (windows["tic"] == 11)] - peak) < 0.005)).any()
    # no negative window contains the catalogued flare; its cadences are marked as flare
    neg = ~pos
    assert not (near_catalog & neg & (windows["tic"] == 11)).any()
    # the same parameters give the same file
    again = InjectedWindows([tmp_path / "lcs"], catalogs=[catalog], cache_dir=tmp_path / "cache2", realizations=2,
                            injection={"amplitude_sigma": [5, 50], "fwhm_minutes": [4, 20], "per_day": 1.0},
                            unlabelled=None, exclude_tics=[99])
    np.testing.assert_array_equal(read_window_file(again.prepare())["flux_rel"], windows["flux_rel"])


def test_undetected_injected_flares_are_negatives_or_masked_as_configured(tmp_path):
    from flaredetect.data.injected_windows import InjectedWindows
    from flaredetect.data.window_file import read_window_file
    from flaredetect.data.windowing import KIND_HARD_NEGATIVE

    for tic in (21, 22, 23):
        _star_file(tmp_path / "lcs", tic, tic)
    settings = dict(cache_dir=tmp_path / "cache", realizations=1, unlabelled=None, detect_min_points=3,
                    injection={"amplitude_sigma": [0.5, 20], "fwhm_minutes": [2, 20], "per_day": 2.0})
    masked = read_window_file(InjectedWindows([tmp_path / "lcs"], undetected="masked", **settings).prepare())
    negative = read_window_file(InjectedWindows([tmp_path / "lcs"], undetected="negative", **settings).prepare())
    # the same detectable flares label the same number of positive windows
    assert negative["label"].sum() == masked["label"].sum() > 0
    # extra hard negatives, centred on injected flares below the 3 x 3 sigma rule: label 0, no flare cadence
    extra = (negative["kind"] == KIND_HARD_NEGATIVE).sum() - (masked["kind"] == KIND_HARD_NEGATIVE).sum()
    assert extra >= 5
    hard = negative["kind"] == KIND_HARD_NEGATIVE
    assert not negative["label"][hard].any() and not negative["flare_mask"][hard].any()
    # masked: no negative window holds any injected flare cadence
    assert not masked["flare_mask"][masked["label"] == 0].any()
    with pytest.raises(ValueError, match="undetected='maybe'"):
        InjectedWindows([tmp_path / "lcs"], undetected="maybe", **settings)


def test_catalogued_flares_as_positives_and_uncatalogued_bumps_as_negatives_on_labelled_light_curves(tmp_path):
    from flaredetect.catalogs import FlareCatalog
    from flaredetect.data.injected_windows import InjectedWindows
    from flaredetect.data.lightcurve import Flares
    from flaredetect.data.window_file import read_window_file
    from flaredetect.data.windowing import KIND_HARD_NEGATIVE

    peak = _star_file(tmp_path / "lcs", 31, 1, flare_at=2000)        # catalogued flare
    _star_file(tmp_path / "lcs", 32, 2, flare_at=4000)               # a flare no catalog lists
    bump = np.load(tmp_path / "lcs" / "tic000000032_s02.npy")[0][4000]
    catalog = FlareCatalog({31: Flares(peak_time_btjd=np.array([peak - 0.002]), amplitude=np.array([0.01]),
                                       fwhm_days=np.array([0.05]), start_time_btjd=np.array([peak - 0.01]),
                                       stop_time_btjd=np.array([peak + 0.1]), event_id=np.array([3]),
                                       ed_s=np.array([np.nan]), energy_erg=np.array([np.nan]),
                                       detectable=np.array([True]))}, name="test")
    settings = dict(catalogs=[catalog], cache_dir=tmp_path / "cache", realizations=2, unlabelled={"n_sigma": 4.0},
                    injection={"amplitude_sigma": [5, 50], "fwhm_minutes": [4, 20], "per_day": 1.0})

    def near(windows, t, tic):
        return (windows["tic"] == tic) & (np.abs(windows["time_btjd"] - t).min(axis=1) < 0.005)

    masked = read_window_file(InjectedWindows([tmp_path / "lcs"], **settings).prepare())
    assert not (near(masked, peak, 31) & (masked["label"] == 1)).any()    # masked: never a positive
    assert not near(masked, bump, 32).any()                               # the unlisted flare: in no window

    labelled = read_window_file(InjectedWindows([tmp_path / "lcs"], positive_catalogs=[catalog],
                                                labelled_paths=[str(tmp_path / "lcs" / "tic*_s02.npy")],
                                                **settings).prepare())
    on_flare = near(labelled, peak, 31)
    assert on_flare.sum() >= 2 and labelled["label"][on_flare].all()      # one positive per realization
    rows = np.flatnonzero(on_flare)
    at_peak = np.abs(labelled["time_btjd"][rows] - peak) < 1e-6
    assert labelled["peak_mask"][rows][at_peak].all() and labelled["flare_mask"][rows][at_peak].all()
    # the flare no catalog lists, on a light curve the catalog labels completely: a hard negative
    on_bump = near(labelled, bump, 32)
    assert on_bump.sum() >= 2 and not labelled["label"][on_bump].any()
    assert (labelled["kind"][on_bump] == KIND_HARD_NEGATIVE).all()
    with pytest.raises(ValueError, match="labelled_paths needs positive_catalogs"):
        InjectedWindows([tmp_path / "lcs"], labelled_paths=["*"], **settings)
