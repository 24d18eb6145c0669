"""Training runs that must never lie or lose anything: unsafe and mismatched checkpoints,
non-finite losses, untrained "results", finished runs, changed overrides, corrupt
checkpoints, per-epoch history and logs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from flaredetect.checkpoints import CheckpointError, load_checkpoint, load_net_weights
from flaredetect.config_checks import ConfigError
from flaredetect.lit_module import NonFiniteLossError
from flaredetect.models.transformer import FlareTransformer
from flaredetect.train import train
from test_train_integration import compose_cfg

QUICK = ["debug=limit", "trainer.max_epochs=2", "callbacks.attention_maps=null", "trainer.detect_anomaly=false",
         "test=false"]


class _Payload:
    """Unpickling this runs a shell command: what a crafted checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_init_ckpt_with_a_pickled_payload_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "payload_ran"
    ckpt = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {"net.x": torch.zeros(1)}, "extra": _Payload(marker)}, ckpt)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="refused"):
        train(compose_cfg(tmp_path, [*QUICK, f"init_ckpt={ckpt}"]))
    assert not marker.exists()


def test_init_ckpt_of_another_architecture_lists_the_keys_that_did_not_match(tmp_path):
    small = FlareTransformer(seq_len=100, d_model=16, num_heads=2, num_layers=1, d_ff=32, head_hidden=[32])
    other = FlareTransformer(seq_len=100, d_model=32, num_heads=2, num_layers=2, d_ff=32, head_hidden=[32])
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in other.state_dict().items()}}, path)
    with pytest.raises(CheckpointError, match=r"does not match the model: .*not in the model \(\d+\): layers\.1\.") as info:
        load_net_weights(small, path)
    assert "of another shape" in str(info.value) and "\n" not in str(info.value)
    same = tmp_path / "same.ckpt"
    torch.save({"state_dict": {f"net.{k}": v + 1 for k, v in small.state_dict().items()}}, same)
    fresh = FlareTransformer(seq_len=100, d_model=16, num_heads=2, num_layers=1, d_ff=32, head_hidden=[32])
    assert load_net_weights(fresh, same) == len(small.state_dict())
    for key, value in small.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value + 1)


def test_nonfinite_loss_stops_training_naming_the_step(tmp_path):
    cfg = compose_cfg(tmp_path, [*QUICK, "optimizer.lr=1e6", "threads=1"])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(NonFiniteLossError, match=r"non-finite training loss at step \d+ \(epoch 0\)"):
            train(cfg)
        assert torch.get_num_threads() == 1  # threads= sets torch's CPU threads for training
    finally:
        torch.set_num_threads(threads)
    run_dir = tmp_path / "run"
    assert not (run_dir / "summary.json").exists()
    assert not list((run_dir / "checkpoints").glob("best-*.ckpt")) if (run_dir / "checkpoints").exists() else True


def test_max_epochs_zero_never_reports_an_untrained_network(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer.max_epochs=0 trains nothing"):
        train(compose_cfg(tmp_path, [*QUICK, "trainer.max_epochs=0", "test=true"]))


@pytest.mark.slow
def test_finished_run_is_left_alone_and_changed_overrides_are_refused(tmp_path):
    run_dir = tmp_path / "run"
    first = train(compose_cfg(tmp_path, QUICK, run_dir))
    watched = [run_dir / "summary.json", run_dir / "config.yaml", *sorted((run_dir / "checkpoints").iterdir())]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched}
    events = sorted((run_dir / "tensorboard").rglob("events.out.tfevents*"))

    again = train(compose_cfg(tmp_path, QUICK, run_dir))  # the same command
    assert again == pytest.approx(first)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched} == before
    assert sorted((run_dir / "tensorboard").rglob("events.out.tfevents*")) == events
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] and "val/f1" in summary["metrics"] and "train/loss" in summary["metrics"]

    with pytest.raises(ConfigError, match=r"model.d_model: 16 -> 32") as info:
        train(compose_cfg(tmp_path, [*QUICK, "model.d_model=32", "data.sources.synthetic.seed=7"], run_dir))
    assert "data.sources.synthetic.seed: 42 -> 7" in str(info.value)
    assert (run_dir / "config.yaml").stat().st_mtime_ns == before[run_dir / "config.yaml"][0]


@pytest.mark.slow
def test_corrupt_last_ckpt_falls_back_to_the_newest_readable_checkpoint(tmp_path, caplog):
    run_dir = tmp_path / "run"
    every_epoch = [*QUICK, "callbacks.periodic_checkpoint.every_n_epochs=1"]
    train(compose_cfg(tmp_path, every_epoch, run_dir))  # epochs 0, 1
    over = [*every_epoch, "trainer.max_epochs=3"]
    (run_dir / "summary.json").unlink()  # as if killed after epoch 1
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:5000])
    with caplog.at_level("WARNING"):
        train(compose_cfg(tmp_path, over, run_dir))
    assert "last.ckpt is not readable; resuming from epoch001.ckpt (epoch 1" in caplog.text
    assert load_checkpoint(last)["epoch"] == 2  # rewritten by the resumed epoch

    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):  # nothing readable left: one line, no traceback
        ckpt.write_bytes(b"damaged")
    (run_dir / "summary.json").unlink()
    with pytest.raises(CheckpointError, match=r"last\.ckpt is not readable .*no other checkpoint .* is readable") as info:
        train(compose_cfg(tmp_path, over, run_dir))
    assert "\n" not in str(info.value)


def _tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list] = {}
    for events in sorted((run_dir / "tensorboard").rglob("events.out.tfevents*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


@pytest.mark.slow
def test_history_holds_each_epochs_own_numbers_across_a_resume(tmp_path):
    """metrics_history.json against what TensorBoard received, epoch by epoch, for a run
    trained 2 epochs and then continued to 3."""
    run_dir = tmp_path / "run"
    logged = ["trainer.limit_train_batches=5", "trainer.limit_val_batches=3", "trainer.max_epochs=2",
              "callbacks.attention_maps=null", "test=false"]  # debug presets switch the logger off
    train(compose_cfg(tmp_path, logged, run_dir))
    train(compose_cfg(tmp_path, [*logged, "trainer.max_epochs=3"], run_dir))
    history = json.loads((run_dir / "metrics_history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1, 2]
    scalars = _tensorboard_scalars(run_dir)
    epoch_of_step = dict(scalars["epoch"])
    for key in ("train/loss", "val/loss", "val/f1", "val/f1_best", "train/acc"):
        logged = {int(epoch_of_step[step]): value for step, value in scalars[key]}
        assert sorted(logged) == [0, 1, 2], key
        for row in history:
            assert row[key] == pytest.approx(logged[row["epoch"]], rel=1e-6, abs=1e-7), (key, row["epoch"])
    assert (run_dir / "plots" / "training_history.png").stat().st_size > 1000
