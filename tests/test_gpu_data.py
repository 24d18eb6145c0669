"""The device-resident loader of the GPU fast path (runs on CPU here)."""
from __future__ import annotations

import pytest
import torch

from flaredetect.gpu_data import DeviceWindowLoader, stack_dataset


def _tensors(n=10):
    return {"flux_rel": torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 4), "label": torch.arange(n)}


def test_epoch_covers_every_window_once_and_reshuffles():
    loader = DeviceWindowLoader(_tensors(), batch_size=4, device="cpu", seed=3)
    assert len(loader) == 3
    first = torch.cat([b["label"] for b in loader])
    second = torch.cat([b["label"] for b in loader])
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())
    assert first.tolist() != second.tolist()
    again = torch.cat([b["label"] for b in DeviceWindowLoader(_tensors(), 4, "cpu", seed=3)])
    assert again.tolist() == first.tolist()  # deterministic given the seed
    assert len(DeviceWindowLoader(_tensors(), 4, "cpu", drop_last=True)) == 2


def test_ranks_get_disjoint_equal_shards():
    shards = [torch.cat([b["label"] for b in DeviceWindowLoader(_tensors(), 2, "cpu", seed=1, rank=r, world_size=3)])
              for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # padded by wrap-around, as DistributedSampler
    assert set(torch.cat(shards).tolist()) == set(range(10))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="different numbers of windows"):
        DeviceWindowLoader({"a": torch.zeros(3), "b": torch.zeros(4)}, 2, "cpu")
    with pytest.raises(ValueError, match="batch_size=0"):
        DeviceWindowLoader(_tensors(), 0, "cpu")


def test_stack_dataset_of_rows():
    rows = [{"x": torch.tensor([i, i]), "y": torch.tensor(i)} for i in range(3)]
    out = stack_dataset(rows)
    assert out["x"].shape == (3, 2) and out["y"].tolist() == [0, 1, 2]


@pytest.mark.slow
def test_training_with_device_resident_data(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from flaredetect.train import CONFIG_DIR, train

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name="train", overrides=[
            f"paths.data_dir={tmp_path / 'data'}", "debug=limit", "trainer.max_epochs=1", "trainer.detect_anomaly=false",
            "callbacks.attention_maps=null", "data.sources.synthetic.n_stars=12", "model.d_model=16",
            "model.num_heads=2", "model.d_ff=32", "model.head_hidden=[32]", "data.batch_size=8",
            "data.device_resident=true"])
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    metrics = train(cfg)
    assert "val/f1_best" in metrics and "test/auroc" in metrics
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 5  # debug=limit: 5 batches drawn from the device-resident loader
