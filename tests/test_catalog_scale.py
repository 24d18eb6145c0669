"""Catalogs at scale: manifests, deterministic shards, resume after a kill, one merged catalog."""
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from flaredetect.build_catalog import build_catalog
from flaredetect.inference import Predictor, iter_targets, run_prediction
from flaredetect.inference.candidates import threshold_scorer
from test_predict import _save_star


def _inputs(folder: Path, n: int = 7) -> list[Path]:
    paths = []
    for k in range(n):
        path = folder / f"tic{100 + k:09d}_s0{1 + k % 3}.npy"
        _save_star(path, seed=k)
        arr = np.load(path)
        np.save(path, arr)
        paths.append(path)
    return paths


def _names(inputs, **kw) -> list[str]:
    return [name for name, _, _ in iter_targets(inputs, **kw)]


def test_shards_cover_every_input_exactly_once_and_keep_their_names(tmp_path):
    paths = _inputs(tmp_path / "in", 7)
    full = _names([str(p) for p in paths])
    stems = {name: stem for name, _, stem in iter_targets([str(p) for p in paths])}
    for n in (1, 2, 3, 5, 9):
        shards = [_names([str(p) for p in paths], shard=i, num_shards=n) for i in range(n)]
        assert sorted(sum(shards, [])) == sorted(full)  # every input, none twice
        assert sum(len(s) for s in shards) == len(full)
        for i in range(n):
            assert {name: stem for name, _, stem in iter_targets([str(p) for p in paths], shard=i, num_shards=n)} \
                == {name: stems[name] for name in shards[i]}
    with pytest.raises(ValueError, match=r"shard=3 must be an integer in \[0, num_shards=3\)"):
        _names([str(paths[0])], shard=3, num_shards=3)


def test_a_manifest_expands_in_place_and_lists_bad_entries_as_failures(tmp_path):
    paths = _inputs(tmp_path / "in", 3)
    manifest = tmp_path / "in" / "lcs.txt"
    manifest.write_text(f"# three stars and two bad entries\n{paths[0].name}\n{paths[1]}\n\nno_such_file.fits\n"
                        f"{paths[2].name}  # relative to the manifest\n")
    (tmp_path / "in" / "bad.npy").write_text("not an array")
    with manifest.open("a") as f:
        f.write("bad.npy\n")
    scorer = Predictor(scorer=threshold_scorer(3.0, 3), cadence_s=None)
    result = run_prediction(scorer, str(manifest), tmp_path / "out", plot=False, progress=False)
    assert sorted(Path(r["name"]).name for r in result["ok"]) == sorted(p.name for p in paths)
    reasons = dict(result["failed"])
    assert len(reasons) == 2 and any("no_such_file.fits: no such file" in r for r in reasons.values())
    assert any("bad.npy" in r and "not a .npy array" in r for r in reasons.values())
    csv = tmp_path / "in" / "lcs.csv"
    Table({"path": [p.name for p in paths]}).write(csv, format="ascii.csv")
    assert sorted(Path(n).name for n in _names(str(csv))) == sorted(p.name for p in paths)


class Killed(BaseException):
    """A SLURM time-out or a kill: not an Exception, nothing catches it."""


