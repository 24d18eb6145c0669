"""Write ``metrics_history.json`` and ``plots/training_history.png`` from the module's
per-epoch metrics.

The rows come from :attr:`flaredetect.lit_module.FlareDetector.epoch_history`, which the
module fills as it logs each epoch's metrics and saves in every checkpoint: reading
``trainer.callback_metrics`` from a callback instead gets the previous epoch's values
(Lightning calls callback hooks before the module's) and loses the rows of a killed run.
The JSON is rewritten at the start of every epoch (a killed job keeps what it finished)
and with the figure when fitting ends.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from flaredetect import plotting


class TrainingHistory(L.Callback):
    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)

    @staticmethod
    def rows(pl_module: L.LightningModule) -> list[dict]:
        return [dict(row) for row in getattr(pl_module, "epoch_history", [])]

    def _write_json(self, rows: list[dict]) -> None:
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
        tmp = self.run_dir / "metrics_history.json.partial"
        tmp.write_text(json.dumps(clean, indent=1))
        tmp.replace(self.run_dir / "metrics_history.json")

    @rank_zero_only
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = self.rows(pl_module)
        if rows:
            self._write_json(rows)

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = self.rows(pl_module)
        if not rows:
            return
        self._write_json(rows)
        (self.run_dir / "plots").mkdir(parents=True, exist_ok=True)
        plotting.save(plotting.training_history(rows), self.run_dir / "plots" / "training_history.png")
