"""Cadence is data: read from the files, used by the physics, carried through binning."""
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from flaredetect.data.binning import bin_light_curve
from flaredetect.data.cleaning import stitch
from flaredetect.data.flare_model import equivalent_duration_s, flare_flux
from flaredetect.data.lightcurve import SECONDS_PER_DAY, TESS_CADENCES_S, Flares, LightCurve, segments
from flaredetect.sources.local import LightCurveReadError, read_light_curve


def _light_curve(step_s: float, n: int, seed: int = 0, t0: float = 1400.0, **kw) -> LightCurve:
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(n) * step_s / SECONDS_PER_DAY
    return LightCurve(tic=7, sector=40, time_btjd=t, flux_rel=rng.normal(0, 1e-3, n), flux_err=np.full(n, 1e-3),
                      quality=np.zeros(n, np.int64), **kw)


def _write_ffi_fits(path: Path, cadence_s: float, origin: str, columns: dict[str, np.ndarray], time: np.ndarray,
                    timedel: bool = True, sector: int = 40) -> Path:
    """A small FFI light curve in the layout of TESS-SPOC (ORIGIN NASA/Ames) or QLP (MIT/QLP) files."""
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "TESS", "ORIGIN": origin, "CREATOR": "LightCurveExporterPipelineModule",
                           "TICID": 123456789, "SECTOR": sector, "OBJECT": "TIC 123456789"})
    cols = [fits.Column(name="TIME", format="D", array=time), fits.Column(name="QUALITY", format="J",
                                                                          array=np.zeros(len(time), np.int32))]
    cols += [fits.Column(name=name, format="E", array=values) for name, values in columns.items()]
    table = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    table.header["TIMEUNIT"] = "d"
    if timedel:
        table.header["TIMEDEL"] = cadence_s / SECONDS_PER_DAY
    fits.HDUList([primary, table]).writeto(path)
    return path


def test_cadence_is_the_declared_one_else_measured_and_snapped_to_the_tess_cadence():
    lc = _light_curve(600.0, 500)
    assert lc.cadence_s is None and lc.cadence_seconds == 600.0
    jittered = lc.replace(time_btjd=lc.time_btjd + np.random.default_rng(1).normal(0, 2 / SECONDS_PER_DAY, len(lc)))
    assert jittered.cadence_seconds == 600.0  # 2-s timing jitter: still the 10-min FFI cadence
    assert lc.replace(cadence_s=200.0).cadence_seconds == 200.0  # the declaration wins over the times
    assert _light_curve(90.0, 100).cadence_seconds == pytest.approx(90.0)  # not a TESS cadence: kept as measured
    with pytest.raises(ValueError, match="cadence_s=-5"):
        _light_curve(120.0, 10, cadence_s=-5.0)


@pytest.mark.parametrize("cadence_s", TESS_CADENCES_S)
def test_exposure_integrated_template_keeps_its_equivalent_duration_at_every_cadence(cadence_s):
    cad = cadence_s / SECONDS_PER_DAY
    fwhm, amp = 8 / 1440, 0.05
    peak = 1400.0 + 0.37 * cad
    time = 1400.0 + cad * np.arange(-int(0.5 / cad), int(2.0 / cad))
    flux = flare_flux(time, peak, fwhm, amp, exposure_days=cad)
    assert flux.sum() * cadence_s == pytest.approx(float(equivalent_duration_s(amp, fwhm)), rel=0.01)
    # longer exposures smear the peak: the recorded maximum drops with the cadence
    assert flux.max() <= amp * (1.0 if cadence_s <= 20 else 0.97)


