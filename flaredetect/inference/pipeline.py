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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
from torch import nn

from flaredetect.data.lightcurve import LightCurve, same_cadence
from flaredetect.data.periodic import PeriodicBackground
from flaredetect.inference.candidates import SignificanceGate
from flaredetect.inference.events import EventParams, extract_events, union_events
from flaredetect.inference.scoring import HEADS, REDUCTIONS, device_of, score_light_curves

class Loaded(NamedTuple):
    """One light curve as read for prediction: the cleaned curve, the input's cadence count,
    each cleaned cadence's index among the input's cadences, and the input's cadence numbers
    (None when it has none)."""

    lc: LightCurve
    n_input: int
    index: np.ndarray
    cadenceno: np.ndarray | None = None


_TIC = re.compile(r"^\s*(?:TIC)?[\s_-]*(\d{4,})(?:\s+sector\s*(\d+))?\s*$", re.IGNORECASE)


@dataclass
class Predictor:
    """A network (or any ``scorer(lc) -> prob``) plus window and event settings.

    ``net`` maps features (B, L, 3) to the model's output dict; alternatively ``scorer``
    gives per-cadence probabilities directly (the threshold baseline, test oracles).
    ``gate`` (a :class:`SignificanceGate`) keeps the probability only near significance
    candidates; None: the network alone. ``cadence_s``: the cadence the network was trained
    on; light curves of another cadence are refused (None: any cadence, as the 3-sigma
    rule). ``name`` says which detector it is (its checkpoint), for the outputs. ``vetter``
    (an :class:`~flaredetect.inference.vetting.EventVetter`) keeps only the events it accepts;
    ``proposals`` (a scorer, e.g. a 3-sigma rule) adds its events where the network has none,
    before the vetter judges them all (a vetter trained on such a union). ``device``: where
    the network runs (``auto``: CUDA when torch sees a GPU, else the CPU); the network is
    moved there when it first scores, so a predictor pickled to worker processes travels on
    the CPU. ``periodic`` (a :class:`~flaredetect.data.periodic.PeriodicBackground`) removes
    a fast rotator's or close binary's periodic light curve first: the network, the gate, the
    events and the vetter all see the light curve without it.
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
    cadence_s: float | None = None
    name: str = ""
    vetter: object = None
    refine_above: float | None = None
    refine_sigma: float = 1.5
    proposals: Callable[[LightCurve], np.ndarray] | None = None
    device: str = "cpu"
    periodic: PeriodicBackground | None = None

    def __post_init__(self) -> None:
        if (self.net is None) == (self.scorer is None):
            raise ValueError("Predictor needs exactly one of net= or scorer=")
        if self.head not in HEADS:
            raise ValueError(f"head={self.head!r} must be one of {list(HEADS)}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"reduce={self.reduce!r} must be one of {list(REDUCTIONS)}")
        if self.stride is not None and int(self.stride) < 1:
            raise ValueError(f"stride={self.stride} must be >= 1 (or null: half a window)")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")

    def probabilities(self, lc: LightCurve) -> np.ndarray:
        """Per-cadence flare probability of ``lc`` (gated when the predictor has a gate)."""
        return self.checked(lc, self.raw_probabilities([lc])[0])

    def raw_probabilities(self, lcs: list[LightCurve]) -> list[np.ndarray]:
        """The network's (or scorer's) probabilities of several light curves, their windows
        sharing the network's batches; unchecked and ungated (:meth:`checked`)."""
        lcs = [self.prepared(lc) for lc in lcs]
        if self.scorer is not None:
            return [np.asarray(self.scorer(lc), dtype=np.float32) for lc in lcs]
        device = resolve_device(self.device)
        if device_of(self.net) != device:
            self.net.to(device)
        return score_light_curves(self.net, lcs, self.length, self.stride, self.head, self.max_gap_cadences,
                                  self.reduce, self.batch_size, self.refine_above, self.refine_sigma, device)

    def checked(self, lc: LightCurve, prob: np.ndarray) -> np.ndarray:
        """``prob`` of ``lc`` checked (one value per cadence, all finite) and gated."""
        if prob.shape != (len(lc),):
            raise ValueError(f"scorer returned shape {prob.shape} for {len(lc)} cadences")
        bad = ~np.isfinite(prob)
        if bad.any():  # never "0 events" from a broken model
            raise ValueError(f"the model's probabilities are not finite at {int(bad.sum())} of {len(prob)} cadences "
                             f"(damaged checkpoint, or inputs far outside what it was trained on)")
        return prob if self.gate is None else self.gate.apply(self.prepared(lc), prob)

    def prepared(self, lc: LightCurve) -> LightCurve:
        """``lc`` as this predictor scores it: without its periodic part when it removes one."""
        return lc if self.periodic is None else self.periodic.remove(lc)

    def predict(self, lc: LightCurve, luminosity_erg_s: float | None = None, correction=None) -> tuple[np.ndarray, dict]:
        """``(per-cadence probability, events)`` of one light curve; ``correction`` (a
        :class:`~flaredetect.evaluation.recovery.RecoveryCorrection`) adds each event's
        ``recovery_probability`` and recovery-corrected ``ed_corr``."""
        chosen_predictor(lc, [self])
        prob = self.probabilities(lc)
        return prob, self.events_from(lc, prob, luminosity_erg_s, correction)

    def events_from(self, lc: LightCurve, prob: np.ndarray, luminosity_erg_s: float | None = None,
                    correction=None) -> dict:
        """The events of ``lc`` given its probabilities (from :meth:`probabilities`): the
        network's cost is paid once when several event settings are tried on one light curve."""
        lc = self.prepared(lc)
        events = extract_events(lc, prob, self.events, luminosity_erg_s)
        if self.proposals is not None:
            rule_events = replace(self.events, threshold=0.5, min_cadences=1)
            events = union_events(events, extract_events(lc, self.proposals(lc), rule_events, luminosity_erg_s), prob)
        if self.vetter is not None:
            events = self.vetter.filter(lc, prob, events)
        if correction is not None:
            events["recovery_probability"], events["ed_corr"] = correction.correct(events["amplitude"], events["ed_s"])
        return events


