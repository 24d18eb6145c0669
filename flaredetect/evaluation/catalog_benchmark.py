"""Score detectors against flare catalogs on labelled real light curves, per population.

The labelled light curves of ``../shared/data`` (its README) fall into populations of stars
that behave differently: M dwarfs of the Günther et al. 2020 catalog (sector 2 ``tess/``, the
sector-1 SPOC files of catalogued stars), young fast rotators (``tess_young/`` sectors 1–2,
Günther labels), ultracool dwarfs (``fits/custom_aperture*``, the vetted ultracool-dwarf
table, with Günther's flares added in sectors 1–2), and SPOC stars of sector 1 that the
catalog lists no flare on (false events per day only). :func:`labelled_light_curves` finds
them; :func:`score_detector` scores a detector (one run, or the folds of a star-grouped
cross-validation: each light curve is scored by the first fold that never trained on its
star) at window and event level with block-bootstrap intervals, per population and pooled;
:func:`compare` gives paired intervals of the F1 difference of two detectors on the same light
curves. Pooled numbers are also given for fast rotators (Lomb–Scargle period < 1 d with a
sinusoid of at least 0.5 % peak to peak, :mod:`flaredetect.evaluation.rotation`) against all
other stars, whatever their population, and for the light curves Günther's catalog labels
against those only the vetted ultracool-dwarf table labels. ``flaredetect-benchmark``
(:mod:`flaredetect.benchmark`) runs them.

A catalog is not the truth: it misses weak flares, so an event without a catalog
counterpart is counted as false, and the per-day event rates are printed beside F1 to show how
many there are. Candidates the vetting rejected are flares that are not; unvetted candidates
of the ultracool-dwarf table are neither: an event on one is not counted at all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from flaredetect.catalogs import FlareCatalog, read_guenther2020, read_ilin_ucd, refine_peak_times
from flaredetect.data.lightcurve import CADENCE_DAYS, Flares, LightCurve
from flaredetect.evaluation.rotation import FAST_AMPLITUDE, FAST_PERIOD_DAYS, is_fast_rotator
from flaredetect.inference.metrics import (AMPLITUDE_BINS, bootstrap_f1, bootstrap_f1_difference, match_events,
                                           score_light_curve_predictions, summarise)

M_DWARFS = "M dwarfs (Günther)"
YOUNG = "young fast rotators"
UCDS = "ultracool dwarfs"
NO_FLARES = "SPOC stars without catalogued flares"
POPULATIONS = (M_DWARFS, YOUNG, UCDS)  # pooled over these; NO_FLARES gives false events per day
FAST = f"fast rotators (P < {FAST_PERIOD_DAYS:g} d, >= {FAST_AMPLITUDE:.1%} peak to peak), all populations"
SLOW = "other stars, all populations"
# the catalogs disagree (the vetted table lists about half of Günther's flares where both looked):
# pooled apart, a detector's precision and recall against each show which labels limit it
BY_GUENTHER = "labelled by Günther 2020 (with the vetted table on ultracool dwarfs of sectors 1-2)"
BY_TABLE_ONLY = "labelled by the vetted ultracool-dwarf table alone (sectors 3-13)"
GUENTHER_SECTOR1 = (358108509, 29779873, 31740375, 32150630)
SECTOR2_TESS = (2760232, 2761472, 5640393)


@dataclass(frozen=True)
class LabelledLightCurve:
    """A light-curve file, the population its star belongs to, and the catalogs that label it."""

    path: Path
    population: str
    catalogs: tuple[str, ...]


def _tic_of_fits(path: Path) -> int:
    return int(path.name.split("-")[2])


def _sector_of_fits(path: Path) -> int:
    return int(path.name.split("-")[1][1:])


def labelled_light_curves(data: str | Path) -> dict[str, list[LabelledLightCurve]]:
    """Every labelled light curve under ``data`` (the layout of ``../shared/data``) by population."""
    data = Path(data)
    sets: dict[str, list[LabelledLightCurve]] = {M_DWARFS: [], YOUNG: [], UCDS: [], NO_FLARES: []}
    sets[M_DWARFS] += [LabelledLightCurve(p, M_DWARFS, ("guenther",)) for p in sorted((data / "tess").glob("tic*_s02.npy"))]
    for p in sorted((data / "fits" / "spoc").glob("*-s0001-*_lc.fits")):
        if _tic_of_fits(p) in GUENTHER_SECTOR1:
            sets[M_DWARFS].append(LabelledLightCurve(p, M_DWARFS, ("guenther",)))
        else:
            sets[NO_FLARES].append(LabelledLightCurve(p, NO_FLARES, ("guenther",)))
    sets[YOUNG] += [LabelledLightCurve(p, YOUNG, ("guenther",))
                    for p in sorted((data / "tess_young").glob("tic*_s0[12].npy"))]
    for p in sorted((data / "fits" / "custom_aperture").glob("*_lc.fits")):
        sectors12 = _sector_of_fits(p) in (1, 2)
        sets[UCDS].append(LabelledLightCurve(p, UCDS, ("ucd", "guenther") if sectors12 else ("ucd",)))
    sets[UCDS] += [LabelledLightCurve(p, UCDS, ("ucd",))
                   for p in sorted((data / "fits" / "custom_aperture_s03-13").glob("*_lc.fits"))]
    return {k: v for k, v in sets.items() if v}


def legacy_light_curve_sets(data: str | Path) -> dict[str, list[LabelledLightCurve]]:
    """The three sets the README's results before the population benchmark used: sector 2,
    sector-1 Günther SPOC stars, and the custom-aperture development stars of sectors 1–2."""
    data = Path(data)
    spoc = [p for p in sorted((data / "fits" / "spoc").glob("*-s0001-*_lc.fits")) if _tic_of_fits(p) in GUENTHER_SECTOR1]
    benchmark = set(GUENTHER_SECTOR1) | set(SECTOR2_TESS)
    dev = [p for p in sorted((data / "fits" / "custom_aperture").glob("*-s000[12]-*_lc.fits"))
           if _tic_of_fits(p) not in benchmark]
    sets = {"sector 2 (tess/*.npy)": sorted((data / "tess").glob("tic*_s02.npy")),
            "sector 1 (fits/spoc, Günther stars)": spoc,
            "development set (fits/custom_aperture, other stars; chose predict's settings)": dev}
    return {name: [LabelledLightCurve(p, name, ("guenther",)) for p in files] for name, files in sets.items()}


def read_benchmark_catalogs(data: str | Path, searched_only: bool = False) -> dict[str, tuple]:
    """``{name: (flares, candidates not to count, searched stretches or None)}`` of the catalogs
    under ``data/catalogs``. ``searched_only``: the vetted ultracool-dwarf table counts only
    where its search ran (:mod:`flaredetect.catalog_coverage`, from its rows and the files of
    ``data/fits/custom_aperture*``); otherwise, and for Günther's catalog, everywhere."""
    data = Path(data)
    guenther = data / "catalogs" / "guenther2020.csv"
    if not guenther.is_file():
        raise FileNotFoundError(f"no Günther catalog at {guenther} (set --data or FLAREDETECT_SHARED_DATA)")
    catalogs = {"guenther": (read_guenther2020(guenther), None, None)}
    ucd = data / "catalogs" / "ilin_ucd_vetted_flares.csv"
    if ucd.is_file():
        searched = None
        if searched_only:
            from flaredetect.catalog_coverage import searched_stretches

            searched = searched_stretches(ucd, sorted((data / "fits").glob("custom_aperture*/*_lc.fits")))
        catalogs["ucd"] = (read_ilin_ucd(ucd), read_ilin_ucd(ucd, unvetted_only=True), searched)
    return catalogs


