"""The event-level second stage: features, labels, threshold choice, and the nested folds."""
import numpy as np
import pytest

from flaredetect.data.synthetic import generate_light_curve
from flaredetect.evaluation.vetting_cv import fit_fold_vetters
from flaredetect.inference.candidates import threshold_predictor
from flaredetect.inference.events import EventParams
from flaredetect.inference.vetting import FEATURE_NAMES, EventVetter, best_f1_threshold, event_features, event_labels


def _proposals(seed: int):
    """A synthetic star's events from a loose rule (2 sigma, 1 cadence: mostly noise) and their truth."""
    lc = generate_light_curve(seed, tic=1000 + seed, sector=2)
    predictor = threshold_predictor(EventParams(), n_sigma=2.0, min_points=1)
    prob, events = predictor.predict(lc)
    peaks = lc.flares.peak_time_btjd[lc.flares.detectable] if len(lc.flares.peak_time_btjd) else np.zeros(0)
    true, covered = event_labels(events, peaks, lc.cadence_d)
    return lc, prob, events, true, covered, len(peaks)


def _f1(true, covered, keep, n_flares):
    precision = true[keep].mean() if keep.any() else 0.0
    recall = covered[keep & true].sum() / n_flares
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_event_features_measure_each_event_and_labels_follow_the_truth():
    lc, prob, events, true, covered, n_flares = _proposals(3)
    features = event_features(lc, prob, events)
    assert features.shape == (len(events["peak_time_btjd"]), len(FEATURE_NAMES)) and np.isfinite(features).all()
    assert true.any() and (~true).any() and (covered[true] >= 1).all() and (covered[~true] == 0).all()
    run = features[:, FEATURE_NAMES.index("rule_run_3sigma")]
    assert np.median(run[true]) > np.median(run[~true])  # flares hold consecutive 3-sigma cadences, noise does not
    assert event_features(lc, prob, {k: np.asarray(v)[:0] for k, v in events.items()}).shape == (0, len(FEATURE_NAMES))


def test_best_threshold_maximises_event_f1_with_unproposed_flares_counted():
    score = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    true = np.array([True, True, False, True, False])
    covered = true.astype(int)
    threshold, f1 = best_f1_threshold(score, true, covered, n_flares=4)
    assert threshold == pytest.approx(0.2) and f1 == pytest.approx(0.75)  # P 3/4, R 3/4 beats P 1, R 1/2
    threshold, f1 = best_f1_threshold(score, true, covered, n_flares=8)  # 4 flares never proposed
    assert threshold == pytest.approx(0.2) and f1 == pytest.approx(2 * 0.75 * 0.375 / 1.125)


def test_with_a_tolerance_the_threshold_is_the_middle_of_the_near_best_ones():
    score = np.concatenate([np.linspace(0.5, 1.0, 200), np.linspace(0.0, 0.4, 50)])  # true events score >= 0.5
    true = np.arange(250) < 200
    covered = true.astype(int)
    best, best_f1 = best_f1_threshold(score, true, covered, n_flares=200)
    assert best_f1 == pytest.approx(1.0) and best == pytest.approx(score[:200].min(), abs=1e-3)  # the edge of the plateau
    middle, f1 = best_f1_threshold(score, true, covered, n_flares=200, tolerance=0.01)
    # F1 >= 0.99 holds from a few false events kept (0.39) to four true ones dropped (0.51): its lower middle
    assert middle != best and 0.35 < middle < 0.51 and f1 >= best_f1 - 0.01


def test_vetter_fitted_on_other_stars_raises_event_f1_on_a_held_out_star():
    stars = [_proposals(seed) for seed in range(11)]
    train, test = stars[:8], stars[8:]
    vetter = EventVetter.fit(np.concatenate([event_features(lc, p, e) for lc, p, e, *_ in train]),
                             np.concatenate([s[3] for s in train]), np.concatenate([s[4] for s in train]),
                             np.concatenate([np.full(len(s[3]), s[0].tic) for s in train]),
                             sum(s[5] for s in train))
    assert 0 < vetter.threshold < 1 and vetter.info["out_of_fold_f1"] > 0
    keeps = []
    for lc, prob, events, *_ in test:
        kept = vetter.filter(lc, prob, events)
        assert set(kept) == set(events) | {"vet_prob"} and (kept["vet_prob"] >= vetter.threshold).all()
        keeps.append(np.isin(events["peak_index"], kept["peak_index"]))
    true, covered = np.concatenate([s[3] for s in test]), np.concatenate([s[4] for s in test])
    n_flares = sum(s[5] for s in test)
    assert n_flares > 0
    before, after = _f1(true, covered, np.ones_like(true), n_flares), _f1(true, covered, np.concatenate(keeps), n_flares)
    assert after > before + 0.2, (before, after)


