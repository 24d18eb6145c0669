"""What an exact resume needs beyond Lightning's own checkpoint: the random states and
the run's wall time so far.

Lightning restores weights, optimiser, schedulers, loops and callback states, but not the
random number generators, which draw the data order (each epoch's ``RandomSampler``
seeds itself from torch's global generator), the augmentation and dropout. The states
are captured when a checkpoint is written (at the end of an epoch) and put back at the
start of the first epoch after a resume, not when the checkpoint is loaded: in between,
the resumed run runs a sanity check whose data loaders also draw from the generator.
Then a run killed after epoch k and resumed ends with the same weights as one that was
never interrupted (bit for bit on a CPU).
"""
from __future__ import annotations

import random
import time

import lightning as L
import numpy as np
import torch


def capture_rng_states() -> dict:
    """Python, numpy and torch (CPU and CUDA) generator states, in types that
    ``torch.load(weights_only=True)`` reads back."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"python": [version, list(mt), gauss],
              "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumeState(L.Callback):
    """Checkpoints the random states and the wall time; restores both on resume.

    ``wall_time_s`` is the training time of every session of the run so far.
    """

    def __init__(self) -> None:
        self._pending: dict | None = None
        self._previous_s = 0.0
        self._started = time.perf_counter()

    @property
    def wall_time_s(self) -> float:
        return self._previous_s + time.perf_counter() - self._started

    def state_dict(self) -> dict:
        return {"rng": capture_rng_states(), "wall_time_s": self.wall_time_s}

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = state_dict.get("rng")
        self._previous_s = float(state_dict.get("wall_time_s", 0.0))
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            restore_rng_states(self._pending)
            self._pending = None
