"""Leave-one-star-out folds: held-out stars only ever reach the test split, and the real-data
benchmark never scores a star with a run that trained or validated on it."""
import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf

from flaredetect.data.datamodule import FlareDataModule
from flaredetect.data.splits import SPLIT_CODES
from flaredetect.data.synthetic_windows import SyntheticWindows
from flaredetect.data.window_sources import WindowFileSource

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


def _benchmark_real():
    spec = importlib.util.spec_from_file_location("benchmark_real", REPO / "scripts" / "benchmark_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_refuses_stars_a_run_saw_and_picks_the_fold_that_did_not(window_file):
    path, tic, split = window_file
    bench = _benchmark_real()
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
    assert not fold_stars & bench.trained_tics(fold_cfg)
    seen = bench.trained_tics(cfg(None))
    assert {train_star, val_star} <= seen and test_star not in seen
    fold_seen = bench.trained_tics(cfg([train_star]))
    assert train_star not in fold_seen and val_star in fold_seen
    missing = OmegaConf.create({"data": {"sources": {"tess": {
        "_target_": "flaredetect.data.window_sources.WindowFileSource", "path": "/nonexistent/windows.h5"}}}})
    with pytest.raises(SystemExit, match="refusing to score"):
        bench.trained_tics(missing)


def test_each_light_curve_is_scored_by_a_fold_that_never_saw_it(tmp_path, capsys):
    from types import SimpleNamespace

    from flaredetect.data.synthetic import generate_light_curve
    from flaredetect.inference.candidates import threshold_predictor

    bench = _benchmark_real()
    files = []
    for tic in (11, 22, 33):
        lc = generate_light_curve(tic, tic=tic, sector=2)
        files.append(tmp_path / f"tic{tic:09d}_s02.npy")
        np.save(files[-1], np.stack([lc.time_btjd, 1.0 + lc.flux_rel, lc.flux_err]))
    empty = SimpleNamespace(peak_time_btjd=np.zeros(0), amplitude=np.zeros(0))
    catalog = SimpleNamespace(for_star=lambda *a, **k: empty)
    predictor = threshold_predictor()
    used = []

    def fold(name, skip):
        return name, lambda: used.append(name) or predictor, set(skip)

    result, scored = bench.run_detector("folds", [fold("A", {11, 33}), fold("B", {22, 33})], {"set": files}, catalog)
    rows = {r["tic"]: r["fold"] for r in result["set"]["per_light_curve"]}
    assert rows == {11: "B", 22: "A"}  # 33 was in every run's training data
    assert "skipped: every run trained on its windows" in capsys.readouterr().out
    # paired comparisons use only the light curves both detectors scored
    _, everything = bench.run_detector("all", [fold("C", set())], {"set": files}, catalog)
    diff = bench.compare("folds - all", scored, everything)
    assert diff["set"]["light_curves"] == ["TIC 11 s2", "TIC 22 s2"]
    assert diff["set"]["window_f1"] == diff["set"]["event_f1"] == 0  # the same detector


def test_development_set_never_holds_a_benchmark_star(tmp_path):
    bench = _benchmark_real()
    for sub, names in {"tess": ["tic002760232_s02.npy"],
                       "fits/spoc": ["tess2018206045859-s0001-0000000358108509-0120-s_lc.fits",
                                     "tess2018206045859-s0001-0000000053842685-0120-s_lc.fits"],
                       "fits/custom_aperture": ["tess2019082314135-s0001-0000000358108509-0000-s_lc.fits",
                                                "tess2019090412090-s0002-0000000259901346-0000-s_lc.fits",
                                                "tess2019090412090-s0003-0000000111111111-0000-s_lc.fits"]}.items():
        (tmp_path / sub).mkdir(parents=True)
        for name in names:
            (tmp_path / sub / name).touch()
    sets = bench.light_curve_sets(tmp_path)
    spoc, dev = list(sets.values())[1:]
    assert [p.name.split("-")[2] for p in spoc] == ["0000000358108509"]  # Günther sector-1 stars only
    assert [p.name.split("-")[2] for p in dev] == ["0000000259901346"]  # no benchmark star, sectors 1-2
