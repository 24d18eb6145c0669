"""What a training command does with a run dir that already holds a run.

* A finished run (``summary.json`` says so) is left alone: the same command reports it
  finished and changes nothing. Raising ``trainer.max_epochs`` beyond the epochs a run
  trained (and did not stop early) continues it.
* An unfinished run resumes from ``checkpoints/last.ckpt`` (a killed or requeued job);
  when that file is damaged, from the newest readable checkpoint, with a warning.
* Either way, overrides that change what is trained (model, data, loss, optimiser,
  scheduler, seed) are refused before anything is written, listing the keys: a resumed
  run silently mixing two configurations would be neither.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from flaredetect.checkpoints import CheckpointError, load_checkpoint, newest_readable
from flaredetect.config_checks import ConfigError

log = logging.getLogger(__name__)
RESULT_KEYS = ("model", "data", "loss", "optimizer", "scheduler", "seed")
# Under data: how windows are loaded, not which windows or how they are augmented.
LOADER_KEYS = ("data.num_workers", "data.pin_memory", "data.persistent_workers", "data.in_memory",
               "data.eval_batch_size")


@dataclass
class ResumePlan:
    """``ckpt_path`` to resume from (None: a fresh start) or ``finished`` (the summary)."""

    ckpt_path: str | None = None
    finished: dict | None = None
    notes: list[str] = field(default_factory=list)


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def changed_result_keys(saved: DictConfig, cfg: DictConfig) -> list[str]:
    """``key: saved -> now`` for every key under :data:`RESULT_KEYS` that differs."""
    def flat(conf) -> dict:
        container = OmegaConf.to_container(conf, resolve=True, throw_on_missing=False)
        return {k: v for k, v in _flatten({key: container.get(key) for key in RESULT_KEYS}).items()
                if not k.startswith(LOADER_KEYS)}
    before, now = flat(saved), flat(cfg)
    return [f"{key}: {before.get(key, '<absent>')!r} -> {now.get(key, '<absent>')!r}"
            for key in sorted(set(before) | set(now)) if before.get(key, "<absent>") != now.get(key, "<absent>")]


def plan_resume(cfg: DictConfig, run_dir: Path) -> ResumePlan:
    """Decide how to start in ``run_dir``; raises :class:`ConfigError` for changed
    overrides and :class:`CheckpointError` for an unusable checkpoint."""
    if cfg.get("ckpt_path"):  # an explicit checkpoint: resume from it, whatever the run dir holds
        load_checkpoint(cfg.ckpt_path)
        return ResumePlan(ckpt_path=str(cfg.ckpt_path))
    saved_config = run_dir / "config.yaml"
    last = run_dir / "checkpoints" / "last.ckpt"
    summary_path = run_dir / "summary.json"
    if not saved_config.is_file() or not (last.is_file() or summary_path.is_file()):
        return ResumePlan()
    changed = changed_result_keys(OmegaConf.load(saved_config), cfg)
    if changed:
        raise ConfigError(f"run dir {run_dir} holds a run with another configuration; these overrides "
                          f"differ from its config.yaml (use a new hydra.run.dir, or init_ckpt= to start "
                          f"from its weights):\n  " + "\n  ".join(changed))
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        more_epochs = int(cfg.trainer.get("max_epochs") or 0) > int(summary.get("epochs_trained") or 0)
        if summary.get("finished") and not (more_epochs and not summary.get("stopped_early")):
            return ResumePlan(finished=summary)
    if not last.is_file():
        raise CheckpointError(f"run dir {run_dir} has a summary.json but no checkpoints/last.ckpt to continue from")
    try:
        load_checkpoint(last)
    except CheckpointError as exc:
        fallback = newest_readable(last.parent, exclude=last)
        if fallback is None:
            raise CheckpointError(f"{exc}; no other checkpoint in {last.parent} is readable: delete it to "
                                  f"start this run afresh, or use another hydra.run.dir") from exc
        path, checkpoint = fallback
        note = (f"{last} is not readable; resuming from {path.name} (epoch {checkpoint.get('epoch')}, "
                f"step {checkpoint.get('global_step')}) instead")
        log.warning("%s", note)
        return ResumePlan(ckpt_path=str(path), notes=[note])
    log.info("resuming from %s", last)
    return ResumePlan(ckpt_path=str(last))