def searched_mask(lc: LightCurve, names, catalogs) -> np.ndarray | None:
    """Per cadence, whether any of the catalogs labelling ``lc`` searched it; None: all of it
    counts (a catalog without searched stretches counts everywhere)."""
    masks = []
    for name in names:
        searched = catalogs[name][2] if len(catalogs[name]) > 2 else None
        mask = None if searched is None else searched.mask(lc.tic, lc.sector, lc.time_btjd)
        if mask is None:
            return None
        masks.append(mask)
    return np.logical_or.reduce(masks) if masks else None


def searched_part(lc: LightCurve, prob: np.ndarray, events: dict, searched: np.ndarray | None,
                  flare_peaks_btjd: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(time_btjd, prob, events)`` of ``lc`` cut to the searched cadences: an event counts
    when its peak lies in them or it covers a catalogued flare (a listed flare was searched)."""
    if searched is None or searched.all():
        return np.asarray(lc.time_btjd), np.asarray(prob), events
    if len(events["peak_time_btjd"]):
        at = np.clip(np.searchsorted(lc.time_btjd, events["peak_time_btjd"]), 0, len(lc) - 1)
        _, on_flare = match_events(events["start_time_btjd"], events["stop_time_btjd"], flare_peaks_btjd,
                                   cadence_d=lc.cadence_d)
        keep = searched[at] | on_flare
        events = {k: np.asarray(v)[keep] for k, v in events.items()}
    return np.asarray(lc.time_btjd)[searched], np.asarray(prob)[searched], events


def catalog_flares(lc: LightCurve, names, catalogs) -> tuple[Flares, np.ndarray]:
    """The light curve's catalogued flares (peaks inside it, from every named catalog, a flare
    listed by two catalogs once) and the peaks of candidates that count neither way."""
    tol = 3.5 * lc.cadence_d
    t0, t1 = float(lc.time_btjd.min()), float(lc.time_btjd.max())
    peaks, amps, ignore = [], [], []
    for name in names:
        if name not in catalogs:
            raise KeyError(f"catalog {name!r} is not under the data directory's catalogs/")
        flares, candidates = catalogs[name][:2]
        own = flares.for_star(lc.tic, t0, t1, by="peak")
        if name == "ucd" and len(own):
            own = refine_peak_times(own, lc)  # the table gives the start, not the peak
        peaks.append(own.peak_time_btjd)
        amps.append(own.amplitude)
        if candidates is not None:  # an event on one of these and on no flare is not counted
            unvetted = candidates.for_star(lc.tic, t0, t1, by="peak")
            ignore.append(refine_peak_times(unvetted, lc).peak_time_btjd if len(unvetted) else np.zeros(0))
    # a flare a later catalog lists again (peak within the matching tolerance) is counted once
    peak, amp = (peaks[0], amps[0]) if peaks else (np.zeros(0), np.zeros(0))
    for more_peak, more_amp in zip(peaks[1:], amps[1:]):
        new = np.array([not np.any(np.abs(peak - p) <= tol) for p in more_peak], dtype=bool)
        peak, amp = np.concatenate([peak, more_peak[new]]), np.concatenate([amp, more_amp[new]])
    order = np.argsort(peak, kind="stable")
    peak, amp = peak[order], amp[order]
    n = len(peak)
    flares = Flares(peak_time_btjd=peak, amplitude=amp, fwhm_days=np.full(n, np.nan), start_time_btjd=peak,
                    stop_time_btjd=peak, event_id=np.arange(n, dtype=np.int64), ed_s=np.full(n, np.nan),
                    energy_erg=np.full(n, np.nan), detectable=np.ones(n, dtype=bool))
    return flares, (np.concatenate(ignore) if ignore else np.zeros(0))


def catalog_agreement(sets: dict, catalogs: dict, a: str = "guenther", b: str = "ucd", read=None) -> dict:
    """How two catalogs agree on the light curves both label: catalog ``b``'s flares scored as
    if they were a detector's events against catalog ``a`` (the benchmark's matching, 3
    cadences), pooled. It bounds no detector (one can agree with either catalog better than
    they agree with each other); it shows how differently the labels were drawn, so that a
    detector tuned to one pays against the other."""
    if read is None:
        from flaredetect.sources import read_light_curve as read
    counts = {"light_curves": 0, f"{a}_flares": 0, f"{b}_flares": 0, f"{a}_found_by_{b}": 0, f"{b}_true": 0}
    for items in sets.values():
        for item in items:
            if not {a, b} <= set(item.catalogs):
                continue
            try:
                lc = read(item.path)
            except ValueError:
                continue
            truth, _ = catalog_flares(lc, [a], catalogs)
            other, _ = catalog_flares(lc, [b], catalogs)
            recovered, true_event = match_events(other.peak_time_btjd, other.peak_time_btjd, truth.peak_time_btjd,
                                                 cadence_d=lc.cadence_d)
            counts["light_curves"] += 1
            counts[f"{a}_flares"] += len(truth.peak_time_btjd)
            counts[f"{b}_flares"] += len(other.peak_time_btjd)
            counts[f"{a}_found_by_{b}"] += int(recovered.sum())
            counts[f"{b}_true"] += int(true_event.sum())
    precision = counts[f"{b}_true"] / counts[f"{b}_flares"] if counts[f"{b}_flares"] else float("nan")
    recall = counts[f"{a}_found_by_{b}"] / counts[f"{a}_flares"] if counts[f"{a}_flares"] else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return {**counts, "precision": precision, "recall": recall, "f1": f1}


def drop_events_on(events: dict, peaks_btjd: np.ndarray, flare_peaks_btjd: np.ndarray) -> dict:
    """``events`` without those that cover only a not-to-count candidate (no catalogued flare)."""
    if not len(peaks_btjd) or not len(events["start_time_btjd"]):
        return events
    _, on_candidate = match_events(events["start_time_btjd"], events["stop_time_btjd"], peaks_btjd)
    _, on_flare = match_events(events["start_time_btjd"], events["stop_time_btjd"], flare_peaks_btjd)
    keep = ~on_candidate | on_flare
    return {k: np.asarray(v)[keep] for k, v in events.items()}


def trained_tics(cfg) -> set[int]:
    """TICs of real stars whose windows a run trained or selected its checkpoint on (its
    train and val splits; held-out stars and synthetic sources have none)."""
    import h5py
    from hydra.utils import instantiate

    tics: set[int] = {int(t) for t in (cfg.get("trained_tics") or [])}  # a bundled detector lists its own
    for name, source_cfg in (cfg.data.get("sources") or {}).items():
        if source_cfg is None or "SyntheticWindows" in str(source_cfg.get("_target_", "")):
            continue
        source = instantiate(source_cfg)
        try:
            path = source.prepare()  # a generated source (injected backgrounds) rebuilds its file
        except (OSError, ValueError) as err:
            raise SystemExit(f"data.sources.{name}: real training windows cannot be checked for overlap with "
                             f"the benchmark stars ({err}); refusing to score (use star-grouped folds)") from None
        with h5py.File(path, "r") as f:
            split, tic = f["split"][...], f["tic"][...]
        for split_name, rows in source.split_rows(split, tic).items():
            if split_name != "test":
                tics |= {int(t) for t in np.unique(tic[rows])}
    return tics


def threshold_window_scores(lc: LightCurve, length: int = 100) -> np.ndarray:
    """The 3-sigma rule's continuous score of non-overlapping windows (for its AUROC/AP)."""
    from flaredetect.baselines.threshold import score_to_probability, threshold_window_scores as scores_of

    n = len(lc) // length * length
    scores = scores_of(lc.flux_rel[:n].reshape(-1, length))
    extra = scores_of(lc.flux_rel[n:][None, :]) if len(lc) - n >= length // 2 else []
    return score_to_probability(np.concatenate([scores, extra]))


