"""Score whole-light-curve predictions on the labelled real TESS light curves.

Runs the same prediction code as ``flaredetect-predict`` on
``<data>/tess/*.npy`` (sector 2) and the sector-1 SPOC files of ``<data>/fits/spoc``
whose stars are in the Günther et al. 2020 catalog, and scores them against that
catalog two ways (see :mod:`flaredetect.inference.metrics`):
(a) non-overlapping 100-cadence windows, (b) events (±3 cadences of a catalog peak).
The 3-sigma threshold detector (:mod:`flaredetect.baselines.threshold`) goes through
the same scorer. Event settings (threshold, minimum length) are chosen on held-out
*synthetic* light curves, never on these stars; stars whose windows were used in
training (a real-data source in the run's config) are refused.

    python scripts/benchmark_real.py --ckpt outputs/train/<run> [--heads cadence window] [--json out.json]
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

from flaredetect.catalogs import read_guenther2020
from flaredetect.inference import EventParams, Predictor, load_net, window_geometry
from flaredetect.inference.calibrate import calibrate_events
from flaredetect.inference.metrics import AMPLITUDE_BINS, score_light_curve_predictions, summarise
from flaredetect.sources import read_light_curve

REPO = Path(__file__).resolve().parents[1]
GUENTHER_SECTOR1 = (358108509, 29779873, 31740375, 32150630)


def default_data_dir() -> Path:
    return Path(os.environ.get("FLAREDETECT_SHARED_DATA", REPO.parent / "shared" / "data"))


def light_curve_sets(data: Path) -> dict[str, list[Path]]:
    spoc = sorted(p for p in (data / "fits" / "spoc").glob("*-s0001-*_lc.fits")
                  if int(p.name.split("-")[2]) in GUENTHER_SECTOR1)
    return {"sector 2 (tess/*.npy)": sorted((data / "tess").glob("tic*_s02.npy")),
            "sector 1 (fits/spoc, Günther stars)": spoc}


def trained_tics(cfg) -> set[int]:
    """TICs of real stars whose windows a run trained on (synthetic sources have none)."""
    import h5py

    tics: set[int] = set()
    for name, source in (cfg.data.get("sources") or {}).items():
        if source is None or "SyntheticWindows" in str(source.get("_target_", "")):
            continue
        path = source.get("path")
        if not path or not Path(path).is_file():
            raise SystemExit(f"data.sources.{name}: real training windows at {path!r} cannot be checked for "
                             "overlap with the benchmark stars; refusing to score (use leave-one-star-out)")
        with h5py.File(path, "r") as f:
            tics |= {int(t) for t in np.unique(f["tic"][...])}
    return tics


def threshold_scorer(lc):
    from flaredetect.baselines.threshold import threshold_flags

    return threshold_flags(lc.time_btjd, lc.flux_rel, n_sigma=3.0, min_points=3).astype(np.float32)


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


def run_detector(label: str, predictor: Predictor, sets: dict, catalog, skip_tics: set[int],
                 window_score_fn=None) -> dict:
    print(f"\n=== {label}  (event threshold {predictor.events.threshold}, min {predictor.events.min_cadences} "
          f"cadences, min_snr {predictor.events.min_snr}, merge gap {predictor.events.merge_gap_cadences})")
    header = (f"{'light curve':28s} {'flares':>6s} {'events':>6s} | {'wP':>5s} {'wR':>5s} {'wF1':>5s} {'AUROC':>5s} "
              f"{'AP':>5s} | {'eP':>5s} {'eR':>5s} {'eF1':>5s} | {'wall s':>6s}")
    result = {}
    for set_name, files in sets.items():
        print(f"-- {set_name}\n{header}")
        parts, rows = [], []
        for path in files:
            lc = read_light_curve(path)
            if lc.tic in skip_tics:
                print(f"{path.name[:28]:28s} skipped: its windows were used in training")
                continue
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
            print(f"{name:28s} {e['n_flares']:6d} {e['n_events']:6d} | {fmt(w['precision'])} {fmt(w['recall'])} "
                  f"{fmt(w['f1'])} {fmt(w['auroc'])} {fmt(w['ap'])} | {fmt(e['precision'])} {fmt(e['recall'])} "
                  f"{fmt(e['f1'])} | {wall:6.2f}")
            rows.append({"tic": lc.tic, "sector": lc.sector, "wall_s": wall, **s})
        if not parts:
            continue
        pooled = summarise(parts)
        w, e = pooled["window"], pooled["event"]
        print(f"{'POOLED':28s} {e['n_flares']:6d} {e['n_events']:6d} | {fmt(w['precision'])} {fmt(w['recall'])} "
              f"{fmt(w['f1'])} {fmt(w['auroc'])} {fmt(w['ap'])} | {fmt(e['precision'])} {fmt(e['recall'])} "
              f"{fmt(e['f1'])} | {np.mean([r['wall_s'] for r in rows]):6.2f} (mean)")
        bins = ", ".join(f"[{lo:g}, {hi:g}): {fmt(r)}" for (lo, hi), r in zip(AMPLITUDE_BINS, e["recall_by_amp"]))
        print(f"   event recall by catalog amplitude: {bins}")
        result[set_name] = {"per_light_curve": rows, "pooled": pooled}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="training run dir or .ckpt (omit to run only the threshold detector)")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--heads", nargs="+", default=["cadence", "window"], choices=["cadence", "window"])
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--calibration-stars", type=int, default=40,
                        help="synthetic light curves for choosing event settings (0: use --threshold)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--min-cadences", type=int, default=2)
    parser.add_argument("--merge-gap", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    catalog_path = args.data / "catalogs" / "guenther2020.csv"
    if not catalog_path.is_file():
        print(f"no Günther catalog at {catalog_path} (set --data or FLAREDETECT_SHARED_DATA)", file=sys.stderr)
        return 2
    catalog = read_guenther2020(catalog_path)
    sets = light_curve_sets(args.data)
    report: dict = {}
    base_events = EventParams(threshold=args.threshold, min_cadences=args.min_cadences,
                              merge_gap_cadences=args.merge_gap)
    if args.ckpt:
        net, cfg = load_net(args.ckpt)
        skip = trained_tics(cfg)
        geometry = window_geometry(cfg)
        for head in args.heads:
            if head == "cadence" and getattr(net, "cadence_head", None) is None:
                print(f"\n(skipping head=cadence: {args.ckpt} has no cadence head)")
                continue
            predictor = Predictor(net=net, length=geometry["length"], stride=args.stride, head=head,
                                  max_gap_cadences=geometry["max_gap_cadences"], events=base_events)
            if args.calibration_stars > 0:
                t0 = time.perf_counter()
                params, grid = calibrate_events(predictor, n_stars=args.calibration_stars)
                best = max(grid, key=lambda g: (g["f1"], g["threshold"]))
                print(f"\n[{head} head] event settings chosen on {args.calibration_stars} synthetic light curves "
                      f"({time.perf_counter() - t0:.0f} s): threshold {params.threshold}, min_cadences "
                      f"{params.min_cadences}, min_snr {params.min_snr} -> synthetic event P/R/F1 {best['precision']:.2f}/"
                      f"{best['recall']:.2f}/{best['f1']:.2f}")
                predictor = replace(predictor, events=params)
            report[f"model ({head} head)"] = run_detector(f"model, {head} head", predictor, sets, catalog, skip)
    baseline = Predictor(scorer=threshold_scorer, events=replace(base_events, threshold=0.5, min_cadences=1))
    report["threshold 3-sigma"] = run_detector("3-sigma threshold detector (flags as probabilities; AUROC/AP from "
                                               "its continuous window score)", baseline, sets, catalog, set(),
                                               window_score_fn=threshold_window_score_fn)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
