"""Flare catalog readers: Günther 2020, Pietras 2022 (CDS and CSV), the UCD vetted table,
generic CSV; all to per-star Flares in BTJD."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from flaredetect.catalogs import (
    DAVENPORT_AREA,
    FlareCatalog,
    davenport2014_template,
    read_flare_csv,
    read_guenther2020,
    read_ilin_ucd,
    read_pietras2022,
    refine_peak_times,
)
from flaredetect.data.lightcurve import CADENCE_DAYS, SECONDS_PER_DAY
from flaredetect.sources import read_light_curve


def test_davenport_template_area():
    area = quad(davenport2014_template, -1, 0)[0] + quad(davenport2014_template, 0, 100, limit=200)[0]
    assert np.isclose(area, 1.827, atol=1e-3) and np.isclose(DAVENPORT_AREA, area, rtol=1e-6)
    assert davenport2014_template(0.0) == pytest.approx(1.0, abs=1e-3)  # peak normalised
    assert davenport2014_template(-1.5) == 0.0


@pytest.fixture(scope="module")
def guenther(shared_data):
    return read_guenther2020(shared_data / "catalogs/guenther2020.csv")


def test_guenther_reader(guenther, shared_data):
    assert isinstance(guenther, FlareCatalog)
    assert len(guenther) == 1228 and guenther.n_flares == 8695
    f = guenther[2760232]
    assert f.peak_time_btjd[0] == pytest.approx(2458357.381046 - 2457000)
    assert np.all(np.diff(f.peak_time_btjd) >= 0)
    assert np.all(f.detectable)
    assert np.all(f.start_time_btjd <= f.peak_time_btjd - CADENCE_DAYS + 1e-12)
    assert np.all(f.stop_time_btjd >= f.peak_time_btjd + CADENCE_DAYS - 1e-12)
    wide = f.fwhm_days > CADENCE_DAYS
    assert np.allclose(f.stop_time_btjd[wide] - f.peak_time_btjd[wide], 3 * f.fwhm_days[wide])
    assert np.allclose(f.ed_s, f.amplitude * f.fwhm_days * 1.82704 * SECONDS_PER_DAY, rtol=1e-4)
    raw = pd.read_csv(shared_data / "catalogs/guenther2020.csv")
    assert np.isnan(guenther.for_star(2760232).energy_erg).sum() == raw[raw.TIC == 2760232].Ebol.isna().sum()
    # components of one complex flare share event_id (= Outbst)
    multi = raw[raw.Flare > 1].iloc[0]
    comps = raw[(raw.TIC == multi.TIC) & (raw.Outbst == multi.Outbst)]
    flares = guenther[int(multi.TIC)]
    ids = {int(flares.event_id[np.argmin(np.abs(flares.peak_time_btjd - (t - 2457000)))]) for t in comps.tpeak}
    assert ids == {int(multi.Outbst)} and len(comps) > 1


@pytest.mark.parametrize("folder, expected", [("tess", 62), ("fits/spoc", 31), ("fits/custom_aperture", 77)])
def test_guenther_flares_in_shared_light_curves(guenther, shared_data, folder, expected):
    total = 0
    for path in sorted((shared_data / folder).iterdir()):
        lc = read_light_curve(path, quality_bitmask="none", low_sigma=None)
        total += len(guenther.for_light_curve(lc, by="peak"))
    assert total == expected  # the numbers in shared/data/README.md


def test_for_star(guenther):
    f = guenther[2760232]
    t0 = f.peak_time_btjd[0]
    assert len(guenther.for_star(2760232, t0 + 1e-4, t0 + 1e-4, by="overlap")) >= 1  # inside its extent
    assert t0 not in guenther.for_star(2760232, t0 + 1e-4, t0 + 1.0, by="peak").peak_time_btjd
    assert len(guenther.for_star(123, 0, 1e9)) == 0 and 123 not in guenther
    with pytest.raises(ValueError):
        guenther.for_star(2760232, by="middle")


def test_ilin_ucd_reader(shared_data):
    path = shared_data / "catalogs/ilin_ucd_vetted_flares.csv"
    cat = read_ilin_ucd(path)
    raw = pd.read_csv(path)
    real = raw[raw.real == 1]
    assert cat.n_flares == len(real) == 313
    assert len(read_ilin_ucd(path, real_only=False)) >= len(cat)
    tic = int(real.TIC.iloc[0])
    f = cat[tic]
    assert np.array_equal(f.peak_time_btjd, f.start_time_btjd)  # documented: peak = tstart
    assert np.all(f.stop_time_btjd >= f.start_time_btjd) and np.all(f.detectable)
    assert np.allclose(np.sort(f.ed_s), np.sort(real[real.TIC == tic].ed_rec))


def test_refine_peak_times_moves_to_brightest_cadence(shared_data):
    cat = read_ilin_ucd(shared_data / "catalogs/ilin_ucd_vetted_flares.csv")
    lc = read_light_curve(shared_data / "fits/custom_aperture/tess2019082014114-s0001-0000000142052876-0000-s_lc.fits")
    flares = cat.for_light_curve(lc)
    assert len(flares) == 7
    refined = refine_peak_times(flares, lc)
    for a, b, p in zip(refined.start_time_btjd, refined.stop_time_btjd, refined.peak_time_btjd):
        inside = (lc.time_btjd >= a) & (lc.time_btjd <= b)
        if inside.any():
            assert lc.flux_rel[lc.time_btjd == p][0] == lc.flux_rel[inside].max()
    shift = refined.peak_time_btjd - flares.peak_time_btjd
    assert np.all(shift >= 0) and np.median(shift) <= 3 * CADENCE_DAYS  # peak = tstart is close


# --------------------------------------------------------------- Pietras 2022 format

# Hand-written rows (invented values) in the layout of the Pietras et al. 2022 table.
PIETRAS_ROWS = [
    # TIC, sector, peak (BJD), amplitude, duration (min), profiles, ED (s), energy (erg)
    (358108509, 1, 2458330.123456, 0.0521, 24.0, 1, 35.20, 1.2e33),
    (358108509, 1, 2458340.500000, 0.3000, 60.0, 2, 300.00, 2.5e34),
    (29779873, 2, 2458360.250000, 0.0100, 10.0, 1, 5.00, 3.0e31),
]

README = """\
J/ApJ/935/143    TESS stellar flares, sectors 1-39 (hand-written test)    (Test, 2024)
================================================================================
Hand-written test file in the layout of a CDS ReadMe; values are invented.
================================================================================
Byte-by-byte Description of file: flares.dat
--------------------------------------------------------------------------------
   Bytes Format Units   Label   Explanations
