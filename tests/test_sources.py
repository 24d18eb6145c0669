"""Readers for local files (SPOC FITS, lightkurve to_fits() FITS, .npy) and the MAST source."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from flaredetect.data.lightcurve import LightCurve
from flaredetect.sources import (
    LightCurveReadError,
    LightCurveSource,
    LocalSource,
    MastError,
    MastSource,
    read_light_curve,
    with_retries,
)

SPOC_358 = "fits/spoc/tess2018206045859-s0001-0000000358108509-0120-s_lc.fits"
CUSTOM_358_S1 = "fits/custom_aperture/tess2019082314135-s0001-0000000358108509-0000-s_lc.fits"
CUSTOM_358_S2 = "fits/custom_aperture/tess2019090608014-s0002-0000000358108509-0000-s_lc.fits"


@functools.lru_cache(maxsize=None)
def _read(path: str) -> LightCurve:
    return read_light_curve(path)


@pytest.mark.parametrize("folder", ["tess", "fits/spoc", "fits/custom_aperture"])
def test_every_format_reads_to_the_same_normalised_form(shared_data, folder):
    files = sorted(p for p in (shared_data / folder).iterdir() if p.suffix in (".npy", ".fits"))
    assert files
    for path in files:
        lc = _read(str(path))
        assert isinstance(lc, LightCurve)
        assert len(lc) > 10_000, path.name
        assert abs(np.median(lc.flux_rel)) < 1e-9, path.name
        for arr in (lc.time_btjd, lc.flux_rel, lc.flux_err, lc.quality):
            assert np.all(np.isfinite(arr)), path.name
        assert np.all(np.diff(lc.time_btjd) > 0), path.name
        assert np.all(lc.flux_err > 0) and np.median(lc.flux_err) < 0.5, path.name
        assert 1300 < lc.time_btjd[0] < 1700, path.name  # BTJD of sectors 1-13
        assert lc.tic > 0 and 1 <= lc.sector <= 13, path.name
        assert str(lc.tic) in path.name, path.name


def test_identifiers_from_headers_and_names(shared_data):
    spoc = _read(str(shared_data / SPOC_358))
    custom = _read(str(shared_data / CUSTOM_358_S2))
    npy = _read(str(shared_data / "tess/tic002760232_s02.npy"))
    assert (spoc.tic, spoc.sector) == (358108509, 1)
    assert (custom.tic, custom.sector) == (358108509, 2)
    assert (npy.tic, npy.sector) == (2760232, 2)
    assert np.all(npy.quality == 0)


def test_spoc_and_custom_aperture_agree_on_the_same_star(shared_data):
    spoc = _read(str(shared_data / SPOC_358))
    custom = _read(str(shared_data / CUSTOM_358_S1))
    common, i, j = np.intersect1d(np.round(spoc.time_btjd, 5), np.round(custom.time_btjd, 5),
                                  return_indices=True)
    assert common.size > 15_000
    r = np.corrcoef(spoc.flux_rel[i], custom.flux_rel[j])[0, 1]
    assert r > 0.85, r  # measured 0.898 (different apertures, PDC vs no PDC correction)


def test_impulsive_outlier_cadences_are_kept_by_default_and_flagged(shared_data):
    lc = _read(str(shared_data / SPOC_358))
    assert np.any(lc.quality & 512)  # kept, and still visible as a quality feature
    hard = read_light_curve(shared_data / SPOC_358, quality_bitmask=512)
    assert not np.any(hard.quality & 512) and len(hard) < len(lc)


def test_quality_bitmask_none_keeps_more(shared_data):
    none = read_light_curve(shared_data / "fits/spoc/tess2019112060037-s0011-0000000425064757-0143-s_lc.fits",
                            quality_bitmask="none")
    assert np.any(none.quality & 2048)


def _corrupt_cases(shared_data: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    data = (shared_data / SPOC_358).read_bytes()
    cases = {}
    p = tmp / "truncated_lc.fits"
    p.write_bytes(data[: len(data) // 2])
    cases["truncated"] = (p, "corrupted")
    p = tmp / "garbage_lc.fits"
    p.write_bytes(b"\x00\x13not a fits file\xff" * 200)
    cases["garbage"] = (p, "corrupted")
    p = tmp / "header_only_lc.fits"
    p.write_bytes(data[: 2880 * 2])
    cases["header_only"] = (p, "")
    from astropy.io import fits

    with fits.open(shared_data / SPOC_358) as hdul:
        hdul[1].data["PDCSAP_FLUX"][:] = np.nan
        p = tmp / "allnan_lc.fits"
        hdul.writeto(p)
    cases["all_nan_fits"] = (p, "finite")
    t = np.linspace(1354.0, 1380.0, 500)
    p = tmp / "tic000000001_s02.npy"
    np.save(p, np.vstack([t, np.full_like(t, np.nan), np.full_like(t, 1e-3)]))
    cases["all_nan_npy"] = (p, "finite")
    p = tmp / "tic000000002_s02.npy"
    np.save(p, np.empty((3, 0)))
    cases["empty_npy"] = (p, "empty")
    p = tmp / "tic000000003_s02.npy"
    np.save(p, np.array([]))
    cases["empty_1d_npy"] = (p, "shape")
    p = tmp / "tic000000004_s02.npy"
    np.save(p, np.ones((500, 3)))
    cases["transposed_npy"] = (p, "shape")
    p = tmp / "tic000000005_s02.npy"
    p.write_bytes(b"garbage bytes, not numpy")
    cases["garbage_npy"] = (p, "not a .npy array")
    return cases


def test_damaged_files_raise_one_line_errors_naming_the_file(shared_data, tmp_path):
    for name, (path, word) in _corrupt_cases(shared_data, tmp_path).items():
        with pytest.raises(LightCurveReadError) as info:
            read_light_curve(path)
        message = str(info.value)
        assert "\n" not in message, name
        assert path.name in message, name
        assert word.lower() in message.lower(), (name, message)


def test_text_file_named_npy_is_not_a_npy_array_and_no_pickle_hint(tmp_path):
    path = tmp_path / "lc.npy"
    path.write_text("time,flux,flux_err\n1400.0,1.0,0.001\n")
    with pytest.raises(LightCurveReadError) as info:
        read_light_curve(path)
    assert "not a .npy array" in str(info.value) and "pickle" not in str(info.value).lower()


@pytest.mark.parametrize("name,tic,sector", [("lc.npy", None, None), ("441420236_s01.npy", 441420236, 1),
                                             ("tic002760232_s02.npy", 2760232, 2),
                                             ("TIC_123456_sector5.npy", 123456, 5)])
def test_any_npy_file_name_is_read_with_tic_and_sector_when_recognisable(tmp_path, name, tic, sector):
    t = 1354.0 + np.arange(300) * 2 / 1440
    np.save(tmp_path / name, np.vstack([t, np.ones_like(t), np.full_like(t, 1e-3)]))
    lc = read_light_curve(tmp_path / name)
    assert (lc.tic, lc.sector) == (tic, sector) and len(lc) == 300
    lc = read_light_curve(tmp_path / name, tic=7, sector=9)  # explicit overrides win
    assert (lc.tic, lc.sector) == (7, 9)


def test_float32_npy_is_read_in_float64_with_the_true_cadence(tmp_path):
    from flaredetect.data.lightcurve import cadence_days

    t = 1400.0 + np.arange(5000) * 120.0 / 86400.0
    np.save(tmp_path / "tic5_s2.npy", np.vstack([t, np.ones_like(t), np.full_like(t, 1e-3)]).astype(np.float32))
    lc = read_light_curve(tmp_path / "tic5_s2.npy")
    assert lc.time_btjd.dtype == np.float64 and lc.flux_rel.dtype == np.float64
    assert cadence_days(lc.time_btjd) * 86400 == pytest.approx(120.0, abs=0.2)  # median step: 116 s


def test_missing_file(tmp_path):
    with pytest.raises(LightCurveReadError, match="no such file"):
        read_light_curve(tmp_path / "nope_lc.fits")


def test_local_source_reports_bad_files_and_goes_on(shared_data, tmp_path):
    good = tmp_path / "tic002760232_s02.npy"
    good.write_bytes((shared_data / "tess/tic002760232_s02.npy").read_bytes())
    (tmp_path / "tic000000009_s02.npy").write_bytes(b"broken")
    (tmp_path / "notes.txt").write_text("ignored")
    source = LocalSource(tmp_path)
    assert isinstance(source, LightCurveSource)
    results = dict(source.iter_light_curves())
    assert set(results) == {"tic000000009_s02.npy", "tic002760232_s02.npy"}
    assert isinstance(results["tic002760232_s02.npy"], LightCurve)
    assert isinstance(results["tic000000009_s02.npy"], LightCurveReadError)
    assert len(LocalSource(str(shared_data / "fits/spoc/*s0001*_lc.fits"))) == 7


# ----------------------------------------------------------------------------- MAST

class FakeSearchResult:
    """Stands in for lightkurve.SearchResult: download_all reads local files."""

    def __init__(self, paths, calls):
        self.paths, self.calls = list(paths), calls

    def __len__(self):
        return len(self.paths)

    def download_all(self, quality_bitmask="default", download_dir=None, **kwargs):
        import lightkurve as lk

        self.calls.append(("download_all", quality_bitmask, download_dir, kwargs))
        return lk.LightCurveCollection([lk.read(str(p), quality_bitmask=quality_bitmask) for p in self.paths])


@pytest.fixture
def fake_mast(monkeypatch, shared_data):
    import lightkurve as lk

    calls = []
    table = {358108509: [shared_data / CUSTOM_358_S2, shared_data / CUSTOM_358_S1], 1: []}

    def search(target, **kwargs):
        calls.append(("search", target, kwargs))
        tic = int(target.split()[1])
        if tic == 666:
            raise ConnectionError("MAST is down")
        return FakeSearchResult(table.get(tic, []), calls)

    monkeypatch.setattr(lk, "search_lightcurve", search)
    return calls


def test_mast_source_downloads_into_cache_and_cleans(fake_mast, tmp_path):
    cache = tmp_path / "cache"
    source = MastSource([358108509], cache_dir=cache, sectors=[1, 2], sleep=lambda s: None)
    results = list(source.iter_light_curves())
    assert [r[0] for r in results] == ["TIC 358108509 sector 1", "TIC 358108509 sector 2"]
    for _, lc in results:
        assert isinstance(lc, LightCurve) and lc.tic == 358108509
        assert abs(np.median(lc.flux_rel)) < 1e-9
    search = [c for c in fake_mast if c[0] == "search"][0]
    assert search[1] == "TIC 358108509"
    assert search[2] == {"mission": "TESS", "author": "SPOC", "exptime": 120, "sector": [1, 2]}
    download = [c for c in fake_mast if c[0] == "download_all"][0]
    assert download[1] == "none" and Path(download[2]) == cache and cache.is_dir()


def test_mast_source_stitches_sectors(fake_mast, tmp_path):
    source = MastSource([358108509], cache_dir=tmp_path, stitch_sectors=True, sleep=lambda s: None)
    ((target, lc),) = list(source.iter_light_curves())
    assert target == "TIC 358108509" and lc.sector == -1
    assert np.all(np.diff(lc.time_btjd) > 0)


def test_mast_source_failures_are_one_line_and_do_not_stop_the_run(fake_mast, tmp_path):
    waits = []
    source = MastSource([666, 1, 358108509], cache_dir=tmp_path, sectors=1, attempts=3, backoff_s=0.5,
                        sleep=waits.append)
    results = list(source.iter_light_curves())
    assert [r[0] for r in results] == ["TIC 666", "TIC 1", "TIC 358108509 sector 1", "TIC 358108509 sector 2"]
    down, empty = results[0][1], results[1][1]
    assert isinstance(down, MastError) and "3 attempt" in str(down) and "MAST is down" in str(down)
    assert isinstance(empty, MastError) and "no SPOC 120 s light curve" in str(empty)
    assert all("\n" not in str(e) for e in (down, empty))
    assert waits == [0.5, 1.0]  # exponential backoff between the 3 attempts
    assert sum(1 for c in fake_mast if c[0] == "search" and c[1] == "TIC 666") == 3


def test_with_retries_recovers_from_transient_errors():
    state = {"n": 0}
    waits = []

    def flaky():
        state["n"] += 1
        if state["n"] < 3:
            raise TimeoutError("slow")
        return "ok"

    assert with_retries(flaky, attempts=4, backoff_s=1.0, sleep=waits.append) == "ok"
    assert waits == [1.0, 2.0]


@pytest.mark.remote_data
def test_mast_real_download(tmp_path):
    source = MastSource([358108509], cache_dir=tmp_path / "cache", sectors=1)
    ((target, lc),) = list(source.iter_light_curves())
    assert not isinstance(lc, Exception), lc
    assert lc.tic == 358108509 and lc.sector == 1 and len(lc) > 15_000
    assert list((tmp_path / "cache").rglob("*_lc.fits"))
    again = list(source.iter_light_curves())  # served from the cache
    assert np.array_equal(again[0][1].flux_rel, lc.flux_rel)


def _same_raw(a, b) -> None:
    assert (a.tic, a.sector, a.source, a.cadence_s) == (b.tic, b.sector, b.source, b.cadence_s)
    for name in ("time_btjd", "flux", "flux_err", "quality", "cadenceno"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), name


def test_direct_fits_reader_gives_what_lightkurve_gives_on_every_shared_file(shared_data):
    from flaredetect.sources.local import read_raw_fits

    files = sorted(shared_data.rglob("*.fits"))
    assert len(files) > 100
    for path in files:
        try:
            expected = read_raw_fits(path, direct=False)
        except Exception as err:  # what lightkurve refuses, the direct reader refuses too
            with pytest.raises(LightCurveReadError):
                read_raw_fits(path)
            continue
        _same_raw(read_raw_fits(path), expected)


def test_direct_fits_reader_matches_lightkurve_on_ffi_layouts_nan_times_and_to_fits(tmp_path):
    from test_cadence import _write_ffi_fits

    from flaredetect.sources.local import _tess_table, read_raw_fits

    rng = np.random.default_rng(4)
    n = 800
    time = 2000.0 + np.arange(n) * 600.0 / 86400
    time[[5, 6, 300]] = np.nan  # lightkurve drops rows without a time
    layouts = {"spoc": ("NASA/Ames", {"SAP_FLUX": 10 + rng.normal(0, 1, n), "PDCSAP_FLUX": 9 + rng.normal(0, 1, n),
                                      "PDCSAP_FLUX_ERR": np.full(n, 1.0)}),
               "qlp": ("MIT/QLP", {"SAP_FLUX": 1 + rng.normal(0, 1e-3, n), "KSPSAP_FLUX": 1 + rng.normal(0, 1e-3, n),
                                   "KSPSAP_FLUX_ERR": np.full(n, 1e-3)}),
               "both": ("NASA/Ames", {"FLUX": 1 + rng.normal(0, 1e-3, n), "FLUX_ERR": np.full(n, 1e-3),
                                      "PDCSAP_FLUX": 5 + rng.normal(0, 1, n), "PDCSAP_FLUX_ERR": np.full(n, 2.0)})}
    for name, (origin, columns) in layouts.items():
        path = _write_ffi_fits(tmp_path / f"{name}.fits", 600.0, origin, columns, time)
        raw = read_raw_fits(path)
        _same_raw(raw, read_raw_fits(path, direct=False))
        assert len(raw.time_btjd) == n - 3
    from astropy.io import fits

    with fits.open(tmp_path / "qlp.fits") as hdul:  # QLP files are lightkurve's to read
        assert _tess_table(tmp_path / "qlp.fits", hdul, "KSPSAP_FLUX", None, None) is None
