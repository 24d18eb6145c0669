"""Whole-light-curve prediction: alignment through gaps and edges, injected flares,
bad inputs, and the flaredetect-predict entry point with a (tiny, untrained) model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.table import QTable
from omegaconf import OmegaConf

from flaredetect.data.flare_model import equivalent_duration_s, flare_flux
from flaredetect.data.lightcurve import CADENCE_DAYS, LightCurve, robust_noise_sigma
from flaredetect.data.synthetic import generate_light_curve
from flaredetect.inference import (EventParams, Predictor, extract_events, load_net, run_prediction,
                                   score_light_curve, window_starts)
from flaredetect.inference.metrics import (auroc, average_precision, bootstrap_f1, bootstrap_f1_difference,
                                           match_events, score_light_curve_predictions, summarise)
from flaredetect.models.transformer import FlareTransformer

TINY_MODEL = {"_target_": "flaredetect.models.transformer.FlareTransformer", "seq_len": 100, "input_dim": 3,
              "d_model": 16, "num_heads": 2, "num_layers": 1, "d_ff": 32, "dropout": 0.1, "head_hidden": [32],
              "pooling": "flatten", "cadence_head": True}


def make_run_dir(path: Path, seed: int = 0, cadence_s: float | None = None, **model) -> Path:
    """A run dir like flaredetect-train's: config.yaml + checkpoints/best-*.ckpt (net. weights);
    ``cadence_s`` None: a run from before the cadence was recorded (2-minute)."""
    torch.manual_seed(seed)
    cfg = OmegaConf.create({"model": {**TINY_MODEL, **model}, "optimizer": {}, "loss": {},
                            "data": {"sources": {"synthetic": {"_target_": "flaredetect.data.synthetic_windows."
                                                               "SyntheticWindows", "window": {"max_gap_cadences": 5}}}}})
    if cadence_s is not None:
        cfg.cadence_s = cadence_s
    net = FlareTransformer(**{k: v for k, v in cfg.model.items() if k != "_target_"})
    (path / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, path / "config.yaml")
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}},
               path / "checkpoints" / "best-epoch000-f10.5000.ckpt")
    return path


class QualityOracle(torch.nn.Module):
    """Fires exactly on cadences whose quality feature is set: shows where each window
    position lands in the light curve."""

    def forward(self, x):
        return {"logit": x[..., 2].amax(dim=1) * 20 - 10, "cadence_logit": x[..., 2] * 20 - 10}


def gappy_light_curve() -> tuple[LightCurve, np.ndarray]:
    """Segments of 430, 40 (shorter than a window), 250 and 101 cadences, gaps of 20–300."""
    lengths, gaps = [430, 40, 250, 101], [300, 20, 50]
    t, start = [], 1400.0
    for k, n in enumerate(lengths):
        t.append(start + np.arange(n) * CADENCE_DAYS)
        start = t[-1][-1] + (gaps[k] + 1) * CADENCE_DAYS if k < len(gaps) else 0
    time = np.concatenate(t)
    rng = np.random.default_rng(1)
    marked = np.array([0, 1, 99, 215, 429, 430, 450, 469, 470, 719, 720, 770, len(time) - 1])
    quality = np.zeros(len(time), dtype=np.int64)
    quality[marked] = 32
    lc = LightCurve(5, 2, time, rng.normal(0, 1e-3, len(time)), np.full(len(time), 1e-3), quality)
    return lc, marked


def test_window_starts_cover_every_cadence_and_end_flush():
    for n, length, stride in [(1000, 100, 50), (1001, 100, 37), (100, 100, 50), (40, 100, 50), (187, 100, 25)]:
        starts = window_starts(n, length, stride)
        covered = np.zeros(max(n, length), dtype=int)
        for s in starts:
            covered[s:s + length] += 1
        assert (covered[:n] >= 1).all()
        assert starts[-1] == max(0, n - length)


@pytest.mark.parametrize("head,stride,refine", [("cadence", None, None), ("cadence", 7, None), ("window", 1, None),
                                                ("cadence", None, 0.05), ("cadence", 7, 0.05)])
def test_probabilities_align_through_gaps_and_edges(head, stride, refine):
    lc, marked = gappy_light_curve()
    prob = score_light_curve(QualityOracle(), lc, length=100, stride=stride, head=head, max_gap_cadences=5,
                             refine_above=refine)
    assert prob.shape == (len(lc),) and np.isfinite(prob).all()
    if head == "cadence":  # exactly the marked cadences, including first/last, gap edges, short segment
        np.testing.assert_array_equal(np.flatnonzero(prob > 0.5), marked)
    else:  # stride 1: every cadence of a window holding a mark is scored by the max over its windows
        assert (prob[marked] > 0.5).all()


class SeamBlindOracle(torch.nn.Module):
    """As :class:`QualityOracle`, but blind outside the middle half of each window (as a
    network that sees only half of a flare cut by the window edge); counts windows scored."""

    def __init__(self):
        super().__init__()
        self.windows = 0

    def forward(self, x):
        self.windows += len(x)
        flag = x[..., 2].clone()
        flag[:, : x.shape[1] // 4] = 0
        flag[:, 3 * x.shape[1] // 4:] = 0
        return {"cadence_logit": flag * 20 - 10}


def _scored(oracle, lc, **kwargs):
    oracle.windows = 0
    prob = score_light_curve(oracle, lc, length=100, **kwargs)
    return np.flatnonzero(prob > 0.5).tolist(), oracle.windows


@pytest.mark.parametrize("bump", [0.01, 0.0])
def test_coarse_to_fine_scores_fewer_windows_and_refines_seams_with_a_flux_excess(bump):
    """Refinement finds what scoring every window finds, with ~half the windows: a flare the
    tiles see at their seam (cadences 99-100) is found when its flux stands out there."""
    rng = np.random.default_rng(3)
    n = 2000
    flux = rng.normal(0, 1e-3, n)
    quality = np.zeros(n, dtype=np.int64)
    quality[[99, 100, 550]] = 1  # where the oracle "sees" a flare: a tile seam, a tile middle
    flux[[99, 100]] += bump  # 10 sigma at the seam (or nothing)
    lc = LightCurve(1, 2, 1400 + np.arange(n) * CADENCE_DAYS, flux, np.full(n, 1e-3), quality)
    oracle = SeamBlindOracle()
    every, n_every = _scored(oracle, lc)
    refined, n_refined = _scored(oracle, lc, refine_above=0.05, refine_sigma=3.0)
    assert every == [99, 100, 550] and n_every == 39  # starts 0, 50, ..., 1900
    assert n_refined <= 24  # the 20 tiles, the seam window, the window centred on 550, a noise seam or two
    assert refined == (every if bump else [550])  # no flux excess at the seam: only every window sees it
    with pytest.raises(ValueError, match="refine_above=1.5"):
        score_light_curve(oracle, lc, 100, refine_above=1.5)


def test_npy_output_aligned_with_input_cadences(tmp_path):
    lc = generate_light_curve(3, tic=7, sector=2)
    data = np.stack([lc.time_btjd, 1 + lc.flux_rel, lc.flux_err])[:, :3000].copy()
    data[1, [0, 500, 501, 2999]] = np.nan  # cleaning drops these: the .npy must keep their slots
    data[:, 1000:1400] = data[:, 1000:1400][:, ::-1]  # shuffled order is re-sorted by the cleaner
    data[0, 1000:1400] = np.sort(data[0, 1000:1400])  # keep times monotonic, flux reversed
    path = tmp_path / "tic000000007_s02.npy"
    np.save(path, data)
    t0 = data[0, 0]
    scorer = lambda l: ((l.time_btjd - t0) / 10.0).astype(np.float32)  # noqa: E731  probability = f(time)
    result = run_prediction(Predictor(scorer=scorer), path, tmp_path / "out", plot=False, progress=False)
    assert not result["failed"]
    prob = np.load(tmp_path / "out" / "tic000000007_s02_prob.npy")
    assert prob.shape == (3000,)
    assert np.isnan(prob[[0, 500, 501, 2999]]).all()
    ok = np.isfinite(prob)
    np.testing.assert_allclose(prob[ok], ((data[0] - t0) / 10.0)[ok], atol=1e-6)
    ts = QTable.read(tmp_path / "out" / "tic000000007_s02_prob.ecsv", format="ascii.ecsv")
    assert len(ts) == ok.sum() and "flare_prob" in ts.colnames


def test_events_merge_short_dips_and_drop_short_runs():
    n = 400
    t = 1500 + np.arange(n) * CADENCE_DAYS
    flux = np.zeros(n)
    for a, b in ((100, 120), (200, 201), (300, 305), (320, 325)):  # a brightening under each run
        flux[a:b] = 0.01
    lc = LightCurve(1, 1, t, flux, np.full(n, 1e-3), np.zeros(n, dtype=int))
    prob = np.zeros(n)
    prob[100:110] = prob[112:120] = 0.9  # one flare, a 2-cadence dip: one event
    prob[200] = 0.9                        # single cadence: dropped (min_cadences=2)
    prob[300:305] = prob[320:325] = 0.9    # 15 cadences apart: two events
    ev = extract_events(lc, prob, EventParams(threshold=0.5, merge_gap_minutes=6, min_cadences=2))
    np.testing.assert_array_equal(ev["start_index"], [100, 300, 320])
    np.testing.assert_array_equal(ev["stop_index"], [119, 304, 324])


def test_injected_flare_in_quiet_real_star_is_one_event(shared_data):
    """TIC 92873799 (sector 1, not in the Günther catalog, sigma 0.12 %) with a template flare
    of amplitude 0.02 (~17 sigma) and FWHM 14.4 min injected; detected with the 3-sigma
    threshold scorer so that the test checks event extraction and the measured properties.

    Tolerances: peak time within one cadence (the exposure-averaged peak can fall on
    either neighbour); amplitude within 3 sigma of the exposure-averaged injected peak;
    the template fit's ED within 20 % (noise and the baseline fit); the direct-sum ED lies
    between 35 % and 110 % of the truth (it misses the tail below the noise by design)."""
    from flaredetect.baselines.threshold import threshold_flags
    from flaredetect.sources import read_light_curve

    path = next((shared_data / "fits" / "spoc").glob("*-0000000092873799-*_lc.fits"))
    lc = read_light_curve(path)
    sigma = robust_noise_sigma(lc.flux_rel)
    t_peak, amp, fwhm = lc.time_btjd[6000] + 0.3 * CADENCE_DAYS, 0.02, 0.01
    injected = flare_flux(lc.time_btjd, t_peak, fwhm, amp)
    flared = lc.replace(flux_rel=lc.flux_rel + injected * (1 + lc.flux_rel))
    predictor = Predictor(scorer=lambda l: threshold_flags(l.time_btjd, l.flux_rel).astype(np.float32),
                          events=EventParams(min_cadences=1, fit_template=True))
    _, before = predictor.predict(lc)
    _, after = predictor.predict(flared)
    near = np.abs(after["peak_time_btjd"] - t_peak) < 0.1
    assert near.sum() == 1 and not (np.abs(before["peak_time_btjd"] - t_peak) < 0.1).any()
    k = np.flatnonzero(near)[0]
    assert abs(after["peak_time_btjd"][k] - t_peak) <= 1.01 * CADENCE_DAYS
    assert abs(after["amplitude"][k] - injected.max()) < 3 * sigma
    truth = equivalent_duration_s(amp, fwhm)
    assert abs(after["fit_ed_s"][k] / truth - 1) < 0.2
    assert 0.35 * truth < after["ed_s"][k] < 1.1 * truth
    assert abs(after["fit_fwhm_min"][k] / (fwhm * 1440) - 1) < 0.25


def _write_bad_inputs(folder: Path) -> dict[str, str]:
    folder.mkdir()
    (folder / "tic000000001_s02.npy").write_bytes(b"")                      # empty file
    np.save(folder / "tic000000002_s02.npy", np.full((3, 500), np.nan))      # all NaN
    lc = generate_light_curve(11, tic=3, sector=2)
    np.save(folder / "tic000000003_s02.npy", np.stack([lc.time_btjd, 1 + lc.flux_rel, lc.flux_err])[:, :60])
    (folder / "tess2018206045859-s0001-0000000000000004-0120-s_lc.fits").write_bytes(b"SIMPLE  = not a FITS file")
    flux = (1 + lc.flux_rel) * (1 + flare_flux(lc.time_btjd, lc.time_btjd[1000], 0.01, 0.2))  # one strong flare
    np.save(folder / "tic000000005_s02.npy", np.stack([lc.time_btjd, flux, lc.flux_err])[:, :2000])
    return {"tic000000001_s02.npy": "empty", "tic000000002_s02.npy": "NaN", "tic000000003_s02.npy": "window",
            "0000000000000004": "FITS"}


def test_bad_inputs_fail_one_line_each_and_the_rest_run(tmp_path):
    expected = _write_bad_inputs(tmp_path / "in")
    predictor = Predictor(scorer=lambda l: np.zeros(len(l), np.float32))
    result = run_prediction(predictor, tmp_path / "in", tmp_path / "out", plot=False, progress=False,
                            log=lambda *_: None)
    assert [r["tic"] for r in result["ok"]] == [5]
    assert len(result["failed"]) == 4
    for name, reason in result["failed"]:
        assert "\n" not in reason
        key = next(k for k in expected if k in name)
        assert key in reason and expected[key].lower() in reason.lower(), reason


def test_predict_entry_point_with_a_model(tmp_path):
    """The console entry's code path: run dir → model → probabilities, tables, PNG, summary."""
    from flaredetect.predict import predict

    run = make_run_dir(tmp_path / "run")
    _write_bad_inputs(tmp_path / "in")
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "predict.yaml")
    cfg.merge_with({"ckpt": str(run), "input": [str(tmp_path / "in" / "*.npy"), str(tmp_path / "in" / "*.fits")],
                    "out_dir": str(tmp_path / "out"), "progress": False, "cache_dir": str(tmp_path / "mast"),
                    "paths": {"output_dir": str(tmp_path / "out")}, "luminosity_erg_s": 1e31,
                    "events": {"threshold": 0.01}})
    del cfg["defaults"]
    gated_cfg = cfg.copy()
    cfg.candidates = None  # the network alone: an untrained net on a flare-free star still fires
    summary = predict(cfg)
    assert len(summary["ok"]) == 1 and len(summary["failed"]) == 4
    out = tmp_path / "out"
    assert json.loads((out / "predictions.json").read_text())["ok"][0]["tic"] == 5
    table = QTable.read(out / "tic000000005_s02_flares.ecsv", format="ascii.ecsv")
    assert {"TIC", "sector", "tstart", "tpeak", "tstop", "istart", "istop", "cstart", "cstop", "dur", "ampl_rec",
            "ed_rec", "ed_rec_err", "prob", "total_n_valid_data_points", "cadence", "energy"} <= set(table.colnames)
    assert len(table) >= 1 and str(table["ed_rec"].unit) == "s"  # threshold 0.01: an untrained net fires
    assert str(table["dur"].unit) == "d" and str(table["tpeak"].unit) == "d" and table["ampl_rec"].unit is None
    assert table.meta["threshold"] == 0.01 and table.meta["candidates"] is None  # how it was made
    np.testing.assert_allclose(table["energy"].value, table["ed_rec"].value * 1e31)
    prob = np.load(out / "tic000000005_s02_prob.npy")
    assert prob.shape == (2000,) and np.isfinite(prob).all() and (0 <= prob).all() and (prob <= 1).all()
    assert (out / "tic000000005_s02.png").stat().st_size > 5000
    # the model path agrees with scoring the loaded net directly
    net, _ = load_net(run)
    from flaredetect.sources import read_light_curve
    lc = read_light_curve(tmp_path / "in" / "tic000000005_s02.npy")
    np.testing.assert_allclose(prob, score_light_curve(net, lc, 100), atol=1e-6)
    # predict's default vets significance candidates: the same probabilities, zero elsewhere
    from flaredetect.inference import SignificanceGate
    from flaredetect.predict import build_predictor
    gated = build_predictor(gated_cfg).probabilities(lc)
    np.testing.assert_allclose(gated, SignificanceGate().apply(lc, prob), atol=1e-6)  # the run has no gate of its own