def resolve_device(device: str | None):
    """``torch.device`` of a ``device`` setting: ``auto`` (or None) is CUDA when torch sees a
    GPU, else the CPU; a device torch cannot use is a one-line ``ValueError``."""
    import torch

    name = "auto" if device is None else str(device)
    try:
        chosen = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    except RuntimeError as exc:
        raise ValueError(f"device={name!r} is not a torch device (auto, cpu, cuda, cuda:1, mps): {exc}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name} but torch sees no GPU (a CPU build of torch, or no GPU visible): "
                         f"use device=auto or device=cpu")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ValueError(f"device={name} but torch sees {torch.cuda.device_count()} GPU(s)")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name} but this torch has no MPS backend: use device=auto or device=cpu")
    if chosen.type == "cuda" and chosen.index is None:  # as parameters report it, so the net moves once
        chosen = torch.device("cuda", torch.cuda.current_device())
    return chosen


def refine_settings(refine) -> dict:
    """Predictor keywords of predict's ``refine`` block (None: score every window)."""
    if not refine:
        return {"refine_above": None}
    return {"refine_above": float(refine["above"]), "refine_sigma": float(refine.get("n_sigma", 1.5))}


def check_light_curve(lc: LightCurve, min_cadences: int = 1) -> None:
    """One-line ``ValueError`` for light curves that cannot be scored."""
    label = _label(lc)
    if len(lc) == 0:
        raise ValueError(f"{label}: no cadences")
    finite = np.isfinite(lc.flux_rel) & np.isfinite(lc.time_btjd)
    if not finite.all():
        raise ValueError(f"{label}: {int((~finite).sum())} non-finite flux/time values")
    if len(lc) < min_cadences:
        raise ValueError(f"{label}: only {len(lc)} cadences, shorter than one {min_cadences}-cadence window")


def _label(lc: LightCurve) -> str:
    return f"TIC {'unknown' if lc.tic is None else lc.tic} sector {'unknown' if lc.sector is None else lc.sector}"


