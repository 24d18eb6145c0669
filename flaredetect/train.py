"""``flaredetect-train``: compose the config, train, test on the best checkpoint.

Reads top to bottom: what the run dir already holds (:mod:`flaredetect.resume`), data,
network, LightningModule, callbacks, loggers, trainer, fit (resuming from the run dir's
``last.ckpt`` when there is one), test, summary.
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from flaredetect import CONFIG_DIR  # noqa: F401 (re-exported for tests and entry points)
from flaredetect.callbacks.resume_state import ResumeState
from flaredetect.checkpoints import CheckpointError, load_checkpoint, load_net_weights
from flaredetect.config_checks import ConfigError, check_train_config
from flaredetect.lit_module import FlareDetector, NonFiniteLossError
from flaredetect.resume import plan_resume
from flaredetect.sweeps import final_hparam_metrics, hparams_for_logging, register_resolvers
from flaredetect.utils import exit_with_error, package_versions, point_latest, to_builtin, write_json

log = logging.getLogger(__name__)
# Lightning advertises a cloud logger at every start; not ours to print.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "litlogger" not in r.getMessage())
register_resolvers()  # ${flaredetect.mkdir:...} in conf/hparams_search/


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a callbacks/logger group that has a ``_target_``
    (entries set to null are switched off)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]


def build_module(cfg: DictConfig) -> FlareDetector:
    net = instantiate(cfg.model)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    return FlareDetector(net=net, optimizer=instantiate(cfg.optimizer), scheduler=scheduler,
                         scheduler_monitor=cfg.get("scheduler_monitor", "val/loss"),
                         compile=bool(cfg.get("compile", False)), **cfg.loss)


def train(cfg: DictConfig) -> dict:
    """Train and test as configured; returns the final metrics (for sweepers and tests)."""
    check_train_config(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    run_dir = Path(cfg.paths.output_dir)
    plan = plan_resume(cfg, run_dir) if cfg.get("train", True) else None  # before anything is written
    if plan is not None and plan.finished is not None:
        log.info("run dir %s holds a finished run (%s epochs, summary.json); nothing changed. Evaluate it with "
                 "flaredetect-eval run_dir=%s, or raise trainer.max_epochs to train it further.",
                 run_dir, plan.finished.get("epochs_trained"), run_dir)
        return dict(plan.finished.get("metrics", {}))
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # DDP ranks > 0 share rank 0's run dir (flaredetect.distributed)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        point_latest(run_dir, Path(cfg.paths.log_dir) / str(cfg.get("task_name", "train")))

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    module = build_module(cfg)
    if cfg.get("init_ckpt"):
        # Weights only (e.g. synthetic pre-training, then real fine-tuning); fresh optimizer.
        n = load_net_weights(module.net, cfg.init_ckpt)
        log.info("initialised %d weight tensors from %s", n, cfg.init_ckpt)
    resume_state = ResumeState()
    callbacks = [*instantiate_group(cfg.get("callbacks")), resume_state]
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    datamodule.prepare_data()
    datamodule.setup("fit")
    seq_len = getattr(module.net, "seq_len", datamodule.length)
    if seq_len != datamodule.length:
        raise ValueError(f"model.seq_len={seq_len} but the data's windows have {datamodule.length} cadences")
    for lg in trainer.loggers:
        # TensorBoard gets its hyper-parameters once, at the end, with the final metrics (HPARAMS tab).
        if not isinstance(lg, TensorBoardLogger):
            lg.log_hyperparams(to_builtin(OmegaConf.to_container(cfg, resolve=True)))

    metrics: dict = {}
    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=plan.ckpt_path, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        best_ckpt = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    else:
        best_ckpt = str(cfg.ckpt_path) if cfg.get("ckpt_path") else ""
    if cfg.get("test", True):
        if best_ckpt:
            results = trainer.test(module, datamodule=datamodule, ckpt_path=best_ckpt, verbose=False,
                                   weights_only=True)
            metrics.update(results[0] if results else {})
        else:  # never report an untrained network's metrics as the run's result
            log.warning("no checkpoint to test (nothing was trained, and no ckpt_path): test skipped")
    best_f1 = metrics.get("val/f1_best")
    for lg in trainer.loggers:
        if isinstance(lg, TensorBoardLogger):
            lg.log_hyperparams(hparams_for_logging(cfg), metrics=final_hparam_metrics(metrics))
        if best_f1 is not None:
            lg.log_metrics({"hp_metric": best_f1}, step=trainer.global_step)
        lg.finalize("success")

    if trainer.is_global_zero:
        summary = {
            "run_dir": str(run_dir),
            "finished": True,
            # relative to the run dir, so a copied or moved run dir uses its own checkpoint
            "best_checkpoint": _relative(best_ckpt, run_dir),
            "best_epoch": _best_epoch(best_ckpt),
            "epochs_trained": trainer.current_epoch,
            "stopped_early": trainer.current_epoch < (trainer.max_epochs or 0),
            "wall_time_s": resume_state.wall_time_s,
            "resumed_from": plan.ckpt_path if plan else None,
            "metrics": metrics,
            "dataset_sizes": {s: len(d) for s, d in getattr(datamodule, "datasets", {}).items()},
            "n_parameters": sum(p.numel() for p in module.net.parameters()),
            "versions": package_versions(),
        }
        write_json(run_dir / "summary.json", summary)
        log.info(f"\nrun dir:          {run_dir}\nbest checkpoint:  {best_ckpt or '(none)'}\n"
                 f"val/f1_best:      {best_f1}\ntest/f1:          {metrics.get('test/f1')}\n"
                 f"wall time:        {resume_state.wall_time_s:.0f} s\n"
                 f"watch it:         tensorboard --logdir {run_dir.parent}\n")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # The next job of a sequential -m sweep starts its own DDP group (new child processes).
        torch.distributed.destroy_process_group()
    return metrics


def _relative(path: str, root: Path) -> str:
    if not path:
        return ""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _best_epoch(best_ckpt: str) -> int | None:
    if not best_ckpt:
        return None
    try:
        return int(load_checkpoint(best_ckpt)["epoch"])
    except (CheckpointError, KeyError):
        return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except (CheckpointError, NonFiniteLossError) as err:
        exit_with_error("flaredetect-train", err)
    except ConfigError as err:
        # In a sweep, an invalid combination (d_model not divisible by num_heads) is recorded
        # with ``invalid_config_value`` and the sweep goes on; otherwise it is an error.
        if cfg.get("invalid_config_value") is None:
            exit_with_error("flaredetect-train", err)
        run_dir = Path(cfg.paths.output_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "invalid_config.txt").write_text(f"{err}\n")
        log.error("skipped, returning %s to the sweeper: %s", cfg.invalid_config_value, err)
        return float(cfg.invalid_config_value)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return None if value is None else float(value)


if __name__ == "__main__":
    main()