def test_window_head_prediction_and_missing_cadence_head(tmp_path):
    run = make_run_dir(tmp_path / "run", cadence_head=False)
    net, _ = load_net(run)
    lc = generate_light_curve(5, tic=9, sector=2)
    prob = score_light_curve(net, lc, 100, head="window")
    assert prob.shape == (len(lc),)
    with pytest.raises(ValueError, match="no cadence head"):
        score_light_curve(net, lc, 100, head="cadence")


def test_metrics_match_definitions():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8333333)
    recovered, true_event = match_events([10.0], [10.01], [10.0 - 3 * CADENCE_DAYS, 10.0 - 5 * CADENCE_DAYS])
    assert recovered.tolist() == [True, False] and true_event.tolist() == [True]


def _scored_sector(n_flares: int = 30, false_events: int = 1, seed: int = 0) -> dict:
    """A sector-long light curve (27.8 d) with catalog flares, three in four recovered by
    events, plus false events on random days, scored as the benchmark does."""
    rng = np.random.default_rng(seed)
    time = 1354.0 + np.arange(20000) * CADENCE_DAYS
    peak_index = np.sort(rng.choice(np.arange(50, 19950, 100), n_flares, replace=False)) + 20
    prob = np.zeros(time.size)
    starts, stops = [], []
    for k, i in enumerate(peak_index):
        if k % 4:
            prob[i - 2:i + 5] = 0.9
            starts.append(time[i - 2]), stops.append(time[i + 4])
    free = np.setdiff1d(np.arange(50, 19950, 100), peak_index - 20)
    for i in np.sort(rng.choice(free, false_events, replace=False)) + 60:
        prob[i:i + 3] = 0.9
        starts.append(time[i]), stops.append(time[i + 2])
    order = np.argsort(starts)
    events = {"start_time_btjd": np.array(starts)[order], "stop_time_btjd": np.array(stops)[order]}
    return score_light_curve_predictions(time, prob, events, time[peak_index], np.full(n_flares, 0.02), 0.5)