@pytest.mark.parametrize("cadence_s", [200.0, 600.0, 1800.0])
def test_binning_a_flare_preserves_its_ed_and_equals_the_longer_exposure(cadence_s):
    n, fwhm, amp = 9000, 6 / 1440, 0.1
    lc = _light_curve(20.0, n, t0=1400.0)
    peak = 1400.0 + 0.4
    flare = flare_flux(lc.time_btjd, peak, fwhm, amp, exposure_days=20 / SECONDS_PER_DAY)
    lc = lc.replace(flux_rel=flare, flare_mask=flare > 1e-4,
                    flares=Flares(peak_time_btjd=np.array([peak]), amplitude=np.array([amp]),
                                  fwhm_days=np.array([fwhm]), start_time_btjd=np.array([peak - fwhm]),
                                  stop_time_btjd=np.array([peak + 10 * fwhm]), event_id=np.array([0]),
                                  ed_s=np.array([float(equivalent_duration_s(amp, fwhm))]),
                                  energy_erg=np.array([np.nan]), detectable=np.array([True])))
    binned = bin_light_curve(lc, cadence_s)
    assert binned.cadence_s == cadence_s and binned.cadence_seconds == cadence_s
    assert np.median(np.diff(binned.time_btjd)) == pytest.approx(cadence_s / SECONDS_PER_DAY)
    assert binned.flux_rel.sum() * cadence_s == pytest.approx(lc.flux_rel.sum() * 20.0, rel=1e-6)
    assert binned.flux_rel.sum() * cadence_s == pytest.approx(binned.flares.ed_s[0], rel=0.01)
    # a bin of 20-s exposures is the exposure a longer cadence records (the grid is aligned)
    full = (binned.time_btjd > lc.time_btjd[0] + cadence_s / SECONDS_PER_DAY) & (
        binned.time_btjd < lc.time_btjd[-1] - cadence_s / SECONDS_PER_DAY)
    expected = flare_flux(binned.time_btjd[full], peak, fwhm, amp, exposure_days=cadence_s / SECONDS_PER_DAY)
    assert np.allclose(binned.flux_rel[full], expected, atol=1e-6 * amp)
    assert binned.flare_mask[np.argmax(binned.flux_rel)] and len(binned.flares) == 1
    # the white noise of the mean of k cadences is sigma / sqrt(k)
    noisy = bin_light_curve(_light_curve(120.0, 20000, noise_sigma=1e-3), cadence_s)
    assert noisy.noise_sigma == pytest.approx(1e-3 / np.sqrt(cadence_s / 120.0))
    assert np.std(noisy.flux_rel) == pytest.approx(noisy.noise_sigma, rel=0.1)


def test_binning_drops_bins_mostly_in_gaps_and_refuses_a_shorter_cadence():
    lc = _light_curve(120.0, 3000)
    keep = np.ones(len(lc), bool)
    keep[990:1002] = False  # 12 of the 15 cadences of the 30-min bin [990, 1005) are missing
    gappy = LightCurve(tic=7, sector=40, time_btjd=lc.time_btjd[keep], flux_rel=lc.flux_rel[keep],
                       flux_err=lc.flux_err[keep], quality=lc.quality[keep])
    binned = bin_light_curve(gappy, 1800.0)
    assert len(binned) == 3000 // 15 - 1
    assert not np.any((binned.time_btjd > lc.time_btjd[990]) & (binned.time_btjd < lc.time_btjd[1004]))
    assert len(bin_light_curve(gappy, 1800.0, min_fill=0.2)) == 3000 // 15
    with pytest.raises(ValueError, match="cannot bin a 120-s light curve to cadence_s=20"):
        bin_light_curve(lc, 20.0)


def test_segments_follow_the_light_curves_own_cadence():
    t = 1400.0 + np.arange(3000) * 20.0 / SECONDS_PER_DAY
    t[1000:] += 60.0 / SECONDS_PER_DAY  # 3 missing 20-s cadences: inside one segment
    t[2000:] += 600.0 / SECONDS_PER_DAY  # 30 missing: a gap
    assert segments(t, 5) == [(0, 2000), (2000, 3000)]
    # with a 2-minute cadence imposed, the 10-min gap is only 5 cadences: no break
    assert segments(t, 5, cadence_d=120.0 / SECONDS_PER_DAY) == [(0, 3000)]


def test_stitch_refuses_light_curves_of_different_cadences():
    a = _light_curve(120.0, 2000, t0=1400.0)
    b = _light_curve(20.0, 6000, t0=1420.0)
    with pytest.raises(ValueError, match="cadences 20 s, 120 s"):
        stitch([a, b])
    assert stitch([a, _light_curve(120.0, 2000, t0=1420.0)]).cadence_seconds == 120.0


