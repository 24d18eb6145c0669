"""Whole-light-curve prediction: targets in, probabilities and flare events out.

:class:`Predictor` turns one :class:`LightCurve` into per-cadence probabilities and an
event table; :func:`iter_targets` expands the user's ``input`` (FITS, ``.npy``,
directory, glob, TIC id) into ``(name, LightCurve | Exception, input_index)``, where
``input_index`` maps the cleaned cadences back onto the input file's cadences (cleaning
drops non-finite, quality-flagged and low-outlier cadences).
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from torch import nn

from flaredetect.data.lightcurve import LightCurve
from flaredetect.inference.candidates import SignificanceGate
from flaredetect.inference.events import EventParams, extract_events
from flaredetect.inference.scoring import score_light_curve

_TIC = re.compile(r"^\s*(?:TIC)?[\s_-]*(\d{4,})\s*$", re.IGNORECASE)


@dataclass
class Predictor:
    """A network (or any ``scorer(lc) -> prob``) plus window and event settings.

    ``net`` maps features (B, L, 3) to the model's output dict; alternatively ``scorer``
    gives per-cadence probabilities directly (the threshold baseline, test oracles).
    ``gate`` (a :class:`SignificanceGate`) keeps the probability only near significance
    candidates; None: the network alone.
    """

    net: nn.Module | None = None
    length: int = 100
    stride: int | None = None
    head: str = "cadence"
    reduce: str = "mean"
    max_gap_cadences: int = 5
    batch_size: int = 1024
    events: EventParams = field(default_factory=EventParams)
    scorer: Callable[[LightCurve], np.ndarray] | None = None
    gate: SignificanceGate | None = None

    def __post_init__(self) -> None:
        if (self.net is None) == (self.scorer is None):
            raise ValueError("Predictor needs exactly one of net= or scorer=")

    def probabilities(self, lc: LightCurve) -> np.ndarray:
        if self.scorer is not None:
            prob = np.asarray(self.scorer(lc), dtype=np.float32)
            if prob.shape != (len(lc),):
                raise ValueError(f"scorer returned shape {prob.shape} for {len(lc)} cadences")
        else:
            prob = score_light_curve(self.net, lc, self.length, self.stride, self.head, self.max_gap_cadences,
                                     self.reduce, self.batch_size)
        return prob if self.gate is None else self.gate.apply(lc, prob)

    def predict(self, lc: LightCurve, luminosity_erg_s: float | None = None) -> tuple[np.ndarray, dict]:
        """``(per-cadence probability, events)`` of one light curve."""
        check_light_curve(lc, self.length)
        prob = self.probabilities(lc)
        return prob, extract_events(lc, prob, self.events, luminosity_erg_s)


def check_light_curve(lc: LightCurve, min_cadences: int = 1) -> None:
    """One-line ``ValueError`` for light curves that cannot be scored."""
    label = f"TIC {lc.tic} sector {lc.sector}"
    if len(lc) == 0:
        raise ValueError(f"{label}: no cadences")
    finite = np.isfinite(lc.flux_rel) & np.isfinite(lc.time_btjd)
    if not finite.all():
        raise ValueError(f"{label}: {int((~finite).sum())} non-finite flux/time values")
    if len(lc) < min_cadences:
        raise ValueError(f"{label}: only {len(lc)} cadences, shorter than one {min_cadences}-cadence window")


def parse_tic(text: str) -> int | None:
    """TIC id from 'TIC 123456', 'tic_123456' or '123456' (not a path), else None."""
    if Path(str(text)).exists():
        return None
    match = _TIC.match(str(text))
    return int(match.group(1)) if match else None


def input_index(raw_time: np.ndarray, lc: LightCurve) -> np.ndarray:
    """Index of each cleaned cadence among the input file's cadences (matched by time)."""
    raw = np.asarray(raw_time, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(raw))
    order = finite[np.argsort(raw[finite], kind="stable")]
    pos = np.clip(np.searchsorted(raw[order], lc.time_btjd), 0, len(order) - 1)
    return order[pos]