def test_bootstrap_intervals_bracket_the_f1_and_shrink_with_more_flares():
    part = _scored_sector(n_flares=12)
    point = summarise([part])
    small = bootstrap_f1([part], n_resamples=500)
    for key, value in (("window_f1", point["window"]["f1"]), ("event_f1", point["event"]["f1"])):
        lo, hi = small[key]
        assert lo < value < hi and hi - lo > 0.05
    assert bootstrap_f1([part], n_resamples=500) == small  # seeded
    large = bootstrap_f1([part] * 25, n_resamples=500)  # 25 times the flares, same rates
    for key in ("window_f1", "event_f1"):
        assert large[key][1] - large[key][0] < 0.5 * (small[key][1] - small[key][0])
    with pytest.raises(ValueError, match="block_days=0"):
        bootstrap_f1([part], block_days=0)


def test_paired_difference_resolves_what_separate_intervals_cannot():
    clean = [_scored_sector(false_events=1, seed=s) for s in range(3)]
    noisy = [_scored_sector(false_events=7, seed=s) for s in range(3)]  # the same, plus 6 false events each
    same = bootstrap_f1_difference(clean, clean, n_resamples=500)
    assert same["event_f1"] == same["window_f1"] == 0 and same["event_f1_interval"] == (0, 0)
    diff = bootstrap_f1_difference(clean, noisy, n_resamples=500)
    assert diff["event_f1"] == pytest.approx(summarise(clean)["event"]["f1"] - summarise(noisy)["event"]["f1"])
    assert 0 < diff["event_f1_interval"][0] < diff["event_f1"] < diff["event_f1_interval"][1]
    # separately, the two detectors' intervals overlap: unpaired, the difference is not resolved
    assert bootstrap_f1(noisy, n_resamples=500)["event_f1"][1] > bootstrap_f1(clean, n_resamples=500)["event_f1"][0]
    with pytest.raises(ValueError, match="not scored on the same windows"):
        bootstrap_f1_difference(clean, [noisy[1], noisy[0], noisy[2]])
    with pytest.raises(ValueError, match="3 light curves for detector A but 2"):
        bootstrap_f1_difference(clean, noisy[:2])


