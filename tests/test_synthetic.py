"""Tests of the flare template and the synthetic TESS light-curve generator."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from flaredetect.data import flare_model as fm
from flaredetect.data.lightcurve import CADENCE_DAYS, QUALITY_BITS, robust_noise_sigma
from flaredetect.data.synthetic import (
    SyntheticConfig,
    generate_light_curve,
    generate_light_curves,
    simulate_star,
)

MINUTE = 1.0 / 1440.0
DESAT = QUALITY_BITS["desat"]


@pytest.fixture(scope="module")
def stars():
    """A few flaring stars with their hidden components."""
    out = []
    for i, child in enumerate(np.random.SeedSequence(42).spawn(8)):
        out.append(simulate_star(np.random.default_rng(child), 9_000_000_000 + i, 2,
                                 no_flare_fraction=0.0, flare_rate_per_day=(1.0, 3.0)))
    return out


# ------------------------------------------------------------------------- template


def _published_template(t):
    """Tovar Mendoza et al. 2022 template written as in the paper (erfc form)."""
    A, B, C, D1, D2, f1 = (0.9687734504375167, -0.251299705922117, 0.22675974948468916,
                           0.15551880775110513, 1.2150539528490194, 0.12695865022878844)
    out = 0.0
    for d, f in ((D1, f1), (D2, 1.0 - f1)):
        out = out + 0.5 * np.sqrt(np.pi) * A * C * f * np.exp(-d * t + (B / C + d * C / 2) ** 2) \
            * special.erfc((B - t) / C + C * d / 2)
    return out


def test_template_is_published_shape_with_unit_peak_and_fwhm():
    x = np.linspace(-2.0, 10.0, 240_001)
    y = fm.flare_template(x)
    assert np.isclose(y.max(), 1.0, atol=1e-8) and abs(x[np.argmax(y)]) < 1e-4
    above = x[y >= 0.5]
    assert np.isclose(above[-1] - above[0], 1.0, atol=1e-4)
    # Same shape as the published formula after its own peak/FWHM normalisation.
    u = np.linspace(-2.0, 12.0, 280_001)
    raw = _published_template(u)
    up = u[np.argmax(raw)]
    half = u[raw >= raw.max() / 2]
    width = half[-1] - half[0]
    assert np.isclose(width, 1.0866, atol=1e-3)  # the published FWHM is not exactly 1
    ref = np.interp(x, (u - up) / width, raw / raw.max())
    assert np.max(np.abs(ref - y)) < 2e-3


@pytest.mark.parametrize("fwhm_min", [1.0, 5.0, 60.0])
def test_integrated_flux_sum_matches_equivalent_duration(fwhm_min):
    fwhm, amp, peak = fwhm_min * MINUTE, 0.7, 1500.000123
    time = peak + CADENCE_DAYS * np.arange(-720, int(120 * fwhm / CADENCE_DAYS) + 720)
    ed = fm.equivalent_duration_s(amp, fwhm)
    for supersample in (None, 30):
        flux = fm.flare_flux(time, peak, fwhm, amp, supersample=supersample)
        assert np.isclose(flux.sum() * CADENCE_DAYS * 86400.0, ed, rtol=0.01)
    # Independent of the analytic primitive: trapezoid of the continuous template.
    x = np.linspace(-3.0, 150.0, 1_530_001)
    assert np.isclose(np.trapezoid(fm.flare_template(x), x) * amp * fwhm * 86400.0, ed, rtol=1e-3)


def test_exposure_smoothing_lowers_short_flare_peaks():
    time = 1400.0 + CADENCE_DAYS * np.arange(-50, 400)
    short = fm.flare_flux(time, 1400.0004, 1.5 * MINUTE, 1.0)
    long = fm.flare_flux(time, 1400.0004, 60 * MINUTE, 1.0)
    assert short.max() < 0.75  # a 1.5-min flare is smeared over a 2-min exposure
    assert 0.98 < long.max() <= 1.0
    # Analytic exposure average == brute-force supersampling.
    brute = fm.flare_flux(time, 1400.0004, 1.5 * MINUTE, 1.0, supersample=400)
    assert np.max(np.abs(short - brute)) < 1e-4
    # Zero exposure gives the continuous template back.
    assert np.allclose(fm.flare_flux(time, 1400.0004, 1.5 * MINUTE, 1.0, exposure_days=0),
                       fm.flare_template((time - 1400.0004) / (1.5 * MINUTE)))


# ------------------------------------------------------------------------ generator


def _arrays(lc):
    fl = lc.flares
    return [lc.time_btjd, lc.flux_rel, lc.flux_err, lc.quality, lc.flare_mask,
            *(getattr(fl, name) for name in fl.__dataclass_fields__)]


def test_same_seed_same_bits_different_seed_different():
    a, b, c = generate_light_curve(7), generate_light_curve(7), generate_light_curve(8)
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    assert a.noise_sigma == b.noise_sigma
    assert len(a) != len(c) or not np.array_equal(a.flux_rel, c.flux_rel)
    # Star i does not depend on how many stars are generated.
    many, few = generate_light_curves(3, seed=5), generate_light_curves(2, seed=5)
    assert np.array_equal(many[1].flux_rel, few[1].flux_rel) and many[1].tic == few[1].tic


def test_parameters_are_validated_and_used():
    with pytest.raises(TypeError):
        generate_light_curve(0, noise_sigmaa=(1e-3, 1e-3))
    lc = generate_light_curve(0, noise_sigma=(2e-3, 2e-3), no_flare_fraction=1.0)
    assert np.isclose(lc.noise_sigma, 2e-3) and np.all(lc.flux_err == lc.noise_sigma)
    assert len(lc.flares) == 0 and not lc.flare_mask.any()
    cfg = SyntheticConfig(noise_sigma=[1e-3, 2e-3])  # Hydra passes lists
    assert cfg.noise_sigma == (1e-3, 2e-3)


def test_time_grid_gaps_and_momentum_dumps(stars):
    for star in stars:
        lc = star.light_curve
        t = lc.time_btjd
        assert t.dtype == np.float64 and np.all(np.diff(t) > 0)
        assert 1354.0 < t[0] < 1354.2 and 26.5 < t[-1] - t[0] < 27.5
        dt = np.diff(t)
        assert np.isclose(np.median(dt), CADENCE_DAYS)
        big = dt[dt > 0.5]
        assert big.size == 1 and 0.9 <= big[0] <= 1.5 + CADENCE_DAYS  # mid-sector downlink
        i_gap = np.argmax(dt)
        assert 0.4 < (t[i_gap] - t[0]) / (t[-1] - t[0]) < 0.56
        assert 1 <= np.sum((dt > 1.5 * CADENCE_DAYS) & (dt < 0.5)) <= 4  # short gaps

        desat = (lc.quality & DESAT) > 0
        starts = np.flatnonzero(desat & ~np.r_[False, desat[:-1]])
        ends = np.flatnonzero(desat & ~np.r_[desat[1:], False])
        assert np.all((ends - starts + 1 >= 1) & (ends - starts + 1 <= 3))
        t_dump = t[starts]
        assert len(t_dump) >= 6
        for orbit in (t_dump < t[i_gap], t_dump > t[i_gap]):
            spacing = np.diff(t_dump[orbit])
            assert spacing.size >= 2 and np.all((spacing > 2.5) & (spacing < 3.5))
        assert np.all(np.isin(lc.quality[lc.quality > 0] & ~DESAT, [0, 128, 512, 1024]))


def test_flare_mask_truth_alignment(stars):
    n_checked = 0
    for star in stars:
        lc, fl, sigma = star.light_curve, star.light_curve.flares, star.light_curve.noise_sigma
        t, mask = lc.time_btjd, lc.flare_mask
        assert len(fl) > 0
        assert np.all(fl.start_time_btjd <= fl.stop_time_btjd)
        assert np.all(np.isnan(fl.energy_erg))
        assert np.allclose(fl.ed_s, fm.equivalent_duration_s(fl.amplitude, fl.fwhm_days))
        covered = np.zeros(len(t), dtype=bool)
        for j in range(len(fl)):
            i_peak = np.argmin(np.abs(t - fl.peak_time_btjd[j]))
            if abs(t[i_peak] - fl.peak_time_btjd[j]) <= CADENCE_DAYS:  # peak not in a gap
                assert mask[i_peak]
                assert fl.start_time_btjd[j] <= t[i_peak] <= fl.stop_time_btjd[j]
            assert mask[(t >= fl.start_time_btjd[j]) & (t <= fl.stop_time_btjd[j])].all()
            covered |= (t >= fl.start_time_btjd[j]) & (t <= fl.stop_time_btjd[j])
            # detectable <=> at least 3 recomputed integrated cadences of this component reach 3 sigma
            near = np.abs(t - fl.peak_time_btjd[j]) < 0.05 + 2 * fl.fwhm_days[j]
            f = fm.flare_flux(t[near], fl.peak_time_btjd[j], fl.fwhm_days[j], fl.amplitude[j])
            assert fl.detectable[j] == (np.count_nonzero(f >= 3.0 * sigma) >= 3)
            n_checked += 1
        assert np.array_equal(mask, covered)
        # the flux really contains the flares: removing everything else leaves them
        residual = lc.flux_rel - star.variability - star.white_noise - star.red_noise - star.artefact_flux
        assert np.allclose(residual, star.flare_flux, atol=1e-12)
        big = fl.amplitude > 20 * sigma
        if big.any():
            j = np.flatnonzero(big)[0]
            i_peak = np.argmin(np.abs(t - fl.peak_time_btjd[j]))
            assert star.flare_flux[i_peak] > 5 * sigma
        # complex flares: extra components share the event id and follow the main peak
        for e in np.unique(fl.event_id):
            comp = fl.event_id == e
            if comp.sum() > 1:
                assert np.argmax(fl.amplitude[comp]) == 0
    assert n_checked > 50


def test_lookalike_spikes_are_not_flares(stars):
    n_spikes = 0
    for star in stars:
        lc, sigma = star.light_curve, star.light_curve.noise_sigma
        cr = star.cosmic_ray_index
        assert not lc.flare_mask[cr].any()
        assert np.all(star.artefact_flux[cr] >= 3.0 * sigma)
        for i in cr:  # single cadence: no decay after it
            if i + 1 < len(lc):
                assert star.artefact_flux[i + 1] < 0.5 * star.artefact_flux[i] or lc.quality[i + 1]
        n_spikes += cr.size
    assert n_spikes >= 5
    # Many spikes on a star with many long flares: still none inside the mask.
    star = simulate_star(3, 9_000_000_100, 2, cosmic_ray_rate_per_day=40.0, no_flare_fraction=0.0,
                         flare_rate_per_day=(3.0, 3.0), fwhm_median_days=20 * MINUTE)
    assert star.light_curve.flare_mask.mean() > 0.02 and star.cosmic_ray_index.size > 500
    assert not star.light_curve.flare_mask[star.cosmic_ray_index].any()


def test_noise_sigma_is_what_the_data_show(stars):
    ratios = [robust_noise_sigma(s.light_curve.flux_rel) / s.light_curve.noise_sigma for s in stars]
    assert 0.9 < np.median(ratios) < 1.15


# ------------------------------------------------------------------------- realism


def _catalog(shared):
    cat = np.genfromtxt(shared / "catalogs" / "guenther2020.csv", delimiter=",", names=True,
                        usecols=("Amp", "FWHMdt"))
    good = np.isfinite(cat["Amp"]) & np.isfinite(cat["FWHMdt"])
    return cat["Amp"][good], cat["FWHMdt"][good]


def test_realism_against_real_tess_data(shared_data):
    cfg = SyntheticConfig()
    files = sorted((shared_data / "tess").glob("tic*_s02.npy"))
    assert len(files) == 3
    for f in files:
        time, flux, _err = np.load(f)
        sigma = robust_noise_sigma(flux / np.nanmedian(flux) - 1.0)
        assert cfg.noise_sigma[0] < sigma < cfg.noise_sigma[1], f.name

    cat_amp, cat_fwhm = _catalog(shared_data)
    lcs = generate_light_curves(60, seed=11)
    det = [lc.flares.select(lc.flares.detectable) for lc in lcs]
    amp = np.concatenate([d.amplitude for d in det])
    fwhm = np.concatenate([d.fwhm_days for d in det])
    assert amp.size > 100
    for cat_v, syn_v in ((cat_amp, amp), (cat_fwhm, fwhm)):
        c10, c50, c90 = np.percentile(cat_v, [10, 50, 90])
        s01, s50, s99 = np.percentile(syn_v, [1, 50, 99])
        assert 1 / 3 < s50 / c50 < 3
        assert s01 <= c10 and c90 <= s99
