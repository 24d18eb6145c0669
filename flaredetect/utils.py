"""Small helpers for run directories and JSON summaries."""
from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import NoReturn


def package_versions(names=("flaredetect", "torch", "lightning", "hydra-core", "torchmetrics", "numpy",
                            "lightkurve", "h5py")) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def to_builtin(value):
    """Tensors, numpy scalars and NaN → JSON-friendly Python values."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    return value


def write_json(path: str | Path, data: dict) -> None:
    Path(path).write_text(json.dumps(to_builtin(data), indent=2, sort_keys=True))


def point_latest(run_dir: str | Path, root: str | Path) -> None:
    """Point ``<root>/latest`` at ``run_dir`` (a relative symlink, replaced atomically) when
    the run dir lies under ``root``, e.g. ``outputs/train/latest`` -> the newest run.
    Where links cannot be made, ``latest`` is a text file holding the run dir's path."""
    run_dir, root = Path(run_dir).resolve(), Path(root).resolve()
    if root not in run_dir.parents:
        return
    link = root / "latest"
    tmp = root / f".latest.{os.getpid()}"
    target = os.path.relpath(run_dir, root)
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp, target_is_directory=True)
        if link.is_dir() and not link.is_symlink():  # never replace a real directory
            tmp.unlink()
            return
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        if not link.is_dir():
            link.write_text(f"{run_dir}\n")


def exit_with_error(tool: str, error: Exception | str) -> NoReturn:
    """End a console script with exit code 1: the error once on stderr, and in the run's
    log file (Hydra's ``<task>.log``) so a batch job's log says why it stopped."""
    message = str(error)
    record = logging.LogRecord(tool, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    sys.exit(f"{tool}: {message}")


def settings_of(cfg, leave_out=("paths", "hydra", "defaults")) -> dict:
    """A run's resolved settings for provenance records, without ``paths``/``hydra``: those
    may refer to Hydra's runtime, absent when a config is composed from Python."""
    from omegaconf import OmegaConf

    return {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in cfg.items() if k not in leave_out}
