"""End-to-end training through Hydra's compose API and the console script."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from flaredetect.config_checks import ConfigError
from flaredetect.train import train

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TINY = ["data.sources.synthetic.n_stars=12", "model.d_model=16", "model.num_heads=2", "model.d_ff=32",
        "model.head_hidden=[32]", "data.batch_size=32"]


def compose_cfg(tmp_path: Path, overrides: list[str], run_dir: Path | None = None):
    GlobalHydra.instance().clear()
    run_dir = run_dir or tmp_path / "run"
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose(config_name="train", return_hydra_config=True,
                      overrides=[f"paths.data_dir={tmp_path / 'data'}", *TINY, *overrides])
        HydraConfig.instance().set_config(cfg)  # resolves ${hydra:runtime.output_dir}
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
            del cfg.hydra
    return cfg


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


def test_divisibility_error_names_keys(tmp_path):
    cfg = compose_cfg(tmp_path, ["model.d_model=250", "model.num_heads=8"])
    with pytest.raises(ConfigError, match=r"model.d_model=250 is not divisible by model.num_heads=8"):
        train(cfg)
    assert not (tmp_path / "data").exists()  # failed before generating anything


def test_cadence_s_is_checked_before_any_data_is_made(tmp_path):
    cfg = compose_cfg(tmp_path, ["cadence_s=-20"])
    with pytest.raises(ConfigError, match=r"cadence_s=-20 must be a positive number of seconds"):
        train(cfg)
    cfg = compose_cfg(tmp_path, ["data=synthetic_tess", "cadence_s=1800"])
    with pytest.raises(ConfigError, match=r"cadence_s=1800 but data.sources.tess holds prepared 2-minute windows"):
        train(cfg)
    assert not (tmp_path / "data").exists()
    cfg = compose_cfg(tmp_path, ["cadence_s=600"])
    assert cfg.data.sources.synthetic.cadence_s == 600  # the synthetic source follows the run's cadence


def test_large_batch_scales_the_learning_rate_with_warm_up(tmp_path):
    from flaredetect.sweeps import scaled_lr

    assert scaled_lr(3e-4, 64, 1024, "linear") == pytest.approx(4.8e-3)
    assert scaled_lr(3e-4, 64, 1024, "sqrt") == pytest.approx(1.2e-3)
    with pytest.raises(ValueError, match="rule='cubic' must be 'linear' or 'sqrt'"):
        scaled_lr(3e-4, 64, 1024, "cubic")
    cfg = compose_cfg(tmp_path, ["experiment=large_batch", "data.batch_size=4096"])
    assert cfg.optimizer.lr == pytest.approx(3e-4 * 64) and cfg.scheduler._target_.endswith("OneCycleLR")
    assert cfg.scheduler.max_lr == cfg.optimizer.lr and cfg.scheduler.total_steps == cfg.trainer.max_epochs


def test_every_experiment_composes(tmp_path):
    for exp in sorted(p.stem for p in (Path(CONF) / "experiment").glob("*.yaml")):
        cfg = compose_cfg(tmp_path, [f"experiment={exp}"])
        assert cfg.model._target_.endswith("FlareTransformer")
    thesis = compose_cfg(tmp_path, ["experiment=thesis"])
    assert (thesis.model.d_model, thesis.model.num_heads, thesis.data.batch_size) == (16, 2, 32)  # TINY wins
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        plain = compose(config_name="train", overrides=["experiment=thesis"])
    assert (plain.model.d_model, plain.model.num_heads, plain.model.d_ff) == (256, 8, 512)
    assert plain.trainer.max_epochs == 100 and plain.callbacks.early_stopping.patience == 10


def _read_tensorboard(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((run_dir / "tensorboard").rglob("events.out.tfevents*"))
    assert files, "no TensorBoard event file"
    acc = EventAccumulator(str(files[0].parent), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc.Tags()


@pytest.mark.slow
def test_train_writes_run_dir_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["trainer.limit_train_batches=5", "trainer.limit_val_batches=3", "trainer.limit_test_batches=3",
                 "trainer.max_epochs=2", "callbacks.attention_maps.every_n_epochs=1",
                 "callbacks.periodic_checkpoint.every_n_epochs=1"]
    metrics = train(compose_cfg(tmp_path, overrides, run_dir))
    assert 0.0 <= metrics["val/f1_best"] <= 1.0 and "test/f1" in metrics and "test/auroc" in metrics
    ckpts = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "last.ckpt" in ckpts and any(n.startswith("best-") for n in ckpts) and "epoch001.ckpt" in ckpts
    assert (run_dir / "plots" / "training_history.png").stat().st_size > 1000
    assert list((run_dir / "attention_maps").rglob("*_heads.png"))
    assert list((run_dir / "attention_maps").rglob("*_lightcurve.png"))
    assert (run_dir / "config.yaml").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dataset_sizes"]["train"] > 0 and summary["best_epoch"] in (0, 1)
    assert summary["versions"]["torch"] == torch.__version__.split("+")[0] or summary["versions"]["torch"]
    tags = _read_tensorboard(run_dir)
    assert {"val/f1", "val/auroc", "train/loss", "val/f1_best"} <= set(tags["scalars"])
    assert any(t.startswith("attention/") for t in tags["images"])

    # Same command, same run dir, more epochs: resumes from last.ckpt at epoch 2.
    first_epoch = (run_dir / "checkpoints" / "epoch000.ckpt").stat().st_mtime_ns
    steps_two_epochs = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")["global_step"]
    more = [o for o in overrides if not o.startswith("trainer.max_epochs")] + ["trainer.max_epochs=3"]
    train(compose_cfg(tmp_path, more, run_dir))
    assert (run_dir / "checkpoints" / "epoch002.ckpt").is_file()
    assert (run_dir / "checkpoints" / "epoch000.ckpt").stat().st_mtime_ns == first_epoch  # not retrained
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == steps_two_epochs // 2 * 3
    history = json.loads((run_dir / "metrics_history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path):
    over = ["debug=limit", "trainer.max_epochs=1", "callbacks.attention_maps=null", "trainer.detect_anomaly=false"]
    a = train(compose_cfg(tmp_path, over, tmp_path / "a"))
    b = train(compose_cfg(tmp_path, over, tmp_path / "b"))
    assert a["val/loss"] == b["val/loss"] and a["test/auroc"] == b["test/auroc"]


@pytest.mark.slow
def test_console_script_subprocess(tmp_path):
    env = dict(os.environ, FLAREDETECT_ROOT=str(tmp_path))
    script = Path(sys.executable).with_name("flaredetect-train")
    assert script.is_file(), "console script not installed (pip install -e .)"
    cmd = [str(script), "model.num_heads=4", "trainer.max_epochs=1",
           "debug=limit", *[o for o in TINY if not o.startswith("model.num_heads")]]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best checkpoint:" in proc.stdout and "tensorboard --logdir" in proc.stdout
    for noise in ("was configured so 100%", "litlogger", "LeafSpec"):  # self-inflicted noise
        assert noise not in proc.stdout + proc.stderr, noise
    assert re.search(r"Total FLOPs: [1-9]", proc.stdout + proc.stderr)  # counted, not a column of zeros
    runs = [p for p in (tmp_path / "outputs" / "debug").iterdir() if p.name != "latest"]
    assert len(runs) == 1 and (runs[0] / "summary.json").is_file()
    assert (runs[0] / ".hydra" / "config.yaml").is_file()
    latest = tmp_path / "outputs" / "debug" / "latest"  # points at the newest run
    assert latest.is_symlink() and latest.resolve() == runs[0].resolve()
    log = (runs[0] / "debug.log").read_text()  # a job without a terminal still shows its progress
    assert "epoch 0/0: train/loss" in log and "val/f1" in log and "best checkpoint:" in log