def test_a_killed_shard_rerun_skips_what_it_finished_and_ends_with_the_same_catalog(tmp_path):
    paths = [str(p) for p in _inputs(tmp_path / "in", 7)]
    rule = threshold_scorer(3.0, 3)
    meta = {"checkpoint": {"sha256": "abc"}, "settings": {"events": {}}}
    # the reference: one uninterrupted run, and the same inputs in 3 shards
    run_prediction(Predictor(scorer=rule), paths, tmp_path / "whole", plot=False, progress=False, meta=meta)
    for i in range(3):
        run_prediction(Predictor(scorer=rule), paths, tmp_path / "sharded", plot=False, progress=False, meta=meta,
                       shard=i, num_shards=3)
    calls = []

    def dies_on_the_fourth(lc):
        calls.append(lc.tic)
        if len(calls) == 4:
            raise Killed()
        return rule(lc)

    with pytest.raises(Killed):
        run_prediction(Predictor(scorer=dies_on_the_fourth), paths, tmp_path / "killed", plot=False, progress=False,
                       meta=meta)
    assert len(list((tmp_path / "killed" / "done").glob("*.json"))) == 3  # the 4th input left no marker
    again = run_prediction(Predictor(scorer=rule), paths, tmp_path / "killed", plot=False, progress=False, meta=meta,
                           resume=True)
    assert again["resumed"] == 3 and len(again["ok"]) == 7
    other = run_prediction(Predictor(scorer=rule), paths, tmp_path / "killed", plot=False, progress=False,
                           meta={**meta, "checkpoint": {"sha256": "another model"}}, resume=True)
    assert other["resumed"] == 0  # a marker of another checkpoint is not trusted
    catalogs = {name: build_catalog([tmp_path / name], tmp_path / f"{name}_catalog") for name in ("whole", "sharded")}
    assert catalogs["whole"]["flares"] > 0 and catalogs["whole"]["inputs"] == 7
    whole = Table.read(tmp_path / "whole_catalog" / "flares.ecsv")
    for name in ("sharded_catalog", "killed_catalog"):
        if name == "killed_catalog":
            build_catalog([tmp_path / "killed"], tmp_path / name)
        merged = Table.read(tmp_path / name / "flares.ecsv")
        cols = [c for c in whole.colnames if c not in ("model",)]
        assert len(merged) == len(whole)
        for c in cols:
            assert np.array_equal(np.asarray(merged[c]), np.asarray(whole[c]), equal_nan=merged[c].dtype.kind == "f"), c
    stars = Table.read(tmp_path / "whole_catalog" / "stars.ecsv")
    assert len(stars) == 7 and stars["n_flares"].sum() == len(whole)
    assert np.allclose(stars["flare_rate_per_day"], stars["n_flares"] / stars["days_searched"])
    parquet = Table.read(tmp_path / "whole_catalog" / "flares.parquet")
    assert len(parquet) == len(whole) and {"TIC", "sector", "cadence", "tpeak", "ed_rec", "model"} <= set(parquet.colnames)


