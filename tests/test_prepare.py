"""flaredetect-prepare: real light curves + a catalog -> a star-split window file."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from flaredetect.catalogs import read_guenther2020
from flaredetect.data.window_file import WindowFileWriter, check_window_file, read_window_file
from flaredetect.data.windowing import KIND_POSITIVE, WindowSpec, concat_windows
from flaredetect.prepare import negative_quotas, prepare

CONF = str(Path(__file__).resolve().parents[1] / "conf")
# tess/ (3 npy, sector 2) + fits/spoc (10 SPOC files): 13 stars, 7 with Günther flares.
SOURCES = ("tess", "fits/spoc")


def prepare_cfg(tmp_path: Path, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose(config_name="prepare", overrides=[f"paths.data_dir={tmp_path / 'data'}",
                                                        "progress=false", "workers=0", *overrides])
    GlobalHydra.instance().clear()
    return cfg


def _paths(shared: Path, subdirs=SOURCES) -> str:
    return "source.paths=[" + ",".join(str(shared / s) for s in subdirs) + "]"


@pytest.fixture(scope="module")
def prepared(shared_data, tmp_path_factory):
    """One uninterrupted run over tess/ and fits/spoc with the Günther catalog."""
    tmp = tmp_path_factory.mktemp("prepared")
    cfg = prepare_cfg(tmp, [_paths(shared_data), f"catalog.path={shared_data / 'catalogs/guenther2020.csv'}"])
    manifest = prepare(cfg)
    return cfg, manifest, Path(manifest["output"])


def test_prepared_file_is_complete_and_counted(prepared):
    _, manifest, path = prepared
    assert manifest["complete"] and check_window_file(path)["n_windows"] == manifest["counts"]["total"]["windows"]
    w = read_window_file(path)
    total = manifest["counts"]["total"]
    assert total["positives"] == int((w["kind"] == KIND_POSITIVE).sum()) > 40
    # negatives_per_positive=2 over the whole set (pools are large enough here)
    assert total["negatives"] == 2 * total["positives"]
    assert manifest["skipped"] == []
    assert manifest["stars"]["targets"] == 13 and manifest["light_curves"]["read"] == 13
    assert manifest["seconds_per_light_curve"]["mean"] > 0
    # labels agree with the masks; positives carry catalog amplitude and peak time
    crop = slice(10, 110)
    assert np.array_equal(w["label"], w["peak_mask"][:, crop].any(axis=1).astype(np.uint8))
    with h5py.File(path) as f:
        peak_time = f["peak_time_btjd"][...]
        start = f["start_time_btjd"][...]
    pos = w["kind"] == KIND_POSITIVE
    assert np.isfinite(peak_time[pos]).all() and np.isfinite(w["peak_amp"][pos]).all()
    assert np.array_equal(start, w["time_btjd"][:, 0])


def test_no_star_in_two_splits_and_every_split_has_flares(prepared):
    _, _, path = prepared
    w = read_window_file(path, fields=["tic", "split", "label"])
    for tic in np.unique(w["tic"]):
        assert len(np.unique(w["split"][w["tic"] == tic])) == 1, f"TIC {tic} in two splits"
    for code in (0, 1, 2):
        assert w["label"][w["split"] == code].sum() > 0


def test_window_flux_maximum_is_at_the_catalog_peak(prepared, shared_data):
    _, _, path = prepared
    w = read_window_file(path)
    pos = np.flatnonzero(w["kind"] == KIND_POSITIVE)
    close = 0
    for i in pos:
        peaks = np.flatnonzero(w["peak_mask"][i])
        close += np.min(np.abs(peaks - np.argmax(w["flux_rel"][i]))) <= 3
    assert close / len(pos) >= 0.85, f"only {close}/{len(pos)} windows peak within 3 cadences of a catalog peak"


def test_every_catalogued_flare_in_a_window_is_marked(prepared, shared_data):
    _, _, path = prepared
    catalog = read_guenther2020(shared_data / "catalogs/guenther2020.csv")
    w = read_window_file(path)
    checked = 0
    for i in range(len(w["label"])):
        tic = int(w["tic"][i])
        if tic not in catalog:
            continue
        t = w["time_btjd"][i]
        for peak in catalog[tic].peak_time_btjd:
            j = int(np.argmin(np.abs(t - peak)))
            if abs(t[j] - peak) <= 0.5 * 120 / 86400:
                assert w["flare_mask"][i, j] == 1 and w["peak_mask"][i, j] == 1, (tic, peak)
                checked += 1
    assert checked >= 60


def _h5_content(path: Path) -> dict:
    with h5py.File(path) as f:
        return {k: f[k][...] for k in f}


def test_killed_prepare_resumes_to_the_same_file(prepared, shared_data, tmp_path):
    cfg, _, reference = prepared
    out_dir = tmp_path / "data" / "prepared" / "tess"
    work = out_dir / "work"
    cmd = [sys.executable, "-m", "flaredetect.prepare", _paths(shared_data),
           f"catalog.path={shared_data / 'catalogs/guenther2020.csv'}", f"paths.data_dir={tmp_path / 'data'}",
           "workers=1", "progress=false", f"hydra.run.dir={tmp_path / 'hydra'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while len(list(work.rglob("tic*.npz"))) < 3:
            assert proc.poll() is None, "prepare ended before it could be killed"
            assert time.monotonic() < deadline, "no star committed within 180 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker, as a hard kill would
        proc.wait()
    committed = len(list(work.rglob("tic*.npz")))
    assert 3 <= committed < 13
    assert not (out_dir / "windows.h5").exists()  # nothing that looks complete
    manifest = prepare(prepare_cfg(tmp_path, [_paths(shared_data),
                                              f"catalog.path={shared_data / 'catalogs/guenther2020.csv'}"]))
    assert manifest["complete"]
    got, want = _h5_content(out_dir / "windows.h5"), _h5_content(reference)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def _guenther_subset(shared: Path, dest: Path, tics: list[int], extra_rows: list[dict] = (),
                     drop: str | None = None) -> Path:
    df = pd.read_csv(shared / "catalogs/guenther2020.csv")
    df = pd.concat([df[df["TIC"].isin(tics)], pd.DataFrame(list(extra_rows))], ignore_index=True)
    if drop:
        df = df.drop(columns=[drop])
    df.to_csv(dest, index=False)
    return dest


def test_bad_inputs_give_one_line_reasons(shared_data, tmp_path):
    lcs = tmp_path / "lcs"
    lcs.mkdir()
    good = np.load(shared_data / "tess/tic002760232_s02.npy")
    shutil.copy(shared_data / "tess/tic002760232_s02.npy", lcs)
    spoc = sorted((shared_data / "fits/spoc").glob("*358108509*"))[0]
    data = spoc.read_bytes()
    (lcs / spoc.name).write_bytes(data[: len(data) // 3])                      # corrupted FITS
    np.save(lcs / "tic000000111_s02.npy", good[:, :80])                      # shorter than a window
    nan = good.copy()
    nan[1] = np.nan
    np.save(lcs / "tic000000222_s02.npy", nan)                                # all-NaN flux
    np.save(lcs / "tic002761472_s05.npy", np.load(shared_data / "tess/tic002761472_s02.npy"))  # sector 2 data
    outside = {"TIC": 2760232, "Outbst": 99, "Flare": 1, "tpeak": 2457000 + 1500.0, "Amp": 0.05, "FWHMdt": 0.01}
    catalog = _guenther_subset(shared_data, tmp_path / "cat.csv", [2760232, 358108509], [outside])
    cfg = prepare_cfg(tmp_path, [f"source.paths=[{lcs}]", f"catalog.path={catalog}",
                                 "source.tics=[2760232,358108509,111,222,2761472,999]"])
    manifest = prepare(cfg)
    assert manifest["complete"]
    reasons = {item["target"]: item["reason"] for item in manifest["skipped"]}
    assert all("\n" not in r for r in reasons.values())
    assert "corrupted or unreadable FITS" in reasons[spoc.name]
    assert "shorter than a window" in reasons["tic000000111_s02.npy"]
    assert "all-NaN" in reasons["tic000000222_s02.npy"]
    assert "sector mismatch" in reasons["tic002761472_s05.npy"]
    assert "no light curve file" in reasons["TIC 999"]
    notes = " | ".join(item["reason"] for item in manifest["warnings"])
    assert "TIC 2760232: 1 catalogued flare peak(s) outside its light curve" in notes and "1500.0000" in notes
    w = read_window_file(manifest["output"], fields=["tic", "label"])
    assert set(np.unique(w["tic"])) == {2760232} and w["label"].sum() >= 8
    log_free = [r for r in reasons.values() if "Traceback" in r]
    assert not log_free

    # A catalog without a required column cannot label anything: one line, no window file.
    broken = _guenther_subset(shared_data, tmp_path / "broken.csv", [2760232], drop="Amp")
    cfg = prepare_cfg(tmp_path, [f"source.paths=[{lcs}]", f"catalog.path={broken}", "name=broken"])
    manifest = prepare(cfg)
    assert not manifest["complete"] and "missing required column(s) ['Amp']" in manifest["error"]
    assert "\n" not in manifest["error"]
    assert not Path(manifest["output"]).exists()
    saved = json.loads((Path(manifest["output"]).parent / "manifest.failed.json").read_text())
    assert not saved["complete"] and saved["error"] == manifest["error"]


# ------------------------------------------------- failed runs keep the previous data set

STAR = "tess/tic002760232_s02.npy"  # one catalogued star: a previous run in about a second


@pytest.fixture
def previous_run(shared_data, tmp_path):
    """A good data set already in place, as a failed re-run would find it."""
    catalog = _guenther_subset(shared_data, tmp_path / "good.csv", [2760232])
    manifest = prepare(prepare_cfg(tmp_path, [f"source.paths=[{shared_data / STAR}]", f"catalog.path={catalog}"]))
    assert manifest["complete"]
    out_dir = Path(manifest["output"]).parent
    return {"dir": out_dir, "files": {name: (out_dir / name).read_bytes() for name in ("windows.h5", "manifest.json")}}


def _assert_previous_kept(previous: dict, error_part: str) -> dict:
    """The old pair byte for byte, and the failure recorded beside it; returns that record."""
    for name, content in previous["files"].items():
        assert (previous["dir"] / name).read_bytes() == content, f"{name} was changed by the failed run"
    assert not list(previous["dir"].glob("windows.h5.*")), "a staged file was left behind"
    failed = json.loads((previous["dir"] / "manifest.failed.json").read_text())
    assert failed["complete"] is False and failed["previous_output_kept"] is True
    assert error_part in failed["error"] and "\n" not in failed["error"]
    return failed


def _run_main(tmp_path: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "flaredetect.prepare", f"paths.data_dir={tmp_path / 'data'}", "progress=false",
           "workers=0", f"hydra.run.dir={tmp_path / 'hydra'}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _assert_one_line_failure(proc: subprocess.CompletedProcess, error_part: str) -> None:
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("flaredetect-prepare:")]
    assert len(lines) == 1 and error_part in lines[0] and "previous windows.h5 kept" in lines[0], proc.stderr[-2000:]


def test_empty_catalog_keeps_previous_windows_file_and_exits_nonzero(previous_run, shared_data, tmp_path):
    empty = tmp_path / "empty.csv"
    pd.read_csv(shared_data / "catalogs/guenther2020.csv", nrows=0).to_csv(empty, index=False)
    proc = _run_main(tmp_path, [f"source.paths=[{shared_data / STAR}]", f"catalog.path={empty}"])
    _assert_one_line_failure(proc, "nothing to label")
    failed = _assert_previous_kept(previous_run, f"catalog.path={empty}")
    assert "work_dir" in failed and not list(Path(failed["work_dir"]).glob("*.npz"))  # stopped before any star


def test_catalog_matching_no_light_curve_is_an_error_before_any_star_is_processed(previous_run, shared_data,
                                                                                   tmp_path):
    other = _guenther_subset(shared_data, tmp_path / "other.csv", [358108509])  # its light curve is not given
    manifest = prepare(prepare_cfg(tmp_path, [f"source.paths=[{shared_data / STAR}]", f"catalog.path={other}"]))
    assert not manifest["complete"]
    assert "no target has catalogued flares" in manifest["error"] and "2760232" in manifest["error"]
    assert not Path(manifest["work_dir"]).exists() or not list(Path(manifest["work_dir"]).glob("*.npz"))
    _assert_previous_kept(previous_run, f"catalog.path={other}")


def test_unparseable_tpeak_is_reported_and_its_star_excluded(shared_data, tmp_path):
    catalog = _guenther_subset(shared_data, tmp_path / "cat.csv", [2760232, 2761472])
    df = pd.read_csv(catalog)
    df["tpeak"] = df["tpeak"].astype(object)
    df.loc[df.index[df["TIC"] == 2761472][0], "tpeak"] = "2458370.1x"  # a typo, not a time
    df.to_csv(catalog, index=False)
    sources = [shared_data / "tess/tic002760232_s02.npy", shared_data / "tess/tic002761472_s02.npy"]
    manifest = prepare(prepare_cfg(tmp_path, ["source.paths=[" + ",".join(map(str, sources)) + "]",
                                              f"catalog.path={catalog}"]))
    assert manifest["complete"]
    # Its other 21 flares are unlabelled without it: not a single window of it, negatives included.
    w = read_window_file(manifest["output"], fields=["tic"])
    assert set(np.unique(w["tic"])) == {2760232}
    reasons = {item["target"]: item["reason"] for item in manifest["skipped"]}
    assert "TIC 2761472" in reasons, "the unusable row was dropped silently"
    assert "cat.csv" in reasons["TIC 2761472"] and "'tpeak'" in reasons["TIC 2761472"]
    assert "1 row(s)" in reasons["TIC 2761472"] and "excluded" in reasons["TIC 2761472"]
    assert manifest["stars"]["excluded_by_catalog"] == 1


@pytest.mark.parametrize("fractions", ["[0.5,0.2]", "[0.6,0.3,0.3]", "[1.1,0.0,-0.1]", "[0.0,0.5,0.5]", "0.8"])
def test_invalid_split_fractions_is_an_error_naming_split_fractions(tmp_path, fractions):
    cfg = prepare_cfg(tmp_path, [f"split_fractions={fractions}", f"source.paths=[{tmp_path / 'lcs'}]",
                                 f"catalog.path={tmp_path / 'unread.csv'}"])
    manifest = prepare(cfg)
    assert not manifest["complete"] and manifest["error"].startswith("split_fractions=")
    assert "work_dir" not in manifest  # checked before anything else
    saved = json.loads((Path(manifest["output"]).parent / "manifest.failed.json").read_text())
    assert saved["error"] == manifest["error"]


def test_zero_windows_is_an_error_and_the_previous_windows_file_stays(previous_run, shared_data, tmp_path):
    lcs = tmp_path / "short"
    lcs.mkdir()
    np.save(lcs / "tic002760232_s02.npy", np.load(shared_data / STAR)[:, :80])  # shorter than a window
    catalog = _guenther_subset(shared_data, tmp_path / "same.csv", [2760232])
    manifest = prepare(prepare_cfg(tmp_path, [f"source.paths=[{lcs}]", f"catalog.path={catalog}",
                                              f"work_dir={tmp_path / 'fresh_work'}"]))  # not the previous star
    assert not manifest["complete"] and manifest["error"].startswith("no windows")
    failed = _assert_previous_kept(previous_run, "shorter than a window")
    assert [item["target"] for item in failed["skipped"]] == ["tic002760232_s02.npy"]


def test_negative_quotas_spread_evenly():
    assert negative_quotas({"a": 10, "b": 10, "c": 1}, 9) == {"a": 4, "b": 4, "c": 1}
    assert negative_quotas({"a": 2, "b": 0}, 5) == {"a": 2, "b": 0}
    assert sum(negative_quotas({f"s{i}": 7 for i in range(5)}, 23).values()) == 23


def test_window_file_writer_appends_and_never_looks_complete_when_interrupted(tmp_path):
    spec = WindowSpec(length=16, context=2, max_peak_offset=4)
    empty = concat_windows([], spec)
    batch = {k: np.zeros((3,) + v.shape[1:], dtype=v.dtype) for k, v in empty.items()}
    batch["tic"] = np.array([1, 2, 3])
    path = tmp_path / "w.h5"
    with WindowFileWriter(path, spec) as writer:
        writer.append(batch, np.zeros(3, dtype=np.uint8))
        writer.append(batch, np.ones(3, dtype=np.uint8))
        assert not path.exists()
    w = read_window_file(path)
    assert w["tic"].tolist() == [1, 2, 3, 1, 2, 3] and w["split"].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(RuntimeError):
        with WindowFileWriter(tmp_path / "x.h5", spec) as writer:
            writer.append(batch, np.zeros(3, dtype=np.uint8))
            raise RuntimeError("killed")
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.h5.partial").exists()


def test_train_on_prepared_file_with_data_tess(prepared, tmp_path):
    from flaredetect.data.datasets import WindowDataset
    from flaredetect.train import train

    _, _, path = prepared
    lazy, ram = WindowDataset(path, np.arange(5), in_memory=False), WindowDataset(path, np.arange(5))
    assert all(np.array_equal(lazy[i]["flux_rel"], ram[i]["flux_rel"]) for i in range(5))
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=[
            "data=tess", f"data.sources.tess.path={path}", f"paths.data_dir={tmp_path / 'data'}",
            "model.d_model=16", "model.num_heads=2", "model.d_ff=32", "model.head_hidden=[32]",
            "data.batch_size=32", "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "debug=limit", "trainer.max_epochs=1"])
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            del cfg.hydra
    GlobalHydra.instance().clear()
    metrics = train(cfg)
    assert np.isfinite(metrics["train/loss"]) and "test/f1" in metrics
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dataset_sizes"]["train"] > 0 and summary["dataset_sizes"]["test"] > 0
