"""Leave-one-star-out folds: held-out stars only ever reach the test split, and the real-data
benchmark never scores a star with a run that trained or validated on it."""
from pathlib import Path

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf

from flaredetect.data.datamodule import FlareDataModule
from flaredetect.data.splits import SPLIT_CODES
from flaredetect.data.synthetic_windows import SyntheticWindows
from flaredetect.data.window_sources import WindowFileSource
from flaredetect.evaluation.catalog_benchmark import (M_DWARFS, NO_FLARES, UCDS, YOUNG, LabelledLightCurve,
                                                      catalog_flares, compare, labelled_light_curves,
                                                      legacy_light_curve_sets, score_detector, trained_tics)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def window_file(tmp_path_factory):
    path = SyntheticWindows(n_stars=10, seed=3, cache_dir=tmp_path_factory.mktemp("syn")).prepare()
    with h5py.File(path, "r") as f:
        return path, f["tic"][...], f["split"][...]


def _tics(dm, split):
    return {int(t) for _, path, rows in dm.index.get(split, []) for t in h5py.File(path, "r")["tic"][...][rows]}


def test_held_out_star_moves_to_test_only(window_file):
    path, tic, split = window_file
    held = int(tic[split == SPLIT_CODES["train"]][0])
    dm = FlareDataModule(sources={"real": WindowFileSource(path, holdout_tics=[held])}, batch_size=8)
    dm.setup()
    assert held not in _tics(dm, "train") | _tics(dm, "val")
    assert held in _tics(dm, "test")
    sizes = {s: sum(len(rows) for _, _, rows in dm.index[s]) for s in dm.index}
    assert sum(sizes.values()) == len(tic)  # nothing lost, nothing duplicated
    assert sizes["test"] == int(((split == SPLIT_CODES["test"]) | (tic == held)).sum())
    # without the holdout the star trains
    plain = FlareDataModule(sources={"real": WindowFileSource(path)}, batch_size=8)
    plain.setup()
    assert held in _tics(plain, "train")


def test_unknown_or_malformed_holdout_names_the_key(window_file):
    path, _, _ = window_file
    dm = FlareDataModule(sources={"real": WindowFileSource(path, holdout_tics=[123])}, batch_size=8)
    with pytest.raises(ValueError, match=r"data.sources.real: holdout_tics \[123\] have no windows"):
        dm.setup()
    with pytest.raises(ValueError, match="holdout_tics"):
        WindowFileSource(path, holdout_tics=["TIC x"])


def test_holding_out_every_val_star_says_which_key_emptied_the_split(window_file, tmp_path):
    path, tic, split = window_file
    val_stars = sorted(set(tic[split == SPLIT_CODES["val"]].tolist()))
    dm = FlareDataModule(sources={"real": WindowFileSource(path, holdout_tics=val_stars)}, batch_size=8)
    with pytest.raises(ValueError, match=rf"no windows for the val split .*data.sources.real: "
                                         rf"holdout_tics=\[{val_stars[0]}.*\] takes all {len(val_stars)} star"):
        dm.setup()
    # with val windows from another source it is a valid setup
    val_file = SyntheticWindows(n_stars=10, seed=4, cache_dir=tmp_path).prepare()
    other = FlareDataModule(sources={"real": WindowFileSource(path, holdout_tics=val_stars),
                                     "more": WindowFileSource(val_file, splits=["val"])}, batch_size=8)
    other.setup()
    assert other.datasets["val"]


def test_star_grouped_folds_partition_the_stars_and_hold_each_out(window_file):
    path, tic, split = window_file
    stars = set(np.unique(tic).tolist())
    held = []
    for k in range(3):
        source = WindowFileSource(path, folds=3, fold=k)
        rows = source.split_rows(split, tic)
        fold_stars = set(source.fold_tics(tic))
        assert fold_stars and fold_stars == set(WindowFileSource(path, folds=3, fold=k).fold_tics(tic))  # fixed
        assert not fold_stars & set(tic[np.concatenate([rows["train"], rows["val"]])].tolist())
        assert fold_stars <= set(tic[rows["test"]].tolist())
        assert sum(len(r) for r in rows.values()) == len(tic)
        held.append(fold_stars)
    assert set().union(*held) == stars and sum(map(len, held)) == len(stars)  # a partition
    with pytest.raises(ValueError, match="folds=3 and fold=3"):
        WindowFileSource(path, folds=3, fold=3)
    with pytest.raises(ValueError, match="set both"):
        WindowFileSource(path, folds=3)
    with pytest.raises(ValueError, match="folds=50 but .* has only 10 stars"):
        WindowFileSource(path, folds=50, fold=0).split_rows(split, tic)