def test_the_slurm_launcher_composes_for_predict_shards(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(__file__).resolve().parents[1] / "conf")):
        cfg = compose("predict", overrides=["hydra/launcher=slurm", "input=lcs.txt", "num_shards=4", "shard=2",
                                            f"out_dir={tmp_path}"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.tasks_per_node == 1
    assert (cfg.shard, cfg.num_shards, cfg.resume) == (2, 4, True)


def test_light_curves_without_flares_merge_into_the_catalog(tmp_path):
    paths = [str(p) for p in _inputs(tmp_path / "in", 3)]
    never = Predictor(scorer=lambda lc: np.zeros(len(lc), np.float32))
    run_prediction(never, paths[:2], tmp_path / "quiet", plot=False, progress=False)
    run_prediction(Predictor(scorer=threshold_scorer(3.0, 3)), paths[2:], tmp_path / "flaring", plot=False,
                   progress=False)
    counts = build_catalog([tmp_path / "quiet", tmp_path / "flaring"], tmp_path / "catalog")
    stars = Table.read(tmp_path / "catalog" / "stars.ecsv")
    assert counts["inputs"] == 3 and len(stars) == 3 and (stars["n_flares"][:2] == 0).all()
    assert counts["flares"] == stars["n_flares"].sum() > 0


def test_reading_threads_give_the_same_outputs_and_bad_shards_fail_before_reading(tmp_path):
    from flaredetect.config_checks import ConfigError, check_predict_config
    from omegaconf import OmegaConf

    paths = [str(p) for p in _inputs(tmp_path / "in", 5)]
    rule = Predictor(scorer=threshold_scorer(3.0, 3))
    inline = run_prediction(rule, paths, tmp_path / "a", plot=False, progress=False, timeseries=False)
    threaded = run_prediction(rule, paths, tmp_path / "b", plot=False, progress=False, timeseries=False, workers=2)
    assert [r["name"] for r in inline["ok"]] == [r["name"] for r in threaded["ok"]] == paths
    assert [r["n_events"] for r in inline["ok"]] == [r["n_events"] for r in threaded["ok"]]
    assert not list((tmp_path / "a").glob("*_prob.ecsv")) and len(list((tmp_path / "a").glob("*_prob.npy"))) == 5
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "predict.yaml")
    for bad, message in (({"num_shards": 0}, "num_shards=0 must be an integer >= 1"),
                         ({"shard": 4, "num_shards": 4}, r"shard=4 must be an integer in \[0, num_shards=4\)"),
                         ({"workers": -1}, "workers=-1 must be a non-negative integer")):
        with pytest.raises(ConfigError, match=message):
            check_predict_config(OmegaConf.merge(cfg, bad))


def test_worker_processes_give_the_same_outputs_in_input_order_and_resume(tmp_path):
    from flaredetect import Detector

    paths = [str(p) for p in _inputs(tmp_path / "in", 4)]
    bad = tmp_path / "in" / "broken_lc.fits"
    bad.write_text("not a FITS file")
    inputs = paths[:2] + [str(bad)] + paths[2:]
    predictor = Detector(None, candidates=False).predictor
    kw = dict(plot=False, progress=False, timeseries=False, meta={"checkpoint": {"sha256": "test"}})
    inline = run_prediction(predictor, inputs, tmp_path / "a", **kw)
    spawned = run_prediction(predictor, inputs, tmp_path / "b", processes=2, threads=1, lc_batch=2, **kw)
    assert [r["name"] for r in spawned["ok"]] == [r["name"] for r in inline["ok"]] == paths
    assert [r["n_events"] for r in spawned["ok"]] == [r["n_events"] for r in inline["ok"]]
    assert [f for f, _ in spawned["failed"]] == [f for f, _ in inline["failed"]] == [str(bad)]
    for a in sorted((tmp_path / "a").glob("*_flares.ecsv")):
        ta, tb = Table.read(a), Table.read(tmp_path / "b" / a.name)
        assert len(ta) == len(tb) and all(np.allclose(ta[c], tb[c], equal_nan=True) for c in ta.colnames
                                          if ta[c].dtype.kind == "f")
    again = run_prediction(predictor, inputs, tmp_path / "b", processes=2, threads=1, resume=True, **kw)
    assert again["resumed"] == 4 and [r["name"] for r in again["ok"]] == paths
    with pytest.raises(ValueError, match="processes=2: this detector cannot be sent to worker processes"):
        run_prediction(Predictor(scorer=lambda lc: np.zeros(len(lc), np.float32)), inputs, tmp_path / "c",
                       processes=2, **kw)


def test_the_merge_reads_the_markers_rows_and_equals_merging_the_flare_tables(tmp_path):
    """The merge takes each input's flare rows from its completion marker (no table header to
    parse); the catalog is the same as from the per-light-curve ECSV tables (markers of older
    runs), units, masked values and all."""
    import json

    from astropy.table import QTable, vstack

    paths = [str(p) for p in _inputs(tmp_path / "in", 5)]
    run_prediction(Predictor(scorer=threshold_scorer(3.0, 3)), paths, tmp_path / "run", plot=False, progress=False,
                   meta={"checkpoint": {"sha256": "abc"}})
    build_catalog([tmp_path / "run"], tmp_path / "from_markers")
    for marker in (tmp_path / "run" / "done").glob("*.json"):  # as an older run wrote them
        record = json.loads(marker.read_text())
        assert all("flares" in lc for lc in record["light_curves"])
        for lc in record["light_curves"]:
            del lc["flares"]
        marker.write_text(json.dumps(record))
    build_catalog([tmp_path / "run"], tmp_path / "from_tables")
    a, b = (QTable.read(tmp_path / name / "flares.ecsv") for name in ("from_markers", "from_tables"))
    tables = vstack([QTable.read(p) for p in sorted((tmp_path / "run").glob("*_flares.ecsv"))],
                    metadata_conflicts="silent")
    assert len(a) == len(b) == len(tables) > 0 and a.colnames == b.colnames
    assert set(tables.colnames) | {"input", "model"} == set(a.colnames)
    for name in a.colnames:
        assert getattr(a[name], "unit", None) == getattr(b[name], "unit", None), name
        assert np.array_equal(np.ma.getmaskarray(np.ma.asarray(a[name])), np.ma.getmaskarray(np.ma.asarray(b[name])))
        left, right = (np.ma.filled(np.ma.asarray(getattr(t[name], "value", t[name])), 0) for t in (a, b))
        assert np.array_equal(left, right, equal_nan=left.dtype.kind == "f"), name
    assert str(a["ed_rec"].unit) == "s" and np.ma.getmaskarray(np.ma.asarray(a["cstart"])).all()  # .npy: no cadence numbers
