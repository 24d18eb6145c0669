"""20-second benchmark on ../shared/data/tess20s (issue 16): recall of the injected flares
above 5 noise sigma (all, and FWHM < 4 min) at <= 0.5 false events per day of the same
light curves without the flares, for the 20-s model (each star scored by a fold that never
trained on it), the 3-sigma rule at 20 s, and the same light curves binned to 2 minutes
(a 2-minute model and the rule); plus the scoring time per light curve.

    python scripts/benchmark_20s.py --ckpt outputs/cadence_20s/0 outputs/cadence_20s/1 outputs/cadence_20s/2
    python scripts/benchmark_20s.py --ckpt ... --two-minute outputs/real_cv_catalog/0   # default: the bundled detector

The operating point (event threshold) of each detector is the one with the highest recall
whose false-event rate on the flare-free light curves stays <= 0.5 per day (chosen on
those rates only, never on the recall).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from flaredetect.data.tess20s import read_tess20s
from flaredetect.evaluation.catalog_benchmark import trained_tics
from flaredetect.evaluation.truth_benchmark import TruthItem, at_false_rate, paired_recall_difference, truth_trials
from flaredetect.inference.candidates import threshold_predictor
from flaredetect.sources.local import read_light_curve

THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98]


def fold_predictors(ckpts: list[str], candidates: bool = False, periodic: bool = True):
    """``lc -> predictor``: the first run that never trained on the light curve's star."""
    from omegaconf import OmegaConf

    from flaredetect import Detector
    from flaredetect.inference import resolve_checkpoint

    folds = [(Detector(ckpt, candidates=candidates, periodic=periodic).predictor,
              trained_tics(OmegaConf.load(resolve_checkpoint(ckpt)[1]))) for ckpt in ckpts]

    def pick(lc):
        for predictor, seen in folds:
            if lc.tic not in seen:
                return predictor
        raise ValueError(f"TIC {lc.tic}: every run trained on this star")
    return pick, set.intersection(*[seen for _, seen in folds]) if folds else set()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", default=[], help="the 20-s runs (cross-validation folds)")
    parser.add_argument("--two-minute", nargs="+", default=None,
                        help="2-minute run(s) for the binned light curves (default: the bundled detector)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", "../shared/data")))
    parser.add_argument("--max-false-per-day", type=float, default=0.5)
    parser.add_argument("--no-periodic", action="store_true",
                        help="the models score light curves as read (predict's periodic=null)")
    parser.add_argument("--limit", type=int, default=None, help="first N light curves only (a quick look)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    files = sorted((args.data / "tess20s").glob("*.csv.gz"))[: args.limit]
    if not files:
        raise SystemExit(f"no tess20s light curves under {args.data}")
    items = [TruthItem(f.name, read_tess20s(f), read_light_curve(f)) for f in files]
    detectors = []
    if args.ckpt:
        pick, everywhere = fold_predictors(args.ckpt, periodic=not args.no_periodic)
        items = [i for i in items if i.injected.tic not in everywhere]
        detectors.append(("model (20 s)", pick, None))
    rule = threshold_predictor()
    detectors.append(("3-sigma rule (20 s)", lambda lc: rule, None))
    if args.two_minute is None:
        from flaredetect.pretrained import pretrained_run

        args.two_minute = [str(pretrained_run())]
    pick_2min, _ = fold_predictors(args.two_minute, periodic=not args.no_periodic)
    detectors.append(("2-min model on 2-min bins", pick_2min, 120.0))
    detectors.append(("3-sigma rule on 2-min bins", lambda lc: rule, 120.0))

    print(f"{len(items)} light curves of {len({i.injected.tic for i in items})} stars, "
          f"{sum(len(i.injected.flares) for i in items)} injected flares\n")
    print(f"{'detector':30s} {'threshold':>9s} {'recall >5 sigma':>24s} {'FWHM < 4 min':>24s} {'false/day':>9s}")
    report, chosen = {}, {}
    for name, pick, binned_to in detectors:
        t0 = time.perf_counter()
        trials, false_events = truth_trials(pick, items, binned_to=binned_to, thresholds=THRESHOLDS)
        best = at_false_rate(trials, false_events, args.max_false_per_day)
        best["seconds"] = time.perf_counter() - t0
        report[name] = best
        if best.get("threshold") is not None:
            chosen[name] = trials[trials["threshold"] == best["threshold"]]
        if best.get("threshold") is None:
            print(f"{name:30s} {best['note']}")
            continue
        r, s = best["recall"], best["recall_short"]
        print(f"{name:30s} {best['threshold']:9.2f} {r['value']:7.3f} [{r['interval'][0]:.3f}, {r['interval'][1]:.3f}] "
              f"n={r['n']:<4d} {s['value']:7.3f} [{s['interval'][0]:.3f}, {s['interval'][1]:.3f}] n={s['n']:<4d} "
              f"{best['false_events_per_day']:9.3f}")
    print("\npaired recall differences on the same flares [95 % bootstrap over light curves]:")
    for a, b in (("model (20 s)", "2-min model on 2-min bins"), ("model (20 s)", "3-sigma rule (20 s)"),
                 ("3-sigma rule (20 s)", "3-sigma rule on 2-min bins")):
        if a in chosen and b in chosen:
            for label, fwhm in (("> 5 sigma", None), ("> 5 sigma, FWHM < 4 min", 4.0)):
                d = paired_recall_difference(chosen[a], chosen[b], max_fwhm_min=fwhm)
                report[f"{a} - {b} ({label})"] = d
                print(f"  {a} - {b} ({label}): {d['value']:+.3f} [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}]"
                      f" n={d['n']}")
    if args.ckpt:  # scoring time of a whole 20-s light curve (probabilities only)
        times = []
        for item in items[:5]:
            predictor = pick(item.injected)
            t0 = time.perf_counter()
            predictor.probabilities(item.injected)
            times.append((time.perf_counter() - t0, len(item.injected)))
        per = np.median([t for t, _ in times])
        cadences = np.median([n for _, n in times])
        print(f"\nscoring time: median {per:.2f} s per light curve of {cadences:.0f} 20-s cadences "
              f"(~{per * 90_000 / cadences:.2f} s for a full 27-d sector of ~90,000 cadences after cleaning)")
        report["scoring_seconds_per_light_curve"] = per
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
