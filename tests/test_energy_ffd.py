"""Flare energies (flaredetect.energy) and flare frequency distributions (flaredetect.ffd)."""
from __future__ import annotations

import numpy as np
import pytest

from flaredetect.energy import bolometric_flare_energy, stellar_parameters, tess_response
from flaredetect.ffd import ffd, fit_powerlaw

SIGMA_SB, R_SUN_CM = 5.670374419e-5, 6.957e10  # cgs (CODATA 2018, IAU 2015)
H, C, K_B = 6.62607015e-27, 2.99792458e10, 1.380649e-16


def _planck(lam_cm, t):
    return 2 * H * C ** 2 / lam_cm ** 5 / np.expm1(H * C / (lam_cm * K_B * t))


def test_energy_of_a_narrow_band_flare_matches_the_hand_computation():
    narrow = (np.array([6999.5, 7000.0, 7000.5]), np.array([0.0, 1.0, 0.0]))  # a 7000 A line
    energy = bolometric_flare_energy(20.0, 3100.0, 0.25, flare_temperature_k=9000.0, response=narrow)
    lam = 7000e-8
    hand = 20.0 * SIGMA_SB * 9000.0 ** 4 * np.pi * (0.25 * R_SUN_CM) ** 2 * _planck(lam, 3100.0) / _planck(lam, 9000.0)
    assert energy == pytest.approx(hand, rel=2e-3)


def test_tess_band_energy_lies_between_its_blue_and_red_edges_and_scales_with_ed_and_area():
    wavelength, transmission = tess_response()
    assert 5500 < wavelength[transmission > 0.5].min() < 6500 and 9500 < wavelength[transmission > 0.05].max() < 11500
    edges = [bolometric_flare_energy(1.0, 3000.0, 0.3, response=(np.array([w - 0.5, w, w + 0.5]), np.array([0, 1, 0])))
             for w in (6000.0, 10000.0)]
    tess = bolometric_flare_energy(1.0, 3000.0, 0.3)
    assert min(edges) < tess < max(edges)  # a cool star is brighter in the red: larger energy per ED there
    assert bolometric_flare_energy(10.0, 3000.0, 0.6) == pytest.approx(40 * tess, rel=1e-9)
    with pytest.raises(ValueError, match="radius_rsun"):
        bolometric_flare_energy(1.0, 3000.0, -1.0)
    assert stellar_parameters({"TEFF": 3200.0, "RADIUS": None}) == (3200.0, None)


def test_ffd_fit_recovers_the_power_law_index_within_its_error():
    inside = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        ed = 5.0 * (1 - rng.random(150)) ** (-1 / 0.9)  # alpha = 1.9 above 5 s
        alpha, err, n, x_min = fit_powerlaw(ed)
        assert n == 150 and x_min == pytest.approx(ed.min())
        inside.append(abs(alpha - 1.9) < err)
    assert 0.6 < np.mean(inside) < 0.76  # a 1-sigma error covers ~68 % of samples


def test_ffd_rates_errors_and_recovery_correction():
    table = {"ed_rec": np.array([1.0, 2.0, 4.0, 8.0, np.nan]), "ed_corr": np.array([2.0, 4.0, 8.0, 16.0, 1.0]),
             "recovery_probability": np.array([0.5, 1.0, 1.0, 1.0, 0.0])}
    f = ffd(table, observing_time_days=2.0)
    np.testing.assert_allclose(f.values, [8, 4, 2, 1])
    np.testing.assert_allclose(f.rate_per_day, [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(f.rate_err_per_day, np.sqrt([1, 2, 3, 4]) / 2.0)
    corrected = ffd(table, observing_time_days=2.0, corrected=True)
    np.testing.assert_allclose(corrected.values, [16, 8, 4, 2])  # probability 0: no weight, dropped
    np.testing.assert_allclose(corrected.rate_per_day, [0.5, 1.0, 1.5, 2.5])  # the 2 s flare counts twice
    assert f.rate_above(f.x_min) == pytest.approx(4 / 2.0)
    with pytest.raises(ValueError, match="at least 3 flares"):
        fit_powerlaw([1.0, 2.0])
    with pytest.raises(KeyError, match="ed_corr"):
        ffd({"ed_rec": np.ones(5)}, 1.0, corrected=True)


def test_find_flares_energies_from_the_header_or_a_luminosity(shared_data):
    import lightkurve as lk

    import flaredetect

    path = next((shared_data / "fits" / "spoc").glob("*-s0001-0000000358108509-*_lc.fits"))
    lc = lk.read(str(path), quality_bitmask="none")
    result = flaredetect.find_flares(lc, model="threshold")
    expected = bolometric_flare_energy(result.flares["ed_rec"].value, lc.meta["TEFF"], lc.meta["RADIUS"])
    np.testing.assert_allclose(result.flares["energy"].value, expected)
    assert "bolometric" in result.flares.meta["energy"]
    lum = flaredetect.find_flares(lc, model="threshold", luminosity_erg_s=1e30)
    np.testing.assert_allclose(lum.flares["energy"].value, lum.flares["ed_rec"].value * 1e30)


def test_stellar_parameters_from_the_tic_are_queried_at_mast_when_asked(monkeypatch):
    """The TIC lookup (online in use) asks MAST's TIC for the star and uses its Teff and radius;
    here astroquery's query is replaced by a local table."""
    import astroquery.mast
    from astropy.table import Table

    import flaredetect
    from flaredetect.data.synthetic import generate_light_curve

    asked = []

    def query(**kwargs):
        asked.append(kwargs)
        return Table({"ID": ["7"], "Teff": [3100.0], "rad": [0.25]})

    monkeypatch.setattr(astroquery.mast.Catalogs, "query_criteria", query)
    lc = generate_light_curve(0, tic=7, sector=2)
    args = (lc.time_btjd, 1 + lc.flux_rel, lc.flux_err)
    offline = flaredetect.find_flares(*args, model="threshold", tic=7)
    assert not asked and np.isnan(offline.flares["energy"].value).all()  # offline unless asked
    result = flaredetect.find_flares(*args, model="threshold", tic=7, tic_lookup=True)
    assert asked == [{"catalog": "Tic", "ID": 7}]
    np.testing.assert_allclose(result.flares["energy"].value,
                               bolometric_flare_energy(result.flares["ed_rec"].value, 3100.0, 0.25))