def iter_targets(inputs, quality_bitmask="default", low_sigma: float | None = 5.0,
                 cache_dir: str | Path = "data/mast") -> Iterator[tuple[str, Callable[[], tuple]]]:
    """Yield ``(name, load)``; ``load()`` returns ``(LightCurve, n_input_cadences,
    input_index)`` or raises with a one-line message. Loading is deferred so a progress
    bar can count targets and one failure never stops the others."""
    from flaredetect.sources import find_light_curve_files, read_raw_light_curve
    from flaredetect.data.cleaning import clean
    from flaredetect.sources.local import LightCurveReadError, _one_line

    items = [inputs] if isinstance(inputs, (str, Path, int)) else list(inputs)
    for item in items:
        tic = item if isinstance(item, int) else parse_tic(str(item))
        if tic is not None:
            def load_tic(tic=tic):
                from flaredetect.sources import MastSource

                lcs = MastSource([tic], cache_dir=cache_dir, quality_bitmask=quality_bitmask,
                                 low_sigma=low_sigma).fetch(tic)
                return [(lc, len(lc), np.arange(len(lc))) for lc in lcs]
            yield f"TIC {tic}", load_tic
            continue
        files = find_light_curve_files(item)
        if not files:
            def missing(item=item):
                raise LightCurveReadError(f"{item}: no light-curve file matches (FITS, .npy, directory or glob)")
            yield str(item), missing
        for path in files:
            def load_file(path=path):
                if path.is_file() and path.stat().st_size == 0:
                    raise LightCurveReadError(f"{path}: empty file (0 bytes)")
                raw = read_raw_light_curve(path)
                try:
                    lc = clean(raw, quality_bitmask, low_sigma=low_sigma)
                except ValueError as exc:
                    raise LightCurveReadError(_one_line(str(exc))) from exc
                return [(lc, len(raw), input_index(raw.time_btjd, lc))]
            yield str(path), load_file


def stem_for(name: str, lc: LightCurve, multi: bool) -> str:
    """Output file stem: the input file's stem, or ``tic<id>_s<sector>`` for downloads."""
    path = Path(name)
    if not multi and path.suffix:
        base = path.name
        for suffix in (".fits.gz", ".fits", ".fit", ".npy"):
            if base.lower().endswith(suffix):
                return base[: -len(suffix)]
        return path.stem
    return f"tic{lc.tic:09d}_s{lc.sector:02d}"


def run_prediction(predictor: Predictor, inputs, out_dir: str | Path, *, luminosity_erg_s: float | None = None,
                   quality_bitmask="default", low_sigma: float | None = 5.0, plot: bool = True,
                   progress: bool = True, cache_dir: str | Path = "data/mast", log=print) -> dict:
    """Predict every target of ``inputs`` and write its outputs under ``out_dir``.

    Returns ``{"ok": [per light-curve summary dicts], "failed": [(name, one-line reason)]}``.
    """
    from tqdm import tqdm

    from flaredetect.inference.writers import write_outputs
    from flaredetect.sources.local import _one_line

    out_dir = Path(out_dir)
    targets = list(iter_targets(inputs, quality_bitmask, low_sigma, cache_dir))
    ok, failed = [], []
    bar = tqdm(targets, desc="light curves", unit="lc", disable=not progress)
    for name, load in bar:
        bar.set_postfix_str(Path(name).name[-40:])
        try:
            loaded = load()
            for lc, n_input, index in loaded:
                started = time.perf_counter()
                prob, events = predictor.predict(lc, luminosity_erg_s)
                wall = time.perf_counter() - started
                aligned = np.full(n_input, np.nan, dtype=np.float32)
                aligned[index] = prob
                stem = stem_for(name, lc, multi=len(loaded) > 1 or parse_tic(name) is not None)
                meta = {"input": name, "threshold": predictor.events.threshold, "head": predictor.head,
                        "candidates": asdict(predictor.gate) if predictor.gate else None}
                paths = write_outputs(out_dir, stem, lc, prob, events, predictor.events.threshold, aligned, meta,
                                      plot)
                ok.append({"name": name, "tic": lc.tic, "sector": lc.sector, "n_cadences": len(lc),
                           "n_events": len(events["peak_time_btjd"]), "wall_s": wall,
                           "outputs": {k: str(v) for k, v in paths.items()}})
        except Exception as exc:  # one bad file is reported and skipped
            reason = _one_line(str(exc)) or type(exc).__name__
            if name not in reason:
                reason = f"{name}: {reason}"
            failed.append((name, reason))
            log(f"FAILED {reason}")
    return {"ok": ok, "failed": failed}
