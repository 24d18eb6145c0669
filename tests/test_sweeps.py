"""Sweeps: a grid multirun and an Optuna study, run as the console script, then tabulated."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flaredetect.sweeps import aggregate, final_hparam_metrics, format_table, job_rows, main, tabulate

TINY = ["data.sources.synthetic.n_stars=12", "model.d_ff=32", "model.head_hidden=[32]", "data.batch_size=32",
        "trainer.accelerator=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false", "callbacks.attention_maps=null"]


def _train(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, FLAREDETECT_ROOT=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "flaredetect.train", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _fake_job(sweep: Path, name: str, overrides: list[str], metrics: dict | None) -> None:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job / "summary.json").write_text(json.dumps({"metrics": metrics}))


def test_tabulate_mean_std_over_seeds(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for i, (heads, seed, f1) in enumerate([(4, 1, 0.5), (4, 2, 0.7), (8, 1, 0.9), (8, 2, None)]):
        _fake_job(sweep, str(i), ["debug=limit", f"model.num_heads={heads}", f"seed={seed}"],
                  None if f1 is None else {"val/f1_best": f1, "test/f1": f1 - 0.1})
    rows = job_rows(sweep)
    assert [r["status"] for r in rows] == ["done", "done", "done", "incomplete"]
    groups = {g["config"]["model.num_heads"]: g for g in aggregate(rows, ["val/f1_best"])}
    assert groups["4"]["n"] == 2 and groups["4"]["mean"]["val/f1_best"] == pytest.approx(0.6)
    assert groups["4"]["std"]["val/f1_best"] == pytest.approx(0.1414, abs=1e-4)
    assert groups["8"]["n"] == 1 and groups["8"]["std"]["val/f1_best"] == 0.0
    text = tabulate(sweep, ["val/f1_best", "test/f1"], write_csv=True)
    assert "0.6000 ± 0.1414" in text and "debug" not in text  # constant overrides are not columns
    assert (sweep / "sweep_configs.csv").read_text().startswith("model.num_heads,n,val/f1_best mean")
    assert main([str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_hparam_metrics_and_table():
    hp = final_hparam_metrics({"val/f1_best": 0.8})
    assert hp["hp/val_f1_best"] == 0.8 and hp["hp/test_f1"] != hp["hp/test_f1"]  # NaN when absent
    assert format_table(["a", "b"], [[1, 0.5]]).splitlines()[2] == "| 1 | 0.5000 |"


@pytest.mark.slow
def test_grid_multirun_numbered_dirs_tensorboard_hparams(tmp_path):
    sweep = tmp_path / "grid"
    _train(tmp_path, ["-m", "model.d_model=16", "model.num_heads=2,4", "seed=3", "logger=tensorboard",
                      f"hydra.sweep.dir={sweep}", *TINY])
    rows = job_rows(sweep)
    assert [r["job"] for r in rows] == ["0", "1"] and all(r["status"] == "done" for r in rows)
    assert [r["overrides"]["model.num_heads"] for r in rows] == ["2", "4"]
    assert all("val/f1_best" in r["metrics"] for r in rows)
    for job in ("0", "1"):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(sweep / "1" / "tensorboard"))
    acc.Reload()
    assert {"hp/val_f1_best", "hp/test_f1", "val/f1"} <= set(acc.Tags()["scalars"])
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams
    start = hparams["_hparams_/session_start_info"].decode("latin-1")
    assert "model/num_heads" in start and "optimizer/lr" in start and "data/batch_size" in start
    text = tabulate(sweep)
    assert "| model.num_heads |" in text and "mean ± std" in text


@pytest.mark.slow
def test_optuna_sweep_writes_study_skips_invalid_and_resumes(tmp_path):
    import optuna

    args = ["-m", "hparams_search=thesis_optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.seed=0",
            "model.num_layers=1", "model.num_heads=4", "model.d_model=choice(16,18)", "model.dropout=0.1",
            "optimizer.lr=1e-3", "hydra.sweeper.study_name=tiny", "logger=csv", *TINY]
    proc = _train(tmp_path, args)
    study_dir = tmp_path / "outputs" / "train" / "optuna_tiny"
    db = study_dir / "optuna.db"
    assert db.is_file(), proc.stderr[-3000:]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)
    values = {t.params["model.d_model"]: t.value for t in study.trials}
    # Sampler seed 0 draws 18 then 16. d_model 18 is not divisible by 4 heads: the trial is recorded
    # with the penalty (below any F1) and the sweep goes on to train d_model 16.
    assert set(values) == {16, 18} and values[18] == -1.0 and 0.0 <= values[16] <= 1.0
    assert study.best_params == {"model.d_model": 16}
    rows = job_rows(study_dir)
    assert len(rows) == 2
    assert {r["status"] for r in rows} <= {"done", "invalid"}
    for r in rows:
        assert (r["status"] == "invalid") == (r["overrides"]["model.d_model"] == "18")
    session = next(p for p in study_dir.iterdir() if p.is_dir())
    assert (session / "optimization_results.yaml").is_file()

    # The same command again resumes the study: 2 more trials, in a new session folder.
    _train(tmp_path, args)
    assert len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials) == 4
    assert len([p for p in study_dir.iterdir() if p.is_dir()]) == 2
    assert "optuna study 'tiny': trials {'COMPLETE': 4}" in tabulate(study_dir)


def test_slurm_launcher_and_ddp_trainer_compose(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from flaredetect.train import CONFIG_DIR

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
            cfg = compose(config_name="train", return_hydra_config=True,
                          overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                                     "hydra.launcher.partition=gpu", "hydra.sweep.dir=/tmp/sweep"])
            optuna_cfg = compose(config_name="train", return_hydra_config=True,
                                 overrides=["hparams_search=thesis_optuna", f"paths.log_dir={tmp_path}"])
    finally:
        GlobalHydra.instance().clear()
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["partition"] == "gpu"
    assert (launcher["gpus_per_node"], launcher["tasks_per_node"], launcher["nodes"]) == (4, 4, 2)
    assert launcher["max_num_timeout"] > 0 and launcher["submitit_folder"] == "/tmp/sweep/.submitit/%j"
    assert cfg.trainer.strategy._target_ == "flaredetect.distributed.HydraDDPStrategy"
    assert cfg.trainer.precision == "bf16-mixed"
    sweeper = optuna_cfg.hydra.sweeper
    assert sweeper.direction == "maximize" and optuna_cfg.optimized_metric == "val/f1_best"
    assert dict(sweeper.params) == {"model.num_layers": "choice(1, 2, 4)", "model.num_heads": "choice(4, 8, 16)",
                                    "model.d_model": "choice(128, 256, 512)", "model.dropout": "choice(0.1, 0.2, 0.3)",
                                    "optimizer.lr": "choice(1e-4, 3e-4, 1e-3)", "data.batch_size": "choice(32, 64, 128)"}
    assert str(sweeper.storage) == f"sqlite:///{tmp_path}/train/optuna_thesis/optuna.db"
    assert (tmp_path / "train" / "optuna_thesis").is_dir()  # made for SQLite before any job runs