def check_cadence(lc: LightCurve, predictors) -> "Predictor":
    """The predictor trained at ``lc``'s cadence (else one that takes any cadence); a
    one-line ``ValueError`` naming both cadences when there is none."""
    cadence = lc.cadence_seconds
    for predictor in predictors:
        if predictor.cadence_s is not None and same_cadence(cadence, predictor.cadence_s):
            return predictor
    for predictor in predictors:
        if predictor.cadence_s is None:
            return predictor
    known = ", ".join(f"{p.cadence_s:g} s" for p in predictors)
    raise ValueError(f"{_label(lc)}: a {cadence:g}-s light curve, but the detector{'s were' if len(predictors) > 1 else ' was'} "
                     f"trained on {known} data only: give a run trained at {cadence:g} s (flaredetect-train "
                     f"cadence_s={cadence:g}) in ckpt=[...], or use the 3-sigma rule (ckpt=threshold)")


def chosen_predictor(lc: LightCurve, predictors) -> "Predictor":
    """The predictor that scores ``lc`` (:func:`check_cadence`), after the checks that it can
    (:func:`check_light_curve`, at least one of its windows long)."""
    check_light_curve(lc)
    predictor = check_cadence(lc, predictors)
    check_light_curve(lc, predictor.length)
    return predictor


def parse_tic(text: str) -> int | None:
    """TIC id from 'TIC 123456', 'tic_123456', '123456' or 'TIC 123456 sector 5' (not a
    path), else None."""
    target = parse_target(text)
    return None if target is None else target[0]


def parse_target(text: str) -> tuple[int, int | None] | None:
    """``(TIC, sector or None)`` of a MAST target string (see :func:`parse_tic`), else None."""
    if Path(str(text)).exists():
        return None
    match = _TIC.match(str(text))
    return (int(match.group(1)), None if match.group(2) is None else int(match.group(2))) if match else None


def input_index(raw_time: np.ndarray, lc: LightCurve) -> np.ndarray:
    """Index of each cleaned cadence among the input file's cadences (matched by time)."""
    raw = np.asarray(raw_time, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(raw))
    order = finite[np.argsort(raw[finite], kind="stable")]
    pos = np.clip(np.searchsorted(raw[order], lc.time_btjd), 0, len(order) - 1)
    return order[pos]


def iter_targets(inputs, quality_bitmask="default", low_sigma: float | None = 5.0,
                 cache_dir: str | Path = "data/mast", tic: int | None = None,
                 sector: int | None = None, shard: int = 0,
                 num_shards: int = 1) -> Iterator[tuple[str, Callable[[], list], str | None]]:
    """Yield ``(name, load, stem)``; ``load()`` returns a list of :class:`Loaded` or raises
    with a one-line message; ``stem`` names a file's outputs
    (unique over all inputs, see :func:`file_stems`; None for TIC downloads, named by TIC
    and sector). Loading is deferred so a progress bar can count targets and one failure
    never stops the others. ``tic``/``sector`` override what files say (or do not say).
    Manifests (:mod:`~flaredetect.inference.manifest`) are expanded in place; ``shard`` of
    ``num_shards`` keeps every ``num_shards``-th input of the full list (names decided over
    the full list)."""
    from flaredetect.data.cleaning import clean
    from flaredetect.inference.manifest import check_shard, in_shard, is_manifest, read_manifest
    from flaredetect.sources import find_light_curve_files, read_raw_light_curve
    from flaredetect.sources.local import LightCurveReadError, _one_line

    check_shard(shard, num_shards)
    items = [inputs] if isinstance(inputs, (str, Path, int)) else list(inputs)
    expanded: list = []
    for item in items:
        expanded.extend(read_manifest(item) if not isinstance(item, int) and is_manifest(item) else [item])
    plan: list[tuple[str, object]] = []
    for item in expanded:
        target = (item, None) if isinstance(item, int) else parse_target(str(item))
        if target is not None:
            plan.append(("tic", target))
            continue
        files = find_light_curve_files(item)
        plan.extend(("file", path) for path in files) if files else plan.append(("missing", item))
    seen: set = set()
    plan = [p for p in plan if not (p in seen or seen.add(p))]  # the same input twice is scored once
    stems = file_stems([p for kind, p in plan if kind == "file"])
    plan = [p for k, p in enumerate(plan) if in_shard(k, shard, num_shards)]
    for kind, value in plan:
        if kind == "tic":
            def load_tic(target=value):
                from flaredetect.sources import MastSource

                lcs = MastSource([target[0]], cache_dir=cache_dir, quality_bitmask=quality_bitmask,
                                 low_sigma=low_sigma, sectors=target[1]).fetch(target[0])
                return [Loaded(lc, len(lc), np.arange(len(lc))) for lc in lcs]
            yield f"TIC {value[0]}" + (f" sector {value[1]}" if value[1] is not None else ""), load_tic, None
        elif kind == "missing":
            def missing(item=value):
                raise LightCurveReadError(f"{item}: no light-curve file matches (FITS, .npy, directory or glob)")
            yield str(value), missing, None
        else:
            def load_file(path=value):
                if path.is_file() and path.stat().st_size == 0:
                    raise LightCurveReadError(f"{path}: empty file (0 bytes)")
                raw = read_raw_light_curve(path, tic=tic, sector=sector)
                try:
                    lc = clean(raw, quality_bitmask, low_sigma=low_sigma)
                except ValueError as exc:
                    raise LightCurveReadError(_one_line(str(exc))) from exc
                index = input_index(raw.time_btjd, lc)
                return [Loaded(lc, len(raw), index, raw.cadenceno)]
            yield str(value), load_file, stems[value]


