"""The Python API: find_flares / Detector / FlareResult, the same code as flaredetect-predict."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import QTable, vstack

import flaredetect
from flaredetect.inference import Predictor, run_prediction
from flaredetect.inference.candidates import threshold_predictor
from flaredetect.inference.writers import COLUMNS
from tests.test_predict import _predict_cfg, _save_star, make_run_dir


def _ucd_pair(shared_data):
    files = sorted((shared_data / "fits" / "custom_aperture").glob("*-0000000358108509-*_lc.fits"))
    if len(files) < 2:
        pytest.skip("two sectors of TIC 358108509 not in the shared data")
    return files


def test_lightkurve_object_and_arrays_give_the_same_table_as_predict(shared_data, tmp_path):
    import lightkurve as lk

    path = next((shared_data / "fits" / "spoc").glob("*-s0001-0000000358108509-*_lc.fits"))
    lc = lk.read(str(path), quality_bitmask="none")
    from_object = flaredetect.find_flares(lc, model="threshold")
    arrays = (lc.time.value, np.ma.filled(lc.flux.value, np.nan), np.ma.filled(lc.flux_err.value, np.nan),
              np.asarray(lc.quality.value))
    from_arrays = flaredetect.find_flares(*arrays, model="threshold", tic=358108509, sector=1)
    assert len(from_object.flares) >= 2  # the two Günther flares of this sector are large
    for name in ("tstart", "tpeak", "tstop", "istart", "istop", "ampl_rec", "ed_rec", "ed_rec_err"):
        np.testing.assert_array_equal(np.asarray(from_object.flares[name]), np.asarray(from_arrays.flares[name]))
    assert (from_object.flares["TIC"] == 358108509).all() and (from_object.flares["sector"] == 1).all()
    # cadence numbers and input indices point at the input's own cadences
    k = np.asarray(from_object.flares["istart"])
    np.testing.assert_allclose(lc.time.value[k], from_object.flares["tstart"].value)
    np.testing.assert_array_equal(np.asarray(lc.cadenceno.value)[k], np.asarray(from_object.flares["cstart"]))
    assert np.isnan(from_object.probability).sum() > 0  # NaN-flux cadences: dropped, probability NaN
    assert from_object.probability.shape == (len(lc),)
    # flaredetect-predict on the file writes the same flares
    result = run_prediction(threshold_predictor(), path, tmp_path / "out", plot=False, progress=False)
    table = QTable.read(result["ok"][0]["outputs"]["flares"], format="ascii.ecsv")
    np.testing.assert_allclose(table["tpeak"].value, from_object.flares["tpeak"].value)
    np.testing.assert_allclose(table["ed_rec"].value, from_object.flares["ed_rec"].value)
    np.testing.assert_array_equal(np.asarray(table["cstart"]), np.asarray(from_object.flares["cstart"]))


def test_a_collection_of_two_sectors_gives_the_union_of_the_sector_tables(shared_data):
    import lightkurve as lk

    curves = [lk.read(str(p), quality_bitmask="none", flux_column="flux") for p in _ucd_pair(shared_data)]
    det = flaredetect.Detector("threshold")
    each = [det.find_flares(c) for c in curves]
    both = det.find_flares(lk.LightCurveCollection(curves))
    expected = vstack([e.flares for e in each], metadata_conflicts="silent")
    assert len(both.flares) == len(expected) == sum(len(e.flares) for e in each) > 0
    for name in ("sector", "tpeak", "ed_rec", "istart"):
        np.testing.assert_array_equal(np.asarray(both.flares[name]), np.asarray(expected[name]))
    assert set(np.asarray(both.flares["sector"])) == {c.meta["SECTOR"] for c in curves if len(det.find_flares(c))}
    assert both.probability.shape == (sum(len(c) for c in curves),) and len(both.light_curves) == 2


def test_columns_and_units_are_as_documented_and_match_predict_with_a_checkpoint(tmp_path):
    import astropy.units as u

    run = make_run_dir(tmp_path / "run")
    lc = _save_star(tmp_path / "in" / "tic000000005_s02.npy")
    data = np.load(tmp_path / "in" / "tic000000005_s02.npy")
    # an untrained net at threshold 0.01 marks nearly every cadence: events are the stretches between
    # gaps, which bridging would join into one
    det = flaredetect.Detector(run, threshold=0.01, bridge_gap_minutes=0, candidates=False)
    result = det.find_flares(*data, tic=5, sector=2)
    table = result.flares
    assert len(table) >= 1  # an untrained net at threshold 0.01 fires
    documented = {name: unit for name, _, unit, _ in COLUMNS}
    for name in table.colnames:
        unit = documented[name]
        assert (table[name].unit == u.Unit(unit)) if unit else getattr(table[name], "unit", None) in (None, u.one), name
        assert table[name].info.description
    assert {"TIC", "sector", "tstart", "tpeak", "tstop", "istart", "istop", "cstart", "cstop", "dur", "ampl_rec",
            "ed_rec", "ed_rec_err", "prob", "total_n_valid_data_points", "cadence"} <= set(table.colnames)
    assert np.all(table["cstart"].mask)  # a .npy has no cadence numbers
    assert np.all(table["ampl_rec"] > 0) and np.all(table["ed_rec_err"].value > 0)
    assert np.all(table["total_n_valid_data_points"] == np.isfinite(result.probability).sum())
    np.testing.assert_allclose(table["cadence"].to_value(u.s), 120.0, rtol=1e-3)
    np.testing.assert_allclose(table["dur"].to_value(u.d), (table["tstop"] - table["tstart"]).to_value(u.d)
                               + 120.0 / 86400, rtol=1e-6)
    # flaredetect-predict with the same checkpoint and settings writes the same table
    from flaredetect.predict import predict

    predict(_predict_cfg(tmp_path, run, str(tmp_path / "in"), events={"threshold": 0.01, "bridge_gap_minutes": 0},
                         candidates=None))
    written = QTable.read(tmp_path / "out" / "tic000000005_s02_flares.ecsv", format="ascii.ecsv")
    assert written.colnames == table.colnames
    for name in ("tpeak", "ampl_rec", "ed_rec", "prob", "istart"):
        np.testing.assert_allclose(np.asarray(written[name], dtype=float), np.asarray(table[name], dtype=float))
    for suffix in ("ecsv", "fits", "parquet"):  # the formats users write flare tables in
        table.write(tmp_path / f"flares.{suffix}", overwrite=True)
        back = QTable.read(tmp_path / f"flares.{suffix}")
        np.testing.assert_allclose(back["ed_rec"].value, table["ed_rec"].value)
    assert list(table.to_pandas().columns) == table.colnames
    # a Detector serves many calls without reloading, and plots
    again = det.find_flares(*data, tic=5, sector=2)
    np.testing.assert_array_equal(again.probability, result.probability)
    fig = result.plot()
    assert len(fig.axes) == 2 + min(len(table), 6)  # light curve, probability, one zoom per flare (at most 6)
    del lc


def test_bad_settings_and_inputs_name_the_problem():
    with pytest.raises(TypeError, match="unknown setting.*treshold"):
        flaredetect.Detector("threshold", treshold=0.5)
    with pytest.raises(ValueError, match="events.threshold"):
        flaredetect.Detector("threshold", threshold=1.5)
    with pytest.raises(TypeError, match="cannot find flares in a str"):
        flaredetect.find_flares("not a light curve", model="threshold")
    with pytest.raises(ValueError, match="flux has shape"):
        flaredetect.find_flares(np.arange(10.0), np.ones(9), model="threshold")
    det = flaredetect.Detector("threshold")
    with pytest.raises(TypeError, match="go to Detector"):
        flaredetect.find_flares(np.arange(10.0), np.ones(10), model=det, threshold=0.3)
    assert isinstance(det.predictor, Predictor)


def test_docstring_examples_run():
    import doctest

    import flaredetect.detector
    import flaredetect.ffd

    for module in (flaredetect.detector, flaredetect.ffd):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_ed_of_an_injected_template_flare():
    """A 30-sigma, 10-min FWHM template flare on white noise, 8 noise draws. ``ed_rec`` is the
    direct sum over the event and its tail while the 3-cadence excess stays above 1 sigma: the
    template's slow tail below that (~30 % of this flare's ED) is not in it, so 0.55-0.8 of the
    truth; ``fit_ed`` (the template fitted, tail included) within 20 % each and 10 % on average;
    ``ed_rec_err`` is the white-noise error of the sum, ~2 % here."""
    from flaredetect.data.flare_model import equivalent_duration_s, flare_flux
    from flaredetect.data.lightcurve import CADENCE_DAYS

    sigma, amp, fwhm = 1e-3, 0.03, 10 / 1440
    true = equivalent_duration_s(amp, fwhm)
    direct, fitted = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        t = 1400 + np.arange(6000) * CADENCE_DAYS
        flux = (1 + rng.normal(0, sigma, len(t))) * (1 + flare_flux(t, t[3000] + 0.3 * CADENCE_DAYS, fwhm, amp,
                                                                   exposure_days=CADENCE_DAYS))
        flares = flaredetect.find_flares(t, flux, np.full(len(t), sigma), model="threshold", fit_template=True).flares
        k = int(np.argmax(flares["ampl_rec"]))
        assert abs(flares["tpeak"][k].value - t[3000]) <= 1.5 * CADENCE_DAYS
        direct.append(flares["ed_rec"][k].value / true)
        fitted.append(flares["fit_ed"][k].value / true)
        assert 0.005 < flares["ed_rec_err"][k].value / true < 0.04
    assert 0.55 <= np.mean(direct) <= 0.8 and min(direct) > 0.5
    assert abs(np.mean(fitted) - 1) < 0.1 and max(abs(np.asarray(fitted) - 1)) < 0.2


def test_plots_zoom_on_the_strongest_flares_and_mark_catalog_peaks(shared_data, tmp_path):
    import lightkurve as lk

    path = next((shared_data / "fits" / "spoc").glob("*-s0001-0000000358108509-*_lc.fits"))
    result = flaredetect.find_flares(lk.read(str(path), quality_bitmask="none"), model="threshold")
    peaks = [1327.0148, 1353.1572]
    fig = result.plot(max_zooms=1, catalog_peaks_btjd=peaks)
    main, _, zoom = fig.axes[:3]
    assert len(fig.axes) == 3  # light curve, probability, one zoom panel
    assert any("2 catalog peaks" in t.get_text() for t in main.get_legend().get_texts())
    strongest = result.flares["tpeak"][np.argmax(result.flares["ampl_rec"])].value
    assert f"{strongest:.3f}" in zoom.get_title()  # the zoom shows the strongest flare first
    # flaredetect-predict draws the peaks of a configured catalog (and still writes its outputs)
    from flaredetect.predict import predict

    cfg = _predict_cfg(tmp_path, make_run_dir(tmp_path / "run"), str(path), plot=True,
                       catalog={"_target_": "flaredetect.catalogs.read_guenther2020",
                                "path": str(shared_data / "catalogs" / "guenther2020.csv")})
    summary = predict(cfg)
    assert summary["complete"] and Path(summary["ok"][0]["outputs"]["png"]).stat().st_size > 10_000
    cfg.catalog = {"_target_": "flaredetect.catalogs.read_guenther2020", "path": str(tmp_path / "missing.csv")}
    with pytest.raises(Exception, match="catalog"):
        predict(cfg)
