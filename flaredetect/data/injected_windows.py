"""Training windows from real light curves with injected flares (``data=injected``).

The network learns what real TESS backgrounds look like (their rotation, systematics,
scattered light, cosmic rays and noise) instead of the synthetic generator's idea of
them, with labels that are exact because the flares are ours (after flarenet's real-background
training set). Per light curve and ``realizations`` times, flares are drawn from
``injection`` (amplitude in the light curve's white-noise sigma, from below the noise
upward, and FWHM) and injected with :func:`flaredetect.injection.inject_flares`; windows are
cut by the shared :func:`~flaredetect.data.windowing.cut_windows`, positives where a
*detectable* injected flare peaks (its exposure-integrated peak reaches ``detect_sigma``).

The light curves' own flares are handled deliberately, never as negatives:

* catalogued flares (``catalogs``, e.g. Günther 2020 and the vetted ultracool-dwarf table)
  and stretches that the significance rule flags at high significance (``unlabelled``:
  ``min_points`` cadences ``n_sigma`` above the running median, padded) — the flares no
  catalog lists — are marked as flares but not as positives: no negative window contains
  them and no flare is injected on them, while a positive window that happens to hold one
  keeps it in its per-cadence mask;
* ``positive_catalogs`` (e.g. the same catalogs, vetted flares only) instead make their flares
  labelled positives — a window centred on each, its extent flare cadences — so the network
  learns what a catalog counts as a flare on real stars, not only on injected ones; on
  ``labelled_paths`` (light curves those catalogs label completely) the stretches the
  ``unlabelled`` rule flags that no catalog lists are then hard negatives instead of masked:
  the bumps a 3-sigma rule would take for flares and the catalogs' vetting did not;
* ``reader: tess20s`` reads the 20-s light curves of ``tess20s/`` with the flares injected
  into them and their truth (:func:`~flaredetect.data.tess20s.read_tess20s`): those flares
  are labelled positives like ``positive_catalogs``' (their own, uninjected flares are
  handled by ``unlabelled`` as anywhere);
* ``periodic`` (predict's ``periodic:`` settings) subtracts a fast rotator's or close binary's
  periodic light curve before anything else (:class:`~flaredetect.data.periodic.PeriodicBackground`),
  so the network trains on the flattened backgrounds that ``flaredetect-predict`` shows it;
* ``exclude_tics`` are never read; ``holdout_tics`` and ``folds``/``fold`` move stars to the
  test split exactly as for prepared files (:class:`~flaredetect.data.window_sources.WindowFileSource`),
  so benchmark and cross-validation stars are never trained on.

Splits are star-grouped from ``seed``; the window file is cached under ``cache_dir`` keyed
by every parameter and by the input files' names, sizes and modification times.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from flaredetect.data.binning import bin_light_curve
from flaredetect.data.lightcurve import Flares, LightCurve, robust_noise_sigma, runs, same_cadence
from flaredetect.data.periodic import PeriodicBackground
from flaredetect.data.splits import SPLITS, assign_splits
from flaredetect.data.window_file import cached_window_file, write_window_file
from flaredetect.data.window_sources import WindowFileSource
from flaredetect.data.windowing import (WindowSpec, concat_windows, cut_windows, flare_mask_from_flares,
                                       windows_centred_on)
from flaredetect.injection import DETECT_ON, InjectionGrid, inject_flares

log = logging.getLogger(__name__)
# what an injected flare that misses the detection rule becomes: masked (neither positive nor
# negative) or negative (its cadences are negatives, and a hard-negative window is centred on it)
UNDETECTED = ("masked", "negative")


def known_flare_mask(lc: LightCurve, catalog_flares: Flares | None, unlabelled: dict | None) -> np.ndarray:
    """Cadences of flares the light curve already has: catalogued extents, and stretches
    the significance rule flags at ``unlabelled`` (``n_sigma``, ``min_points``), padded by
    ``pad_cadences``."""
    from scipy.ndimage import binary_dilation

    from flaredetect.baselines.threshold import threshold_flags

    mask = np.zeros(len(lc), dtype=bool)
    if catalog_flares is not None and len(catalog_flares):
        mask |= flare_mask_from_flares(lc.replace(flares=catalog_flares, flare_mask=None))
    if unlabelled:
        flags = threshold_flags(lc.time_btjd, lc.flux_rel, n_sigma=float(unlabelled.get("n_sigma", 4.0)),
                                min_points=int(unlabelled.get("min_points", 3)))
        pad = int(unlabelled.get("pad_cadences", 10))
        mask |= binary_dilation(flags, iterations=pad) if pad and flags.any() else flags
    return mask


def _as_flares(lc: LightCurve, mask: np.ndarray) -> Flares:
    """Runs of ``mask`` as undetectable flares: no positive, no negative window there."""
    spans = runs(mask)
    start = np.array([lc.time_btjd[a] for a, _ in spans])
    stop = np.array([lc.time_btjd[b - 1] for _, b in spans])
    n = len(spans)
    return Flares(peak_time_btjd=0.5 * (start + stop) if n else np.zeros(0), amplitude=np.full(n, np.nan),
                  fwhm_days=np.full(n, np.nan), start_time_btjd=start if n else np.zeros(0),
                  stop_time_btjd=stop if n else np.zeros(0), event_id=np.arange(n, dtype=np.int64) + 1_000_000,
                  ed_s=np.full(n, np.nan), energy_erg=np.full(n, np.nan), detectable=np.zeros(n, dtype=bool))


def _touching(flags: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Cadences of the runs of ``flags`` that overlap ``other``."""
    out = np.zeros_like(flags)
    for a, b in runs(flags):
        if other[a:b].any():
            out[a:b] = True
    return out


