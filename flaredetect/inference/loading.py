"""Rebuild a trained network from a run directory or checkpoint.

A run dir holds the resolved training config (``config.yaml``) and ``checkpoints/``.
The network is rebuilt from ``cfg.model`` and only the ``net.`` weights are loaded, so
prediction never depends on the optimiser, scheduler or data config of training.
"""
from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from flaredetect.checkpoints import CheckpointError as _CheckpointReadError, load_checkpoint
from flaredetect.evaluation.runs import RunError, resolve_run


# The run/checkpoint resolution of flaredetect-eval (best checkpoint from summary.json,
# else the best-* file with the highest score, else last.ckpt) is reused as is.
CheckpointError = RunError


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """``(checkpoint file, config.yaml)`` for a run dir or a ``.ckpt`` inside one."""
    path = Path(path)
    run = resolve_run(ckpt=path) if path.is_file() else resolve_run(run_dir=path)
    return run.ckpt, run.run_dir / "config.yaml"


def load_net(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, DictConfig]:
    """Network (in eval mode) and the training config of a run dir or checkpoint.

    Only the network is rebuilt (``cfg.model``) and only its ``net.`` weights loaded, so
    prediction needs neither the optimiser nor the training data.
    """
    path = Path(path)
    run = resolve_run(ckpt=path) if path.is_file() else resolve_run(run_dir=path)
    net = instantiate(run.cfg.model)
    try:
        state = load_checkpoint(run.ckpt, map_location)["state_dict"]
    except _CheckpointReadError as exc:
        raise RunError(str(exc)) from exc
    weights = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    if not weights:
        raise RunError(f"{run.ckpt}: no 'net.' weights in the state_dict")
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise RunError(f"{run.ckpt} does not match the model in {run.run_dir / 'config.yaml'}: "
                       f"{str(exc).splitlines()[0]}") from exc
    return net.eval(), run.cfg


def training_cadence_s(cfg: DictConfig) -> float:
    """The cadence (s) a run was trained on: its ``cadence_s``; runs from before cadence was
    recorded trained on 2-minute data (synthetic at the generator's ``cadence_days``)."""
    if cfg.get("cadence_s") is not None:
        return float(cfg.cadence_s)
    sources = cfg.get("data", {}).get("sources", {}) or {}
    generator = ((sources.get("synthetic") or {}).get("generator") or {})
    if generator.get("cadence_days") is not None:
        return float(generator["cadence_days"]) * 86400.0
    return 120.0


def window_geometry(cfg: DictConfig) -> dict:
    """Window length, the longest gap a training window could span and the training
    cadence (s), from the run's config."""
    length = int(cfg.model.get("seq_len", 100))
    max_gap = 5
    sources = cfg.get("data", {}).get("sources", {}) or {}
    for source in sources.values():
        window = (source or {}).get("window") or {}
        if "max_gap_cadences" in window:
            max_gap = int(window["max_gap_cadences"])
            break
    return {"length": length, "max_gap_cadences": max_gap, "cadence_s": training_cadence_s(cfg)}
