"""Where a flare table searched (flaredetect/catalog_coverage.py), and its use by the
catalog benchmark and by the injected training windows."""
import numpy as np
import pandas as pd
import pytest

from flaredetect.catalog_coverage import SearchedStretches, searched_stretches
from flaredetect.data.cleaning import RawLightCurve

N = 1000
CUT = np.r_[0:50, 600:651]  # cadence indices the study left out: 50 at the start, 51 mid-sector


def _raw(tic, sector=5, cadenceno=True):
    cad = np.arange(1, N + 1)
    time = 1400.0 + cad * 2.0 / 1440
    return RawLightCurve(tic=tic, sector=sector, time_btjd=time, flux=np.ones(N), flux_err=np.full(N, 1e-3),
                         quality=np.zeros(N, dtype=np.int32), cadenceno=cad if cadenceno else None)


def _table(rows):
    """AltaiPony-like rows: (TIC, flare's first cadence index in our file); istart counts only
    the cadences the study kept."""
    kept = np.setdiff1d(np.arange(N), CUT)
    cad = np.arange(1, N + 1)
    time = 1400.0 + cad * 2.0 / 1440
    return pd.DataFrame([{"TIC": tic, "sector": 5, "tstart": time[i], "tstop": time[i + 3], "cstart": cad[i],
                          "istart": int(np.searchsorted(kept, i)), "total_n_valid_data_points": len(kept),
                          "real": 1.0} for tic, i in rows])


@pytest.mark.parametrize("cadenceno", [True, False])
def test_searched_stretches_follow_the_rows_excluded_counts(cadenceno):
    table = _table([(1, 100), (1, 300), (2, 500), (2, 700), (2, 900)])
    cover = searched_stretches(table, [_raw(1, cadenceno=cadenceno), _raw(2, cadenceno=cadenceno)])
    t = _raw(1).time_btjd
    mask = cover.mask(1, 5, t)
    # 100 -> 500 (nothing cut between them: 50 cut before each), 700 -> the end (all 101 cut before 700)
    expected = np.zeros(N, bool)
    expected[100:501] = True
    expected[700:] = True
    expected[500:504] = True  # the row's own extent
    assert np.array_equal(mask, expected)
    # before the first row: 50 cadences were cut somewhere there, so none of it counts
    assert not mask[:100].any() and not mask[504:700].any()
    # a star of the study without a row in this sector takes the sector's cut; a star it never lists: unknown
    star3 = searched_stretches(pd.concat([table, _table([(3, 200)]).assign(sector=6)]),
                               [_raw(1, cadenceno=cadenceno), _raw(2, cadenceno=cadenceno)])
    assert np.array_equal(star3.mask(3, 5, t), expected)
    assert star3.mask(4, 5, t) is None and star3.mask(1, 7, t) is None and star3.mask(None, 5, t) is None


def test_searched_stretches_need_altaipony_columns():
    with pytest.raises(ValueError, match=r"istart"):
        searched_stretches(_table([(1, 100)]).drop(columns=["istart"]), [_raw(1)])


def test_benchmark_counts_the_vetted_table_only_where_it_searched():
    from flaredetect.data.lightcurve import LightCurve
    from flaredetect.evaluation.catalog_benchmark import searched_mask, searched_part

    raw = _raw(1)
    lc = LightCurve(tic=1, sector=5, time_btjd=raw.time_btjd, flux_rel=np.zeros(N), flux_err=raw.flux_err,
                    quality=raw.quality)
    cover = SearchedStretches({(5, 899): np.array([[lc.time_btjd[100], lc.time_btjd[500]]])}, {(1, 5): 899},
                              frozenset({1}))
    catalogs = {"ucd": (None, None, cover), "guenther": (None, None, None)}
    searched = searched_mask(lc, ["ucd"], catalogs)
    assert searched.sum() == 401
    assert searched_mask(lc, ["ucd", "guenther"], catalogs) is None  # another catalog searched it all
    t = lc.time_btjd
    events = {"start_time_btjd": t[[200, 40, 800]], "stop_time_btjd": t[[205, 45, 805]],
              "peak_time_btjd": t[[201, 41, 801]]}
    flare_peaks = t[[802]]  # a catalogued flare outside the stretches: it was searched, its event counts
    time, prob, kept = searched_part(lc, np.linspace(0, 1, N), events, searched, flare_peaks)
    assert list(kept["peak_time_btjd"]) == [t[201], t[801]]
    assert len(time) == len(prob) == 401 and time[0] == t[100]


def test_injected_windows_mask_unsearched_bumps_instead_of_teaching_them_as_negatives(tmp_path):
    from flaredetect.catalogs import FlareCatalog
    from flaredetect.data.injected_windows import InjectedWindows
    from flaredetect.data.lightcurve import Flares
    from flaredetect.data.window_file import read_window_file
    from flaredetect.data.windowing import KIND_HARD_NEGATIVE
    from tests.test_injection import _star_file

    peak = _star_file(tmp_path / "lcs", 31, 1, flare_at=2000)
    _star_file(tmp_path / "lcs", 32, 2, flare_at=4000)               # a flare no catalog lists
    time = np.load(tmp_path / "lcs" / "tic000000032_s02.npy")[0]
    catalog = FlareCatalog({31: Flares(peak_time_btjd=np.array([peak]), amplitude=np.array([0.01]),
                                       fwhm_days=np.array([0.05]), start_time_btjd=np.array([peak - 0.01]),
                                       stop_time_btjd=np.array([peak + 0.1]), event_id=np.array([3]),
                                       ed_s=np.array([np.nan]), energy_erg=np.array([np.nan]),
                                       detectable=np.array([True]))}, name="test")
    settings = dict(catalogs=[catalog], positive_catalogs=[catalog], cache_dir=tmp_path / "cache", realizations=2,
                    unlabelled={"n_sigma": 4.0}, labelled_paths=[str(tmp_path / "lcs" / "tic*_s02.npy")],
                    injection={"amplitude_sigma": [5, 50], "fwhm_minutes": [4, 20], "per_day": 1.0})

    def on_bump(windows):
        return (windows["tic"] == 32) & (np.abs(windows["time_btjd"] - time[4000]).min(axis=1) < 0.005)

    # the catalogs searched all of TIC 32 but the stretch around the bump: it is masked, in no window
    searched = SearchedStretches({(2, 1): np.array([[time[0], time[3500]], [time[4500], time[-1]]])},
                                 {(32, 2): 1}, frozenset({32}))
    cut = read_window_file(InjectedWindows([tmp_path / "lcs"], searched=searched, **settings).prepare())
    assert not on_bump(cut).any()
    # searched everywhere: the same bump is a hard negative
    whole = SearchedStretches({(2, 1): np.array([[time[0], time[-1]]])}, {(32, 2): 1}, frozenset({32}))
    full = read_window_file(InjectedWindows([tmp_path / "lcs"], searched=whole, **settings).prepare())
    assert on_bump(full).sum() >= 2 and (full["kind"][on_bump(full)] == KIND_HARD_NEGATIVE).all()
    with pytest.raises(ValueError, match="searched needs labelled_paths"):
        InjectedWindows([tmp_path / "lcs"], searched=whole, **{**settings, "labelled_paths": []})
