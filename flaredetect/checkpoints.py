"""Reading checkpoints safely: never unpickle code, one-line errors, the newest readable one.

Every checkpoint a user passes in (``init_ckpt``, ``ckpt_path``, ``ckpt=`` of eval and
predict) is read with ``torch.load(weights_only=True)``: a crafted pickle then raises
instead of running its payload. flaredetect's own checkpoints hold only tensors and plain
values (the LightningModule keeps its factories out of the hyper-parameters), so nothing
is lost.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint's dict, read without unpickling code; :class:`CheckpointError` if the
    file is missing, damaged, not a checkpoint or holds objects other than weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):  # torch names the global it refused to import
            raise CheckpointError(f"checkpoint {path} holds objects other than weights and plain values; "
                                  f"refused (unpickling it could run code)") from exc
        raise CheckpointError(f"checkpoint {path} is not readable (damaged or not a checkpoint)") from exc
    except Exception as exc:  # zip and format errors all mean "not usable"
        reason = _one_line(str(exc)).split(". ")[0][:200]  # torch appends paragraphs of advice
        raise CheckpointError(f"checkpoint {path} is not readable ({type(exc).__name__}: {reason})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def newest_readable(checkpoint_dir: Path, exclude: Path | None = None) -> tuple[Path, dict] | None:
    """The readable checkpoint in ``checkpoint_dir`` that is furthest into training
    (highest global step), with its content; None if there is none."""
    best: tuple[int, Path, dict] | None = None
    for path in sorted(checkpoint_dir.glob("*.ckpt")):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            checkpoint = load_checkpoint(path)
        except CheckpointError:
            continue
        step = int(checkpoint.get("global_step", -1))
        if best is None or step > best[0]:
            best = (step, path, checkpoint)
    return None if best is None else (best[1], best[2])


def load_net_weights(net: nn.Module, path: str | Path, prefix: str = "net.") -> int:
    """Load the ``prefix`` weights of a checkpoint into ``net`` (e.g. fine-tuning from a
    synthetic-trained run); returns the number of tensors loaded.

    Every key must match in name and shape: a checkpoint of another architecture is a
    :class:`CheckpointError` listing the keys that did not match, never a silent partial load.
    """
    state = load_checkpoint(path)["state_dict"]
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise CheckpointError(f"checkpoint {path} has no '{prefix}' weights")
    own = net.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = sorted(f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(weights)
                    if tuple(weights[k].shape) != tuple(own[k].shape))
    problems = [f"{label} ({len(keys)}): {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}"
                for label, keys in (("missing in the checkpoint", missing), ("not in the model", unexpected),
                                    ("of another shape (checkpoint vs model)", shapes)) if keys]
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match the model: {'; '.join(problems)}")
    net.load_state_dict(weights)
    return len(weights)


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
