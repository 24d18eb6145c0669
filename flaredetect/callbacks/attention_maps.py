"""Attention maps of fixed validation windows, every few validation epochs.

For a fixed set of flare and non-flare validation windows: the light curve coloured by
attention rollout (with its TIC, time and quality flags) and the per-layer per-head heat maps,
written as PNGs under ``<run_dir>/attention_maps/epoch_XXX/`` and logged to TensorBoard as
images. (The query-by-key rollout matrix is not drawn: its rows are nearly identical after two
layers, so it showed one smeared column; the overlay shows what it holds.)
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from flaredetect import plotting
from flaredetect.models.transformer import attention_rollout


def _window_meta(dataset, i: int, context: int, length: int) -> dict:
    """TIC, sector and the centre crop's times of item ``i`` of a (concatenated) window
    dataset, read from its window file (empty when the dataset has no file)."""
    import bisect

    import h5py

    parts = getattr(dataset, "datasets", [dataset])
    k = bisect.bisect_right(getattr(dataset, "cumulative_sizes", [len(dataset)]), i)
    offset = dataset.cumulative_sizes[k - 1] if k else 0
    part = parts[k]
    if not hasattr(part, "path"):
        return {}
    j = int(part.indices[i - offset])
    with h5py.File(part.path, "r") as f:
        return {"tic": int(f["tic"][j]), "sector": int(f["sector"][j]),
                "time_btjd": np.asarray(f["time_btjd"][j][context:context + length], dtype=np.float64)}


class AttentionMaps(L.Callback):
    def __init__(self, run_dir: str, every_n_epochs: int = 5, n_flare: int = 2, n_non_flare: int = 2) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"callbacks.attention_maps.every_n_epochs={every_n_epochs} must be >= 1")
        self.run_dir = Path(run_dir)
        self.every_n_epochs = every_n_epochs
        self.n_flare = n_flare
        self.n_non_flare = n_non_flare
        self._batch: dict | None = None
        self._meta: list[dict] = []

    def _fixed_batch(self, trainer: L.Trainer) -> dict | None:
        """The first flare and non-flare windows of the validation split (same every time)."""
        if self._batch is None:
            dm = trainer.datamodule
            dataset = dm.datasets.get("val")
            if dataset is None:
                return None
            picked, meta, counts = [], [], {1: 0, 0: 0}
            wanted = {1: self.n_flare, 0: self.n_non_flare}
            for i in range(len(dataset)):
                item = dataset[i]
                label = int(item["peak_mask"][dm.context: dm.context + dm.length].any())
                if counts[label] < wanted[label]:
                    picked.append(item)
                    meta.append(_window_meta(dataset, i, dm.context, dm.length))
                    counts[label] += 1
                if counts == wanted:
                    break
            if not picked:
                return None
            batch = {k: torch.stack([p[k] for p in picked]) for k in picked[0]}
            self._batch = dm.transform(batch, training=False)
            self._meta = meta
        return self._batch

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        batch = self._fixed_batch(trainer)
        if batch is None:
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            out = pl_module(batch["x"].to(pl_module.device), return_attention=True)
        pl_module.train(was_training)
        attention = [a for a in out.get("attention", []) if a is not None]
        if not attention:  # networks without attention (e.g. the CNN baseline)
            return
        rollout = attention_rollout(attention).float().cpu().numpy()
        attention = [a.float().cpu().numpy() for a in attention]
        prob = torch.sigmoid(out["logit"].float()).cpu().numpy()
        out_dir = self.run_dir / "attention_maps" / f"epoch_{trainer.current_epoch:03d}"
        out_dir.mkdir(parents=True, exist_ok=True)
        tb = next((lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        for i in range(len(prob)):
            kind = "flare" if batch["y"][i] > 0.5 else "nonflare"
            name = f"sample_{i}_{kind}"
            meta = self._meta[i] if i < len(self._meta) else {}
            quality = batch.get("quality")
            figures = {
                "lightcurve": plotting.attention_overlay(
                    batch["flux_rel"][i].cpu().numpy(), rollout[i].mean(axis=0), batch["cadence_y"][i].cpu().numpy(),
                    title=name, prob=float(prob[i]), time_btjd=meta.get("time_btjd"),
                    quality=None if quality is None else quality[i].cpu().numpy(), tic=meta.get("tic"),
                    sector=meta.get("sector")),
                "heads": plotting.attention_heads([a[i] for a in attention], title=name, tic=meta.get("tic"),
                                                  sector=meta.get("sector"), prob=float(prob[i])),
            }
            for what, fig in figures.items():
                if tb is not None:
                    tb.add_figure(f"attention/{name}_{what}", fig, global_step=trainer.global_step, close=False)
                plotting.save(fig, out_dir / f"{name}_{what}.png")