TUNING_GRID = {"threshold": (0.5, 0.7, 0.85, 0.95), "min_snr": (0.0, 3.0)}


def tune_event_settings(predictor, items, catalogs: dict, read=None, grid: dict = TUNING_GRID):
    """``(predictor with the best settings, the grid's scores)``: the event ``threshold`` and
    ``min_snr`` of ``grid`` with the best pooled event F1 on ``items`` (labelled light curves;
    for a cross-validation fold, those of the stars it trained on, never those it is scored on:
    the choice is nested). The network's probabilities are computed once per light curve."""
    from dataclasses import replace
    from itertools import product

    from flaredetect.inference.events import extract_events
    from flaredetect.inference.pipeline import check_light_curve

    if read is None:
        from flaredetect.sources import read_light_curve as read
    settings = [replace(predictor.events, threshold=float(t), min_snr=float(m))
                for t, m in product(grid["threshold"], grid["min_snr"])]
    counts = np.zeros((len(settings), 4), dtype=np.int64)  # true events, events, recovered flares, flares
    for item in items:
        try:
            lc = read(item.path)
            check_light_curve(lc, predictor.length)
        except ValueError:
            continue
        flares, ignore = catalog_flares(lc, item.catalogs, catalogs)
        searched = searched_mask(lc, item.catalogs, catalogs)
        prob = predictor.probabilities(lc)
        for k, params in enumerate(settings):
            events = drop_events_on(extract_events(lc, prob, params), ignore, flares.peak_time_btjd)
            events = searched_part(lc, prob, events, searched, flares.peak_time_btjd)[2]
            recovered, true_event = match_events(events["start_time_btjd"], events["stop_time_btjd"],
                                                 flares.peak_time_btjd, cadence_d=lc.cadence_d)
            counts[k] += (int(true_event.sum()), len(true_event), int(recovered.sum()), len(recovered))
    scores = []
    for params, (tp, n_events, rec, n_flares) in zip(settings, counts):
        precision = tp / n_events if n_events else 0.0
        recall = rec / n_flares if n_flares else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append({"threshold": params.threshold, "min_snr": params.min_snr, "precision": precision,
                       "recall": recall, "f1": f1, "light_curves": len(items)})
    best = max(range(len(settings)), key=lambda k: (scores[k]["f1"], settings[k].threshold))
    return replace(predictor, events=settings[best]), scores


