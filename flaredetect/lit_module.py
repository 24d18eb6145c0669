"""LightningModule: weighted BCE training of any window network, with torchmetrics.

It also keeps ``epoch_history``, one row of its own epoch-level metrics per epoch (what
TensorBoard receives), saved in every checkpoint so that ``metrics_history.json`` and the
history plot hold every epoch's own numbers, also across a resume; and it stops training
with :class:`NonFiniteLossError` at the first step whose loss is not finite.
"""
from __future__ import annotations

import logging
from typing import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (BinaryAccuracy, BinaryAUROC, BinaryAveragePrecision, BinaryF1Score,
                                         BinaryPrecision, BinaryRecall)

log = logging.getLogger(__name__)
EPOCH_LINE_KEYS = ("train/loss", "val/loss", "val/f1", "val/auroc", "val/f1_best")
NONFINITE_CHECK_EVERY = 50  # steps between loss checks on accelerators (each check waits for the device)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message is one line naming the step."""


def weighted_bce(logit: torch.Tensor, target: torch.Tensor, flare_weight: float, non_flare_weight: float) -> torch.Tensor:
    """Binary cross-entropy with a fixed weight per class (thesis: flare 1.4, non-flare 0.7;
    inverse-frequency weights gave it too many false positives)."""
    weight = torch.where(target > 0.5, flare_weight, non_flare_weight).to(logit.dtype)
    return F.binary_cross_entropy_with_logits(logit, target.to(logit.dtype), weight=weight)


def classification_metrics(threshold: float = 0.5) -> MetricCollection:
    return MetricCollection({
        "acc": BinaryAccuracy(threshold=threshold),
        "precision": BinaryPrecision(threshold=threshold),
        "recall": BinaryRecall(threshold=threshold),
        "f1": BinaryF1Score(threshold=threshold),
        "auroc": BinaryAUROC(),
        "ap": BinaryAveragePrecision(),
    })