def test_ffi_light_curves_of_tess_spoc_and_qlp_read_with_their_cadence(tmp_path):
    rng = np.random.default_rng(3)
    n = 1200
    for cadence_s, origin, columns, sector in [
        (1800.0, "NASA/Ames", {"PDCSAP_FLUX": 5000 + rng.normal(0, 5, n), "PDCSAP_FLUX_ERR": np.full(n, 5.0)}, 20),
        (600.0, "MIT/QLP", {"SAP_FLUX": 1.0 + rng.normal(0, 1e-3, n), "KSPSAP_FLUX": 1.0 + rng.normal(0, 1e-3, n),
                            "KSPSAP_FLUX_ERR": np.full(n, 1e-3)}, 40),
        (200.0, "NASA/Ames", {"PDCSAP_FLUX": 900 + rng.normal(0, 0.9, n), "PDCSAP_FLUX_ERR": np.full(n, 0.9)}, 60),
    ]:
        time = 2000.0 + np.arange(n) * cadence_s / SECONDS_PER_DAY
        path = _write_ffi_fits(tmp_path / f"ffi_{int(cadence_s)}.fits", cadence_s, origin, columns, time, sector=sector)
        lc = read_light_curve(path)
        assert lc.cadence_s == pytest.approx(cadence_s) and lc.cadence_seconds == cadence_s
        assert (lc.tic, lc.sector, len(lc)) == (123456789, sector, n)
        assert np.std(lc.flux_rel) == pytest.approx(1e-3, rel=0.15)
    # no TIMEDEL (a lightkurve-made TESScut light curve): measured from the times
    time = 2000.0 + np.arange(n) * 600.0 / SECONDS_PER_DAY
    path = _write_ffi_fits(tmp_path / "tesscut.fits", 600.0, "NASA/Ames",
                           {"FLUX": 1 + rng.normal(0, 1e-3, n), "FLUX_ERR": np.full(n, 1e-3)}, time, timedel=False)
    lc = read_light_curve(path)
    assert lc.cadence_s is None and lc.cadence_seconds == 600.0


def test_csv_light_curves_read_and_name_a_missing_column(tmp_path):
    import pandas as pd

    n = 3000
    t = 2500.0 + np.arange(n) * 20.0 / SECONDS_PER_DAY
    pd.DataFrame({"time": t, "flux": 100 + np.random.default_rng(0).normal(0, 1, n), "flux_err": np.ones(n),
                  "quality": np.zeros(n, int)}).to_csv(tmp_path / "TIC_42_30_1_data.csv.gz", index=False)
    lc = read_light_curve(tmp_path / "TIC_42_30_1_data.csv.gz")
    assert (lc.tic, lc.sector, len(lc), lc.cadence_seconds) == (42, 30, n, 20.0)
    pd.DataFrame({"t": t, "flux": np.ones(n)}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(LightCurveReadError, match=r"bad.csv: a CSV light curve needs a time and a flux column"):
        read_light_curve(tmp_path / "bad.csv")


def test_real_files_declare_or_measure_their_cadence(shared_data):
    spoc = sorted((shared_data / "fits" / "spoc").glob("*.fits"))[0]
    lc = read_light_curve(spoc)
    assert lc.cadence_s == pytest.approx(120.0)  # TIMEDEL of the SPOC header
    custom = sorted((shared_data / "fits" / "custom_aperture").glob("*.fits"))[0]
    lc = read_light_curve(custom)
    assert lc.cadence_s is None and lc.cadence_seconds == 120.0  # to_fits() files: measured
    fast = sorted((shared_data / "tess20s").glob("*.csv.gz"))[0]
    assert read_light_curve(fast).cadence_seconds == 20.0


def test_tess20s_truth_lies_on_the_injected_flux(shared_data):
    from flaredetect.data.tess20s import read_tess20s

    path = shared_data / "tess20s" / "TIC_18310799_44_2_data.csv.gz"
    lc = read_tess20s(path)
    plain = read_light_curve(path)
    assert lc.cadence_seconds == 20.0 and len(lc.flares) > 20
    assert np.all((lc.flares.peak_time_btjd >= lc.time_btjd[0]) & (lc.flares.peak_time_btjd <= lc.time_btjd[-1]))
    common, ia, ib = np.intersect1d(lc.time_btjd, plain.time_btjd, return_indices=True)
    excess = lc.flux_rel[ia] - plain.flux_rel[ib]
    bright = np.argsort(-lc.flares.amplitude)[:5]
    for k in bright:  # the injected excess at the peak is the catalogued amplitude (within exposure smearing)
        near = np.abs(common - lc.flares.peak_time_btjd[k]) < 60 / SECONDS_PER_DAY
        assert excess[near].max() == pytest.approx(lc.flares.amplitude[k], rel=0.15)
    quiet = np.ones(len(common), bool)
    for p, f in zip(lc.flares.start_time_btjd, lc.flares.stop_time_btjd):
        quiet &= ~((common >= p - 0.05) & (common <= f + 0.05))
    assert np.median(np.abs(excess[quiet])) < 0.2 * np.median(lc.flares.amplitude)


def _write_star(directory: Path, tic: int, sector: int, step_s: float = 120.0, n: int = 12000, seed: int = 0,
                flare_at: int | None = None) -> float | None:
    rng = np.random.default_rng(seed)
    t = 1400.0 + np.arange(n) * step_s / SECONDS_PER_DAY
    flux = 1 + rng.normal(0, 1e-3, n)
    peak = None
    if flare_at is not None:
        peak = float(t[flare_at])
        flux += flare_flux(t, peak, 12 / 1440, 0.03, exposure_days=step_s / SECONDS_PER_DAY)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / f"tic{tic:09d}_s{sector:02d}.npy", np.stack([t, flux, np.full(n, 1e-3)]))
    return peak