_ROTATION: dict[str, tuple[float, float]] = {}


def _rotation(path: Path, lc: LightCurve) -> tuple[float, float]:
    """:func:`~flaredetect.evaluation.rotation.rotation_period`, once per file."""
    from flaredetect.evaluation.rotation import rotation_period

    if str(path) not in _ROTATION:
        _ROTATION[str(path)] = rotation_period(lc)
    return _ROTATION[str(path)]


def _fmt(x) -> str:
    return "  nan" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:5.2f}"


def _days(lc: LightCurve) -> float:
    return float(len(lc) * np.median(np.diff(lc.time_btjd))) if len(lc) > 1 else 0.0


HEADER = (f"{'light curve':28s} {'flares':>6s} {'events':>6s} | {'wP':>5s} {'wR':>5s} {'wF1':>5s} {'AUROC':>5s} "
          f"{'AP':>5s} | {'eP':>5s} {'eR':>5s} {'eF1':>5s} {'ev/d':>5s}")


def _line(name: str, summary: dict, days: float) -> str:
    w, e = summary["window"], summary["event"]
    rate = e["n_events"] / days if days else float("nan")
    return (f"{name[:28]:28s} {e['n_flares']:6d} {e['n_events']:6d} | {_fmt(w['precision'])} {_fmt(w['recall'])} "
            f"{_fmt(w['f1'])} {_fmt(w['auroc'])} {_fmt(w['ap'])} | {_fmt(e['precision'])} {_fmt(e['recall'])} "
            f"{_fmt(e['f1'])} {_fmt(rate)}")