class FlareDetector(L.LightningModule):
    """Trains ``net`` (a module mapping ``x`` (B, L, 3) to a dict with ``logit``).

    Parameters
    ----------
    net : the network (transformer, CNN, ...), injected.
    optimizer : a partial optimizer factory taking the parameters (Hydra ``_partial_``).
    scheduler : a partial LR-scheduler factory taking the optimizer, or None.
    scheduler_monitor : metric a plateau scheduler watches.
    flare_weight, non_flare_weight : BCE class weights.
    cadence_loss_weight : weight of the per-cadence mask loss when the net has that head.
    threshold : probability threshold of the thresholded metrics.
    compile : ``torch.compile`` the network in place when fitting starts (GPU fast path;
        ``nn.Module.compile`` keeps the parameter names, so checkpoints stay loadable without it).
    """

    def __init__(self, net: nn.Module, optimizer: Callable, scheduler: Callable | None = None,
                 scheduler_monitor: str = "val/loss", flare_weight: float = 1.4, non_flare_weight: float = 0.7,
                 cadence_loss_weight: float = 1.0, threshold: float = 0.5, compile: bool = False) -> None:
        super().__init__()
        if flare_weight <= 0 or non_flare_weight <= 0:
            raise ValueError(f"loss.flare_weight={flare_weight} and loss.non_flare_weight={non_flare_weight} must be > 0")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold={threshold} must be in (0, 1)")
        # Factories stay out of the checkpoint's hyper-parameters: checkpoints then load with
        # torch.load(weights_only=True), and evaluation rebuilds them from the run's config.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        metrics = classification_metrics(threshold)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.losses = nn.ModuleDict({f"{s}_loss": MeanMetric() for s in ("train", "val", "test")})
        self.val_f1_best = MaxMetric()
        self.val_f1_best.persistent(True)  # checkpointed: a resumed run keeps its best F1
        if hasattr(net, "seq_len") and hasattr(net, "input_dim"):  # the model summary then counts FLOPs
            self.example_input_array = torch.zeros(1, net.seq_len, net.input_dim)
        self.epoch_history: list[dict] = []
        self._first_nonfinite_step: torch.Tensor | None = None

    def setup(self, stage: str) -> None:
        if self.hparams.get("compile") and not getattr(self.net, "_compiled_call_impl", None):
            self.net.compile()

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> dict:
        return self.net(x, return_attention=return_attention)

    def _step(self, batch: dict, stage: str) -> tuple[torch.Tensor, dict]:
        out = self.net(batch["x"])
        loss = weighted_bce(out["logit"], batch["y"], self.hparams.flare_weight, self.hparams.non_flare_weight)
        if "cadence_logit" in out and self.hparams.cadence_loss_weight > 0:
            cadence = F.binary_cross_entropy_with_logits(out["cadence_logit"], batch["cadence_y"].to(out["cadence_logit"].dtype))
            loss = loss + self.hparams.cadence_loss_weight * cadence
        prob = torch.sigmoid(out["logit"].float())
        getattr(self, f"{stage}_metrics").update(prob, batch["y"].long())
        self.losses[f"{stage}_loss"].update(loss.detach(), weight=len(prob))
        return loss, out

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self._step(batch, "train")
        self.log("train/loss_step", loss, prog_bar=True, batch_size=len(batch["y"]))
        self._track_nonfinite(loss)
        return loss

    def _track_nonfinite(self, loss: torch.Tensor) -> None:
        """Remember the first step with a non-finite loss, on the device (no sync per step)."""
        step = torch.as_tensor(self.global_step, device=loss.device)
        first = self._first_nonfinite_step
        if first is None or first.device != loss.device:
            first = torch.full((), -1, dtype=torch.int64, device=loss.device)
        bad = ~torch.isfinite(loss.detach())
        self._first_nonfinite_step = torch.where(bad & (first < 0), step, first)
        if loss.device.type == "cpu" or self.global_step % NONFINITE_CHECK_EVERY == 0:
            self._raise_if_nonfinite()

    def _raise_if_nonfinite(self) -> None:
        if self._first_nonfinite_step is None:
            return
        step = int(self._first_nonfinite_step)
        if step >= 0:
            lr = self.trainer.optimizers[0].param_groups[0]["lr"] if self.trainer.optimizers else float("nan")
            raise NonFiniteLossError(f"non-finite training loss at step {step} (epoch {self.current_epoch}); "
                                     f"training stopped (learning rate {lr:g}: too high? or non-finite inputs)")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        out = self.net(batch["x"])
        result = {"prob": torch.sigmoid(out["logit"].float())}
        if "cadence_logit" in out:
            result["cadence_prob"] = torch.sigmoid(out["cadence_logit"].float())
        return result

    def _log_epoch(self, stage: str) -> dict:
        values = getattr(self, f"{stage}_metrics").compute()
        values[f"{stage}/loss"] = self.losses[f"{stage}_loss"].compute()
        self.log_dict(values, sync_dist=True)
        getattr(self, f"{stage}_metrics").reset()
        self.losses[f"{stage}_loss"].reset()
        return values

    def _record(self, values: dict) -> None:
        """Merge epoch-level values into this epoch's row of ``epoch_history``."""
        if not self.epoch_history or self.epoch_history[-1]["epoch"] != self.current_epoch:
            self.epoch_history.append({"epoch": self.current_epoch})
        self.epoch_history[-1].update({k: float(v) for k, v in values.items()})

    def on_train_epoch_end(self) -> None:
        self._raise_if_nonfinite()
        values = self._log_epoch("train")
        if self.trainer.optimizers:
            values["lr"] = self.trainer.optimizers[0].param_groups[0]["lr"]
        self._record(values)
        row = self.epoch_history[-1]
        # One line per epoch in <run dir>/train.log: progress of a job without a terminal.
        log.info("epoch %d/%d: %s", self.current_epoch, self.trainer.max_epochs - 1,
                 "  ".join(f"{k} {row[k]:.4f}" for k in EPOCH_LINE_KEYS if k in row))

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch("val")
        if not self.trainer.sanity_checking:  # the sanity check's batches never count
            self.val_f1_best.update(values["val/f1"])
            values["val/f1_best"] = self.val_f1_best.compute()
            self.log("val/f1_best", values["val/f1_best"], sync_dist=True)
            self._record(values)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["epoch_history"] = [dict(row) for row in self.epoch_history]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.epoch_history = [dict(row) for row in checkpoint.get("epoch_history", [])]
        # Checkpoints written before val_f1_best was persistent lack its state.
        state = checkpoint.get("state_dict", {})
        for key, value in self.val_f1_best.state_dict(prefix="val_f1_best.").items():
            state.setdefault(key, value)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # bf16 autocast has no loss scaler, so a fused optimizer clips like any other; Lightning's
        # mixed-precision plugin refuses any fused optimizer (Lightning-AI/pytorch-lightning#21435).
        if (gradient_clip_val and self.trainer.precision == "bf16-mixed"
                and getattr(optimizer, "_step_supports_amp_scaling", False)):
            if gradient_clip_algorithm in (None, "norm"):
                nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)
            else:
                nn.utils.clip_grad_value_(self.parameters(), gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.scheduler_monitor,
                                 "interval": "epoch", "frequency": 1}}