def test_injected_windows_bin_shorter_cadences_to_the_runs_and_skip_longer_ones(tmp_path):
    from flaredetect.catalogs import FlareCatalog
    from flaredetect.data.injected_windows import InjectedWindows
    from flaredetect.data.window_file import read_window_file

    peak = _write_star(tmp_path / "lcs", 31, 1, flare_at=6000)
    _write_star(tmp_path / "lcs", 32, 2, seed=1)
    _write_star(tmp_path / "lcs", 33, 3, step_s=1800.0, n=1300, seed=2)
    catalog = FlareCatalog({31: Flares(peak_time_btjd=np.array([peak]), amplitude=np.array([0.03]),
                                       fwhm_days=np.array([12 / 1440]), start_time_btjd=np.array([peak - 0.01]),
                                       stop_time_btjd=np.array([peak + 0.08]), event_id=np.array([1]),
                                       ed_s=np.array([np.nan]), energy_erg=np.array([np.nan]),
                                       detectable=np.array([True]))}, name="test")
    source = InjectedWindows([tmp_path / "lcs"], positive_catalogs=[catalog], cache_dir=tmp_path / "cache",
                             realizations=1, cadence_s=600.0,
                             injection={"amplitude_sigma": [10, 50], "fwhm_minutes": [20, 60], "per_day": 1.0})
    windows, report = source.build()
    step = np.diff(windows["time_btjd"], axis=1) * SECONDS_PER_DAY
    assert np.allclose(np.median(step, axis=1), 600.0)  # every window at the run's 10-min cadence
    assert set(np.unique(windows["tic"])) == {31, 32}
    assert any("1800-s cadence, longer than cadence_s=600" in s for s in report["skipped"])
    at_peak = (windows["tic"] == 31) & (np.abs(windows["time_btjd"] - peak).min(axis=1) < 600 / SECONDS_PER_DAY)
    assert at_peak.any() and windows["label"][at_peak].all()  # the catalogued flare, binned, is a positive
    assert read_window_file(source.prepare())["label"].sum() == windows["label"].sum()
    with pytest.raises(ValueError, match="reader='fits' must be one of"):
        InjectedWindows([tmp_path / "lcs"], reader="fits")