def _pooled(parts: list[dict], days: float, out: Callable, label: str) -> dict:
    pooled = summarise(parts)
    e = pooled["event"]
    rate = e["n_events"] / days if days else None
    if not e["n_flares"]:  # nothing catalogued: every event is unconfirmed, no F1
        out(f"   no catalogued flares: {e['n_events']} events in {days:.1f} d ({rate:.2f} per day)")
        return {**pooled, "days": days, "events_per_day": rate}
    out(_line(label, pooled, days))
    bins = ", ".join(f"[{lo:g}, {hi:g}): {_fmt(r)}" for (lo, hi), r in zip(AMPLITUDE_BINS, e["recall_by_amp"]))
    out(f"   event recall by catalog amplitude: {bins}")
    ci = bootstrap_f1(parts)
    out(f"   {ci['level']:.0%} bootstrap intervals: window F1 [{ci['window_f1'][0]:.2f}, {ci['window_f1'][1]:.2f}], "
        f"event F1 [{ci['event_f1'][0]:.2f}, {ci['event_f1'][1]:.2f}]")
    return {**pooled, "bootstrap": ci, "days": days, "events_per_day": rate}


def score_detector(label: str, folds: list, sets: dict, catalogs: dict, window_score_fn=None,
                   read=None, out: Callable = print, per_light_curve: bool = False) -> tuple[dict, dict]:
    """Score a detector on every light curve of ``sets`` (population -> :class:`LabelledLightCurve`).

    ``folds``: ``(name, get_predictor, trained_tics)``; each light curve is scored by the first
    fold that never trained on its star (none: skipped and said); ``get_predictor()`` builds the
    fold's predictor on first use. Returns the numbers (per light curve, per population and
    pooled over :data:`POPULATIONS`) and the scored parts by population and light curve (for
    :func:`compare`)."""
    if read is None:
        from flaredetect.sources import read_light_curve as read
    out(f"\n=== {label}")
    result, scored, pooled_parts, pooled_days = {}, {}, [], 0.0
    for set_name, items in sets.items():
        out(f"-- {set_name} ({len(items)} light curves)")
        if per_light_curve:
            out(HEADER + ("  fold" if len(folds) > 1 else ""))
        parts, rows, days, skipped, all_days = [], [], 0.0, [], 0.0
        scored[set_name] = {}
        for item in items:
            try:
                lc = read(item.path)
            except ValueError as err:  # e.g. a file the reader refuses (negative median flux)
                skipped.append(" ".join(str(err).split()))
                out(f"   skipped: {skipped[-1]}")
                continue
            fold = next((f for f in folds if lc.tic not in f[2]), None)
            if fold is None:
                skipped.append(f"{item.path}: every run trained on its windows")
                out(f"   skipped {item.path.name}: every run trained on its windows")
                continue
            predictor = fold[1]()
            flares, ignore = catalog_flares(lc, item.catalogs, catalogs)
            started = time.perf_counter()
            prob, events = predictor.predict(lc)
            wall = time.perf_counter() - started
            events = drop_events_on(events, ignore, flares.peak_time_btjd)
            searched = searched_mask(lc, item.catalogs, catalogs)
            time_btjd, prob, events = searched_part(lc, prob, events, searched, flares.peak_time_btjd)
            window_scores = None
            if window_score_fn is not None:  # the rule's window scores, on the same (searched) windows
                window_scores = window_score_fn(lc if searched is None else lc.replace(time_btjd=lc.time_btjd[searched],
                                                           flux_rel=lc.flux_rel[searched],
                                                           flux_err=lc.flux_err[searched],
                                                           quality=lc.quality[searched], flare_mask=None))
            part = score_light_curve_predictions(time_btjd, prob, events, flares.peak_time_btjd, flares.amplitude,
                                                 predictor.events.threshold, window_scores=window_scores)
            name = f"TIC {lc.tic} s{lc.sector}"
            scored[set_name][name] = part
            parts.append(part)
            lc_days = _days(lc) * (1.0 if searched is None else float(searched.mean()))
            days += lc_days
            all_days += _days(lc)
            summary = summarise([part])
            if per_light_curve:
                out(_line(name, summary, lc_days) + (f"  {fold[0]}" if len(folds) > 1 else ""))
            period, amplitude = _rotation(item.path, lc)
            rows.append({"tic": lc.tic, "sector": lc.sector, "file": str(item.path), "catalogs": list(item.catalogs),
                         "wall_s": wall, "fold": fold[0], "days": lc_days, "rotation_period_days": period,
                         "rotation_amplitude": amplitude, **summary})
        if not parts:
            continue
        if days < all_days:
            out(f"   scored where the catalogs searched: {days:.0f} of {all_days:.0f} days ({days / all_days:.0%})")
        result[set_name] = {"per_light_curve": rows, "skipped": skipped,
                            "pooled": _pooled(parts, days, out, "POOLED")}
        if set_name in POPULATIONS:
            pooled_parts += parts
            pooled_days += days
    if len([s for s in result if s in POPULATIONS]) > 1:
        out(f"-- all populations ({', '.join(s for s in result if s in POPULATIONS)})")
        result["all populations"] = {"pooled": _pooled(pooled_parts, pooled_days, out, "POOLED")}
        scored["all populations"] = {f"{s}: {n}": p for s in POPULATIONS for n, p in scored.get(s, {}).items()}
    groups: dict[str, list] = {FAST: [], SLOW: [], BY_GUENTHER: [], BY_TABLE_ONLY: []}
    for set_name in POPULATIONS:
        for row in result.get(set_name, {}).get("per_light_curve", []):
            fast = is_fast_rotator(row["rotation_period_days"], row["rotation_amplitude"])
            groups[FAST if fast else SLOW].append((set_name, row))
            groups[BY_GUENTHER if "guenther" in row["catalogs"] else BY_TABLE_ONLY].append((set_name, row))
    for pair in ((FAST, SLOW), (BY_GUENTHER, BY_TABLE_ONLY)):
        if not all(groups[group] for group in pair):
            continue
        for group in pair:
            rows = groups[group]
            out(f"-- {group} ({len(rows)} light curves)")
            parts = [scored[s][f"TIC {r['tic']} s{r['sector']}"] for s, r in rows]
            result[group] = {"pooled": _pooled(parts, sum(r["days"] for _, r in rows), out, "POOLED"),
                             "light_curves": [r["file"] for _, r in rows]}
            scored[group] = {f"{s}: TIC {r['tic']} s{r['sector']}": scored[s][f"TIC {r['tic']} s{r['sector']}"]
                             for s, r in rows}
    return result, scored


def compare(label: str, scored_a: dict, scored_b: dict, out: Callable = print) -> dict:
    """Pooled F1 of A minus B per population, on the light curves both scored, with paired
    block-bootstrap intervals (:func:`~flaredetect.inference.metrics.bootstrap_f1_difference`)."""
    out(f"\n=== {label}: pooled F1 difference on the same light curves, paired 95% block bootstrap")
    result = {}
    for set_name, parts_a in scored_a.items():
        names = [n for n in parts_a if n in scored_b.get(set_name, {})]
        if not names:
            continue
        a, b = [parts_a[n] for n in names], [scored_b[set_name][n] for n in names]
        if not sum(p["n_flares"] for p in a):
            continue  # no catalogued flare: no F1 to compare
        d = bootstrap_f1_difference(a, b)
        out(f"-- {set_name} ({len(names)} light curves): window F1 {d['window_f1']:+.3f} "
            f"[{d['window_f1_interval'][0]:+.3f}, {d['window_f1_interval'][1]:+.3f}], "
            f"event F1 {d['event_f1']:+.3f} [{d['event_f1_interval'][0]:+.3f}, {d['event_f1_interval'][1]:+.3f}]")
        result[set_name] = {"light_curves": names, **d}
    return result
