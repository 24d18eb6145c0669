"""DDP on CPU (2 processes, gloo) under Hydra: one run dir, rank-0-only outputs, sharded data."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from flaredetect.distributed import _config_flags


def test_config_flags_are_kept_for_children():
    argv = ["-m", "--config-name", "eval", "x=1", "-cd=/tmp/conf", "seed=1,2"]
    assert _config_flags(argv) == ["--config-name", "eval", "-cd=/tmp/conf"]


@pytest.mark.slow
def test_ddp_two_cpu_processes_in_a_sweep_share_one_run_dir(tmp_path):
    # Inside a -m sweep: Lightning's own launcher would re-run the whole sweep in the child.
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "flaredetect.train", "-m", "seed=7", f"hydra.sweep.dir={sweep}",
           "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
           "trainer.max_epochs=2", "trainer.limit_train_batches=5", "trainer.limit_val_batches=2",
           "trainer.limit_test_batches=2", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
           "data.sources.synthetic.n_stars=12", "model.d_model=16", "model.num_heads=2", "model.d_ff=32",
           "model.head_hidden=[32]", "data.batch_size=16", "logger=csv",
           "callbacks.attention_maps.every_n_epochs=1"]
    env = dict(os.environ, FLAREDETECT_ROOT=str(tmp_path))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stdout + proc.stderr
    # One sweep dir holding one job dir; nothing else written anywhere (no per-rank dirs).
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "multirun.yaml"]
    assert not (tmp_path / "outputs").exists()
    run = sweep / "0"
    summary = json.loads((run / "summary.json").read_text())
    n_train = summary["dataset_sizes"]["train"]
    assert summary["metrics"]["val/f1_best"] is not None and "test/f1" in summary["metrics"]
    # Each rank trains on its half of the windows: steps per epoch follow the shard, not the whole set.
    per_rank_batches = min(5, -(-(-(-n_train // 2)) // 16))
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 2 * per_rank_batches
    assert (run / "plots" / "training_history.png").is_file()
    assert [h["epoch"] for h in json.loads((run / "metrics_history.json").read_text())] == [0, 1]
    maps = {p.name.rsplit("_", 1)[-1] for p in (run / "attention_maps").glob("epoch_001/*.png")}
    assert maps == {"lightcurve.png", "heads.png"}  # the rollout matrix is no longer drawn
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "config.yaml").is_file()