def test_benchmark_refuses_stars_a_run_saw_and_picks_the_fold_that_did_not(window_file):
    path, tic, split = window_file
    train_star = int(tic[split == SPLIT_CODES["train"]][0])
    val_star = int(tic[split == SPLIT_CODES["val"]][0])
    test_star = int(tic[split == SPLIT_CODES["test"]][0])

    def cfg(holdout):
        return OmegaConf.create({"data": {"sources": {
            "tess": {"_target_": "flaredetect.data.window_sources.WindowFileSource", "path": str(path),
                     "holdout_tics": holdout},
            "synthetic": {"_target_": "flaredetect.data.synthetic_windows.SyntheticWindows"}}}})

    fold_cfg = cfg(None)
    fold_cfg.data.sources.tess.folds, fold_cfg.data.sources.tess.fold = 3, 1
    fold_stars = set(WindowFileSource(path, folds=3, fold=1).fold_tics(tic))
    assert not fold_stars & trained_tics(fold_cfg)
    seen = trained_tics(cfg(None))
    assert {train_star, val_star} <= seen and test_star not in seen
    fold_seen = trained_tics(cfg([train_star]))
    assert train_star not in fold_seen and val_star in fold_seen
    missing = OmegaConf.create({"data": {"sources": {"tess": {
        "_target_": "flaredetect.data.window_sources.WindowFileSource", "path": "/nonexistent/windows.h5"}}}})
    with pytest.raises(SystemExit, match="refusing to score"):
        trained_tics(missing)


def _catalog(peaks_by_tic, starts=None):
    from flaredetect.catalogs import FlareCatalog
    from flaredetect.data.lightcurve import Flares

    by_tic = {}
    for tic, peaks in peaks_by_tic.items():
        p = np.asarray(peaks, dtype=float)
        n = len(p)
        by_tic[tic] = Flares(peak_time_btjd=p, amplitude=np.full(n, 0.05), fwhm_days=np.full(n, 0.01),
                             start_time_btjd=p - 0.002, stop_time_btjd=p + 0.01, event_id=np.arange(n),
                             ed_s=np.full(n, 10.0), energy_erg=np.full(n, np.nan), detectable=np.ones(n, bool))
    return FlareCatalog(by_tic, name="test")


def test_each_light_curve_is_scored_by_a_fold_that_never_saw_it(tmp_path, capsys):
    from flaredetect.data.synthetic import generate_light_curve
    from flaredetect.inference.candidates import threshold_predictor

    items, truth = [], {}
    for tic, population in ((11, M_DWARFS), (22, UCDS), (33, UCDS)):
        lc = generate_light_curve(tic, tic=tic, sector=2)
        path = tmp_path / f"tic{tic:09d}_s02.npy"
        np.save(path, np.stack([lc.time_btjd, 1.0 + lc.flux_rel, lc.flux_err]))
        items.append(LabelledLightCurve(path, population, ("test",)))
        truth[tic] = lc.flares.peak_time_btjd[lc.flares.detectable]
    sets = {M_DWARFS: items[:1], UCDS: items[1:]}
    catalogs = {"test": (_catalog(truth), None)}
    predictor = threshold_predictor()
    used = []

    def fold(name, skip):
        return name, lambda: used.append(name) or predictor, set(skip)

    result, scored = score_detector("folds", [fold("A", {11, 33}), fold("B", {22, 33})], sets, catalogs,
                                    per_light_curve=True)
    rows = {r["tic"]: r["fold"] for s in (M_DWARFS, UCDS) for r in result[s]["per_light_curve"]}
    assert rows == {11: "B", 22: "A"}  # 33 was in every run's training data: never scored
    assert result[UCDS]["skipped"] and "every run trained on its windows" in capsys.readouterr().out
    assert result["all populations"]["pooled"]["event"]["n_flares"] == len(truth[11]) + len(truth[22])
    # paired comparisons use only the light curves both detectors scored, per population and pooled
    _, everything = score_detector("all", [fold("C", set())], sets, catalogs)
    diff = compare("folds - all", scored, everything)
    assert diff[UCDS]["light_curves"] == ["TIC 22 s2"]
    assert len(diff["all populations"]["light_curves"]) == 2
    assert diff[UCDS]["window_f1"] == diff[UCDS]["event_f1"] == 0  # the same detector


