"""Record epoch metrics and draw ``plots/training_history.png`` when fitting ends."""
from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from flaredetect import plotting


class TrainingHistory(L.Callback):
    """Keeps one row of epoch-level metrics per validation epoch (sanity check excluded)
    and writes ``metrics_history.json`` and the training-history figure under ``run_dir``."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)
        self.history: list[dict] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train/", "val/")) and not key.endswith("_step"):
                row[key] = float(value)
        self.history = [h for h in self.history if h["epoch"] != row["epoch"]] + [row]

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # train/* metrics are logged after validation; attach them to this epoch's row.
        if self.history and self.history[-1]["epoch"] == trainer.current_epoch:
            for key, value in trainer.callback_metrics.items():
                if key.startswith("train/") and not key.endswith("_step"):
                    self.history[-1][key] = float(value)

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.history:
            return
        (self.run_dir / "plots").mkdir(parents=True, exist_ok=True)
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in h.items()} for h in self.history]
        (self.run_dir / "metrics_history.json").write_text(json.dumps(clean, indent=1))
        plotting.save(plotting.training_history(self.history), self.run_dir / "plots" / "training_history.png")

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))
