"""Score whole-light-curve predictions on the labelled real TESS light curves.

Runs the same prediction code as ``flaredetect-predict`` on
``<data>/tess/*.npy`` (sector 2) and the sector-1 SPOC files of ``<data>/fits/spoc``
whose stars are in the Günther et al. 2020 catalog (plus, separately, the development set:
the custom-aperture light curves of other stars, on which predict's event and candidate
settings were chosen), and scores them against that
catalog two ways (see :mod:`flaredetect.inference.metrics`):
(a) non-overlapping 100-cadence windows, (b) events (±3 cadences of a catalog peak),
each pooled F1 with a 95 % block-bootstrap interval (:func:`~flaredetect.inference.metrics.bootstrap_f1`).
The 3-sigma threshold detector (:mod:`flaredetect.baselines.threshold`) goes through
the same scorer, and the model's F1 minus the detector's on the same light curves is printed
with a paired interval (:func:`~flaredetect.inference.metrics.bootstrap_f1_difference`). The model runs with ``flaredetect-predict``'s settings
(``conf/predict.yaml``: event threshold, minimum length, significance gate), never tuned on
these stars; ``--calibration-stars N`` chooses the event settings on N synthetic light
curves instead, ``--no-candidates`` scores the network alone. A star whose windows a run trained or
validated on (a real-data source in the run's config) is never scored by that run: give
several runs (leave-one-star-out folds, ``conf/experiment/real_finetune.yaml``) and each
star is scored by the first run that never saw it.

    python scripts/benchmark_real.py --ckpt outputs/train/<run> [<run> ...] [--heads cadence window] [--json out.json]
    python scripts/benchmark_real.py --ckpt <new run> --versus <old run>     # is the new model better? (paired)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from flaredetect.catalogs import read_guenther2020
from flaredetect.inference import EventParams, Predictor, SignificanceGate, load_net, window_geometry
from flaredetect.inference.candidates import threshold_predictor
from flaredetect.inference.calibrate import calibrate_events
from flaredetect.inference.metrics import (AMPLITUDE_BINS, bootstrap_f1, bootstrap_f1_difference,
                                          score_light_curve_predictions, summarise)
from flaredetect.sources import read_light_curve

REPO = Path(__file__).resolve().parents[1]
GUENTHER_SECTOR1 = (358108509, 29779873, 31740375, 32150630)


def default_data_dir() -> Path:
    return Path(os.environ.get("FLAREDETECT_SHARED_DATA", REPO.parent / "shared" / "data"))


def light_curve_sets(data: Path) -> dict[str, list[Path]]:
    spoc = sorted(p for p in (data / "fits" / "spoc").glob("*-s0001-*_lc.fits")
                  if int(p.name.split("-")[2]) in GUENTHER_SECTOR1)
    benchmark_tics = {int(p.name.split("-")[2]) for p in spoc} | {2760232, 2761472, 5640393}
    dev = sorted(p for p in (data / "fits" / "custom_aperture").glob("*-s000[12]-*_lc.fits")
                 if int(p.name.split("-")[2]) not in benchmark_tics)
    return {"sector 2 (tess/*.npy)": sorted((data / "tess").glob("tic*_s02.npy")),
            "sector 1 (fits/spoc, Günther stars)": spoc,
            "development set (fits/custom_aperture, other stars; chose predict's settings)": dev}


def trained_tics(cfg) -> set[int]:
    """TICs of real stars whose windows a run trained or selected its checkpoint on (its
    train and val splits; held-out stars and synthetic sources have none)."""
    import h5py
    from hydra.utils import instantiate

    tics: set[int] = set()
    for name, source_cfg in (cfg.data.get("sources") or {}).items():
        if source_cfg is None or "SyntheticWindows" in str(source_cfg.get("_target_", "")):
            continue
        source = instantiate(source_cfg)
        try:
            path = source.prepare()  # a generated source (injected backgrounds) rebuilds its file
        except (OSError, ValueError) as err:
            raise SystemExit(f"data.sources.{name}: real training windows cannot be checked for overlap with "
                             f"the benchmark stars ({err}); refusing to score (use leave-one-star-out)") from None
        with h5py.File(path, "r") as f:
            split, tic = f["split"][...], f["tic"][...]
        for split_name, rows in source.split_rows(split, tic).items():
            if split_name != "test":
                tics |= {int(t) for t in np.unique(tic[rows])}
    return tics


def threshold_window_score_fn(lc, length=100):
    from flaredetect.baselines.threshold import score_to_probability, threshold_window_scores

    n = len(lc) // length * length
    scores = threshold_window_scores(lc.flux_rel[:n].reshape(-1, length))
    extra = []
    if len(lc) - n >= length // 2:
        extra = threshold_window_scores(lc.flux_rel[n:][None, :])
    return score_to_probability(np.concatenate([scores, extra]))


def fmt(x) -> str:
    return "  nan" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:5.2f}"


def run_detector(label: str, folds: list, sets: dict, catalog, window_score_fn=None) -> tuple[dict, dict]:
    """Score every light curve with the first fold that never trained on its star.

    ``folds``: ``(name, get_predictor, skip_tics)``; ``get_predictor()`` builds (and
    calibrates) the fold's predictor on first use. Returns the printed numbers and, per set,
    the scored parts by light curve (for :func:`compare`)."""
    header = (f"{'light curve':28s} {'flares':>6s} {'events':>6s} | {'wP':>5s} {'wR':>5s} {'wF1':>5s} {'AUROC':>5s} "
              f"{'AP':>5s} | {'eP':>5s} {'eR':>5s} {'eF1':>5s} | {'wall s':>6s}" + ("  fold" if len(folds) > 1 else ""))
    print(f"\n=== {label}")
    result, scored = {}, {}
    for set_name, files in sets.items():
        print(f"-- {set_name}\n{header}")
        parts, rows = [], []
        scored[set_name] = {}
        for path in files:
            lc = read_light_curve(path)
            fold = next((f for f in folds if lc.tic not in f[2]), None)
            if fold is None:
                print(f"{path.name[:28]:28s} skipped: every run trained on its windows")
                continue
            predictor = fold[1]()
            flares = catalog.for_star(lc.tic, lc.time_btjd.min(), lc.time_btjd.max(), by="peak")
            started = time.perf_counter()
            prob, events = predictor.predict(lc)
            wall = time.perf_counter() - started
            wscores = window_score_fn(lc) if window_score_fn else None
            part = score_light_curve_predictions(lc.time_btjd, prob, events, flares.peak_time_btjd, flares.amplitude,
                                                 predictor.events.threshold, window_scores=wscores)
            parts.append(part)
            s = summarise([part])
            w, e = s["window"], s["event"]
            name = f"TIC {lc.tic} s{lc.sector}"
            scored[set_name][name] = part
            print(f"{name:28s} {e['n_flares']:6d} {e['n_events']:6d} | {fmt(w['precision'])} {fmt(w['recall'])} "
                  f"{fmt(w['f1'])} {fmt(w['auroc'])} {fmt(w['ap'])} | {fmt(e['precision'])} {fmt(e['recall'])} "
                  f"{fmt(e['f1'])} | {wall:6.2f}" + (f"  {fold[0]}" if len(folds) > 1 else ""))
            rows.append({"tic": lc.tic, "sector": lc.sector, "wall_s": wall, "fold": fold[0], **s})
        if not parts:
            continue
        pooled = summarise(parts)
        w, e = pooled["window"], pooled["event"]
        print(f"{'POOLED':28s} {e['n_flares']:6d} {e['n_events']:6d} | {fmt(w['precision'])} {fmt(w['recall'])} "
              f"{fmt(w['f1'])} {fmt(w['auroc'])} {fmt(w['ap'])} | {fmt(e['precision'])} {fmt(e['recall'])} "
              f"{fmt(e['f1'])} | {np.mean([r['wall_s'] for r in rows]):6.2f} (mean)")
        bins = ", ".join(f"[{lo:g}, {hi:g}): {fmt(r)}" for (lo, hi), r in zip(AMPLITUDE_BINS, e["recall_by_amp"]))
        print(f"   event recall by catalog amplitude: {bins}")
        ci = bootstrap_f1(parts)
        print(f"   {ci['level']:.0%} bootstrap intervals: window F1 [{ci['window_f1'][0]:.2f}, {ci['window_f1'][1]:.2f}], "
              f"event F1 [{ci['event_f1'][0]:.2f}, {ci['event_f1'][1]:.2f}]")
        pooled["bootstrap"] = ci
        result[set_name] = {"per_light_curve": rows, "pooled": pooled}
    return result, scored


def compare(label: str, scored_a: dict, scored_b: dict) -> dict:
    """Pooled F1 of A minus B per set, on the light curves both scored, with paired
    block-bootstrap intervals (:func:`~flaredetect.inference.metrics.bootstrap_f1_difference`)."""
    print(f"\n=== {label}: pooled F1 difference on the same light curves, paired 95% block bootstrap")
    result = {}
    for set_name, parts_a in scored_a.items():
        names = [n for n in parts_a if n in scored_b.get(set_name, {})]
        if not names:
            continue
        d = bootstrap_f1_difference([parts_a[n] for n in names], [scored_b[set_name][n] for n in names])
        print(f"-- {set_name} ({len(names)} light curves): window F1 {d['window_f1']:+.3f} "
              f"[{d['window_f1_interval'][0]:+.3f}, {d['window_f1_interval'][1]:+.3f}], "
              f"event F1 {d['event_f1']:+.3f} [{d['event_f1_interval'][0]:+.3f}, {d['event_f1_interval'][1]:+.3f}]")
        result[set_name] = {"light_curves": names, **d}
    return result


def lazy_predictor(net, geometry: dict, head: str, base_events: EventParams, args):
    """A fold's predictor, its event settings chosen on synthetic light curves on first use."""
    cache = []

    def get() -> Predictor:
        if cache:
            return cache[0]
        predictor = Predictor(net=net, length=geometry["length"], stride=args.stride, head=head,
                              max_gap_cadences=geometry["max_gap_cadences"], events=base_events,
                              gate=args.gate)
        if args.calibration_stars > 0:
            t0 = time.perf_counter()
            params, grid = calibrate_events(predictor, n_stars=args.calibration_stars)
            best = max(grid, key=lambda g: (g["f1"], g["threshold"]))
            print(f"[{head} head] event settings chosen on {args.calibration_stars} synthetic light curves "
                  f"({time.perf_counter() - t0:.0f} s): threshold {params.threshold}, min_cadences "
                  f"{params.min_cadences}, min_snr {params.min_snr} -> synthetic event P/R/F1 "
                  f"{best['precision']:.2f}/{best['recall']:.2f}/{best['f1']:.2f}")
            predictor = replace(predictor, events=params)
        cache.append(predictor)
        return predictor
    return get


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", help="training run dirs or .ckpt files, e.g. leave-one-star-out "
                        "folds: each star is scored by the first run that never trained on it "
                        "(omit to run only the threshold detector)")
    parser.add_argument("--versus", nargs="+", default=[], metavar="RUN",
                        help="a second model (its own folds) to compare --ckpt with: both scored alike, "
                             "then --ckpt minus --versus with paired intervals")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--heads", nargs="+", default=["cadence", "window"], choices=["cadence", "window"])
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--calibration-stars", type=int, default=0,
                        help="choose event settings on this many synthetic light curves (default 0: "
                             "flaredetect-predict's settings, conf/predict.yaml events/candidates)")
    parser.add_argument("--threshold", type=float, default=None, help="override events.threshold")
    parser.add_argument("--min-cadences", type=int, default=None, help="override events.min_cadences")
    parser.add_argument("--no-candidates", action="store_true",
                        help="the network alone, without predict's significance gate (conf/predict.yaml candidates)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = parser.parse_args(argv)
    if args.versus and not args.ckpt:
        parser.error("--versus needs --ckpt: the model to compare with it")
    if args.threads:
        torch.set_num_threads(args.threads)
    catalog_path = args.data / "catalogs" / "guenther2020.csv"
    if not catalog_path.is_file():
        print(f"no Günther catalog at {catalog_path} (set --data or FLAREDETECT_SHARED_DATA)", file=sys.stderr)
        return 2
    catalog = read_guenther2020(catalog_path)
    sets = light_curve_sets(args.data)
    report: dict = {}
    predict_cfg = OmegaConf.load(REPO / "conf" / "predict.yaml")
    base_events = EventParams(**OmegaConf.to_container(predict_cfg.events))
    base_events = replace(base_events, **{k: v for k, v in (("threshold", args.threshold),
                                                             ("min_cadences", args.min_cadences)) if v is not None})
    args.gate = None if args.no_candidates or not predict_cfg.get("candidates") else SignificanceGate(**predict_cfg.candidates)
    print(f"event settings: {base_events}\nsignificance gate: {args.gate or 'none (the network alone)'}")
    scored: dict = {}
    for role, ckpts in (("model", args.ckpt or []), ("versus model", args.versus)):
        runs = []
        for ckpt in ckpts:
            net, cfg = load_net(ckpt)
            runs.append((ckpt, net, window_geometry(cfg), trained_tics(cfg)))
        for head in args.heads:
            if head == "cadence" and any(getattr(net, "cadence_head", None) is None for _, net, _, _ in runs):
                print(f"\n(skipping head=cadence for the {role}: a run has no cadence head)")
                continue
            folds = [(Path(ckpt).name, lazy_predictor(net, geometry, head, base_events, args), skip)
                     for ckpt, net, geometry, skip in runs]
            if folds:
                gate = "the network alone" if args.gate is None else "vetting significance candidates"
                report[f"{role} ({head} head)"], scored[role, head] = run_detector(
                    f"{role}, {head} head, {gate}", folds, sets, catalog)
    baseline = threshold_predictor(base_events)
    report["threshold 3-sigma"], scored_threshold = run_detector(
        "3-sigma threshold detector (flags as probabilities; AUROC/AP from its continuous window score)",
        [("threshold", lambda: baseline, set())], sets, catalog, window_score_fn=threshold_window_score_fn)
    for (role, head), parts in scored.items():
        if role == "model":
            report[f"model ({head} head) - threshold 3-sigma"] = compare(f"model ({head} head) - 3-sigma detector",
                                                                         parts, scored_threshold)
            if ("versus model", head) in scored:
                report[f"model ({head} head) - versus model"] = compare(
                    f"model ({head} head) - versus model", parts, scored["versus model", head])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