def test_a_flare_two_catalogs_list_counts_once_and_unvetted_candidates_count_neither_way(tmp_path):
    from flaredetect.data.synthetic import generate_light_curve
    from flaredetect.evaluation.catalog_benchmark import drop_events_on

    lc = generate_light_curve(5, tic=5, sector=2)
    t = lc.time_btjd
    a = {"g": (_catalog({5: [t[1000], t[5000]]}), None),
         "u": (_catalog({5: [t[1002], t[9000]]}), _catalog({5: [t[12000]]}))}
    flares, ignore = catalog_flares(lc, ("g", "u"), a)
    assert len(flares.peak_time_btjd) == 3  # t[1000] and t[1002] are one flare
    assert len(ignore) == 1 and abs(ignore[0] - t[12000]) < 0.02
    events = {"start_time_btjd": np.array([t[998], t[11999], t[15000]]),
              "stop_time_btjd": np.array([t[1005], t[12003], t[15004]])}
    kept = drop_events_on(events, ignore, flares.peak_time_btjd)
    assert list(kept["start_time_btjd"]) == [t[998], t[15000]]  # the unvetted one is not counted; a false one is


def test_populations_hold_every_labelled_light_curve_once_and_legacy_dev_set_no_benchmark_star(tmp_path):
    layout = {"tess": ["tic002760232_s02.npy"],
              "fits/spoc": ["tess2018206045859-s0001-0000000358108509-0120-s_lc.fits",
                            "tess2018206045859-s0001-0000000053842685-0120-s_lc.fits",
                            "tess2018349182500-s0006-0000000219423316-0120-s_lc.fits"],
              "tess_young": ["tic260351540_s01.npy", "tic260351540_s30.npy"],
              "fits/custom_aperture": ["tess2019082314135-s0001-0000000358108509-0000-s_lc.fits",
                                       "tess2019090412090-s0002-0000000259901346-0000-s_lc.fits"],
              "fits/custom_aperture_s03-13": ["tess2019090412090-s0003-0000000111111111-0000-s_lc.fits"]}
    for sub, names in layout.items():
        (tmp_path / sub).mkdir(parents=True)
        for name in names:
            (tmp_path / sub / name).touch()
    sets = labelled_light_curves(tmp_path)
    names = {k: [i.path.name for i in v] for k, v in sets.items()}
    assert names[M_DWARFS] == ["tic002760232_s02.npy", layout["fits/spoc"][0]]
    assert names[NO_FLARES] == [layout["fits/spoc"][1]]  # sector 6 has no labels: not scored
    assert names[YOUNG] == ["tic260351540_s01.npy"]
    assert sorted(names[UCDS]) == sorted(layout["fits/custom_aperture"] + layout["fits/custom_aperture_s03-13"])
    ucd = {i.path.name: i.catalogs for i in sets[UCDS]}
    assert ucd[layout["fits/custom_aperture_s03-13"][0]] == ("ucd",)  # Günther covers sectors 1-2 only
    assert ucd[layout["fits/custom_aperture"][1]] == ("ucd", "guenther")
    spoc, dev = list(legacy_light_curve_sets(tmp_path).values())[1:]
    assert [i.path.name.split("-")[2] for i in spoc] == ["0000000358108509"]  # Günther sector-1 stars only
    assert [i.path.name.split("-")[2] for i in dev] == ["0000000259901346"]  # no benchmark star, sectors 1-2


def test_source_weights_mix_training_windows_by_weight_not_size(window_file, tmp_path):
    path, tic, split = window_file
    small = SyntheticWindows(n_stars=4, seed=9, cache_dir=tmp_path / "small")
    sources = {"big": WindowFileSource(path), "small": small}
    dm = FlareDataModule(sources, batch_size=8, source_weights={"big": 1, "small": 3})
    dm.setup()
    names = [name for name, _, _ in dm.index["train"]]
    sizes = [len(rows) for _, _, rows in dm.index["train"]]
    assert names == ["big", "small"] and sizes[0] > sizes[1]
    sampler = dm.train_dataloader().sampler
    draws = np.array(list(iter(sampler)))
    assert len(draws) == sum(sizes)
    many = []
    for epoch in range(2, 42):
        sampler.set_epoch(epoch)
        many += list(iter(sampler))
    assert abs(np.mean(np.array(many) >= sizes[0]) - 0.75) < 0.03  # 3 : 1 by weight, whatever the sizes
    sampler.set_epoch(0)
    assert np.array_equal(draws, np.array(list(iter(sampler))))  # the same epoch, the same draw
    sampler.set_epoch(1)
    assert not np.array_equal(draws, np.array(list(iter(sampler))))
    # without weights: every window once per epoch
    plain = FlareDataModule(sources, batch_size=8)
    plain.setup()
    assert sorted(iter(plain.train_dataloader().sampler)) == list(range(sum(sizes)))
    for bad, match in (({"nope": 1}, r"names \['nope'\]"), ({"big": -1}, "source_weights.big=-1.0"),
                       ({"big": "x"}, "source_weights.big='x' is not a number"), ({"big": 0}, "every source weight 0")):
        with pytest.raises(ValueError, match=match):
            FlareDataModule(sources, source_weights=bad)
    with pytest.raises(ValueError, match="device_resident"):
        FlareDataModule(sources, source_weights={"big": 1}, device_resident=True)