def test_fold_vetters_never_learn_from_the_fold_they_vet():
    stars = [_proposals(seed) for seed in range(6)]
    records = [{"fold": f"f{k % 3}", "tic": lc.tic, "features": event_features(lc, p, e), "true": t, "covered": c,
                "n_flares": n} for k, (lc, p, e, t, c, n) in enumerate(stars)]
    vetters = fit_fold_vetters(records, ["f0", "f1", "f2"], out=lambda *_: None)
    for name, vetter in vetters.items():
        assert vetter.info["events"] == sum(len(r["true"]) for r in records if r["fold"] != name)
    with pytest.raises(ValueError, match="at least two folds"):
        fit_fold_vetters([dict(r, fold="only") for r in records], ["only"], out=lambda *_: None)


def test_rule_proposals_join_the_network_events_where_it_has_none():
    """The union the vetter judges: every network event, plus each rule event that shares no
    cadence with one, in time order, with the network's probability as its prob_max."""
    from flaredetect.inference.candidates import threshold_scorer
    from flaredetect.inference.events import extract_events, union_events
    from flaredetect.inference.pipeline import Predictor

    lc = generate_light_curve(4, tic=1004, sector=2)
    rule = threshold_scorer(2.5, 2)
    flagged = rule(lc)
    network = np.zeros(len(lc), np.float32)  # a "network" firing on half the rule's events, and one of its own
    rule_events = extract_events(lc, flagged, EventParams(threshold=0.5, min_cadences=1))
    half = list(zip(rule_events["start_index"], rule_events["stop_index"]))[::2]
    for a, b in half:
        network[a:b + 1] = 0.9
    network[100:104] = 0.8
    _, events = Predictor(scorer=lambda _: network, proposals=rule,
                          events=EventParams(min_cadences=1)).predict(lc)
    own = extract_events(lc, network, EventParams(min_cadences=1))
    n_added = len(rule_events["start_index"]) - len(half)
    assert len(events["start_index"]) == len(own["start_index"]) + n_added > len(own["start_index"])
    assert np.all(np.diff(events["start_index"]) > 0)
    assert set(own["start_index"]) <= set(events["start_index"])
    added = ~np.isin(events["start_index"], own["start_index"])
    np.testing.assert_allclose(events["prob_max"][added], 0.0)  # the network's, not the rule's 1
    same = union_events(own, own, network)  # nothing of a set overlapping itself is added
    np.testing.assert_array_equal(same["start_index"], own["start_index"])


def _fitted_vetter(seeds=range(6)) -> EventVetter:
    stars = [_proposals(seed) for seed in seeds]
    return EventVetter.fit(np.concatenate([event_features(lc, p, e) for lc, p, e, *_ in stars]),
                           np.concatenate([s[3] for s in stars]), np.concatenate([s[4] for s in stars]),
                           np.concatenate([np.full(len(s[3]), s[0].tic) for s in stars]), sum(s[5] for s in stars))


def test_saved_fold_vetters_load_for_their_own_fold_only_and_judge_as_before(tmp_path):
    import joblib

    from flaredetect.inference.vetting import save_fold_vetters, vetter_for

    vetter = _fitted_vetter()
    runs = [tmp_path / "cv" / "0", tmp_path / "cv" / "1"]
    for run in runs:
        (run / "checkpoints").mkdir(parents=True)
    save_fold_vetters({str(runs[0]): vetter, str(runs[1]): _fitted_vetter(range(6, 10))}, tmp_path / "vetters")
    lc, prob, events, *_ = _proposals(20)
    loaded = vetter_for(tmp_path / "vetters", runs[0])
    assert loaded.threshold == vetter.threshold
    np.testing.assert_array_equal(loaded.scores(lc, prob, events), vetter.scores(lc, prob, events))
    assert vetter_for(tmp_path / "vetters", runs[0] / "checkpoints" / "best.ckpt").threshold == vetter.threshold
    assert isinstance(vetter_for(tmp_path / "vetters" / "vetter_1.joblib", runs[1]), EventVetter)
    with pytest.raises(ValueError, match="has no vetter for"):
        vetter_for(tmp_path / "vetters", tmp_path / "other_run")
    with pytest.raises(ValueError, match="fitted on the events of"):
        vetter_for(tmp_path / "vetters" / "vetter_0.joblib", runs[1])
    with pytest.raises(ValueError, match="no vetters.json"):
        vetter_for(tmp_path, runs[0])
    (tmp_path / "junk.joblib").write_text("not a vetter")
    with pytest.raises(ValueError, match="not a saved event vetter"):
        vetter_for(tmp_path / "junk.joblib", runs[0])
    joblib.dump({"vetter": vetter, "features": ["snr_peak"], "fold": None}, tmp_path / "old.joblib")
    with pytest.raises(ValueError, match="other event features"):
        vetter_for(tmp_path / "old.joblib", runs[0])