@pytest.mark.remote_data
def test_predict_tic_id_downloads(tmp_path):
    """A TIC id goes through MastSource (the same lightkurve source as prepare)."""
    result = run_prediction(Predictor(scorer=lambda l: np.zeros(len(l), np.float32)), "TIC 358108509",
                            tmp_path / "out", plot=False, progress=False, cache_dir=tmp_path / "mast")
    assert result["ok"] and all(r["tic"] == 358108509 for r in result["ok"])


def test_min_snr_drops_events_below_the_noise():
    rng = np.random.default_rng(0)
    n = 600
    t = 1500 + np.arange(n) * CADENCE_DAYS
    flux = rng.normal(0, 1e-3, n)
    flux[300:304] += [0.01, 0.007, 0.005, 0.003]  # ~10 sigma flare
    flux[100:104] += 1.5e-3  # a bump within the noise
    lc = LightCurve(1, 1, t, flux, np.full(n, 1e-3), np.zeros(n, dtype=int))
    prob = np.zeros(n)
    prob[100:104] = prob[300:304] = 0.9  # the network also fires on the noise bump at 100
    kept = extract_events(lc, prob, EventParams(min_snr=5.0))
    assert kept["start_index"].tolist() == [300]
    assert len(extract_events(lc, prob, EventParams())["start_index"]) == 2


