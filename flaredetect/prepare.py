"""``flaredetect-prepare``: a flare catalog plus TESS light curves -> one star-split window file.

Pipeline (resumable, streaming, parallel over stars):

1. Check the run before any work, each failure one line naming the key or input:
   ``split_fractions`` (three shares >= 0 summing to 1, train > 0), the catalog (readable,
   required columns, at least one usable star; see :mod:`flaredetect.catalogs` for rows
   without a usable TIC or peak time), and the targets (at least one catalogued star among
   the light curves: without labels nothing can be prepared).
2. List the targets: for ``source.kind=local`` the light-curve files grouped by TIC (from
   the file name, else the FITS header); for ``source.kind=mast`` the TICs (default: every
   catalogued star plus ``negatives.tics``). Stars the catalog excluded (a row without a
   usable peak time: their flare times are unknown) are no targets, so they never give
   negatives; each is one ``skipped`` line.
3. Each star is one task in a process pool (``workers``): read and clean each of its light
   curves, check it, attach the catalogued flares, cut windows with the shared
   :func:`~flaredetect.data.windowing.cut_windows`, and commit the result atomically as
   ``<work_dir>/<config hash>/<star>.npz`` (temporary name + rename). A re-run skips
   committed stars; stars whose task failed unexpectedly (or, for MAST, whose download
   failed) are not committed and are retried. Per-star problems are one line per star in
   the manifest's ``skipped``/``warnings``; the run goes on.
4. Assemble: choose negatives to reach ``window.negatives_per_positive`` over the whole set,
   assign the star-grouped split (0 windows is an error), and append star by star through
   :class:`~flaredetect.data.window_file.WindowFileWriter` to ``windows.h5.new``.

Publishing: the previous ``windows.h5`` and its ``manifest.json`` are never removed before
the new pair is ready. The staged file is checked (complete, the planned window count),
then renamed over ``windows.h5`` and the new manifest over ``manifest.json`` (both carry the
same ``run_id``). A run that fails at any point writes ``manifest.failed.json``
(``complete: false``, ``error``, ``previous_output_kept``) beside them and leaves the previous
pair untouched; ``main`` prints the error as one line on stderr and exits 1. The next
successful run removes ``manifest.failed.json``.

Labels and masks
----------------
Positives are one window per catalogued flare *event* (the brightest component of a
complex flare), its peak placed up to ``window.max_peak_offset`` cadences from the centre.
Every catalogued flare overlapping a light curve is marked in ``flare_mask`` from the
catalog's extent (Günther: peak - 1 FWHM to peak + 3 FWHM; Pietras: from the duration; UCD:
start/stop; see :mod:`flaredetect.catalogs`), and its peak cadence in ``peak_mask``.
Negatives come from stretches whose whole stored window is free of catalogued flares, on
catalogued stars (``negatives.from_flaring_stars``) and on stars without catalogued flares
(``negatives.tics``: a list, or null for every such light curve). Each light curve offers a
pool of ``negatives.pool_per_light_curve`` candidates (a ``window.hard_negative_fraction``
of them centred on artefacts); at assembly ``negatives_per_positive * positives`` of them
are drawn, spread as evenly as the pools allow over stars (the thesis used ~1:2).

Every choice is seeded by ``(seed, TIC, sector)``, never by processing order, so a resumed
run writes the same file as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from flaredetect import CONFIG_DIR  # not via flaredetect.train: that would import torch into every worker
from flaredetect.data.lightcurve import Flares, LightCurve, cadence_days, robust_noise_sigma
from flaredetect.data.splits import SPLITS, split_stars
from flaredetect.data.window_file import WindowFileWriter, check_window_file
from flaredetect.data.windowing import (KIND_HARD_NEGATIVE, KIND_POSITIVE, WINDOW_FIELDS, WindowSpec,
                                        concat_windows, cut_windows, peak_indices, segments)
from flaredetect.utils import settings_of, to_builtin

log = logging.getLogger(__name__)
# lightkurve warns at import about an optional PRF dependency; it is irrelevant here.
warnings.filterwarnings("ignore", message=".*tpfmodel submodule.*")

# Per-window fields stored beside WINDOW_FIELDS in prepared real data.
EXTRA_FIELDS = {
    "start_time_btjd": "float64",  # time of the first stored cadence
    "peak_time_btjd": "float64",   # peak of the brightest catalogued flare in the centre crop (NaN if none)
}
ALL_FIELDS = {**WINDOW_FIELDS, **EXTRA_FIELDS}
MANIFEST = "manifest.json"                # describes the windows.h5 beside it
FAILED_MANIFEST = "manifest.failed.json"  # the latest failed run; removed by the next success

# TESS sectors last ~27.3 days; sector 1 is centred near BTJD 1339.2. This linear model
# matches every sector of years 1-6 to within ~3 days, enough to catch a light curve
# labelled with the wrong sector.
SECTOR1_MID_BTJD = 1339.2
SECTOR_DAYS = 27.3


def expected_sector_mid(sector: int) -> float:
    return SECTOR1_MID_BTJD + SECTOR_DAYS * (sector - 1)


def _one_line(text) -> str:
    return " ".join(str(text).split())


class TargetError(ValueError):
    """A target (light curve or star) cannot be used; the message is one line."""


class PrepareError(ValueError):
    """The run as configured cannot give a data set; the one-line message names the key or input."""


# ---------------------------------------------------------------------------- targets


def _tic_from_file(path: Path) -> int | None:
    """TIC from a SPOC/npy file name, else from the FITS primary header (cheap)."""
    from flaredetect.sources.local import _ids_from_name, _tic_from_meta

    tic, _ = _ids_from_name(path)
    if tic is not None:
        return tic
    if path.suffix.lower() == ".npy":
        return None
    try:
        from astropy.io import fits

        return _tic_from_meta(fits.getheader(path, 0))
    except Exception:  # damaged file: the worker reports it
        return None


def list_targets(source: dict, catalog_tics: set[int], negative_tics: list[int] | None) -> tuple[list[dict], list[dict]]:
    """Tasks (one per star) and target-level skips (one line each).

    Returns ``(targets, skipped)``; each target is ``{"key", "tic", "files"}`` (local) or
    ``{"key", "tic"}`` (MAST).
    """
    kind = source.get("kind", "local")
    wanted = source.get("tics")
    wanted = None if wanted is None else [int(t) for t in wanted]
    skipped: list[dict] = []
    if kind == "local":
        from flaredetect.sources.local import find_light_curve_files

        paths = source.get("paths")
        if not paths:
            raise TargetError("source.paths is empty: give directories, globs or files of light curves")
        files = find_light_curve_files(list(paths) if not isinstance(paths, str) else paths)
        by_key: dict[str, dict] = {}
        for path in files:
            tic = _tic_from_file(path)
            key = f"tic{tic:012d}" if tic is not None else f"file-{path.name}"
            if wanted is not None and tic not in wanted:
                continue
            by_key.setdefault(key, {"key": key, "tic": tic, "files": []})["files"].append(str(path))
        if not files:
            skipped.append({"target": str(paths), "reason": f"no light-curve files found in source.paths {list(paths)}"})
        have = {t["tic"] for t in by_key.values()}
        for tic in sorted(set(wanted or []) | set(negative_tics or [])):
            if tic not in have:
                skipped.append({"target": f"TIC {tic}",
                                "reason": f"TIC {tic}: no light curve file in source.paths"})
        return [by_key[k] for k in sorted(by_key)], skipped
    if kind == "mast":
        tics = wanted if wanted is not None else sorted(catalog_tics | set(negative_tics or []))
        return [{"key": f"tic{t:012d}", "tic": int(t)} for t in sorted(set(tics))], skipped
    raise TargetError(f"source.kind={kind!r} is unknown; expected 'local' or 'mast'")


# ---------------------------------------------------------------------------- per star


def _peak_times(windows: dict[str, np.ndarray], flares: Flares, spec: WindowSpec) -> np.ndarray:
    """Peak time of the brightest catalogued flare whose peak lies in each centre crop."""
    n = len(windows["label"])
    out = np.full(n, np.nan)
    if n == 0 or len(flares) == 0:
        return out
    half = 0.5 * cadence_days(windows["time_btjd"][0])
    t0 = windows["time_btjd"][:, spec.context] - half
    t1 = windows["time_btjd"][:, spec.context + spec.length - 1] + half
    peak = flares.peak_time_btjd
    inside = (peak[None, :] >= t0[:, None]) & (peak[None, :] <= t1[:, None])
    amp = np.where(np.isfinite(flares.amplitude), flares.amplitude, 0.0)
    best = np.argmax(np.where(inside, amp[None, :], -np.inf), axis=1)
    has = inside.any(axis=1)
    out[has] = peak[best[has]]
    return out


def _check_light_curve(lc: LightCurve, label: str, spec: WindowSpec, sector_tolerance_days: float | None,
                       name_sector: int | None) -> None:
    if name_sector is not None and lc.sector != name_sector:
        raise TargetError(f"{label}: sector mismatch: header says sector {lc.sector}, file name says {name_sector}")
    if sector_tolerance_days is not None and lc.sector > 0 and len(lc):
        mid = 0.5 * (float(lc.time_btjd[0]) + float(lc.time_btjd[-1]))
        expected = expected_sector_mid(lc.sector)
        if abs(mid - expected) > 0.5 * SECTOR_DAYS + sector_tolerance_days:
            guess = int(round((mid - SECTOR1_MID_BTJD) / SECTOR_DAYS)) + 1
            raise TargetError(f"{label}: sector mismatch: labelled sector {lc.sector} but its times "
                              f"(BTJD {lc.time_btjd[0]:.1f}-{lc.time_btjd[-1]:.1f}) lie in sector ~{guess}")
    segs = segments(lc.time_btjd, spec.max_gap_cadences, lc.cadence_d)
    longest = max((b - a for a, b in segs), default=0)
    if longest < spec.stored_length:
        raise TargetError(f"{label}: light curve shorter than a window: longest gap-free stretch is {longest} "
                          f"cadences, a window needs {spec.stored_length}")


def _load_light_curves(task: dict, settings: dict) -> tuple[list[tuple[str, LightCurve | Exception, int | None]], bool]:
    """``[(label, LightCurve | error, sector from file name)]`` and whether a failure is transient."""
    cleaning = settings["cleaning"]
    if settings["source"].get("kind", "local") == "mast":
        from flaredetect.sources.mast import MastSource

        src = settings["source"]
        mast = MastSource([task["tic"]], cache_dir=src["cache_dir"], sectors=src.get("sectors"),
                          author=src.get("author", "SPOC"), exptime=src.get("exptime", 120),
                          attempts=src.get("attempts", 3), backoff_s=src.get("backoff_s", 2.0),
                          quality_bitmask=cleaning["quality_bitmask"], low_sigma=cleaning["low_sigma"])
        # MastError propagates: network trouble is retried by the next run, never committed.
        return [(f"TIC {task['tic']} sector {lc.sector}", lc, None) for lc in mast.fetch(task["tic"])], False
    from flaredetect.sources.local import _ids_from_name, read_light_curve

    out = []
    for name in task["files"]:
        path = Path(name)
        try:
            lc = read_light_curve(path, cleaning["quality_bitmask"], low_sigma=cleaning["low_sigma"])
        except Exception as exc:  # one damaged file is one line, the star goes on
            out.append((path.name, exc, None))
            continue
        out.append((path.name, lc, _ids_from_name(path)[1]))
    return out, False


def process_star(task: dict, settings: dict) -> dict:
    """Cut one star's windows and commit them to ``settings['work_dir']``.

    Returns a small summary (also stored in the committed file). Never raises for bad
    data: those are one-line ``skipped``/``warnings`` entries. Raises only for transient
    failures (MAST download), which are then retried by the next run.
    """
    spec = WindowSpec(**settings["window"])
    seed = int(settings["seed"])
    flares_all: Flares = task.get("flares") or Flares()
    is_flare_star = bool(task.get("in_catalog"))
    skipped: list[dict] = []
    warnings: list[dict] = []
    seconds: list[float] = []
    parts: list[dict[str, np.ndarray]] = []
    seen_sectors: dict[int, str] = {}
    covered = np.zeros(len(flares_all), dtype=bool)
    n_flares_on_cadence = 0
    tic = task.get("tic")

    t_start = time.perf_counter()
    loaded, _ = _load_light_curves(task, settings)
    load_s = (time.perf_counter() - t_start) / max(len(loaded), 1)
    for label, lc, name_sector in loaded:
        t0 = time.perf_counter()
        try:
            if isinstance(lc, Exception):
                raise TargetError(_one_line(str(lc)))
            if lc.tic is None or lc.sector is None:
                raise TargetError(f"{label}: no {'TIC id' if lc.tic is None else 'sector'} in the header "
                                  f"(TICID/OBJECT, SECTOR) or the file name (e.g. tic002760232_s02.npy)")
            tic = lc.tic if tic is None else tic
            if lc.tic != tic:
                raise TargetError(f"{label}: TIC {lc.tic} in the header differs from TIC {tic} of its star group")
            _check_light_curve(lc, label, spec, settings.get("sector_tolerance_days"), name_sector)
            if lc.sector in seen_sectors:
                raise TargetError(f"{label}: duplicate: TIC {lc.tic} sector {lc.sector} already read from "
                                  f"{seen_sectors[lc.sector]}")
            seen_sectors[lc.sector] = label
            t_lo, t_hi = float(lc.time_btjd[0]), float(lc.time_btjd[-1])
            in_span = (flares_all.stop_time_btjd >= t_lo) & (flares_all.start_time_btjd <= t_hi)
            covered |= (flares_all.peak_time_btjd >= t_lo) & (flares_all.peak_time_btjd <= t_hi)
            flares = flares_all.select(in_span)
            if settings.get("refine_peaks") and len(flares):
                from flaredetect.catalogs import refine_peak_times

                flares = refine_peak_times(flares, lc)
            lc = lc.replace(flares=flares, noise_sigma=robust_noise_sigma(lc.flux_rel))
            peaks_in = flares.select((flares.peak_time_btjd >= t_lo) & (flares.peak_time_btjd <= t_hi))
            on_cadence = len(peak_indices(lc.replace(flares=peaks_in), detectable_only=True))
            n_flares_on_cadence += on_cadence
            if on_cadence < len(peaks_in):
                gap = peaks_in.peak_time_btjd[~_on_cadence(lc, peaks_in.peak_time_btjd)]
                warnings.append({"target": label, "reason": _one_line(
                    f"{label}: {len(gap)} catalogued flare peak(s) fall in a data gap or on removed cadences "
                    f"(no window): BTJD {', '.join(f'{t:.4f}' for t in gap[:5])}{' ...' if len(gap) > 5 else ''}")})
            pool = int(settings["negatives"]["pool_per_light_curve"])
            if not is_flare_star and settings["negatives"]["tics"] is not None \
                    and int(lc.tic) not in set(settings["negatives"]["tics"]):
                raise TargetError(f"{label}: TIC {lc.tic} has no catalogued flares and is not in negatives.tics")
            if is_flare_star and not settings["negatives"]["from_flaring_stars"]:
                pool = 0
            rng = np.random.default_rng([seed, int(lc.tic), int(lc.sector) % 10_000])
            windows = cut_windows(lc, spec, rng, n_negatives=pool)
            windows["start_time_btjd"] = windows["time_btjd"][:, 0].copy()
            windows["peak_time_btjd"] = _peak_times(windows, flares, spec)
            parts.append(windows)
        except Exception as exc:  # bad data for this light curve: one line, the run goes on
            reason = _one_line(str(exc)) if isinstance(exc, TargetError) else \
                _one_line(f"{label}: {type(exc).__name__}: {exc}")
            skipped.append({"target": label, "reason": reason})
        seconds.append(time.perf_counter() - t0 + load_s)

    if len(flares_all) and loaded and any(not isinstance(lc, Exception) for _, lc, _ in loaded):
        outside = flares_all.peak_time_btjd[~covered]
        if len(outside):
            warnings.append({"target": f"TIC {tic}", "reason": _one_line(
                f"TIC {tic}: {len(outside)} catalogued flare peak(s) outside its light curve(s) (other sectors?): "
                f"BTJD {', '.join(f'{t:.4f}' for t in outside[:5])}{' ...' if len(outside) > 5 else ''}")})

    windows = _concat(parts, spec)
    report = {"key": task["key"], "tic": None if tic is None else int(tic), "in_catalog": is_flare_star,
              "n_windows": int(len(windows["label"])), "n_positive": int((windows["kind"] == KIND_POSITIVE).sum()),
              "n_flares_on_cadence": int(n_flares_on_cadence), "light_curves": len(loaded),
              "seconds": seconds, "skipped": skipped, "warnings": warnings}
    commit_star(Path(settings["work_dir"]) / f"{task['key']}.npz", windows, report)
    return report


def _on_cadence(lc: LightCurve, times: np.ndarray) -> np.ndarray:
    idx = np.clip(np.searchsorted(lc.time_btjd, times), 1, len(lc) - 1)
    near = np.minimum(np.abs(lc.time_btjd[idx - 1] - times), np.abs(lc.time_btjd[idx] - times))
    return near <= 1.01 * lc.cadence_d


def _concat(parts: list[dict[str, np.ndarray]], spec: WindowSpec) -> dict[str, np.ndarray]:
    base = concat_windows(parts, spec)
    for key, dtype in EXTRA_FIELDS.items():
        base[key] = np.concatenate([p[key] for p in parts]).astype(dtype) if parts else np.zeros(0, dtype=dtype)
    return base


def commit_star(path: Path, windows: dict[str, np.ndarray], report: dict) -> None:
    """Write one star's result atomically: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, report=np.array(json.dumps(to_builtin(report))), **windows)
    os.replace(tmp, path)