def test_fold_vetters_saved_with_relative_run_paths_load_from_another_directory(tmp_path, monkeypatch):
    from flaredetect.inference.vetting import save_fold_vetters, vetter_for

    run = tmp_path / "outputs" / "cv" / "0"
    (run / "checkpoints").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # flaredetect-benchmark --ckpt outputs/cv/0 --save-vetters vetters
    save_fold_vetters({"outputs/cv/0": _fitted_vetter()}, "vetters")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # flaredetect-predict ckpt=<absolute run> vetter=<absolute dir> from another place
    assert isinstance(vetter_for(tmp_path / "vetters", run), EventVetter)
    assert isinstance(vetter_for(tmp_path / "vetters" / "vetter_0.joblib", run), EventVetter)
    _fitted_vetter().save(tmp_path / "legacy.joblib", fold="outputs/cv/0")  # saved before folds were resolved
    assert isinstance(vetter_for(tmp_path / "legacy.joblib", run), EventVetter)
    with pytest.raises(ValueError, match="fitted on the events of"):
        vetter_for(tmp_path / "legacy.joblib", tmp_path / "outputs" / "cv" / "1")


def test_predict_with_a_vetter_keeps_its_events_and_writes_their_vet_prob(tmp_path):
    from astropy.table import QTable

    from flaredetect.config_checks import ConfigError
    from flaredetect.inference.vetting import save_fold_vetters
    from flaredetect.predict import predict
    from test_predict import _predict_cfg, _save_star, make_run_dir

    run = make_run_dir(tmp_path / "run")
    _save_star(tmp_path / "in" / "tic000000005_s02.npy")
    vetter = _fitted_vetter()
    vetter.threshold = 0.0  # keeps every event: the table must be the unvetted one plus vet_prob
    save_fold_vetters({str(run): vetter}, tmp_path / "vetters")
    plain = predict(_predict_cfg(tmp_path / "a", run, str(tmp_path / "in"), events={"threshold": 0.01}))
    vetted = predict(_predict_cfg(tmp_path / "b", run, str(tmp_path / "in"), events={"threshold": 0.01},
                                  vetter=str(tmp_path / "vetters")))
    a = QTable.read(plain["ok"][0]["outputs"]["flares"], format="ascii.ecsv")
    b = QTable.read(vetted["ok"][0]["outputs"]["flares"], format="ascii.ecsv")
    assert len(a) > 0 and len(b) == len(a) and "vet_prob" in b.colnames and "vet_prob" not in a.colnames
    assert ((b["vet_prob"] >= 0) & (b["vet_prob"] <= 1)).all()
    from flaredetect.checkpoints import sha256
    from flaredetect.inference.pipeline import made_by_key

    recorded = b.meta["checkpoint"]["vetter"]
    assert recorded["sha256"] == sha256(tmp_path / "vetters" / "vetter_0.joblib") and "vetter" not in a.meta["checkpoint"]
    other = {**b.meta["checkpoint"], "vetter": {**recorded, "sha256": "0" * 64}}  # the same path, refitted
    assert made_by_key({"checkpoint": other}, []) != made_by_key({"checkpoint": b.meta["checkpoint"]}, [])
    vetter.threshold = 1.01  # keeps none
    save_fold_vetters({str(run): vetter}, tmp_path / "strict")
    none = predict(_predict_cfg(tmp_path / "c", run, str(tmp_path / "in"), events={"threshold": 0.01},
                                vetter=str(tmp_path / "strict")))
    assert len(QTable.read(none["ok"][0]["outputs"]["flares"], format="ascii.ecsv")) == 0
    loose = predict(_predict_cfg(tmp_path / "e", run, str(tmp_path / "in"), events={"threshold": 0.01},
                                 vetter=str(tmp_path / "strict"), vet_threshold=1e-9))  # overrides the fitted 1.01
    table = QTable.read(loose["ok"][0]["outputs"]["flares"], format="ascii.ecsv")
    assert len(table) == len(a) and table.meta["checkpoint"]["vetter"]["threshold"] == 1e-9
    for bad, match in (({"vet_threshold": 0.5}, "needs vetter="),
                       ({"vet_threshold": 1.5, "vetter": str(tmp_path / "vetters")}, "vet_threshold=1.5 must lie")):
        with pytest.raises(ConfigError, match=match):
            predict(_predict_cfg(tmp_path / "f", run, str(tmp_path / "in"), **bad))
    with pytest.raises(ConfigError, match="has no vetter for"):
        predict(_predict_cfg(tmp_path / "d", make_run_dir(tmp_path / "other"), str(tmp_path / "in"),
                             vetter=str(tmp_path / "vetters")))
