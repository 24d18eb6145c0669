"""The embedded default data set: synthetic light curves cut into windows, cached.

Generated from a seed on first use (no network, no downloads) and cached as a window
file under ``cache_dir`` keyed by a hash of every parameter, so changing any of them
makes a new file and a cached file is never silently stale.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from flaredetect.data.lightcurve import SECONDS_PER_DAY
from flaredetect.data.splits import SPLITS, assign_splits
from flaredetect.data.synthetic import cadence_params, default_params, generate_light_curves
from flaredetect.data.window_file import cached_window_file, write_window_file
from flaredetect.data.windowing import WindowSpec, concat_windows, cut_windows, negatives_per_star

log = logging.getLogger(__name__)


class SyntheticWindows:
    """Window source over generated light curves.

    Parameters
    ----------
    n_stars : number of synthetic stars (one ~27-day sector each).
    seed : seeds light curves, window positions and the star split.
    cache_dir : where the window file is cached.
    window : :class:`WindowSpec` fields.
    split_fractions : train/val/test shares of stars.
    generator : keyword arguments of :func:`flaredetect.data.synthetic.generate_light_curves`.
    splits : which splits this source contributes to.
    cadence_s : cadence (and exposure) of the generated light curves (the run's ``cadence_s``),
        with the noise and artefacts of that data kind
        (:func:`~flaredetect.data.synthetic.cadence_params`; ``generator`` keys win).
    """

    def __init__(self, n_stars: int = 600, seed: int = 42, cache_dir: str | Path = "data/synthetic",
                 window: dict | None = None, split_fractions=(0.8, 0.1, 0.1),
                 generator: dict | None = None, splits=SPLITS, cadence_s: float | None = None) -> None:
        if n_stars < 3:
            raise ValueError(f"n_stars={n_stars} must be >= 3 to fill train/val/test with distinct stars")
        generator = dict(generator or {})
        if cadence_s is not None:
            if not cadence_s > 0:
                raise ValueError(f"cadence_s={cadence_s} must be a positive number of seconds")
            days = float(cadence_s) / SECONDS_PER_DAY
            if "cadence_days" in generator and abs(generator["cadence_days"] - days) > 1e-9:
                raise ValueError(f"data.sources.synthetic.generator.cadence_days={generator['cadence_days']} "
                                 f"contradicts cadence_s={cadence_s}: set cadence_s only")
            generator = {**cadence_params(cadence_s), "cadence_days": days, **generator}  # the data kind, then yours
        self.n_stars = int(n_stars)
        self.seed = int(seed)
        self.cache_dir = Path(cache_dir)
        self.spec = WindowSpec(**(window or {}))
        self.split_fractions = tuple(float(f) for f in split_fractions)
        self.generator = generator
        self.splits = tuple(splits)

    @property
    def params(self) -> dict:
        # Every generator default is in the key, so a changed default never reuses a stale cache;
        # bump "format" when the windowing code changes what it cuts.
        return {"n_stars": self.n_stars, "seed": self.seed, "window": self.spec.__dict__,
                "split_fractions": self.split_fractions, "generator": {**default_params(), **self.generator},
                "format": 2}

    @property
    def path(self) -> Path:
        return cached_window_file(self.cache_dir, "synthetic", self.params)[0]

    def prepare(self) -> Path:
        path, cached = cached_window_file(self.cache_dir, "synthetic", self.params)
        if cached:
            return path
        t0 = time.perf_counter()
        windows = self.build()
        split = assign_splits(windows["tic"], self.split_fractions, self.seed)
        write_window_file(path, windows, split, self.spec, provenance={"source": "synthetic", **self.params})
        log.info("generated %d synthetic windows from %d stars in %.1f s -> %s",
                 len(split), self.n_stars, time.perf_counter() - t0, path)
        return path

    def build(self) -> dict[str, np.ndarray]:
        curves = generate_light_curves(self.n_stars, seed=self.seed, **self.generator)
        n_events = sum(len(np.unique(lc.flares.event_id[lc.flares.detectable.astype(bool)])) for lc in curves)
        n_neg = negatives_per_star(n_events, len(curves), self.spec.negatives_per_positive)
        parts = [cut_windows(lc, self.spec, np.random.default_rng([self.seed, i]), n_negatives=n_neg)
                 for i, lc in enumerate(curves)]
        return concat_windows(parts, self.spec)