def test_tess20s_reader_labels_the_injected_truth_at_20_s_and_binned_to_2_min(shared_data, tmp_path):
    from flaredetect.data.injected_windows import InjectedWindows
    from flaredetect.data.tess20s import read_tess20s

    path = shared_data / "tess20s" / "TIC_18310799_44_2_data.csv.gz"
    lc = read_tess20s(path)
    sigma = float(np.median(np.abs(np.diff(lc.flux_rel)))) * 1.4826 / np.sqrt(2)
    bright = lc.flares.peak_time_btjd[lc.flares.amplitude >= 10 * sigma]
    for cadence_s in (20.0, 120.0):
        source = InjectedWindows([path], reader="tess20s", cache_dir=tmp_path / str(cadence_s), realizations=1,
                                 cadence_s=cadence_s, injection={"per_day": 0.2})
        windows, _ = source.build()
        assert np.allclose(np.median(np.diff(windows["time_btjd"], axis=1), axis=1) * SECONDS_PER_DAY, cadence_s, rtol=1e-3)
        positive = windows["label"] == 1
        found = [np.any(positive & (np.abs(windows["time_btjd"] - p).min(axis=1) < cadence_s / SECONDS_PER_DAY))
                 for p in bright]
        assert len(bright) >= 10 and np.mean(found) >= 0.9  # the bright injected flares are positives