def _strip_suffix(name: str) -> str:
    for suffix in (".fits.gz", ".fits", ".fit", ".npy"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def file_stems(paths: list[Path]) -> dict[Path, str]:
    """Output stem of each input file: its name without the light-curve suffix. Files whose
    names collide get their parent folders prepended until they differ
    (``a/lc.npy``, ``b/lc.npy`` -> ``a_lc``, ``b_lc``), so no input overwrites another's outputs."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(_strip_suffix(path.name), []).append(path)
    stems: dict[Path, str] = {}
    for stem, group in groups.items():
        parents = [path.resolve().parent.parts for path in group]
        depth = 0
        named = {path: stem for path in group}
        while len(set(named.values())) < len(group) and depth < max(len(p) for p in parents):
            depth += 1
            named = {path: "_".join([*[x.strip("/") for x in parts[-depth:] if x.strip("/")], stem])
                     for path, parts in zip(group, parents)}
        stems.update(named)
    taken: dict[str, int] = {}
    for path in paths:  # a stem that still collides (e.g. with another file's prefixed stem)
        count = taken.get(stems[path], 0)
        taken[stems[path]] = count + 1
        if count:
            stems[path] = f"{stems[path]}_{count + 1}"
    return stems


def download_stem(lc: LightCurve) -> str:
    """Output stem of a downloaded light curve: ``tic<id>_s<sector>``."""
    return f"tic{lc.tic:09d}_s{lc.sector:02d}"


# settings that do not change an input's outputs (a shard re-run with another slice, more
# threads or no progress bar still resumes)
_NOT_OUTPUT_SETTINGS = {"shard", "num_shards", "resume", "progress", "input", "out_dir", "threads", "batch_size",
                        "cache_dir", "paths", "hydra", "task_name", "workers", "processes", "lc_batch", "device"}


def made_by_key(meta: dict | None, predictors) -> str:
    """What an input's outputs depend on: the checkpoints' (and event vetters') sha256 and a digest of the settings
    that change outputs (a completion marker is only trusted when it matches)."""
    import hashlib
    import json

    meta = meta or {}
    detectors = [d for d in meta.get("detectors", [meta.get("checkpoint") or {}]) if d]
    shas = ",".join(d["sha256"] + (f"+{d['vetter']['sha256']}" if d.get("vetter") else "")
                    for d in detectors if d.get("sha256"))
    settings = {k: v for k, v in (meta.get("settings") or {}).items() if k not in _NOT_OUTPUT_SETTINGS}
    used = [{k: d[k] for k in ("events", "candidates", "periodic") if k in d} for d in detectors]
    if any(used):  # the settings each run brought (its config's events:/candidates:) change outputs too
        settings["used"] = used
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{shas or ','.join(p.name or 'scorer' for p in predictors)}|{digest}"


@dataclass
class _Job:
    """What scoring one input needs besides the input: shared by threads, pickled to processes."""

    predictors: list
    out_dir: Path
    made_by: str
    luminosity_erg_s: float | None = None
    meta: dict | None = None
    correction: object = None
    catalog: object = None
    plot: bool = True
    timeseries: bool = True
    flare_tables: bool = True


def predict_targets(targets: list[tuple[str, Callable, str | None]], job: _Job) -> list[tuple[list[dict], tuple | None]]:
    """Score several inputs ``(name, load, stem)`` together (the windows of all their light
    curves share the network's batches) and write each one's outputs and completion marker.

    Per input: ``(per light-curve summaries, None)``, or ``([], (name, one-line reason))``
    when anything of it fails: an input is complete or not at all, and one bad input never
    fails another (a batch the network cannot score is retried input by input)."""
    from flaredetect.sources.local import _one_line

    def failure(name: str, exc: Exception) -> tuple[list, tuple]:
        reason = _one_line(str(exc)) or type(exc).__name__
        return [], (name, reason if name in reason else f"{name}: {reason}")

    read: list = []
    for name, load, _ in targets:
        try:
            loaded = load()
            read.append([(item, chosen_predictor(item.lc, job.predictors)) for item in loaded])
        except Exception as exc:  # one bad file is reported and skipped
            read.append(exc)
    raw: dict[tuple[int, int], np.ndarray | Exception] = {}
    walls: dict[tuple[int, int], float] = {}
    for predictor in {id(p): p for p in job.predictors}.values():
        keys = [(t, j) for t, items in enumerate(read) if not isinstance(items, Exception)
                for j, (_, chosen) in enumerate(items) if chosen is predictor]
        if keys:
            _score_together(predictor, [read[t][j][0].lc for t, j in keys], keys, raw, walls)
    results = []
    for t, ((name, _, stem), items) in enumerate(zip(targets, read)):
        if isinstance(items, Exception):
            results.append(failure(name, items))
            continue
        try:
            results.append((_write_target(name, stem, items, [raw[(t, j)] for j in range(len(items))],
                                          [walls[(t, j)] for j in range(len(items))], job), None))
        except Exception as exc:
            results.append(failure(name, exc))
    return results


def _score_together(predictor, lcs: list, keys: list, raw: dict, walls: dict) -> None:
    """``raw[key]`` (probabilities, or the exception) and ``walls[key]`` (its share of the
    scoring time, by cadences) of light curves ``lcs`` keyed ``(input, light curve)``; when
    a batch of several inputs fails, each input is scored alone to find the one at fault."""
    started = time.perf_counter()
    try:
        probs = predictor.raw_probabilities(lcs)
    except Exception as exc:
        inputs = sorted({t for t, _ in keys})
        if len(inputs) > 1:
            for t in inputs:
                mine = [k for k, key in enumerate(keys) if key[0] == t]
                _score_together(predictor, [lcs[k] for k in mine], [keys[k] for k in mine], raw, walls)
            return
        probs = [exc] * len(keys)
    wall = time.perf_counter() - started
    total = max(sum(len(lc) for lc in lcs), 1)
    for key, lc, prob in zip(keys, lcs, probs):
        raw[key], walls[key] = prob, wall * len(lc) / total


def _write_target(name: str, stem: str | None, items: list, raws: list, walls: list, job: _Job) -> list[dict]:
    """Events, outputs and completion marker of one input whose probabilities are scored."""
    from flaredetect.inference.manifest import write_marker
    from flaredetect.inference.writers import table_rows, write_outputs

    ok, rows = [], []
    for ((lc, n_input, index, cadenceno), predictor), raw, wall in zip(items, raws, walls):
        if isinstance(raw, Exception):
            raise raw
        started = time.perf_counter()
        prob = predictor.checked(lc, raw)
        events = predictor.events_from(lc, prob, job.luminosity_erg_s, job.correction)
        wall += time.perf_counter() - started
        aligned = np.full(n_input, np.nan, dtype=np.float32)
        aligned[index] = prob
        # the period a fast rotator's light curve was flattened at (None: scored as read)
        flattened = predictor.periodic.period_removed(lc) if predictor.periodic is not None else None
        table_meta = {**(job.meta or {}), "input": name, "threshold": predictor.events.threshold,
                      "periodic_period_days": flattened,
                      "head": predictor.head, "candidates": asdict(predictor.gate) if predictor.gate else None,
                      "detector": predictor.name, "detector_cadence_s": predictor.cadence_s}
        lc_stem = stem if stem is not None and len(items) == 1 else download_stem(lc)
        peaks = None
        if job.catalog is not None and lc.tic is not None and lc.tic in job.catalog:
            peaks = job.catalog.for_star(lc.tic, float(lc.time_btjd.min()), float(lc.time_btjd.max()),
                                         by="peak").peak_time_btjd
        paths, table = write_outputs(job.out_dir, lc_stem, lc, prob, events, predictor.events.threshold, aligned,
                                     table_meta, job.plot, input_index=index, cadenceno=cadenceno,
                                     catalog_peaks_btjd=peaks, timeseries=job.timeseries,
                                     flare_tables=job.flare_tables)
        ok.append({"name": name, "tic": lc.tic, "sector": lc.sector, "n_cadences": len(lc),
                   "cadence_s": lc.cadence_seconds, "detector": predictor.name,
                   "n_events": len(events["peak_time_btjd"]), "periodic_period_days": flattened, "wall_s": wall,
                   "outputs": {k: str(v) for k, v in paths.items()}})
        rows.append(table_rows(table))
    # the marker also holds the flare rows, so the catalog merge reads no table header;
    # the summary does not (it stays small however many inputs a run has)
    write_marker(job.out_dir, stem or name, {"sha256": job.made_by, "input": name,
                                             "light_curves": [{**lc, "flares": r} for lc, r in zip(ok, rows)]})
    return ok


def run_prediction(predictor: "Predictor | list[Predictor]", inputs, out_dir: str | Path, *,
                   luminosity_erg_s: float | None = None,
                   quality_bitmask="default", low_sigma: float | None = 5.0, plot: bool = True,
                   progress: bool = True, cache_dir: str | Path = "data/mast", log=print,
                   tic: int | None = None, sector: int | None = None, meta: dict | None = None,
                   correction=None, catalog=None, shard: int = 0, num_shards: int = 1,
                   resume: bool = False, timeseries: bool = True, workers: int = 0,
                   processes: int = 0, threads: int | None = None, flare_tables: bool = True,
                   lc_batch: int | None = None) -> dict:
    """Predict every target of ``inputs`` and write its outputs under ``out_dir`` (created
    here, before anything is read).

    ``predictor`` may be a list, one per cadence: each light curve is scored by the one
    trained at its cadence (:func:`check_cadence`).

    ``workers`` threads read and clean the next inputs while the network scores (0: in
    turn; at most ``2 * workers`` inputs held at once). ``processes`` > 1 instead scores
    inputs in that many worker processes, each with its own copy of the model and
    ``threads`` torch threads (default: the CPU's threads shared out); on a few CPU cores
    this beats threads, because the network's small matrices do not scale over threads.
    Outputs are the same either way. ``lc_batch`` inputs are scored together: the windows
    of all their light curves share the network's batches (what keeps a GPU busy; the
    results are those of scoring each alone, up to float rounding; None: 1 on the CPU, where it
    gains nothing, :data:`GPU_LC_BATCH` on a GPU). ``timeseries`` writes each light
    curve's ``_prob.ecsv``, ``flare_tables`` its ``_flares.ecsv`` (the completion markers hold
    the rows either way, for ``flaredetect-catalog``). ``shard``/``num_shards`` score a deterministic slice of the inputs; every input's outputs
    end with a completion marker naming the checkpoint (``meta["checkpoint"]["sha256"]``),
    and with ``resume`` the inputs already complete for that checkpoint are skipped
    (:mod:`~flaredetect.inference.manifest`).

    Returns ``{"ok": [per light-curve summary dicts], "failed": [(name, one-line reason)],
    "resumed": number of inputs skipped as complete}``, in input order;
    ``meta`` (provenance: checkpoint, version, settings) goes into every table's metadata;
    ``correction`` (a :class:`~flaredetect.evaluation.recovery.RecoveryCorrection`) adds each
    event's ``recovery_probability`` and recovery-corrected ``ed_corr``; ``catalog`` (a
    :class:`~flaredetect.catalogs.FlareCatalog`) marks its flare peaks in the plots.
    """
    from tqdm import tqdm

    from flaredetect.inference.manifest import read_marker

    if int(processes) < 0:
        raise ValueError(f"processes={processes} must be >= 0")
    predictors = list(predictor) if isinstance(predictor, (list, tuple)) else [predictor]
    if lc_batch is None:
        on_gpu = any(p.net is not None and resolve_device(p.device).type != "cpu" for p in predictors)
        lc_batch = GPU_LC_BATCH if on_gpu else 1
    if int(lc_batch) < 1:
        raise ValueError(f"lc_batch={lc_batch} must be >= 1 (inputs scored together)")
    lc_batch = int(lc_batch)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target_args = dict(inputs=inputs, quality_bitmask=quality_bitmask, low_sigma=low_sigma, cache_dir=cache_dir,
                       tic=tic, sector=sector, shard=shard, num_shards=num_shards)
    targets = list(iter_targets(**target_args))
    made_by = made_by_key(meta, predictors)
    job = _Job(predictors, out_dir, made_by, luminosity_erg_s, meta, correction, catalog, plot, timeseries,
               flare_tables)
    ok, failed, resumed = [], [], 0
    todo = []
    for k, (name, load, stem) in enumerate(targets):
        done = read_marker(out_dir, stem or name, made_by) if resume else None
        if done is not None:
            ok.extend({k: v for k, v in lc.items() if k != "flares"} for lc in done["light_curves"])
            resumed += 1
        else:
            todo.append(k)
    chunks = [todo[i:i + lc_batch] for i in range(0, len(todo), lc_batch)]
    if int(processes) > 1 and len(todo) > 1:
        results = (r for chunk in in_processes(job, target_args, chunks, int(processes), threads) for r in chunk)
    else:
        loads = iter(prefetched([targets[k][1] for k in todo], workers, ahead=lc_batch))
        results = (r for chunk in chunks
                   for r in predict_targets([(targets[k][0], next(loads), targets[k][2]) for k in chunk], job))
    bar = tqdm(total=len(todo), desc="light curves", unit="lc", disable=not progress)
    for k, (summaries, failure) in zip(todo, results):
        bar.update(1)
        bar.set_postfix_str(Path(targets[k][0]).name[-40:], refresh=False)
        ok.extend(summaries)
        if failure is not None:
            failed.append(failure)
            log(f"FAILED {failure[1]}")
    bar.close()
    return {"ok": ok, "failed": failed, "resumed": resumed}


GPU_LC_BATCH = 32  # inputs scored together on a GPU by default (a 2-minute sector is a few hundred windows)

_CHILD: dict = {}


def _start_child(job: _Job, target_args: dict, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _CHILD["job"], _CHILD["targets"] = job, list(iter_targets(**target_args))


def _child_predict(chunk: list[int]) -> list[tuple[list[dict], tuple | None]]:
    return predict_targets([_CHILD["targets"][k] for k in chunk], _CHILD["job"])


def in_processes(job: _Job, target_args: dict, chunks: list[list[int]], processes: int, threads: int | None = None):
    """``predict_targets`` of each chunk of target indices in ``processes`` spawned processes,
    yielded in order with at most ``2 * processes`` chunks in flight (memory stays bounded
    whatever the number of inputs). Each process expands the inputs itself (load functions
    do not pickle) and gets the job (model included) once."""
    import multiprocessing
    import os
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    try:
        pickle.dumps(job)
    except Exception as exc:
        raise ValueError(f"processes={processes}: this detector cannot be sent to worker processes "
                         f"({type(exc).__name__}: {exc}); use processes=0") from None
    if threads is None:
        threads = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
                      // processes)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start_child,
                             initargs=(job, target_args, int(threads))) as pool:
        for future in submitted_in_order(pool, _child_predict, chunks, 2 * processes):
            yield future.result()


def submitted_in_order(pool, fn: Callable, items, in_flight: int):
    """Futures of ``fn(item)`` for ``items``, in order, with at most ``in_flight`` submitted
    ahead of the one yielded (memory stays bounded whatever the number of items)."""
    from collections import deque

    ahead: deque = deque()
    it = iter(items)
    for item in it:
        ahead.append(pool.submit(fn, item))
        if len(ahead) >= in_flight:
            break
    while ahead:
        future = ahead.popleft()
        nxt = next(it, None)
        if nxt is not None:
            ahead.append(pool.submit(fn, nxt))
        yield future


def prefetched(loads: list, workers: int, ahead: int = 1):
    """``load`` callables in order, each wrapped so that calling it returns (or raises) its
    result; with ``workers`` > 0 up to ``ahead + 2 * workers`` of them run ahead in threads
    (reading FITS and cleaning release the GIL in numpy/astropy while the network scores a
    batch of ``ahead`` inputs)."""
    if workers <= 0:
        yield from loads
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in submitted_in_order(pool, lambda load: load(), loads, ahead + 2 * workers):
            yield future.result