def test_event_settings_tuned_on_training_stars_are_the_best_there_and_score_as_the_benchmark_does(tmp_path):
    """``--tune-events``: the chosen (threshold, min_snr) has the best pooled event F1 on the
    tuning light curves, and that F1 is what the benchmark's own scoring gives them."""
    from dataclasses import replace

    from flaredetect.data.lightcurve import robust_noise_sigma
    from flaredetect.data.synthetic import generate_light_curve
    from flaredetect.evaluation.catalog_benchmark import TUNING_GRID, tune_event_settings
    from flaredetect.inference import EventParams, Predictor

    items, truth = [], {}
    for tic in (41, 42, 43):
        lc = generate_light_curve(tic, tic=tic, sector=2)
        path = tmp_path / f"tic{tic:09d}_s02.npy"
        np.save(path, np.stack([lc.time_btjd, 1.0 + lc.flux_rel, lc.flux_err]))
        items.append(LabelledLightCurve(path, UCDS, ("test",)))
        truth[tic] = lc.flares.peak_time_btjd[lc.flares.detectable]
    catalogs = {"test": (_catalog(truth), None)}

    def significance(lc):  # a graded score, so that thresholds matter
        z = (lc.flux_rel - np.median(lc.flux_rel)) / robust_noise_sigma(lc.flux_rel)
        return np.clip(z / 8.0, 0.0, 1.0).astype(np.float32)

    predictor = Predictor(scorer=significance, events=EventParams())
    tuned, scores = tune_event_settings(predictor, items, catalogs)
    assert len(scores) == len(TUNING_GRID["threshold"]) * len(TUNING_GRID["min_snr"])
    best = max(scores, key=lambda g: (g["f1"], g["threshold"]))
    assert (tuned.events.threshold, tuned.events.min_snr) == (best["threshold"], best["min_snr"])
    assert len({round(g["f1"], 6) for g in scores}) > 1  # the settings do differ
    for g in (best, min(scores, key=lambda g: g["f1"])):
        fixed = replace(predictor, events=replace(predictor.events, threshold=g["threshold"], min_snr=g["min_snr"]))
        result, _ = score_detector("fixed", [("x", lambda: fixed, set())], {UCDS: items}, catalogs)
        assert result[UCDS]["pooled"]["event"]["f1"] == pytest.approx(g["f1"])


def test_light_curves_are_also_pooled_by_the_catalogs_that_label_them(tmp_path):
    from flaredetect.data.synthetic import generate_light_curve
    from flaredetect.evaluation.catalog_benchmark import BY_GUENTHER, BY_TABLE_ONLY
    from flaredetect.inference.candidates import threshold_predictor

    items, truth = [], {}
    for tic, names in ((41, ("guenther",)), (42, ("ucd", "guenther")), (43, ("ucd",))):
        lc = generate_light_curve(tic, tic=tic, sector=2)
        path = tmp_path / f"tic{tic:09d}_s02.npy"
        np.save(path, np.stack([lc.time_btjd, 1.0 + lc.flux_rel, lc.flux_err]))
        items.append(LabelledLightCurve(path, UCDS, names))
        truth[tic] = lc.flares.peak_time_btjd[lc.flares.detectable]
    catalogs = {"guenther": (_catalog(truth), None), "ucd": (_catalog(truth), None)}
    rule = [("rule", threshold_predictor, set())]
    result, scored = score_detector("rule", rule, {UCDS: items}, catalogs)
    assert [Path(f).name for f in result[BY_GUENTHER]["light_curves"]] == [items[0].path.name, items[1].path.name]
    assert [Path(f).name for f in result[BY_TABLE_ONLY]["light_curves"]] == [items[2].path.name]
    assert result[BY_TABLE_ONLY]["pooled"]["event"]["n_flares"] == len(truth[43])
    assert set(scored[BY_GUENTHER]) == {f"{UCDS}: TIC 41 s2", f"{UCDS}: TIC 42 s2"}
    # one kind of labels only: no split to show
    alone, _ = score_detector("rule", rule, {UCDS: items[2:]}, catalogs)
    assert BY_GUENTHER not in alone and BY_TABLE_ONLY not in alone
