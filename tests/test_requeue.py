"""Requeue: a run killed mid-training and started again with the same run dir resumes from
its own last.ckpt (what a preempted SLURM job does) and finishes with exactly the weights
and metrics of a run that was never interrupted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch


@pytest.mark.slow
def test_killed_run_resumes_exactly_from_last_ckpt(tmp_path):
    def command(run_dir):
        return [sys.executable, "-m", "flaredetect.train", f"hydra.run.dir={run_dir}", "debug=limit",
                "trainer.max_epochs=4", "trainer.detect_anomaly=false", "callbacks.attention_maps=null",
                "callbacks.periodic_checkpoint.every_n_epochs=1", "trainer.enable_progress_bar=false",
                "data.sources.synthetic.n_stars=24", "model.d_model=16", "model.num_heads=2", "model.d_ff=32",
                "model.head_hidden=[32]", "data.batch_size=16", "test=false", "threads=1"]
    env = dict(os.environ, FLAREDETECT_ROOT=str(tmp_path))
    uninterrupted = tmp_path / "uninterrupted"
    done = subprocess.run(command(uninterrupted), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    run_dir = tmp_path / "run"
    cmd = command(run_dir)
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

    # Exact: the same weights (bit for bit on a CPU) and the same history as the run never killed.
    reference = torch.load(uninterrupted / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["state_dict"].keys() == reference["state_dict"].keys()
    for key, value in reference["state_dict"].items():
        assert torch.equal(final["state_dict"][key], value), key
    history = json.loads((run_dir / "metrics_history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1, 2, 3]
    assert history == json.loads((uninterrupted / "metrics_history.json").read_text())
    # wall_time_s adds the killed session's time (up to its last checkpoint) to the resumed one's
    killed_wall = killed["callbacks"]["ResumeState"]["wall_time_s"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 < killed_wall < summary["wall_time_s"]
