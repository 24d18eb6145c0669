"""Requeue: a run killed mid-training and started again with the same run dir resumes from
its own last.ckpt (what a preempted SLURM job does) and finishes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch


@pytest.mark.slow
def test_killed_run_resumes_from_last_ckpt(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "flaredetect.train", f"hydra.run.dir={run_dir}", "debug=limit",
           "trainer.max_epochs=4", "trainer.detect_anomaly=false", "callbacks.attention_maps=null",
           "callbacks.periodic_checkpoint.every_n_epochs=1", "trainer.enable_progress_bar=false",
           "data.sources.synthetic.n_stars=12", "model.d_model=16", "model.num_heads=2", "model.d_ff=32",
           "model.head_hidden=[32]", "data.batch_size=16", "test=false"]
    env = dict(os.environ, FLAREDETECT_ROOT=str(tmp_path))
    last = run_dir / "checkpoints" / "last.ckpt"
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not last.is_file() and first.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert first.poll() is None, "the first run ended before it could be killed: " + first.stderr.read().decode()[-2000:]
    first.send_signal(signal.SIGKILL)  # preemption: no chance to clean up
    first.wait()
    first.stderr.close()
    killed = torch.load(last, map_location="cpu", weights_only=True)
    done_epochs = {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").glob("epoch*.ckpt")}
    assert killed["epoch"] < 4 and not (run_dir / "summary.json").exists()

    second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-4000:]
    assert f"resuming from {last}" in second.stdout + second.stderr
    assert "Restoring states from the checkpoint path" in second.stdout + second.stderr
    final = torch.load(last, map_location="cpu", weights_only=True)
    steps_per_epoch = killed["global_step"] // (killed["epoch"] + 1)  # last.ckpt is written at epoch ends
    assert 1 <= steps_per_epoch <= 5  # debug=limit: limit_train_batches=5
    assert 0 < killed["global_step"] < 4 * steps_per_epoch and killed["global_step"] % steps_per_epoch == 0
    assert final["global_step"] == 4 * steps_per_epoch and final["epoch"] == 3
    for name, mtime in done_epochs.items():  # finished epochs were not trained again
        assert (run_dir / "checkpoints" / name).stat().st_mtime_ns == mtime
    assert (run_dir / "checkpoints" / "epoch003.ckpt").is_file() and (run_dir / "summary.json").is_file()