# ------------------------------------------------------------------ hardening regressions

def _predict_cfg(tmp_path: Path, run: Path, inputs, **over):
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "predict.yaml")
    cfg.merge_with({"ckpt": str(run), "input": inputs, "out_dir": str(tmp_path / "out"), "progress": False,
                    "plot": False, "cache_dir": str(tmp_path / "mast"), "paths": {"output_dir": str(tmp_path / "out")},
                    **over})
    del cfg["defaults"]
    return cfg


def _save_star(path: Path, seed: int = 5, dtype=np.float64, time_offset: float = 0.0, n: int = 3000) -> LightCurve:
    lc = generate_light_curve(seed, tic=5, sector=2)
    flux = (1 + lc.flux_rel) * (1 + flare_flux(lc.time_btjd, lc.time_btjd[n // 2], 0.01, 0.1))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack([lc.time_btjd + time_offset, flux, lc.flux_err])[:, :n].astype(dtype))
    return lc


def test_predict_exit_code_tells_whether_every_input_produced_its_outputs(tmp_path):
    import subprocess
    import sys

    run = make_run_dir(tmp_path / "run")
    _save_star(tmp_path / "in" / "good.npy")
    (tmp_path / "in" / "bad.npy").write_text("not an array\n")
    base = [sys.executable, "-m", "flaredetect.predict", f"ckpt={run}", "progress=false", "plot=false"]
    out = tmp_path / "new" / "nested" / "out"  # out_dir does not exist yet
    proc = subprocess.run([*base, f"input=[{tmp_path / 'in' / 'good.npy'},{tmp_path / 'in' / 'bad.npy'}]",
                           f"out_dir={out}", f"hydra.run.dir={tmp_path / 'hydra1'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "will be ignored due to the quality mask" not in proc.stdout + proc.stderr  # lightkurve's per-file line
    assert "tpfmodel" not in proc.stderr
    failures = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 1 and "bad.npy" in failures[0] and "not a .npy array" in failures[0]
    summary = json.loads((out / "predictions.json").read_text())
    assert not summary["complete"] and len(summary["failed"]) == 1 and len(summary["ok"]) == 1
    assert (out / "good_flares.ecsv").is_file() and (out / "good_prob.npy").is_file()  # the good input's outputs
    # every input fails, into an out_dir that does not exist: still a predictions.json, exit 1
    out2 = tmp_path / "other" / "out"
    proc = subprocess.run([*base, f"input={tmp_path / 'in' / 'bad.npy'}", f"out_dir={out2}",
                           f"hydra.run.dir={tmp_path / 'hydra2'}"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 1 and "FileNotFoundError" not in proc.stderr
    assert json.loads((out2 / "predictions.json").read_text())["failed"]


def test_predict_settings_are_checked_before_any_file_is_read(tmp_path):
    from flaredetect.config_checks import ConfigError
    from flaredetect.predict import predict

    run = make_run_dir(tmp_path / "run")
    bad = {"batch_size": 0, "stride": 0, "head": "both", "events": {"threshold": 1.5},
           "refine": {"above": 1.2, "n_sigma": 2}}
    with pytest.raises(ConfigError) as info:
        predict(_predict_cfg(tmp_path, run, str(tmp_path / "never_read.npy"), **bad))
    for key in ("batch_size=0", "stride=0", "head=both", "events.threshold=1.5", "refine.above=1.2"):
        assert key in str(info.value)
    assert not (tmp_path / "out").exists()


def test_predict_head_defaults_to_what_the_checkpoint_has(tmp_path):
    """flaredetect-train's default model has no cadence head: predict must use the window head."""
    from flaredetect.config_checks import ConfigError
    from flaredetect.predict import predict

    run = make_run_dir(tmp_path / "run", cadence_head=False)
    _save_star(tmp_path / "in" / "tic000000005_s02.npy")
    summary = predict(_predict_cfg(tmp_path, run, str(tmp_path / "in")))
    assert summary["complete"] and summary["settings"]["head"] == "window"
    with pytest.raises(ConfigError, match="head=cadence but the checkpoint's network has no per-cadence head"):
        predict(_predict_cfg(tmp_path, run, str(tmp_path / "in"), head="cadence"))


def test_any_file_name_is_scored_and_unknown_ids_are_recorded_as_unknown(tmp_path):
    from flaredetect.predict import predict

    run = make_run_dir(tmp_path / "run")
    _save_star(tmp_path / "in" / "lc.npy")
    _save_star(tmp_path / "in" / "441420236_s01.npy")
    summary = predict(_predict_cfg(tmp_path, run, str(tmp_path / "in"), events={"threshold": 0.01}))
    assert summary["complete"]
    ids = {Path(r["name"]).name: (r["tic"], r["sector"]) for r in summary["ok"]}
    assert ids == {"lc.npy": (None, None), "441420236_s01.npy": (441420236, 1)}
    table = QTable.read(tmp_path / "out" / "lc_flares.ecsv", format="ascii.ecsv")
    assert table.meta["tic"] is None and len(table) and table["TIC"].mask.all()
    summary = predict(_predict_cfg(tmp_path, run, str(tmp_path / "in" / "lc.npy"), tic=123, sector=4))
    assert (summary["ok"][0]["tic"], summary["ok"][0]["sector"]) == (123, 4)


def test_same_file_name_in_two_folders_never_overwrites(tmp_path):
    scorer = lambda l: np.zeros(len(l), np.float32)  # noqa: E731
    _save_star(tmp_path / "a" / "lc.npy", seed=1)
    _save_star(tmp_path / "b" / "lc.npy", seed=2)
    result = run_prediction(Predictor(scorer=scorer), [str(tmp_path / "a" / "lc.npy"), str(tmp_path / "b" / "lc.npy")],
                            tmp_path / "out", plot=False, progress=False)
    npys = sorted(Path(r["outputs"]["npy"]).name for r in result["ok"])
    assert npys == ["a_lc_prob.npy", "b_lc_prob.npy"]
    a, b = (QTable.read(tmp_path / "out" / f"{s}_lc_prob.ecsv", format="ascii.ecsv") for s in "ab")
    assert not np.array_equal(a["flux_rel"][:100], b["flux_rel"][:100])


def test_float32_and_bjd_inputs_give_the_same_flare_table(tmp_path):
    from flaredetect.baselines.threshold import threshold_flags

    scorer = lambda l: threshold_flags(l.time_btjd, l.flux_rel).astype(np.float32)  # noqa: E731
    predictor = Predictor(scorer=scorer, events=EventParams(min_cadences=1))
    _save_star(tmp_path / "f64" / "tic5_s2.npy")
    _save_star(tmp_path / "f32" / "tic5_s2.npy", dtype=np.float32)
    _save_star(tmp_path / "bjd" / "tic5_s2.npy", time_offset=2457000.0)
    tables = {}
    for kind in ("f64", "f32", "bjd"):
        result = run_prediction(predictor, tmp_path / kind / "tic5_s2.npy", tmp_path / f"out_{kind}", plot=False,
                                progress=False)
        assert not result["failed"], result["failed"]
        tables[kind] = QTable.read(result["ok"][0]["outputs"]["flares"], format="ascii.ecsv")
    big = np.argmax(tables["f64"]["ed_rec"].value)
    for kind in ("f32", "bjd"):
        t = tables[kind]
        k = np.argmin(np.abs(t["tpeak"].value - tables["f64"]["tpeak"][big].value))
        assert abs(t["tpeak"][k].value - tables["f64"]["tpeak"][big].value) < 1e-3  # BTJD
        assert t["ed_rec"][k].value == pytest.approx(tables["f64"]["ed_rec"][big].value, rel=0.005), kind
        assert t["dur"][k].value == pytest.approx(tables["f64"]["dur"][big].value, rel=0.01), kind


def test_nan_model_outputs_are_an_error_not_zero_events(tmp_path):
    _save_star(tmp_path / "tic5_s2.npy")
    broken = Predictor(scorer=lambda l: np.full(len(l), np.nan, np.float32))
    result = run_prediction(broken, tmp_path / "tic5_s2.npy", tmp_path / "out", plot=False, progress=False,
                            log=lambda *_: None)
    assert not result["ok"] and "not finite" in result["failed"][0][1]


def test_outputs_record_provenance_and_a_moved_run_dir_loads_its_own_checkpoint(tmp_path):
    import shutil

    from flaredetect.checkpoints import sha256
    from flaredetect.inference.loading import resolve_checkpoint
    from flaredetect.predict import predict

    run = make_run_dir(tmp_path / "run")
    ckpt = next((run / "checkpoints").glob("best-*.ckpt"))
    (run / "summary.json").write_text(json.dumps({"best_checkpoint": str(ckpt.resolve())}))  # absolute, as before
    _save_star(tmp_path / "in" / "tic000000005_s02.npy")
    summary = predict(_predict_cfg(tmp_path, run, str(tmp_path / "in"), events={"threshold": 0.01}))
    table = QTable.read(tmp_path / "out" / "tic000000005_s02_flares.ecsv", format="ascii.ecsv")
    for record in (summary, table.meta):
        assert record["checkpoint"]["file"] == f"checkpoints/{ckpt.name}"
        assert record["checkpoint"]["sha256"] == sha256(ckpt)
        assert record["flaredetect_version"] and record["settings"]["events"]["threshold"] == 0.01
    copy = tmp_path / "copied_run"
    shutil.copytree(run, copy)
    ckpt.write_bytes(b"the original was changed")  # a copy must not read the original's file
    assert resolve_checkpoint(copy)[0] == copy / "checkpoints" / ckpt.name


def test_predict_picks_the_detector_trained_at_each_light_curves_cadence_and_refuses_others(tmp_path):
    """ckpt=[runs]: every light curve is scored by the run trained at its cadence; a cadence no
    run was trained at fails with one line naming both, the other inputs still run."""
    from flaredetect import Detector
    from flaredetect.config_checks import ConfigError
    from flaredetect.predict import predict

    two_min, twenty = make_run_dir(tmp_path / "run120"), make_run_dir(tmp_path / "run20", seed=1, cadence_s=20.0)
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for tic, sector, step_s, n in [(5, 2, 120.0, 2000), (6, 40, 20.0, 6000), (7, 20, 1800.0, 1000)]:
        t = 1400.0 + np.arange(n) * step_s / 86400.0
        np.save(tmp_path / "in" / f"tic{tic:09d}_s{sector:02d}.npy",
                np.stack([t, 1 + rng.normal(0, 1e-3, n), np.full(n, 1e-3)]))
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "predict.yaml")
    cfg.merge_with({"ckpt": [str(two_min), str(twenty)], "input": str(tmp_path / "in"), "out_dir": str(tmp_path / "out"),
                    "progress": False, "plot": False, "cache_dir": str(tmp_path / "mast"),
                    "paths": {"output_dir": str(tmp_path / "out")}})
    del cfg["defaults"]
    summary = predict(cfg)
    assert {r["tic"]: r["detector"] for r in summary["ok"]} == {5: str(two_min), 6: str(twenty)}
    assert {r["tic"]: r["cadence_s"] for r in summary["ok"]} == {5: 120.0, 6: 20.0}
    (name, reason), = summary["failed"]
    assert "tic000000007_s20" in name and "\n" not in reason
    assert "a 1800-s light curve" in reason and "trained on 120 s, 20 s data only" in reason
    assert [d["cadence_s"] for d in summary["detectors"]] == [120.0, 20.0]
    table = QTable.read(tmp_path / "out" / "tic000000006_s40_flares.ecsv", format="ascii.ecsv")
    assert table.meta["detector_cadence_s"] == 20.0 and table.meta["detector"] == str(twenty)
    # one 2-minute run refuses the 20-s light curve
    single = cfg.copy()
    single.ckpt, single.out_dir = str(two_min), str(tmp_path / "out1")
    reasons = [r for _, r in predict(single)["failed"]]
    assert len(reasons) == 2 and any("a 20-s light curve" in r and "trained on 120 s data only" in r for r in reasons)
    twice = cfg.copy()
    twice.ckpt = [str(two_min), str(make_run_dir(tmp_path / "other120", cadence_s=120.0))]
    with pytest.raises(ConfigError, match="both trained on 120-s data"):
        predict(twice)
    # the Python API chooses the same way
    lc20 = LightCurve(6, 40, 1400.0 + np.arange(6000) * 20.0 / 86400.0, rng.normal(0, 1e-3, 6000),
                      np.full(6000, 1e-3), np.zeros(6000, np.int64))
    result = Detector([two_min, twenty], candidates=False).find_flares(lc20)
    assert result.flares.meta["model"] == str(twenty)
    with pytest.raises(ValueError, match="a 20-s light curve"):
        Detector(two_min).find_flares(lc20)
    assert len(Detector("threshold").find_flares(lc20).light_curves) == 1  # the 3-sigma rule takes any cadence


def test_each_run_brings_its_own_event_settings_where_predicts_are_null(tmp_path):
    """An FFI run keeps single-cadence events (its config's events:), a 2-minute run without
    any uses the defaults, and a setting the user gives wins over both."""
    from flaredetect import Detector
    from flaredetect.config_checks import ConfigError
    from flaredetect.predict import build_predictors

    two_min = make_run_dir(tmp_path / "run120")
    ffi = make_run_dir(tmp_path / "run1800", seed=1, cadence_s=1800.0)
    cfg = OmegaConf.load(ffi / "config.yaml")
    cfg.events = {"min_cadences": 1, "threshold": 0.9}
    cfg.candidates = {"min_points": 1}
    OmegaConf.save(cfg, ffi / "config.yaml")
    base = _predict_cfg(tmp_path, two_min, "unused")
    base.ckpt = [str(two_min), str(ffi)]
    predictors = {p.cadence_s: p for p in build_predictors(base)}
    events = {c: p.events for c, p in predictors.items()}
    assert (events[120.0].min_cadences, events[120.0].threshold) == (2, 0.5)  # EventParams' defaults
    assert (events[1800.0].min_cadences, events[1800.0].threshold) == (1, 0.9)  # the FFI run's own
    assert (predictors[120.0].gate.min_points, predictors[1800.0].gate.min_points) == (3, 1)  # gates likewise
    assert predictors[1800.0].gate.n_sigma == 3.0
    from flaredetect.inference.pipeline import made_by_key
    from flaredetect.predict import provenance

    meta = provenance(base, list(predictors.values()))  # what each detector used is recorded ...
    used = meta["detectors"][1]
    assert used["events"]["min_cadences"] == 1 and used["candidates"]["min_points"] == 1
    edited = {**meta, "detectors": [meta["detectors"][0], {**used, "events": {**used["events"], "threshold": 0.95}}]}
    assert made_by_key(edited, []) != made_by_key(meta, [])  # ... so a run's edited settings redo its outputs
    assert events[1800.0].merge_gap_minutes == base.events.merge_gap_minutes  # predict's, not null
    given = base.copy()
    given.events.threshold = 0.6
    assert {p.cadence_s: p.events.threshold for p in build_predictors(given)} == {120.0: 0.6, 1800.0: 0.6}
    det = Detector(ffi, min_cadences=3)
    assert (det.predictor.events.min_cadences, det.predictor.events.threshold) == (3, 0.9)
    assert Detector(ffi, candidates=False).predictor.gate is None
    cfg.candidates = None  # a run that runs without a gate unless one is asked for
    OmegaConf.save(cfg, ffi / "config.yaml")
    assert Detector(ffi).predictor.gate is None
    assert Detector(ffi, candidates={"n_sigma": 2.5}).predictor.gate.n_sigma == 2.5
    cfg.events = {"min_cadence": 1}  # misspelt in a run's config: refused, naming it
    OmegaConf.save(cfg, ffi / "config.yaml")
    with pytest.raises(ConfigError, match="the run's config has events: {'min_cadence': 1}"):
        Detector(ffi)


def test_a_manifest_run_writes_no_per_light_curve_tables_and_the_catalog_has_its_flares(tmp_path):
    """At catalog scale (input= a manifest) flare tables, time series and PNGs are off by
    default; the completion markers carry the rows into flaredetect-catalog's merged table."""
    from flaredetect.build_catalog import build_catalog
    from flaredetect.predict import predict

    run = make_run_dir(tmp_path / "run")
    for k in range(2):
        _save_star(tmp_path / "in" / f"tic00000000{5 + k}_s02.npy", seed=5 + k)
    manifest = tmp_path / "inputs.txt"
    manifest.write_text("in/tic000000005_s02.npy\nin/tic000000006_s02.npy\n")
    summary = predict(_predict_cfg(tmp_path, run, str(manifest), plot=None, events={"threshold": 0.01}))
    out = tmp_path / "out"
    assert summary["complete"] and len(summary["ok"]) == 2
    assert not list(out.glob("*_flares.ecsv")) and not list(out.glob("*_prob.ecsv")) and not list(out.glob("*.png"))
    assert len(list(out.glob("*_prob.npy"))) == 2
    counts = build_catalog([out], tmp_path / "catalog")
    assert counts["flares"] == sum(r["n_events"] for r in summary["ok"]) > 0
    again = predict(_predict_cfg(tmp_path, run, str(manifest), flare_tables=True, resume=False))
    assert len(list(out.glob("*_flares.ecsv"))) == len(again["ok"]) == 2  # asked for: written
