"""Significance candidates: where a flare catalog would even look.

Flare catalogs (Chang et al. 2015; Günther et al. 2020; Pietras et al. 2022) only count a
flare when at least ``min_points`` consecutive cadences lie ``n_sigma`` robust sigma above
the running median. With a gate, the network *vets* those candidates: its per-cadence
probability is kept within ``pad_cadences`` of a candidate cadence (so an event still spans
the flare's rise and decay) and set to 0 elsewhere. The network alone fires on real-noise
structures and on faint flares no catalog would list; the 3-sigma rule alone takes cosmic
rays, steps and noise runs for flares; together they beat both on the benchmark stars (see
``flaredetect-benchmark`` and the README's results).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy.ndimage import binary_dilation

from flaredetect.baselines.threshold import threshold_flags
from flaredetect.data.lightcurve import LightCurve


@dataclass(frozen=True)
class SignificanceGate:
    """``conf/predict.yaml`` ``candidates:`` (null there: the network alone)."""

    n_sigma: float = 3.0
    min_points: int = 3
    pad_cadences: int = 5

    def __post_init__(self) -> None:
        if not self.n_sigma > 0 or self.min_points < 1 or self.pad_cadences < 0:
            raise ValueError(f"candidates.n_sigma={self.n_sigma} must be > 0, candidates.min_points="
                             f"{self.min_points} >= 1 and candidates.pad_cadences={self.pad_cadences} >= 0")

    @classmethod
    def from_settings(cls, settings, run_settings=MappingProxyType({})) -> "SignificanceGate | None":
        """The gate of a predict config's ``candidates:`` (null: none, the network alone). Each
        setting left null takes the run's own (its training config's ``candidates:``), else
        the default here; a run whose ``candidates`` is null runs without a gate unless a
        setting is given here."""
        if settings is None:
            return None
        own = {k: v for k, v in settings.items() if v is not None}
        if run_settings is None and not own:
            return None
        run = {k: v for k, v in (run_settings or {}).items() if v is not None}
        return cls(**{**run, **own})

    def mask(self, lc: LightCurve) -> np.ndarray:
        """Boolean per-cadence mask: candidate cadences and their padding."""
        flags = threshold_flags(lc.time_btjd, lc.flux_rel, n_sigma=self.n_sigma, min_points=self.min_points)
        if self.pad_cadences and flags.any():
            flags = binary_dilation(flags, iterations=self.pad_cadences)
        return flags

    def apply(self, lc: LightCurve, prob: np.ndarray) -> np.ndarray:
        return np.where(self.mask(lc), prob, 0.0).astype(prob.dtype, copy=False)


def _threshold_score(lc: LightCurve, n_sigma: float, min_points: int) -> np.ndarray:
    return threshold_flags(lc.time_btjd, lc.flux_rel, n_sigma=n_sigma, min_points=min_points).astype(np.float32)


def threshold_scorer(n_sigma: float = 3.0, min_points: int = 3):
    """The catalogs' rule as a per-cadence "probability": 1 on its flagged cadences, else 0
    (a partial of a module function, so it pickles to predict's worker processes)."""
    from functools import partial

    return partial(_threshold_score, n_sigma=n_sigma, min_points=min_points)


def threshold_predictor(events=None, n_sigma: float = 3.0, min_points: int = 3):
    """The 3-sigma rule through the same event code as the network (``flaredetect-predict``):
    events are runs of its flagged cadences (threshold 0.5, at least one cadence), measured
    on the flux like any other event. The baseline every model is compared with."""
    from dataclasses import replace

    from flaredetect.inference.events import EventParams
    from flaredetect.inference.pipeline import Predictor

    events = replace(events or EventParams(), threshold=0.5, min_cadences=1)
    return Predictor(scorer=threshold_scorer(n_sigma, min_points), events=events)