def load_report(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["report"]))


def _init_worker() -> None:
    """Import the readers once per worker, so import time is not billed to the first star."""
    warnings.filterwarnings("ignore", message=".*tpfmodel submodule.*")
    import lightkurve  # noqa: F401
    import scipy.ndimage  # noqa: F401


def _run_task(task: dict, settings: dict) -> dict:
    """Pool entry point: a summary, or ``{"key", "failed": reason}`` (not committed, retried)."""
    try:
        return process_star(task, settings)
    except Exception as exc:
        return {"key": task["key"], "tic": task.get("tic"),
                "failed": _one_line(f"TIC {task.get('tic')}: {type(exc).__name__}: {exc} (retried on the next run)")}


# ---------------------------------------------------------------------------- assembly


def negative_quotas(capacity: dict[str, int], total: int) -> dict[str, int]:
    """Spread ``total`` negatives as evenly as possible over stars with ``capacity`` each
    (water filling in key order: deterministic)."""
    alloc = {k: 0 for k in capacity}
    active = [k for k in sorted(capacity) if capacity[k] > 0]
    remaining = int(total)
    while remaining > 0 and active:
        share = max(1, remaining // len(active))
        still = []
        for k in active:
            if remaining == 0:
                break
            take = min(share, capacity[k] - alloc[k], remaining)
            alloc[k] += take
            remaining -= take
            if alloc[k] < capacity[k]:
                still.append(k)
        active = still
    return alloc


def plan_assembly(work_dir: Path, keys: list[str], ratio: float, seed: int, fractions) -> dict:
    """Decide what goes in the file before writing it: each star's negative quota and split,
    and the totals (so an empty result is refused before anything is written)."""
    meta = {}
    for key in keys:
        with np.load(work_dir / f"{key}.npz", allow_pickle=False) as data:
            meta[key] = {"tic": data["tic"][...], "kind": data["kind"][...]}
    meta = {k: m for k, m in meta.items() if len(m["kind"])}
    n_pos = sum(int((m["kind"] == KIND_POSITIVE).sum()) for m in meta.values())
    capacity = {k: int((m["kind"] != KIND_POSITIVE).sum()) for k, m in meta.items()}
    quotas = negative_quotas(capacity, int(round(ratio * n_pos)))

    flaring = {int(m["tic"][0]) for m in meta.values() if (m["kind"] == KIND_POSITIVE).any()}
    others = {int(m["tic"][0]) for m in meta.values()} - flaring
    # Stratified by flaring / negative-only stars, so every split gets positives.
    split_of = {**split_stars(np.array(sorted(others), dtype=np.int64), fractions, seed),
                **split_stars(np.array(sorted(flaring), dtype=np.int64), fractions, seed)} if meta else {}
    return {"keys": sorted(meta), "quotas": quotas, "split_of": split_of,
            "n_positive": n_pos, "n_windows": n_pos + sum(quotas.values())}


def assemble(work_dir: Path, plan: dict, output: Path, spec: WindowSpec, seed: int, provenance: dict) -> dict:
    """Append every planned star to ``output`` (chosen negatives, assigned split); the counts per split."""
    quotas, split_of = plan["quotas"], plan["split_of"]
    counts = {s: {"windows": 0, "positives": 0, "negatives": 0, "hard_negatives": 0, "flares_in_positives": 0,
                  "stars": 0, "flaring_stars": 0} for s in SPLITS}
    with WindowFileWriter(output, spec, extra=EXTRA_FIELDS, provenance=provenance) as writer:
        for key in plan["keys"]:
            with np.load(work_dir / f"{key}.npz", allow_pickle=False) as data:
                windows = {k: data[k][...] for k in ALL_FIELDS}
            kind = windows["kind"]
            neg = np.flatnonzero(kind != KIND_POSITIVE)
            tic = int(windows["tic"][0])
            chosen = np.random.default_rng([seed, tic, 1]).permutation(neg)[:quotas[key]]
            rows = np.sort(np.concatenate([np.flatnonzero(kind == KIND_POSITIVE), chosen]))
            if not len(rows):
                continue
            windows = {k: v[rows] for k, v in windows.items()}
            code = split_of[tic]
            writer.append(windows, np.full(len(rows), code, dtype=np.uint8))
            c = counts[SPLITS[code]]
            pos = windows["kind"] == KIND_POSITIVE
            c["windows"] += len(rows)
            c["positives"] += int(pos.sum())
            c["negatives"] += int((~pos).sum())
            c["hard_negatives"] += int((windows["kind"] == KIND_HARD_NEGATIVE).sum())
            c["flares_in_positives"] += int(windows["n_flares"][pos].sum())
            c["stars"] += 1
            c["flaring_stars"] += int(pos.any())
    return counts


# ---------------------------------------------------------------------------- driver


def _settings(cfg: DictConfig, work_dir: Path) -> dict:
    window = OmegaConf.to_container(cfg.window, resolve=True)
    negatives = OmegaConf.to_container(cfg.negatives, resolve=True)
    negatives["tics"] = None if negatives.get("tics") is None else [int(t) for t in negatives["tics"]]
    catalog = OmegaConf.to_container(cfg.catalog, resolve=True)
    return {
        "window": window, "negatives": negatives, "seed": int(cfg.seed),
        "cleaning": OmegaConf.to_container(cfg.cleaning, resolve=True),
        "source": OmegaConf.to_container(cfg.source, resolve=True),
        "refine_peaks": bool(catalog.get("refine_peaks", False)),
        "sector_tolerance_days": cfg.get("sector_tolerance_days"),
        "catalog": catalog, "work_dir": str(work_dir),
    }


def _config_hash(settings: dict) -> str:
    """Hash of everything that changes a star's committed result (not the paths/workers)."""
    keep = {k: settings[k] for k in ("window", "negatives", "seed", "cleaning", "refine_peaks",
                                     "sector_tolerance_days", "catalog")}
    keep["source"] = {k: v for k, v in settings["source"].items() if k not in ("paths", "cache_dir", "tics")}
    keep["format"] = 1
    return hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load_catalog(cfg_catalog: dict):
    """Instantiate the configured catalog reader (``refine_peaks`` is ours, not the reader's)."""
    from hydra.utils import instantiate

    spec = {k: v for k, v in cfg_catalog.items() if k != "refine_peaks"}
    try:
        return instantiate(spec, _convert_="all")
    except Exception as exc:  # hydra wraps reader errors; show the reader's own one line
        cause = exc
        while getattr(cause, "__cause__", None) is not None:
            cause = cause.__cause__
        raise TargetError(_one_line(f"catalog {cfg_catalog.get('path')}: {cause}")) from exc


def check_split_fractions(value) -> tuple[float, float, float]:
    """The train/val/test shares, checked before any work (the split is only drawn at assembly)."""
    shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    try:
        shares = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        shares = ()
    if len(shares) != 3 or not np.isfinite(shares).all() or min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6:
        raise PrepareError(f"split_fractions={shown} must be three shares (train, val, test), each >= 0, "
                           f"summing to 1, e.g. [0.8, 0.1, 0.1]")
    if shares[0] == 0:
        raise PrepareError(f"split_fractions={shown} puts no star in train: the first (train) share must be > 0")
    return shares


def _checked_catalog(cfg_catalog: dict):
    """The catalog, or a PrepareError: an unreadable or empty catalog cannot label anything."""
    try:
        catalog = load_catalog(cfg_catalog)
    except TargetError as exc:
        raise PrepareError(str(exc)) from exc
    if len(catalog) == 0:
        why = (f"all {len(catalog.excluded)} star(s) excluded for unusable peak times" if catalog.excluded
               else "it lists no flares (after its row filter)")
        raise PrepareError(f"catalog.path={cfg_catalog.get('path')}: nothing to label: {why}")
    return catalog


def _excluded_stars(catalog) -> list[dict]:
    """One ``skipped`` line per star the catalog left out (its flare times are unknown)."""
    return [{"target": f"TIC {tic}", "reason": reason} for tic, reason in sorted(catalog.excluded.items())]


def _targets(settings: dict, catalog) -> tuple[list[dict], list[dict]]:
    """Targets with their flares attached; stars the catalog excluded are not targets at all
    (they would otherwise pass for flare-free stars and give negatives)."""
    try:
        targets, skipped = list_targets(settings["source"], set(catalog), settings["negatives"]["tics"])
    except TargetError as exc:
        raise PrepareError(str(exc)) from exc
    targets = [t for t in targets if t["tic"] not in catalog.excluded]
    for tgt in targets:
        if tgt["tic"] is not None and tgt["tic"] in catalog:
            tgt["flares"], tgt["in_catalog"] = catalog[tgt["tic"]], True
    return targets, skipped


def _require_catalogued_target(targets: list[dict], catalog, catalog_path, source: dict) -> None:
    """Without a catalogued star among the targets there is nothing to label: stop before any work."""
    if any(t.get("in_catalog") for t in targets):
        return
    where = f"source.paths={source.get('paths')}" if source.get("kind", "local") == "local" \
        else f"source.tics={source.get('tics')}"
    if not targets:
        raise PrepareError(f"no light curves to read: {where} yields no target")
    tics = sorted(t["tic"] for t in targets if t["tic"] is not None)
    shown = ", ".join(map(str, tics[:5])) + (" ..." if len(tics) > 5 else "")
    raise PrepareError(f"no target has catalogued flares: none of the {len(targets)} target(s) of {where} "
                       f"(TIC {shown or 'unknown'}) is among the {len(catalog)} stars of catalog.path={catalog_path}")


def _require_windows(plan: dict, n_stars: int, skipped: list[dict]) -> None:
    """A data set without windows is a failure, not a result. Negatives are drawn per
    positive, so no windows means not one catalogued flare gave a positive window."""
    if plan["n_windows"]:
        return
    first = f"; first: {skipped[0]['reason']}" if skipped else ""
    raise PrepareError(_one_line(f"no windows: no catalogued flare peak lies on a usable cadence of the {n_stars} "
                                 f"committed star(s); {len(skipped)} target(s) skipped, listed in "
                                 f"{FAILED_MANIFEST}{first}"))


def prepare(cfg: DictConfig) -> dict:
    """Run the whole preparation as configured; returns the manifest.

    Success replaces ``windows.h5`` and ``manifest.json`` together; a failure writes
    ``manifest.failed.json`` (``complete: false``, ``error``) and leaves the previous pair
    untouched. Unexpected exceptions are recorded the same way and re-raised.
    """
    output = Path(cfg.output_dir) / cfg.output_name
    manifest: dict = {"complete": False, "output": str(output), "run_id": uuid.uuid4().hex[:12],
                      "config": settings_of(cfg), "skipped": [], "warnings": []}
    try:
        _prepare(cfg, output, manifest)
    except PrepareError as exc:
        _record_failure(output, manifest, str(exc))
    except BaseException as exc:  # a bug or an interrupt: recorded, then shown with its traceback
        _record_failure(output, manifest, _one_line(f"{type(exc).__name__}: {exc}"))
        raise
    return manifest


def _prepare(cfg: DictConfig, output: Path, manifest: dict) -> None:
    """The pipeline; fills ``manifest`` in place and publishes only a complete, non-empty result."""
    started = time.perf_counter()
    fractions = check_split_fractions(cfg.split_fractions)
    settings = _settings(cfg, Path("."))
    work_dir = Path(cfg.work_dir) / _config_hash(settings)
    settings["work_dir"] = manifest["work_dir"] = str(work_dir)
    spec = WindowSpec(**settings["window"])

    catalog = _checked_catalog(settings["catalog"])
    log.info("catalog: %r", catalog)
    manifest["catalog"] = getattr(catalog, "name", "")
    manifest["skipped"] += _excluded_stars(catalog)
    targets, skipped = _targets(settings, catalog)
    manifest["skipped"] += skipped
    _require_catalogued_target(targets, catalog, settings["catalog"].get("path"), settings["source"])

    work_dir.mkdir(parents=True, exist_ok=True)
    done = {t["key"] for t in targets if (work_dir / f"{t['key']}.npz").is_file()}
    pending = [t for t in targets if t["key"] not in done]
    log.info("%d stars: %d already committed in %s, %d to process with %d worker(s)",
             len(targets), len(done), work_dir, len(pending), cfg.workers)
    failed = _run_pool(pending, settings, int(cfg.workers), len(targets), len(done), bool(cfg.progress))
    for item in failed:
        log.warning("failed: %s", item["failed"])
        manifest["skipped"].append({"target": f"TIC {item.get('tic')}", "reason": item["failed"]})

    keys = [t["key"] for t in targets if (work_dir / f"{t['key']}.npz").is_file()]
    reports = [load_report(work_dir / f"{k}.npz") for k in keys]
    seconds = [s for r in reports for s in r["seconds"]]
    for r in reports:
        manifest["skipped"] += r["skipped"]
        manifest["warnings"] += r["warnings"]
    plan = plan_assembly(work_dir, keys, float(settings["window"]["negatives_per_positive"]),
                         settings["seed"], fractions)
    _require_windows(plan, len(keys), manifest["skipped"])

    in_catalog_tics = {t["tic"] for t in targets if t.get("in_catalog")}
    provenance = {"source": "flaredetect-prepare", "catalog": manifest["catalog"], "run_id": manifest["run_id"],
                  "config_hash": work_dir.name, "window": settings["window"],
                  "negatives": settings["negatives"], "seed": settings["seed"]}
    counts = assemble(work_dir, plan, _staged(output), spec, settings["seed"], provenance)
    total = {k: sum(c[k] for c in counts.values()) for k in counts["train"]}
    manifest.update({
        "complete": True,
        "counts": {**counts, "total": total},
        "stars": {"targets": len(targets), "committed": len(keys), "failed": len(failed),
                  "in_catalog": len(in_catalog_tics), "excluded_by_catalog": len(catalog.excluded),
                  "catalog_stars_without_light_curve": len(set(catalog) - {t["tic"] for t in targets})
                  if settings["source"].get("kind", "local") == "local" else None},
        "light_curves": {"read": len(seconds),
                         "flares_on_cadence": sum(r["n_flares_on_cadence"] for r in reports)},
        "seconds_per_light_curve": {"mean": float(np.mean(seconds)) if seconds else None,
                                    "median": float(np.median(seconds)) if seconds else None,
                                    "total": float(np.sum(seconds))},
        "wall_time_s": time.perf_counter() - started,
    })
    for item in manifest["skipped"]:
        log.warning("skipped: %s", item["reason"])
    for item in manifest["warnings"]:
        log.info("note: %s", item["reason"])
    _publish(output, manifest)
    log.info("wrote %s: %d windows (%d positives) from %d stars; manifest %s", output, total["windows"],
             total["positives"], total["stars"], output.parent / MANIFEST)


def _run_pool(pending: list[dict], settings: dict, workers: int, n_total: int, n_done: int,
              progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    failed = []
    bar = tqdm(total=n_total, initial=n_done, unit="star", desc="prepare", disable=not progress,
               file=sys.stderr)
    try:
        if workers <= 0:
            for task in pending:
                result = _run_task(task, settings)
                if "failed" in result:
                    failed.append(result)
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")  # no forked h5py/lightkurve state
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
                futures = [pool.submit(_run_task, task, settings) for task in pending]
                for future in as_completed(futures):
                    result = future.result()
                    if "failed" in result:
                        failed.append(result)
                    bar.update(1)
    finally:
        bar.close()
    return sorted(failed, key=lambda r: r["key"])


def _staged(output: Path) -> Path:
    """Where the new window file is built and checked before it replaces ``output``."""
    return output.with_name(output.name + ".new")


def _write_json(path: Path, data: dict) -> None:
    """Write atomically (temporary name + rename): a reader sees the old or the new file."""
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(to_builtin(data), indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def _publish(output: Path, manifest: dict) -> None:
    """Check the staged file, then replace the window file and its manifest (same ``run_id``);
    only a kill between the two renames could pair a new file with the old manifest."""
    staged = _staged(output)
    n_windows = check_window_file(staged)["n_windows"]
    if n_windows != manifest["counts"]["total"]["windows"]:
        raise PrepareError(f"{staged}: holds {n_windows} windows, expected {manifest['counts']['total']['windows']}")
    manifest_path = output.parent / MANIFEST
    staged_manifest = manifest_path.with_name(manifest_path.name + ".new")
    _write_json(staged_manifest, manifest)
    os.replace(staged, output)
    os.replace(staged_manifest, manifest_path)
    (output.parent / FAILED_MANIFEST).unlink(missing_ok=True)  # describes an older, superseded run


def _record_failure(output: Path, manifest: dict, error: str) -> None:
    """Record a failed run beside the previous result, which stays as it was."""
    manifest.update({"complete": False, "error": error, "previous_output_kept": output.is_file()})
    _staged(output).unlink(missing_ok=True)
    log.error("%s", error)
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_json(output.parent / FAILED_MANIFEST, manifest)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="prepare")
def main(cfg: DictConfig) -> None:
    manifest = prepare(cfg)
    if not manifest.get("complete"):
        output = Path(manifest["output"])
        kept = f"previous {output.name} kept" if manifest.get("previous_output_kept") else f"no {output.name} written"
        print(_one_line(f"flaredetect-prepare: failed: {manifest.get('error', 'unknown error')} "
                        f"({kept}; details in {output.parent / FAILED_MANIFEST})"), file=sys.stderr)
        sys.exit(1)
    total = manifest["counts"]["total"]
    spl = manifest["seconds_per_light_curve"]
    print(f"\nwindow file:   {manifest['output']}\nmanifest:      {Path(manifest['output']).parent / MANIFEST}\n"
          f"windows:       {total['windows']} ({total['positives']} positive, {total['negatives']} negative) "
          f"from {total['stars']} stars\nskipped:       {len(manifest['skipped'])} target(s), see the manifest\n"
          f"s/light curve: {spl['mean']}\n")


if __name__ == "__main__":
    main()