--------------------------------------------------------------------------------
   1- 10 I10    ---     TIC     TESS Input Catalog identifier
  12- 13 I2     ---     Sector  TESS sector
  15- 28 F14.6  d       Tpeak   Flare peak time (BJD)
  30- 35 F6.4   ---     Amp     Relative amplitude
  37- 41 F5.1   min     Dur     Flare duration
  43- 44 I2     ---     Nprof   Number of fitted profiles
  46- 52 F7.2   s       ED      Equivalent duration
  54- 62 E9.3   erg     Energy  Flare energy
--------------------------------------------------------------------------------
"""


def _pietras_dat() -> str:
    return "".join(f"{r[0]:10d} {r[1]:2d} {r[2]:14.6f} {r[3]:6.4f} {r[4]:5.1f} {r[5]:2d} {r[6]:7.2f} {r[7]:9.3e}\n"
                   for r in PIETRAS_ROWS)


def _check_pietras(cat):
    assert len(cat) == 2 and cat.n_flares == 3
    f = cat[358108509]
    assert np.allclose(f.peak_time_btjd, [1330.123456, 1340.5])
    assert np.allclose(f.amplitude, [0.0521, 0.3])
    assert np.allclose(f.stop_time_btjd - f.start_time_btjd, [24 / 1440, 60 / 1440])
    assert np.all(f.start_time_btjd < f.peak_time_btjd) and np.all(f.detectable)
    assert np.allclose(f.ed_s, [35.2, 300.0]) and np.allclose(f.energy_erg, [1.2e33, 2.5e34])
    assert np.all(np.isnan(f.fwhm_days)) and len(set(f.event_id)) == 2


def test_pietras_cds_with_readme(tmp_path):
    (tmp_path / "ReadMe").write_text(README)
    (tmp_path / "flares.dat").write_text(_pietras_dat())
    _check_pietras(read_pietras2022(tmp_path / "flares.dat", readme=tmp_path / "ReadMe"))


def test_pietras_mrt_single_file(tmp_path):
    path = tmp_path / "flares_mrt.txt"
    path.write_text(README.replace("Byte-by-byte Description of file: flares.dat",
                                   "Byte-by-byte Description of file: flares_mrt.txt")
                    + _pietras_dat())
    _check_pietras(read_pietras2022(path))


def test_pietras_csv_export(tmp_path):
    path = tmp_path / "pietras.csv"
    pd.DataFrame(PIETRAS_ROWS, columns=["TIC", "Sector", "Tpeak", "Amp", "Dur", "Nprof", "ED", "Energy"]).to_csv(path, index=False)
    _check_pietras(read_pietras2022(path))
    # duration in days when told so
    f = read_pietras2022(path, duration_unit="d")[358108509]
    assert np.allclose(f.stop_time_btjd - f.start_time_btjd, [24.0, 60.0])


def test_pietras_missing_column(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"TIC": [1], "Amp": [0.1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv: missing required column\(s\) \['Tpeak'\]"):
        read_pietras2022(path)


# ------------------------------------------------------------------ generic + errors

def test_generic_csv_with_mapping(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"TIC": [5, 5, 9], "t_peak": [2458400.5, 2458400.1, 2458500.0], "amp": [0.1, 0.2, 0.3],
                  "ok": [1, 1, 0]}).to_csv(path, index=False)
    cat = read_flare_csv(path, {"tic": "TIC", "peak_time": "t_peak", "amplitude": "amp", "time_offset": 2457000})
    assert sorted(cat) == [5, 9]
    assert np.allclose(cat[5].peak_time_btjd, [1400.1, 1400.5]) and np.allclose(cat[5].amplitude, [0.2, 0.1])
    assert np.all(cat[5].stop_time_btjd - cat[5].start_time_btjd == pytest.approx(2 * CADENCE_DAYS))
    assert np.all(np.isnan(cat[5].ed_s))
    only = read_flare_csv(path, {"tic": "TIC", "peak_time": "t_peak"}, query="ok == 1")
    assert sorted(only) == [5]
    with pytest.raises(ValueError, match=r"mine\.csv: missing required column\(s\) \['amplitude_col'\]"):
        read_flare_csv(path, {"tic": "TIC", "peak_time": "t_peak", "amplitude": "amplitude_col"})
    with pytest.raises(ValueError, match="needs 'peak_time'"):
        read_flare_csv(path, {"tic": "TIC"})


def test_missing_column_names_file_and_column(tmp_path, shared_data):
    src = pd.read_csv(shared_data / "catalogs/guenther2020.csv", nrows=5)
    path = tmp_path / "guenther_broken.csv"
    src.drop(columns=["FWHMdt", "Amp"]).to_csv(path, index=False)
    with pytest.raises(ValueError) as info:
        read_guenther2020(path)
    assert "guenther_broken.csv" in str(info.value) and "'Amp'" in str(info.value) and "'FWHMdt'" in str(info.value)
    ucd = tmp_path / "ucd.csv"
    pd.DataFrame({"TIC": [1], "tstart": [1.0]}).to_csv(ucd, index=False)
    with pytest.raises(ValueError, match=r"ucd\.csv: missing required column.*'tstop'"):
        read_ilin_ucd(ucd)


def _guenther_rows(path, tpeak: list, tic: list | None = None):
    """A minimal Günther-layout table; ``tpeak`` as the file would hold it (text allowed)."""
    n = len(tpeak)
    pd.DataFrame({"TIC": tic or [7, 7, 8, 8][:n], "Outbst": list(range(1, n + 1)), "tpeak": tpeak,
                  "Amp": [0.1] * n, "FWHMdt": [0.01] * n}).to_csv(path, index=False)
    return path


def test_unparseable_peak_time_excludes_its_star_naming_file_column_and_rows(tmp_path):
    path = _guenther_rows(tmp_path / "typo.csv", [2458400.5, "2458401.2x", 2458402.0, 2458403.0])
    cat = read_guenther2020(path)
    assert 7 not in cat and sorted(cat) == [8] and cat.n_flares == 2  # not a star without flares: excluded
    reason = cat.excluded[7]
    assert "typo.csv" in reason and "column 'tpeak'" in reason and "1 row(s)" in reason and "rows 2;" in reason
    assert "'2458401.2x'" in reason and "\n" not in reason
    generic = read_flare_csv(path, {"tic": "TIC", "peak_time": "tpeak", "time_offset": 2457000})
    assert sorted(generic) == [8] and "column 'tpeak'" in generic.excluded[7]


def test_no_usable_peak_time_or_tic_stops_the_read(tmp_path):
    with pytest.raises(ValueError, match=r"all_text\.csv: column 'tpeak': none of the 2 row\(s\)"):
        read_guenther2020(_guenther_rows(tmp_path / "all_text.csv", ["noon", "dusk"]))
    with pytest.raises(ValueError, match=r"no_tic\.csv: column 'TIC': 1 of 2 row\(s\) have no usable TIC \(rows 2"):
        read_guenther2020(_guenther_rows(tmp_path / "no_tic.csv", [2458400.5, 2458401.0], tic=[7, "TIC?"]))


def test_catalog_agreement_scores_one_catalog_against_another_on_the_light_curves_both_label():
    from pathlib import Path

    from flaredetect.data.lightcurve import Flares, LightCurve
    from flaredetect.evaluation.catalog_benchmark import LabelledLightCurve, catalog_agreement

    n = 5000
    time = 1400.0 + np.arange(n) * CADENCE_DAYS
    lc = LightCurve(tic=7, sector=2, time_btjd=time, flux_rel=np.zeros(n), flux_err=np.full(n, 1e-3),
                    quality=np.zeros(n, np.int64))

    def flares(peaks):
        peaks = np.asarray(peaks, dtype=float)
        return Flares(peak_time_btjd=peaks, amplitude=np.full(len(peaks), 0.01), fwhm_days=np.full(len(peaks), np.nan),
                      start_time_btjd=peaks, stop_time_btjd=peaks, event_id=np.arange(len(peaks)),
                      ed_s=np.full(len(peaks), np.nan), energy_erg=np.full(len(peaks), np.nan),
                      detectable=np.ones(len(peaks), bool))
    a = [1401.0, 1402.0, 1403.0, 1404.0]  # the sensitive catalog lists four flares
    b = [1401.0 + 2 * CADENCE_DAYS, 1403.0, 1405.0]  # the other finds two of them, and one they do not share
    catalogs = {"a": (FlareCatalog({7: flares(a)}), None), "b": (FlareCatalog({7: flares(b)}), None)}
    sets = {"both": [LabelledLightCurve(Path("x"), "both", ("a", "b"))],
            "one": [LabelledLightCurve(Path("y"), "one", ("a",))]}  # labelled by one catalog: not counted
    got = catalog_agreement(sets, catalogs, a="a", b="b", read=lambda path: lc)
    assert (got["light_curves"], got["a_flares"], got["b_flares"]) == (1, 4, 3)
    assert got["precision"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(0.5)
    assert got["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