def test_recovery_at_an_ffi_cadence_bins_the_inputs_and_reports_the_ed_limit(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from flaredetect.recovery import run_recovery

    for tic in (1, 2):
        _write_star(tmp_path / "in", tic, 2, n=20000, seed=tic)
    _write_star(tmp_path / "in", 3, 20, step_s=1800.0, n=1300, seed=3)
    reports = {}
    for cadence in ("null", "1800", "600"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(version_base="1.3", config_dir=str(Path(__file__).resolve().parents[1] / "conf")):
            cfg = compose("recovery", overrides=["detector=threshold", f"input={tmp_path / 'in'}", "trials=3",
                                                 "injection.per_day=2.0",
                                                 f"cadence_s={cadence}", f"out_dir={tmp_path / cadence}",
                                                 "progress=false", "by_rotation=false",
                                                 f"paths.data_dir={tmp_path / 'data'}"])
        GlobalHydra.instance().clear()
        reports[cadence] = run_recovery(cfg)
    assert reports["null"]["light_curves"] == 3  # each at its own cadence
    (name, reason), = reports["600"]["failed"]
    assert "tic000000003_s20" in name and "a 1800-s light curve cannot be binned to cadence_s=600" in reason
    binned = reports["1800"]
    assert binned["light_curves"] == 3 and binned["injected"] >= 60
    # the same stars at 30 min: the rule needs flares of a larger ED (each cadence averages 15 of 2 min)
    assert np.isfinite(reports["null"]["ed_s_at_50pc_all"])
    assert binned["ed_s_at_50pc_all"] > 2 * reports["null"]["ed_s_at_50pc_all"], {k: r["ed_s_at_50pc_all"] for k, r in reports.items()}


@pytest.mark.parametrize("cadence_s", [20.0, 200.0, 600.0, 1800.0])
def test_synthetic_light_curves_of_each_data_kind(cadence_s):
    from flaredetect.data.synthetic import SyntheticConfig, cadence_params, simulate_star

    kind = SyntheticConfig.from_params(**cadence_params(cadence_s))
    stars = [simulate_star(seed, tic=seed + 1, sector=40, config=kind) for seed in range(6)]
    two_min = [simulate_star(seed, tic=seed + 1, sector=40) for seed in range(6)]
    for star, ref in zip(stars, two_min):
        lc = star.light_curve
        assert lc.cadence_s == pytest.approx(cadence_s) and lc.cadence_seconds == cadence_s
        assert np.median(np.diff(lc.time_btjd)) * SECONDS_PER_DAY == pytest.approx(cadence_s, rel=1e-6)
        assert lc.time_btjd[-1] - lc.time_btjd[0] == pytest.approx(ref.light_curve.time_btjd[-1]
                                                                   - ref.light_curve.time_btjd[0], abs=1.0)
    # the same stars' white noise per cadence: sqrt(120 s / cadence) of the 2-minute range
    assert kind.noise_sigma[0] == pytest.approx(SyntheticConfig().noise_sigma[0] * np.sqrt(120 / cadence_s))
    assert all(kind.noise_sigma[0] <= s.light_curve.noise_sigma <= kind.noise_sigma[1] for s in stars)
    if cadence_s == 20.0:  # 20-s data keep their cosmic rays: many single-cadence spikes per day
        lc = stars[0].light_curve
        resid = lc.flux_rel - stars[0].variability - stars[0].flare_flux
        spikes = np.sum(resid > 6 * lc.noise_sigma) / (len(lc) * cadence_s / SECONDS_PER_DAY)
        assert spikes > 10


def test_truth_benchmark_scores_an_oracle_as_perfect_and_a_null_detector_as_blind():
    from flaredetect.evaluation.truth_benchmark import TruthItem, at_false_rate, summarise_truth, truth_trials
    from flaredetect.inference import Predictor

    n, step_s = 20000, 20.0
    plain = _light_curve(step_s, n, seed=4)
    t = plain.time_btjd
    peaks = t[[3000, 9000, 15000]] + 5 / SECONDS_PER_DAY
    amps, fwhm = np.array([0.002, 0.01, 0.05]), np.array([2, 3, 10]) / 1440
    flux = plain.flux_rel + sum(flare_flux(t, p, w, a, exposure_days=step_s / SECONDS_PER_DAY)
                                for p, a, w in zip(peaks, amps, fwhm))
    truth = Flares(peak_time_btjd=peaks, amplitude=amps, fwhm_days=fwhm, start_time_btjd=peaks - fwhm,
                   stop_time_btjd=peaks + 3 * fwhm, event_id=np.arange(3), ed_s=np.full(3, np.nan),
                   energy_erg=np.full(3, np.nan), detectable=np.ones(3, bool))
    item = TruthItem("star", plain.replace(flux_rel=flux, flares=truth), plain)

    def oracle(lc):
        prob = np.zeros(len(lc), np.float32)
        for a, b in zip(lc.flares.start_time_btjd, lc.flares.stop_time_btjd):
            prob[(lc.time_btjd >= a) & (lc.time_btjd <= b)] = 1.0
        return prob

    perfect = Predictor(scorer=oracle, cadence_s=20.0)
    trials, false_events = truth_trials(lambda lc: perfect, [item], thresholds=[0.5])
    assert trials["recovered"].all() and false_events["n_events"].sum() == 0
    assert trials["amplitude_sigma"].tolist() == pytest.approx((amps / 1e-3).tolist(), rel=0.1)
    best = at_false_rate(trials, false_events)
    assert best["recall"]["value"] == 1.0 and best["recall"]["n"] == 2 and best["threshold"] == 0.5
    blind = Predictor(scorer=lambda lc: np.zeros(len(lc), np.float32))
    trials, false_events = truth_trials(lambda lc: blind, [item], binned_to=120.0)
    summary = summarise_truth(trials, false_events)
    assert summary["recall"]["value"] == 0.0 and summary["recall"]["interval"][1] < 0.85
    assert false_events["cadence_s"].tolist() == [120.0]
    with pytest.raises(ValueError, match="a 120-s light curve"):  # a 20-s detector refuses the binned data
        truth_trials(lambda lc: perfect, [item], binned_to=120.0)


def test_event_settings_in_minutes_hold_their_time_at_every_cadence():
    from flaredetect.inference.events import EventParams, event_spans

    params = EventParams(merge_gap_minutes=6, baseline_minutes=40)
    assert params.in_cadences(120 / SECONDS_PER_DAY) == (3, 20)
    assert params.in_cadences(20 / SECONDS_PER_DAY) == (18, 120)
    assert params.in_cadences(1800 / SECONDS_PER_DAY) == (0, 5)  # no merging; the quadratic's 5 points
    # two runs 5 min apart merge at 20 s (15 cadences) as at 2 min (2.5 cadences)
    for step_s in (20.0, 120.0):
        t = 1400.0 + np.arange(2000) * step_s / SECONDS_PER_DAY
        prob = np.zeros(len(t))
        first = np.abs(t - t[600]) < 3 / 1440
        second = np.abs(t - (t[600] + 11 / 1440)) < 3 / 1440
        prob[first | second] = 0.9
        assert len(event_spans(t, prob, params)) == 1
        assert len(event_spans(t, prob, EventParams(merge_gap_minutes=2))) == 2


def test_paired_recall_difference_counts_the_same_flares():
    import pandas as pd

    from flaredetect.evaluation.truth_benchmark import paired_recall_difference

    rows = [{"light_curve": f"lc{k % 4}", "peak_time_btjd": float(k), "amplitude_sigma": 10.0, "fwhm_min": 2.0 + k % 5,
             "recovered": True} for k in range(40)]
    a = pd.DataFrame(rows)
    b = a.assign(recovered=[k % 4 != 0 for k in range(40)])  # B misses every flare of lc0
    d = paired_recall_difference(a, b)
    assert d["value"] == pytest.approx(0.25) and d["n"] == 40 and d["interval"][0] <= 0.25 <= d["interval"][1]
    assert paired_recall_difference(a, a)["value"] == 0.0
    short = paired_recall_difference(a, b, max_fwhm_min=4.0)
    assert short["n"] == 16


def test_ed_at_recovery_ignores_bins_of_a_few_lucky_trials():
    import pandas as pd

    from flaredetect.evaluation.recovery import ed_at_recovery

    rng = np.random.default_rng(0)
    ed = 10 ** rng.uniform(0, 3, 2000)  # 1 to 1000 s
    recovered = rng.random(2000) < 1 / (1 + (30.0 / ed) ** 4)  # 50 % at 30 s
    trials = pd.DataFrame({"ed_s": np.concatenate([ed, [0.02, 0.03]]), "fwhm_min": 10.0,
                           "recovered": np.concatenate([recovered, [True, True]])})  # two lucky tiny flares
    assert 22 < ed_at_recovery(trials) < 40
    assert ed_at_recovery(trials, min_trials=1) < 0.1  # what a single lucky bin would claim


def test_paired_recovery_limit_ratio_resamples_light_curves_of_both_detectors_together():
    import pandas as pd

    from flaredetect.evaluation.recovery import ed_at_recovery, paired_recovery_limit_ratio

    rng = np.random.default_rng(1)
    n = 6000
    ed = 10 ** rng.uniform(0, 3, n)
    u = rng.random(n)  # one draw per flare, shared: both detectors see the same light curves
    base = {"light_curve": [f"lc{k % 30}" for k in range(n)], "ed_s": ed, "fwhm_min": 10.0}
    a = pd.DataFrame(base | {"recovered": u < 1 / (1 + (20.0 / ed) ** 4)})  # 50 % at 20 s
    b = pd.DataFrame(base | {"recovered": u < 1 / (1 + (40.0 / ed) ** 4)})  # 50 % at 40 s
    out = paired_recovery_limit_ratio(a, b, n_resamples=300)
    assert out["a"] == pytest.approx(ed_at_recovery(a)) and out["b"] == pytest.approx(ed_at_recovery(b))
    assert 0.4 < out["ratio"] < 0.6 and out["light_curves"] == 30
    low, high = out["interval"]
    assert low <= out["ratio"] <= high < 1  # A completes at smaller flares, beyond the noise
    same = paired_recovery_limit_ratio(a, a, n_resamples=300)
    assert same["ratio"] == 1.0 and same["interval"] == (1.0, 1.0)
    # B never reaches 50 %: its limit in a resample is the top edge, so A's ratio stays far below 1
    never = paired_recovery_limit_ratio(a, b.assign(recovered=False), n_resamples=300)
    assert np.isnan(never["b"]) and never["bound"] == "upper" and never["ratio"] <= never["interval"][1] < 0.1
    assert out["bound"] is None
    with pytest.raises(ValueError, match="share no light curve"):
        paired_recovery_limit_ratio(a, b.assign(light_curve="other"))


def test_a_blended_star_shows_its_flares_diluted_and_its_neighbours_variability():
    from flaredetect.data.synthetic import SyntheticConfig, cadence_params, simulate_star

    def stars(share):  # the same random draws: only the neighbour's share differs
        cfg = SyntheticConfig(blend_probability=1.0, blend_fraction=(share, share), flare_rate_per_day=(2.0, 3.0),
                              no_flare_fraction=0.0)
        return [simulate_star(seed, tic=1, sector=40, config=cfg) for seed in range(4)]

    for alone, blended in zip(stars(1e-9), stars(0.6)):
        assert blended.params["blend_fraction"] == pytest.approx(0.6)
        np.testing.assert_allclose(blended.light_curve.flares.amplitude, 0.4 * alone.light_curve.flares.amplitude,
                                   rtol=1e-6)
        # (the faint tails are cut where they sink below 1e-3 sigma, sooner for a diluted flare)
        np.testing.assert_allclose(blended.flare_flux, 0.4 * alone.flare_flux, rtol=1e-6,
                                   atol=1e-2 * alone.light_curve.noise_sigma)
        assert blended.light_curve.flares.detectable.sum() <= alone.light_curve.flares.detectable.sum()
        # what is left of the variability once the star's own diluted part is removed is the neighbour's
        neighbour = (blended.variability - 0.4 * alone.variability) / 0.6
        assert np.std(neighbour) > 0 and not np.allclose(neighbour, alone.variability)
    assert sum(s.light_curve.flares.detectable.sum() for s in stars(0.6)) < sum(
        s.light_curve.flares.detectable.sum() for s in stars(1e-9))
    assert SyntheticConfig().blend_probability == 0.0 and cadence_params(600.0)["blend_probability"] == 0.5


def test_ffi_runs_label_and_gate_flares_over_the_catalogs_six_minutes_at_their_own_cadence():
    """experiment=cadence_ffi: an injected flare is a positive when its template stays above
    3 sigma for 6 min (3 two-minute cadences) or one cadence, and the run's own predict
    settings vet candidates of that rule and keep single-cadence events."""
    from hydra import compose, initialize_config_dir

    from flaredetect import CONFIG_DIR
    from flaredetect.config_checks import check_train_config
    from flaredetect.inference import SignificanceGate
    from flaredetect.sweeps import cadences_in, register_resolvers

    assert [cadences_in(6, c) for c in (20, 120, 200, 600, 1800)] == [18, 3, 2, 1, 1]
    with pytest.raises(ValueError, match="must be > 0"):
        cadences_in(6, 0)
    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(CONFIG_DIR).resolve())):
        for cadence_s, points in ((200, 2), (600, 1), (1800, 1)):
            cfg = compose("train", overrides=["experiment=cadence_ffi", f"cadence_s={cadence_s}"])
            check_train_config(cfg)
            assert cfg.data.sources.injected.detect_min_points == points
            gate = SignificanceGate.from_settings({"n_sigma": None, "min_points": None, "pad_cadences": None},
                                                  cfg.candidates)
            assert (gate.n_sigma, gate.min_points, gate.pad_cadences) == (3.0, points, 5)
            assert (cfg.events.min_cadences, cfg.events.threshold) == (1, 0.8)


def test_a_gate_setting_left_null_comes_from_the_run_and_a_run_without_a_gate_has_none():
    from flaredetect.inference import SignificanceGate

    unset = {"n_sigma": None, "min_points": None, "pad_cadences": None}
    assert SignificanceGate.from_settings(unset) == SignificanceGate()  # no run: the catalogs' rule
    assert SignificanceGate.from_settings(unset, {"min_points": 2}) == SignificanceGate(min_points=2)
    assert SignificanceGate.from_settings({**unset, "min_points": 4}, {"min_points": 2}).min_points == 4  # given wins
    assert SignificanceGate.from_settings(unset, None) is None  # the run: the network alone
    assert SignificanceGate.from_settings({**unset, "n_sigma": 2.5}, None) == SignificanceGate(n_sigma=2.5)
    assert SignificanceGate.from_settings(None, {"min_points": 2}) is None  # candidates=null: the network alone
    with pytest.raises(ValueError, match="candidates.n_sigma"):
        SignificanceGate.from_settings(unset, {"n_sigma": -1})
