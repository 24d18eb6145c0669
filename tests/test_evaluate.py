"""flaredetect-eval: metrics on hand-computed cases, false-positive rules, and a tiny
trained run evaluated end to end (console script, reload, ensemble)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from flaredetect.evaluation.error_analysis import categorise_false_positive, category_table, flare_duration_minutes
from flaredetect.evaluation.metrics import (auroc, average_precision, best_f1_threshold, mean_std, recall_by_bins,
                                            thresholded_metrics)
from flaredetect.evaluation.runs import RunError, build_datamodule, load_module, predict_split, resolve_run, split_windows
from flaredetect.train import CONFIG_DIR, train

TINY = ["data.sources.synthetic.n_stars=12", "model.d_model=16", "model.num_heads=2", "model.d_ff=32",
        "model.head_hidden=[32]", "data.batch_size=32", "debug=limit", "trainer.max_epochs=1",
        "trainer.limit_val_batches=1.0", "trainer.limit_test_batches=1.0", "callbacks.attention_maps=null"]
SIGMA = 1e-3


# --- metrics on hand-computed cases -------------------------------------------------------

def test_metrics_hand_computed():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1])
    m = thresholded_metrics(y, p, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 1, 1)
    assert m["acc"] == m["precision"] == m["recall"] == m["f1"] == 0.5
    assert auroc(y, p) == 0.75                         # 3 of 4 (pos, neg) pairs ranked right
    assert np.isclose(average_precision(y, p), 0.5 * 1 + 0.5 * 2 / 3)
    thr, f1 = best_f1_threshold(y, p)                 # at 0.4: P 2/3, R 1
    assert thr == 0.4 and np.isclose(f1, 0.8)
    assert thresholded_metrics([0, 0], [0.1, 0.2])["precision"] == 0.0
    assert np.isnan(auroc([1, 1], [0.2, 0.3]))


def test_recall_by_bins_and_mean_std():
    y = np.array([1, 1, 1, 1, 0])
    p = np.array([0.9, 0.2, 0.8, 0.7, 0.9])
    energy = np.array([5e31, 5e31, 2e33, np.nan, 1e35])
    rows = recall_by_bins(y, p, energy, [0, 1e32, 1e33, np.inf], unit="erg")
    assert [r["n"] for r in rows] == [2, 0, 1] and rows[0]["recall"] == 0.5 and rows[2]["recall"] == 1.0
    assert rows[0]["bin"] == "< 1e+32 erg"
    stats = mean_std([{"f1": 0.6}, {"f1": 0.8}], ["f1"])
    assert np.isclose(stats["f1"][0], 0.7) and np.isclose(stats["f1"][1], np.std([0.6, 0.8], ddof=1))


# --- false-positive rules on constructed windows ------------------------------------------

def _noise(seed=0, n=100):
    return np.random.default_rng(seed).normal(0, SIGMA, n)


TIME = 1500 + np.arange(100) * 2 / 1440


def test_fp_rule_cosmic_ray():
    f = _noise()
    f[50] += 10 * SIGMA
    assert categorise_false_positive(f, np.zeros(100), TIME, SIGMA) == "cosmic_ray"
    f[51] += 6 * SIGMA  # decays over the next cadence: flare-like, not a spike
    assert categorise_false_positive(f, np.zeros(100), TIME, SIGMA) != "cosmic_ray"


def test_fp_rule_instrumental_flag_and_gap():
    f = _noise(1)
    f[50] += 10 * SIGMA
    q = np.zeros(100)
    q[52] = 1  # momentum dump two cadences away
    assert categorise_false_positive(f, q, TIME, SIGMA) == "instrumental"
    t = TIME.copy()
    t[48:] += 5 * 2 / 1440  # gap just before the candidate
    assert categorise_false_positive(f, np.zeros(100), t, SIGMA) == "instrumental"
    q_far = np.zeros(100)
    q_far[10] = 1  # a flag far from the candidate does not count
    assert categorise_false_positive(f, q_far, TIME, SIGMA) == "cosmic_ray"


def test_fp_rule_step_and_ramp():
    f = _noise(2)
    f[60:] += 8 * SIGMA
    assert categorise_false_positive(f, np.zeros(100), TIME, SIGMA) == "step_ramp"
    ramp = _noise(3) + np.linspace(0, 15 * SIGMA, 100)
    assert categorise_false_positive(ramp, np.zeros(100), TIME, SIGMA) == "step_ramp"


def test_fp_rule_other():
    f = _noise(4)
    f += 4 * SIGMA * np.exp(-0.5 * ((np.arange(100) - 50) / 3.0) ** 2)  # a small smooth bump
    assert categorise_false_positive(f, np.zeros(100), TIME, SIGMA) == "other"
    table = category_table(["cosmic_ray", "other", "other", "instrumental"])
    assert [r["count"] for r in table] == [1, 1, 0, 2] and np.isclose(sum(r["share"] for r in table), 1)


def test_flare_duration():
    fm = np.zeros((2, 20), int)
    pm = np.zeros((2, 20), int)
    fm[0, 5:12] = 1
    pm[0, 7] = 1
    d = flare_duration_minutes(fm, pm)
    assert d[0] == 14.0 and np.isnan(d[1])


# --- a tiny trained run ----------------------------------------------------------------------

def _train_cfg(tmp: Path, run_dir: Path, extra=()):
    base = [o for o in TINY if not o.startswith("model.")] if "model=cnn" in extra else TINY
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name="train", return_hydra_config=True,
                      overrides=[f"paths.data_dir={tmp / 'data'}", *base, *extra])
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
            del cfg.hydra
    GlobalHydra.instance().clear()
    return cfg


def _eval_cfg(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name="eval", overrides=["interpret.ig_steps=4", "interpret.max_phase_windows=16",
                                                     "interpret.n_windows=1",
                                                     *overrides])
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("evalrun")
    run_dir = tmp / "run"
    train(_train_cfg(tmp, run_dir))
    return run_dir


def test_reloaded_model_reproduces_checkpoint_validation(tiny_run):
    run = resolve_run(tiny_run)
    assert run.ckpt.name.startswith("best-")
    state = torch.load(run.ckpt, map_location="cpu", weights_only=False)
    saved = [v["best_model_score"] for k, v in state["callbacks"].items()
             if "ModelCheckpoint" in k and "val/f1" in k][0]
    module = load_module(run)
    dm = build_datamodule(run.cfg.data, 256)
    prob = predict_split(module, dm, "val")
    from torchmetrics.classification import BinaryF1Score

    y = torch.as_tensor(split_windows(dm, "val")["label"]).long()
    f1 = BinaryF1Score()(torch.as_tensor(prob), y)
    assert float(f1) == pytest.approx(float(saved), abs=1e-6)
    np.testing.assert_array_equal(prob, predict_split(load_module(resolve_run(ckpt=run.ckpt)), dm, "val"))


def test_bad_run_dir_is_named(tmp_path):
    with pytest.raises(RunError, match="has no config.yaml"):
        resolve_run(tmp_path)
    with pytest.raises(RunError, match="does not exist"):
        resolve_run(ckpt=tmp_path / "nope.ckpt")


@pytest.mark.slow
def test_console_script_writes_json_report_and_pngs(tiny_run, tmp_path):
    script = Path(sys.executable).with_name("flaredetect-eval")
    assert script.is_file(), "console script not installed (pip install -e .)"
    out = tmp_path / "eval"
    cmd = [str(script), f"run_dir={tiny_run}", f"out_dir={out}", "interpret.ig_steps=4",
           "interpret.max_phase_windows=16", "interpret.n_windows=1",
           "error_analysis.gallery_size=3", "hydra.run.dir=" + str(tmp_path / "hydra")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ, FLAREDETECT_ROOT=str(tmp_path)),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    names = [r["name"] for r in metrics["comparison"]]
    assert names[0] == "transformer" and names[-1].startswith("threshold")
    m = metrics["metrics"][metrics["primary"]]
    assert 0 <= m["at_default"]["f1"] <= 1 and 0 < m["tuned_threshold"] <= 1 and "auroc" in m
    assert sum(r["count"] for r in metrics["error_analysis"]["false_positive_categories"]) == \
        metrics["error_analysis"]["n_false_positives"]
    report = (out / "report.md").read_text()
    assert "## Comparison" in report and "| transformer |" in report
    for png in ("roc_pr.png", "confusion_matrix.png", "recall_by_amplitude.png", "fp_categories.png",
                "attention_by_phase.png"):
        assert (out / png).stat().st_size > 1000, png
    assert list((out / "interpret").glob("*_overlay.png")) and list((out / "interpret").glob("*_heads.png"))
    assert set(metrics["interpretability"]["phase_mass"]) == {"attention rollout", "IG magnitude"}


@pytest.mark.slow
def test_ensemble_of_identical_runs_equals_either(tiny_run, tmp_path):
    from flaredetect.evaluate import evaluate

    twin = tmp_path / "twin"
    shutil.copytree(tiny_run, twin, ignore=shutil.ignore_patterns("eval"))
    result = evaluate(_eval_cfg([f"run_dir={tiny_run}", f"runs=[{twin}]", f"out_dir={tmp_path / 'out'}",
                                 "baselines.threshold.enabled=false", "error_analysis.gallery_size=2"]))
    rows = {r["kind"]: r for r in result["comparison"]}
    assert set(rows) == {"transformer", "transformer-mean", "transformer-ensemble"}
    single = [r for r in result["comparison"] if r["kind"] == "transformer"][0]
    for key in ("acc", "precision", "recall", "f1", "f1_tuned", "auroc", "ap"):
        assert rows["transformer-ensemble"][key] == pytest.approx(single[key], abs=1e-12)
        assert rows["transformer-mean"][key] == pytest.approx(single[key], abs=1e-12)
        assert rows["transformer-mean"]["std"][key] == pytest.approx(0.0, abs=1e-12)
    assert (tmp_path / "out" / "comparison.md").read_text().count("\n") >= 5


@pytest.mark.slow
def test_cnn_trains_through_the_same_module(tmp_path):
    run_dir = tmp_path / "cnn"
    metrics = train(_train_cfg(tmp_path, run_dir, ["model=cnn"]))
    assert "test/f1" in metrics
    run = resolve_run(run_dir)
    assert run.model_kind == "cnn"
    module = load_module(run)
    dm = build_datamodule(run.cfg.data, 256)
    assert predict_split(module, dm, "test").shape == (len(dm.datasets["test"]),)


def test_swapped_data_config_takes_the_runs_feature_count(tmp_path):
    """A data group swapped in on the eval command line refers to ${model.input_dim},
    which only the training config has; the run's own value must fill it."""
    from omegaconf import OmegaConf

    from flaredetect.evaluation.runs import build_datamodule

    data_cfg = OmegaConf.create({
        "_target_": "flaredetect.data.datamodule.FlareDataModule", "n_features": "${model.input_dim}",
        "sources": {"synthetic": {"_target_": "flaredetect.data.synthetic_windows.SyntheticWindows",
                                  "n_stars": 6, "cache_dir": str(tmp_path)}}})
    dm = build_datamodule(data_cfg, batch_size=8, n_features=4)
    batch = dm.transform(next(iter(dm.val_dataloader())), training=False)
    assert dm.n_features == 4 and batch["x"].shape[-1] == 4


def test_rotation_period_finds_a_fast_rotator_and_its_amplitude_not_the_noise():
    from flaredetect.data.lightcurve import LightCurve
    from flaredetect.evaluation.rotation import rotation_period

    rng = np.random.default_rng(4)
    t = 1354.1 + np.arange(18_000) * 2 / 1440
    t = t[(t < 1363.0) | (t > 1364.2)]  # the orbit gap
    for period, amp in ((0.37, 0.02), (3.1, 0.004)):
        flux = 0.5 * amp * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.003, len(t))
        lc = LightCurve(time_btjd=t, flux_rel=flux, flux_err=np.full(len(t), 0.003), quality=np.zeros(len(t), int),
                        tic=1, sector=1)
        found, ptp = rotation_period(lc)
        assert abs(found - period) / period < 0.03
        assert abs(ptp - amp) / amp < 0.15  # the sinusoid's peak to peak, not the 0.3 % noise's
