import numpy as np
import pytest
import torch

from flaredetect.data.augment import Augmentation, augment
from flaredetect.data.features import window_features
from flaredetect.data.lightcurve import CADENCE_DAYS, Flares, LightCurve
from flaredetect.data.splits import assign_splits, split_stars
from flaredetect.data.windowing import (KIND_POSITIVE, WindowSpec, cut_windows, peak_indices, segments)


def toy_curve(n=3000, gap_at=1500, gap_cadences=300, peaks_at=(400, 1200, 2200), amps=(0.05, 0.002, 0.08),
              detectable=(True, False, True), sigma=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    idx = np.arange(n, dtype=float)
    idx[gap_at:] += gap_cadences  # a long gap
    time = 1354.0 + idx * CADENCE_DAYS
    flux = rng.normal(0, sigma, n)
    mask = np.zeros(n, bool)
    for p, a in zip(peaks_at, amps):
        flux[p:p + 6] += a * np.exp(-np.arange(6) / 2)
        mask[p:p + 6] = True
    quality = np.zeros(n, np.int32)
    quality[::700] = 32
    flares = Flares(peak_time_btjd=time[list(peaks_at)], amplitude=np.array(amps),
                    fwhm_days=np.full(3, 4 * CADENCE_DAYS), start_time_btjd=time[list(peaks_at)],
                    stop_time_btjd=time[[p + 5 for p in peaks_at]], event_id=np.arange(3),
                    ed_s=np.full(3, np.nan), energy_erg=np.array([1e32, np.nan, 3e33]),
                    detectable=np.array(detectable))
    return LightCurve(tic=7, sector=2, time_btjd=time, flux_rel=flux, flux_err=np.full(n, sigma),
                      quality=quality, flares=flares, flare_mask=mask, noise_sigma=sigma)


def test_segments_split_at_long_gaps_only():
    lc = toy_curve()
    assert segments(lc.time_btjd, 5) == [(0, 1500), (1500, 3000)]
    t = lc.time_btjd.copy()
    t[100:] += 3 * CADENCE_DAYS  # a short gap stays inside a segment
    assert len(segments(t[:1500], 5)) == 1


def test_labels_masks_and_gaps():
    lc = toy_curve()
    spec = WindowSpec(length=100, context=10, max_peak_offset=30, negatives_per_positive=2.0)
    w = cut_windows(lc, spec, np.random.default_rng(1))
    pos = w["kind"] == KIND_POSITIVE
    assert pos.sum() == 2  # the undetectable flare gets no window
    assert (w["label"][pos] == 1).all() and (w["label"][~pos] == 0).all()
    assert (~pos).sum() == 4
    crop = slice(spec.context, spec.context + spec.length)
    for i in np.flatnonzero(pos):
        assert w["peak_mask"][i, crop].sum() == 1
        peak = np.flatnonzero(w["peak_mask"][i])[0]
        assert w["flare_mask"][i, peak] == 1
        assert w["flux_rel"][i, peak] == pytest.approx(w["flux_rel"][i, crop].max(), rel=0.2)
        assert w["peak_amp"][i] in (np.float32(0.05), np.float32(0.08))
    # negatives hold no flare at all, not even the undetectable one
    assert w["flare_mask"][~pos].sum() == 0
    # no window spans the long gap
    step = np.diff(w["time_btjd"], axis=1) / CADENCE_DAYS
    assert step.max() < 6
    assert w["flux_rel"].shape == (6, 120)


def test_windows_are_deterministic():
    lc = toy_curve()
    a = cut_windows(lc, WindowSpec(), np.random.default_rng(3))
    b = cut_windows(lc, WindowSpec(), np.random.default_rng(3))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_peak_in_gap_is_dropped():
    lc = toy_curve()
    inside_gap = lc.time_btjd[1499] + 50 * CADENCE_DAYS
    flares = Flares(peak_time_btjd=np.array([inside_gap]), amplitude=np.array([0.1]), fwhm_days=np.array([0.01]),
                    start_time_btjd=np.array([inside_gap]), stop_time_btjd=np.array([inside_gap]),
                    event_id=np.array([0]), ed_s=np.array([np.nan]), energy_erg=np.array([np.nan]),
                    detectable=np.array([True]))
    assert len(peak_indices(lc.replace(flares=flares))) == 0


def test_features_normalised():
    flux = torch.randn(4, 100) * 0.01 + 5.0
    q = torch.zeros(4, 100)
    q[:, 3] = 1
    x = window_features(flux, q)
    assert x.shape == (4, 100, 3)
    assert float(x[..., 0].min()) == 0.0 and float(x[..., 0].max()) == pytest.approx(1.0)
    torch.testing.assert_close(x[:, 1:, 1], x[:, 1:, 0] - x[:, :-1, 0])
    assert (x[:, 3, 2] == 1).all() and x[..., 2].sum() == 4
    flat = window_features(torch.zeros(1, 10), torch.zeros(1, 10))
    assert torch.isfinite(flat).all()


def test_augment_crops_and_keeps_labels_consistent():
    lc = toy_curve()
    spec = WindowSpec()
    w = cut_windows(lc, spec, np.random.default_rng(0))
    batch = {k: torch.as_tensor(w[k]) for k in ("flux_rel", "quality", "flare_mask", "peak_mask", "noise_sigma")}
    g = torch.Generator().manual_seed(0)
    out = augment(batch, spec.length, spec.context, Augmentation(), generator=g)
    assert out["flux_rel"].shape == (len(w["label"]), 100)
    # the positives' peaks stay inside the crop (offset <= 30 + shift <= 10 < 50)
    assert (out["peak_mask"].sum(1) == torch.as_tensor(w["label"]).long()).all()
    off = augment(batch, spec.length, spec.context,
                  Augmentation(peak_shift=False, amplitude_scale=0, noise_sigma=0), generator=g)
    torch.testing.assert_close(off["flux_rel"], batch["flux_rel"][:, 10:110])
    rev = augment(batch, spec.length, spec.context,
                  Augmentation(peak_shift=False, amplitude_scale=0, noise_sigma=0, time_reversal_prob=1.0))
    torch.testing.assert_close(rev["flux_rel"], batch["flux_rel"][:, 10:110].flip(1))


def test_star_split_no_shared_star_and_seeded():
    tics = np.repeat(np.arange(50), 7)
    split = assign_splits(tics, (0.8, 0.1, 0.1), seed=1)
    for code in range(3):
        others = set(tics[split != code])
        assert not (set(tics[split == code]) & others)
    counts = np.bincount(list(split_stars(tics, seed=1).values()), minlength=3)
    assert counts.tolist() == [40, 5, 5]
    np.testing.assert_array_equal(split, assign_splits(tics[::-1], seed=1)[::-1])
    assert not np.array_equal(split, assign_splits(tics, seed=2))
    with pytest.raises(ValueError, match="fractions"):
        split_stars(tics, (0.5, 0.1, 0.1))


def test_significance_feature_measures_snr():
    torch.manual_seed(0)
    sigma = 1e-3
    flux = torch.randn(2, 100) * sigma
    flux[0, 50] += 20 * sigma          # a 20-sigma flare peak
    flux[1] *= 30                      # pure noise at a larger scale
    x = window_features(flux, torch.zeros(2, 100), n_features=4)
    assert x.shape == (2, 100, 4)
    torch.testing.assert_close(x[..., :3], window_features(flux, torch.zeros(2, 100)))
    assert 1.5 < float(x[0, 50, 3]) < 2.5          # ~20 sigma / 10
    assert float(x[1, :, 3].abs().max()) < 0.5     # noise stays below ~5 sigma whatever its scale
    with pytest.raises(ValueError, match="model.input_dim=6"):
        window_features(flux, torch.zeros(2, 100), n_features=6)


def test_detrended_significance_follows_a_fast_rotation_and_keeps_the_flare():
    torch.manual_seed(1)
    sigma = 1e-3
    t = torch.arange(100) * 2 / 1440  # 200 minutes of 2-minute cadences
    rotation = 0.01 * torch.sin(2 * torch.pi * t / 0.5 + 0.4)  # 2 % peak to peak, P = 0.5 d
    flux = (rotation + torch.randn(2, 100) * sigma).clone()
    flux[0, 60:63] += torch.tensor([12.0, 7.0, 4.0]) * sigma  # a 12-sigma flare on the slope
    x = window_features(flux, torch.zeros(2, 100), n_features=5)
    assert x.shape == (2, 100, 5)
    torch.testing.assert_close(x[..., :4], window_features(flux, torch.zeros(2, 100), n_features=4))
    assert float(x[1, :, 3].abs().max()) > 0.5  # against the median, the rotation reads 6 sigma or more
    assert float(x[1, :, 4].abs().max()) < 0.5  # against the trend, only noise is left (< 5 sigma)
    assert 0.9 < float(x[0, 60, 4]) < 2.0  # the flare keeps its ~12 sigma (the window's own sigma estimate scatters)
