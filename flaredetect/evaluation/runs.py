"""Reload a training run exactly as it was trained: its own resolved ``config.yaml``,
its checkpoint, and the data (or a swapped data set) with the same window geometry.

Rebuilding from the run's saved config, instead of the current defaults, is what keeps
model, data and splits consistent with the checkpoint (the Lightning+Hydra template's
recurring complaint).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from flaredetect.checkpoints import CheckpointError, load_checkpoint
from flaredetect.lit_module import FlareDetector

log = logging.getLogger(__name__)
CROP_FIELDS = ("flux_rel", "quality", "time_btjd", "flare_mask", "peak_mask")
META_FIELDS = ("label", "tic", "sector", "kind", "peak_amp", "energy_erg", "noise_sigma", "n_flares")


class RunError(ValueError):
    """A run directory or checkpoint that cannot be evaluated."""


@dataclass
class Run:
    """One trained run: where it lives, its checkpoint, its config and a short label."""

    run_dir: Path
    ckpt: Path
    cfg: DictConfig

    @property
    def model_kind(self) -> str:
        target = str(self.cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
        return {"FlareTransformer": "transformer", "FlareCNN": "cnn"}.get(target, target)

    @property
    def name(self) -> str:
        return self.run_dir.name


def _pick_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (from ``summary.json``, else the best-* file with the
    highest score in its name), else ``last.ckpt``."""
    summary = run_dir / "summary.json"
    if summary.is_file():
        best = json.loads(summary.read_text()).get("best_checkpoint")
        # The run dir's own file first: a copied or moved run dir must not load the original's.
        own = run_dir / "checkpoints" / Path(best).name if best else None
        if own is not None and own.is_file():
            return own
        if best and (run_dir / best).is_file():
            return run_dir / best
    ckpts = run_dir / "checkpoints"
    best = sorted(ckpts.glob("best-*.ckpt"), key=lambda p: (p.stem.rsplit("f1", 1)[-1], p.stat().st_mtime))
    if best:
        return best[-1]
    if (ckpts / "last.ckpt").is_file():
        return ckpts / "last.ckpt"
    raise RunError(f"run dir {run_dir} has no checkpoints/best-*.ckpt or checkpoints/last.ckpt")


def resolve_run(run_dir: str | Path | None = None, ckpt: str | Path | None = None) -> Run:
    """Find a run from its directory or one of its checkpoints and load its config."""
    if run_dir is None and ckpt is None:
        raise RunError("give run_dir=<training run dir> or ckpt=<checkpoint file>")
    if ckpt is not None:
        ckpt = Path(ckpt)
        if not ckpt.is_file():
            raise RunError(f"checkpoint {ckpt} does not exist")
        if run_dir is None:
            run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run dir {run_dir} does not exist")
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise RunError(f"run dir {run_dir} has no config.yaml (was it made by flaredetect-train?)")
    cfg = OmegaConf.load(config)
    for key in ("model", "data", "optimizer", "loss"):
        if key not in cfg:
            raise RunError(f"{config} lacks the '{key}' section")
    return Run(run_dir=run_dir, ckpt=Path(ckpt) if ckpt is not None else _pick_checkpoint(run_dir), cfg=cfg)


def load_module(run: Run, device: str | torch.device = "cpu") -> FlareDetector:
    """Build the run's network and LightningModule from its config and load the weights."""
    from flaredetect.train import build_module

    module = build_module(run.cfg)
    try:
        state = load_checkpoint(run.ckpt)["state_dict"]
    except CheckpointError as err:
        raise RunError(str(err)) from err
    # Checkpoints written before the best-F1 metric was checkpointed lack its state.
    state = {**{k: v for k, v in module.state_dict().items() if k.startswith("val_f1_best.")}, **state}
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise RunError(f"checkpoint {run.ckpt} does not match the model in {run.run_dir / 'config.yaml'}: "
                       f"{str(err).splitlines()[0]}") from err
    return module.to(device).eval()


def build_datamodule(data_cfg: DictConfig, batch_size: int | None = None, n_features: int | None = None):
    """Instantiate, prepare and set up a DataModule from a data config (no augmentation needed).

    ``n_features`` sets the feature set of the run being evaluated; a data config swapped in
    on the command line refers to ``${model.input_dim}``, which the eval config lacks."""
    data_cfg = data_cfg.copy()
    if n_features is not None:
        with open_dict(data_cfg):
            data_cfg.n_features = int(n_features)
    if batch_size:
        with open_dict(data_cfg):
            data_cfg.eval_batch_size = int(batch_size)
            data_cfg.num_workers = 0
            data_cfg.persistent_workers = False
    dm = instantiate(data_cfg)
    dm.prepare_data()
    dm.setup("test")
    return dm


def split_windows(dm, split: str) -> dict[str, np.ndarray]:
    """Centre crops (what the model sees) and metadata of a split, in dataloader order."""
    if split not in dm.index or not dm.index[split]:
        raise RunError(f"the data has no windows in the '{split}' split")
    parts: list[dict[str, np.ndarray]] = []
    crop = slice(dm.context, dm.context + dm.length)
    for _, path, rows in dm.index[split]:
        with h5py.File(path, "r") as f:
            part = {k: f[k][...][rows][:, crop] for k in CROP_FIELDS}
            part.update({k: f[k][...][rows] for k in META_FIELDS})
        parts.append(part)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@torch.no_grad()
def predict_split(module: FlareDetector, dm, split: str, device: str | torch.device = "cpu") -> np.ndarray:
    """Window probabilities of a split, through the same loader and transform as training
    validation (centre crop, features), in dataloader order."""
    module.eval()
    loader = {"train": dm.train_dataloader, "val": dm.val_dataloader, "test": dm.test_dataloader}[split]
    if split == "train":  # unshuffled, for completeness
        loader = lambda: dm._loader("train", shuffle=False)  # noqa: E731
    probs = []
    for batch in loader():
        batch = {k: v.to(device) for k, v in batch.items()}
        batch = dm.transform(batch, training=False)
        probs.append(torch.sigmoid(module.net(batch["x"])["logit"].float()).cpu().numpy())
    return np.concatenate(probs) if probs else np.zeros(0)


def features(windows: dict[str, np.ndarray], index, device="cpu", n_features: int = 3) -> torch.Tensor:
    """Model inputs (B, L, 3) of selected centre-cropped windows."""
    from flaredetect.data.features import window_features

    idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
    return window_features(torch.as_tensor(windows["flux_rel"][idx]).to(device),
                           torch.as_tensor(windows["quality"][idx]).to(device), n_features)