def _concat(a: Flares, b: Flares) -> Flares:
    return Flares(**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in Flares.__dataclass_fields__})


def _read_tess20s(path, quality_bitmask, low_sigma):
    from flaredetect.data.tess20s import read_tess20s

    return read_tess20s(path, quality_bitmask, low_sigma)


def _read_light_curve(path, quality_bitmask, low_sigma):
    from flaredetect.sources.local import read_light_curve

    return read_light_curve(path, quality_bitmask, low_sigma=low_sigma)


READERS = {"light_curve": _read_light_curve, "tess20s": _read_tess20s}


class InjectedWindows:
    """Window source over real light curves with injected flares (see the module docstring).

    Parameters
    ----------
    paths : light-curve files, directories or globs (anything ``flaredetect-predict`` reads).
    catalogs : flare catalogs (:class:`~flaredetect.catalogs.FlareCatalog`, e.g. instantiated
        from ``conf/catalog``) whose flares are masked.
    realizations : independent injections per light curve.
    injection : :class:`~flaredetect.injection.InjectionGrid` fields.
    unlabelled : ``n_sigma``, ``min_points``, ``pad_cadences`` of the mask for flares no catalog
        lists (null: none).
    detect_sigma, detect_min_points : an injected flare labels a window only when this many
        consecutive cadences reach this many white-noise sigma.
    undetected : an injected flare below that rule is ``masked`` (in no window's negatives) or
        ``negative`` (its cadences count as not-flare and a hard negative is centred on it: the
        network learns the catalogs' detection limit instead of firing on faint bumps).
    detect_on : ``model`` (the rule on the noise-free template) or ``observed`` (on the
        template plus the light curve's own noise, against its residual sigma: what a catalog
        built with that rule would list; :func:`~flaredetect.injection.inject_flares`).
    positive_catalogs : catalogs whose flares are labelled positives (default none: all masked).
    labelled_paths : globs of the light curves the catalogs label completely; there, stretches
        the ``uncatalogued`` rule (``n_sigma``, ``min_points``) flags that no catalog lists are
        hard negatives (default none).
    searched : where the catalogs searched (:class:`~flaredetect.catalog_coverage.SearchedStretches`,
        e.g. instantiated from the vetted ultracool-dwarf table); on a labelled light curve it
        knows, outside those stretches the catalogs' silence is no label: bumps there are
        masked as on unlabelled light curves (``unlabelled``), never hard negatives. None:
        labelled light curves were searched whole.
    periodic : predict's ``periodic:`` settings (a mapping): light curves are flattened as predict
        flattens them before flares are injected; None (default): backgrounds as read.
    exclude_tics : stars never read.
    holdout_tics, folds, fold : stars moved to the test split (as for prepared files).
    reader : ``light_curve`` (any file ``flaredetect-predict`` reads) or ``tess20s`` (the injected
        20-s light curves, their truth labelled positives).
    cadence_s : the run's cadence: light curves of a shorter cadence are binned to it
        (:func:`~flaredetect.data.binning.bin_light_curve`, catalogued flares carried), those
        of a longer one skipped with a note; None: every light curve at its own cadence.
    """

    def __init__(self, paths, catalogs=(), seed: int = 42, cache_dir: str | Path = "data/injected",
                 window: dict | None = None, split_fractions=(0.8, 0.1, 0.1), realizations: int = 2,
                 injection: dict | None = None, unlabelled: dict | None = None, detect_sigma: float = 3.0, detect_min_points: int = 1,
                 undetected: str = "negative", detect_on: str = "model", positive_catalogs=(),
                 labelled_paths=(), uncatalogued: dict | None = None, searched=None, periodic: dict | None = None,
                 exclude_tics=(), holdout_tics=(), folds: int | None = None,
                 fold: int | None = None,
                 quality_bitmask="default", low_sigma: float | None = 5.0, splits=SPLITS,
                 cadence_s: float | None = None, reader: str = "light_curve") -> None:
        from flaredetect.sources.local import find_light_curve_files

        if realizations < 1:
            raise ValueError(f"data.sources.injected.realizations={realizations} must be >= 1")
        self.files = find_light_curve_files(list(paths) if not isinstance(paths, (str, Path)) else paths)
        if not self.files:
            raise ValueError(f"data.sources.injected.paths={list(paths) if not isinstance(paths, str) else paths}: "
                             "no light-curve files")
        self.catalogs = list(catalogs or [])
        self.seed = int(seed)
        self.cache_dir = Path(cache_dir)
        self.spec = WindowSpec(**(window or {}))
        self.split_fractions = tuple(float(f) for f in split_fractions)
        self.realizations = int(realizations)
        self.grid = InjectionGrid(**{k: tuple(v) if isinstance(v, (list, tuple)) else v
                                     for k, v in (injection or {}).items()})
        self.unlabelled = None if unlabelled is None else dict(unlabelled)
        self.detect_sigma = float(detect_sigma)
        self.detect_min_points = int(detect_min_points)
        if undetected not in UNDETECTED:
            raise ValueError(f"data.sources.injected.undetected={undetected!r} must be one of {list(UNDETECTED)}")
        self.undetected = undetected
        if detect_on not in DETECT_ON:
            raise ValueError(f"data.sources.injected.detect_on={detect_on!r} must be one of {list(DETECT_ON)}")
        self.detect_on = detect_on
        self.positive_catalogs = list(positive_catalogs or [])
        self.labelled_paths = [str(g) for g in (labelled_paths or ())]
        self.uncatalogued = {"n_sigma": 3.0, "min_points": 2, **dict(uncatalogued or {})}
        self.searched = searched
        if searched is not None and not self.labelled_paths:
            raise ValueError("data.sources.injected.searched needs labelled_paths: it says where on those "
                             "light curves the catalogs' silence counts")
        if self.labelled_paths and not self.positive_catalogs:
            raise ValueError("data.sources.injected.labelled_paths needs positive_catalogs: without catalogued "
                             "positives, uncatalogued bumps as negatives would teach that flares are not flares")
        try:
            self.periodic = PeriodicBackground.from_settings(periodic)
        except ValueError as exc:
            raise ValueError(f"data.sources.injected.{exc}") from None
        self.exclude_tics = {int(t) for t in (exclude_tics or ())}
        self.quality_bitmask = quality_bitmask
        self.low_sigma = low_sigma
        self.splits = tuple(splits)
        if cadence_s is not None and not cadence_s > 0:
            raise ValueError(f"cadence_s={cadence_s} must be a positive number of seconds")
        self.cadence_s = None if cadence_s is None else float(cadence_s)
        if reader not in READERS:
            raise ValueError(f"data.sources.injected.reader={reader!r} must be one of {list(READERS)}")
        self.reader = reader
        # the split logic of prepared files, over this source's cached file (checked here, early)
        self._split_args = {"splits": self.splits, "holdout_tics": holdout_tics, "folds": folds, "fold": fold}
        WindowFileSource(self.path, **self._split_args)

    def split_rows(self, split: np.ndarray, tic: np.ndarray) -> dict[str, np.ndarray]:
        return WindowFileSource(self.path, **self._split_args).split_rows(split, tic)

    def emptied_split_note(self, name: str, split: np.ndarray, tic: np.ndarray) -> str:
        return WindowFileSource(self.path, **self._split_args).emptied_split_note(name, split, tic)

    @property
    def params(self) -> dict:
        files = [(str(p), p.stat().st_size, int(p.stat().st_mtime)) for p in self.files]
        return {"files": files, "catalogs": [(getattr(c, "name", ""), len(c), getattr(c, "n_flares", 0))
                                             for c in self.catalogs],
                "seed": self.seed, "window": self.spec.__dict__, "split_fractions": self.split_fractions,
                "realizations": self.realizations, "injection": self.grid.__dict__, "unlabelled": self.unlabelled,
                "detect_sigma": self.detect_sigma, "detect_min_points": self.detect_min_points,
                **({"undetected": self.undetected} if self.undetected != "masked" else {}),  # older caches: masked
                **({"detect_on": self.detect_on} if self.detect_on != "model" else {}),  # older caches: model
                **({"positive_catalogs": [(getattr(c, "name", ""), len(c), getattr(c, "n_flares", 0))
                                          for c in self.positive_catalogs],
                    "labelled_paths": self.labelled_paths, "uncatalogued": self.uncatalogued}
                   if self.positive_catalogs else {}),
                **({"searched": self.searched.summary()} if self.searched is not None else {}),
                **({"periodic": self.periodic.settings()} if self.periodic is not None else {}),  # older caches: as read
                "exclude_tics": sorted(self.exclude_tics),
                "quality_bitmask": self.quality_bitmask, "low_sigma": self.low_sigma,
                **({"cadence_s": self.cadence_s} if self.cadence_s not in (None, 120.0) else {}),  # older caches: 2 min
                **({"reader": self.reader} if self.reader != "light_curve" else {}),
                "format": 1}

    @property
    def path(self) -> Path:
        return cached_window_file(self.cache_dir, "injected", self.params)[0]

    def prepare(self) -> Path:
        path, cached = cached_window_file(self.cache_dir, "injected", self.params)
        if cached:
            return path
        t0 = time.perf_counter()
        windows, report = self.build()
        if not len(windows["label"]):
            raise ValueError(f"data.sources.injected: no windows from {len(self.files)} file(s) "
                             f"({report['skipped'][:1] or 'every light curve too short?'})")
        split = assign_splits(windows["tic"], self.split_fractions, self.seed)
        write_window_file(path, windows, split, self.spec, provenance={"source": "injected", **self.params,
                                                                      **report})
        log.info("injected %d flares into %d light curves of %d stars: %d windows (%d positive) in %.1f s -> %s",
                 report["injected"], report["light_curves"], report["stars"], len(split), int(windows["label"].sum()),
                 time.perf_counter() - t0, path)
        for line in report["skipped"]:
            log.warning("skipped: %s", line)
        return path

    def _is_labelled(self, path: Path) -> bool:
        from fnmatch import fnmatch

        return any(fnmatch(str(path), g) or fnmatch(str(Path(path).resolve()), str(Path(g).resolve()))
                   for g in self.labelled_paths)

    def _catalog_flares(self, lc: LightCurve, catalogs=None) -> Flares | None:
        """The light curve's catalogued flares from every catalog (None if there are none)."""
        catalogs = self.catalogs if catalogs is None else catalogs
        parts = [c.for_light_curve(lc) for c in catalogs if lc.tic in c]
        parts = [p for p in parts if len(p)]
        if not parts:
            return None
        flares = parts[0]
        for other in parts[1:]:
            flares = _concat(flares, other)
        return flares

    def _positive_flares(self, lc: LightCurve, sigma: float) -> Flares:
        """Flares of ``positive_catalogs`` in ``lc`` as labelled positives (peaks moved to the
        brightest cadence of their extent, ids apart from injected ones), and with
        ``reader: tess20s`` the file's injected truth (peaks as injected) whose amplitude
        reaches ``detect_sigma`` white-noise ``sigma`` (the fainter ones are masked)."""
        from flaredetect.catalogs import refine_peak_times

        parts = []
        flares = self._catalog_flares(lc, self.positive_catalogs) if self.positive_catalogs else None
        if flares is not None and len(flares):
            parts.append((refine_peak_times(flares, lc), 2_000_000))
        if self.reader == "tess20s" and len(lc.flares):
            parts.append((lc.flares.select(lc.flares.amplitude >= self.detect_sigma * sigma), 3_000_000))
        out = Flares()
        for flares, id_base in parts:
            inside = (flares.peak_time_btjd >= lc.time_btjd[0]) & (flares.peak_time_btjd <= lc.time_btjd[-1])
            flares = flares.select(inside)
            fields = {k: getattr(flares, k) for k in Flares.__dataclass_fields__}
            fields["event_id"] = np.asarray(flares.event_id, dtype=np.int64) % 1_000_000 + id_base
            fields["detectable"] = np.ones(len(flares), dtype=bool)
            out = _concat(out, Flares(**fields))
        return out

    def build(self) -> tuple[dict[str, np.ndarray], dict]:
        """Windows of every light curve and realization, and a report (counts, skipped files)."""
        parts, skipped, n_injected, stars, n_lc, n_uncatalogued = [], [], 0, set(), 0, 0
        for path in self.files:
            try:
                lc = READERS[self.reader](path, self.quality_bitmask, low_sigma=self.low_sigma)
            except ValueError as exc:
                skipped.append(str(exc))
                continue
            if self.cadence_s is not None and not same_cadence(lc.cadence_seconds, self.cadence_s):
                if lc.cadence_seconds > self.cadence_s:
                    skipped.append(f"{path}: {lc.cadence_seconds:g}-s cadence, longer than cadence_s={self.cadence_s:g}")
                    continue
                lc = bin_light_curve(lc, self.cadence_s)
            if lc.tic is None or lc.sector is None:
                skipped.append(f"{path}: no TIC/sector (needed for star-grouped splits)")
                continue
            if lc.tic in self.exclude_tics:
                continue
            if self.periodic is not None:
                lc = self.periodic.remove(lc)
            sigma = robust_noise_sigma(lc.flux_rel)
            if not np.isfinite(sigma) or sigma <= 0:
                skipped.append(f"{path}: no white-noise sigma to scale injected flares")
                continue
            catalogued = self._catalog_flares(lc)
            if self.reader == "tess20s" and len(lc.flares):  # every flare of the file is known; faint ones masked
                catalogued = lc.flares if catalogued is None else _concat(catalogued, lc.flares)
            positives = self._positive_flares(lc, sigma)
            uncatalogued = np.zeros(len(lc), dtype=bool)
            if len(positives):
                catalogued = positives if catalogued is None else _concat(catalogued, positives)
            if self.labelled_paths and self._is_labelled(path):  # trust the catalogs: their misses are negatives
                known = known_flare_mask(lc, catalogued, None)
                uncatalogued = known_flare_mask(lc, None, {**self.uncatalogued, "pad_cadences": 0})
                uncatalogued &= ~_touching(uncatalogued, known)
                searched = self.searched.mask(lc.tic, lc.sector, lc.time_btjd) if self.searched is not None else None
                if searched is not None:  # where the catalogs never looked: unknown, as on unlabelled light curves
                    uncatalogued &= searched
                    known |= known_flare_mask(lc, None, self.unlabelled) & ~searched
            else:
                known = known_flare_mask(lc, catalogued, self.unlabelled)
            known_flares = _as_flares(lc, known)
            n_lc += 1
            stars.add(lc.tic)
            days = len(lc) * float(np.median(np.diff(lc.time_btjd))) if len(lc) > 1 else 0.0
            n = max(1, int(round(self.grid.per_day * days)))
            for r in range(self.realizations):
                rng = np.random.default_rng([self.seed, int(lc.tic), int(lc.sector) % 10_000, r])
                amp, fwhm = self.grid.draw(rng, n)
                injected, truth = inject_flares(lc, amp, fwhm, rng, avoid=known | uncatalogued,
                                                min_separation_days=self.grid.min_separation_days,
                                                detect_sigma=self.detect_sigma,
                                                detect_min_points=self.detect_min_points, sigma=sigma,
                                                detect_on=self.detect_on)
                n_injected += len(truth)
                detectable = truth.detectable.astype(bool)
                mask = injected.flare_mask
                if self.undetected == "negative":  # the catalogs' rule: below it, not a flare
                    mask = flare_mask_from_flares(injected.replace(flares=truth.select(detectable), flare_mask=None))
                injected = injected.replace(flares=_concat(_concat(truth, known_flares), positives),
                                            flare_mask=mask | known)
                n_pos = int(np.unique(truth.event_id[detectable]).size) + int(np.unique(positives.event_id).size)
                parts.append(cut_windows(injected, self.spec, rng,
                                         n_negatives=int(round(self.spec.negatives_per_positive * n_pos))))
                if self.undetected == "negative" and (~detectable).any():
                    missed = truth.select(~detectable)
                    centres = np.clip(np.searchsorted(injected.time_btjd, missed.peak_time_btjd), 0, len(lc) - 1)
                    parts.append(windows_centred_on(injected, self.spec, centres, rng))
                if uncatalogued.any():
                    centres = [a + int(np.argmax(lc.flux_rel[a:b])) for a, b in runs(uncatalogued)]
                    parts.append(windows_centred_on(injected, self.spec, np.asarray(centres), rng))
                    n_uncatalogued += len(centres)
        report = {"injected": n_injected, "light_curves": n_lc, "stars": len(stars), "skipped": skipped,
                  **({"uncatalogued_negatives": n_uncatalogued} if self.positive_catalogs else {})}
        return concat_windows(parts, self.spec), report
