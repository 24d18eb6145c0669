"""``flaredetect-benchmark``: score trained runs and the 3-sigma rule against the flare
catalogs on the labelled real light curves, per population of stars
(:mod:`flaredetect.evaluation.catalog_benchmark`).

Each light curve runs through ``flaredetect-predict``'s code with its settings
(``conf/predict.yaml``: event threshold, minimum length, significance gate; ``--no-candidates``:
the network alone), never tuned on these stars. Window level (non-overlapping 100-cadence
windows) and event level (an event within 3 cadences of a catalog peak), pooled F1 with 95 %
block-bootstrap intervals, per population and pooled; the model minus the 3-sigma rule (and
minus ``--versus``) on the same light curves with paired intervals. A star whose windows a run
trained or validated on is never scored by that run: give the folds of a star-grouped
cross-validation (``conf/experiment/real_cv.yaml``) and each star is scored by the fold that
never saw it.

    flaredetect-benchmark --ckpt outputs/real_cv/0 outputs/real_cv/1 outputs/real_cv/2 --heads cadence
    flaredetect-benchmark --ckpt <new run> --versus <old run> --json bench.json
    flaredetect-benchmark --sets legacy --ckpt outputs/recommended   # the three sets of older README results
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf

from flaredetect import CONFIG_DIR
from flaredetect.data.periodic import PeriodicBackground
from flaredetect.evaluation.catalog_benchmark import (catalog_agreement, compare, labelled_light_curves,
                                                      legacy_light_curve_sets, read_benchmark_catalogs, score_detector,
                                                      threshold_window_scores, trained_tics, tune_event_settings)
from flaredetect.inference import EventParams, Predictor, SignificanceGate, load_net, window_geometry
from flaredetect.inference.calibrate import calibrate_events
from flaredetect.inference.candidates import threshold_predictor
from flaredetect.inference.pipeline import refine_settings

BENCHMARK_HELP = """\
flaredetect-benchmark: score trained runs and the 3-sigma rule against the flare catalogs on
the labelled real light curves (../shared/data or --data), per population of stars and pooled,
window and event F1 with bootstrap intervals, and paired differences on the same light curves.
Required: the labelled data (--data, $FLAREDETECT_SHARED_DATA or ../shared/data); --ckpt to
score a model (without it only the 3-sigma rule).

examples:
  flaredetect-benchmark --ckpt outputs/real_cv/0 outputs/real_cv/1 outputs/real_cv/2 --heads cadence
  flaredetect-benchmark --ckpt outputs/new_run --versus outputs/old_run --no-candidates --json bench.json
  flaredetect-benchmark --sets legacy --ckpt outputs/recommended   # the sets of the older README results"""
SETS = {"populations": labelled_light_curves, "legacy": legacy_light_curve_sets}


def default_data_dir() -> Path:
    return Path(os.environ.get("FLAREDETECT_SHARED_DATA", Path(CONFIG_DIR).parents[1] / "shared" / "data"))


def lazy_predictor(net, geometry: dict, head: str, base_events: EventParams, gate, stride, calibration_stars: int,
                   tuning=None, refine: dict | None = None, proposals=None, periodic=None):
    """A fold's predictor, built on first use; its event settings chosen on synthetic light
    curves when ``calibration_stars`` > 0, or on ``tuning`` = ``(labelled light curves of the
    stars the fold trained on, catalogs)`` (:func:`tune_event_settings`, nested)."""
    cache = []

    def get() -> Predictor:
        if cache:
            return cache[0]
        predictor = Predictor(net=net, length=geometry["length"], stride=stride, head=head,
                              max_gap_cadences=geometry["max_gap_cadences"], events=base_events, gate=gate,
                              cadence_s=geometry["cadence_s"], proposals=proposals, periodic=periodic,
                              **(refine or {"refine_above": None}))
        if tuning is not None:
            t0 = time.perf_counter()
            predictor, scores = tune_event_settings(predictor, *tuning)
            best = max(scores, key=lambda g: (g["f1"], g["threshold"]))
            print(f"[{head} head] event settings chosen on the {len(tuning[0])} labelled light curves of the fold's "
                  f"training stars ({time.perf_counter() - t0:.0f} s): threshold {best['threshold']}, min_snr "
                  f"{best['min_snr']} -> their event P/R/F1 {best['precision']:.2f}/{best['recall']:.2f}/{best['f1']:.2f}")
        if calibration_stars > 0:
            t0 = time.perf_counter()
            params, grid = calibrate_events(predictor, n_stars=calibration_stars)
            best = max(grid, key=lambda g: (g["f1"], g["threshold"]))
            print(f"[{head} head] event settings chosen on {calibration_stars} synthetic light curves "
                  f"({time.perf_counter() - t0:.0f} s): threshold {params.threshold}, min_cadences "
                  f"{params.min_cadences}, min_snr {params.min_snr} -> synthetic event P/R/F1 "
                  f"{best['precision']:.2f}/{best['recall']:.2f}/{best['f1']:.2f}")
            predictor = replace(predictor, events=params)
        cache.append(predictor)
        return predictor
    return get


def _tic_of(path: Path) -> int | None:
    """TIC of a labelled light-curve file from its name (``tic<id>_sNN.npy`` or a SPOC-style FITS name)."""
    from flaredetect.sources.local import _ids_from_name

    return _ids_from_name(Path(path))[0]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="flaredetect-benchmark", description=BENCHMARK_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", help="training run dirs or .ckpt files, e.g. the folds of a "
                        "cross-validation: each star is scored by the first run that never trained on it "
                        "(omit to score only the 3-sigma rule)")
    parser.add_argument("--versus", nargs="+", default=[], metavar="RUN",
                        help="a second model (its own folds) to compare --ckpt with, paired, under the same settings "
                             "(--vet-events and --propose-rule apply to it too, unless --versus-alone)")
    parser.add_argument("--save-vetters", type=Path, default=None, metavar="DIR",
                        help="with --vet-events: write each fold's vetter here (vetter_<k>.joblib, vetters.json), "
                             "for flaredetect-predict / flaredetect-recovery vetter=DIR")
    parser.add_argument("--versus-alone", action="store_true",
                        help="the --versus model without --vet-events / --propose-rule: e.g. the same folds "
                             "before the second stage, to measure what it adds")
    parser.add_argument("--data", type=Path, default=default_data_dir(),
                        help="the labelled data (default $FLAREDETECT_SHARED_DATA or ../shared/data)")
    parser.add_argument("--sets", choices=sorted(SETS), default="populations",
                        help="populations (default): every labelled light curve by kind of star; legacy: "
                             "the three sets of the README's older results")
    parser.add_argument("--heads", nargs="+", default=["cadence", "window"], choices=["cadence", "window"])
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--no-refine", action="store_true",
                        help="score every overlapping window (default: conf/predict.yaml's refine, coarse to fine)")
    parser.add_argument("--calibration-stars", type=int, default=0,
                        help="choose event settings on this many synthetic light curves (default 0: "
                             "conf/predict.yaml's)")
    parser.add_argument("--tune-events", action="store_true",
                        help="choose each fold's event threshold and min_snr on the labelled light curves of the "
                             "stars it trained on (nested: never on the stars it scores)")
    parser.add_argument("--vet-events", action="store_true",
                        help="an event-level second stage: each fold's network events go through a classifier "
                             "fitted on the events the other folds scored (nested; flaredetect/inference/vetting.py)")
    parser.add_argument("--propose-rule", nargs=2, type=float, default=None, metavar=("N_SIGMA", "MIN_POINTS"),
                        help="with --vet-events: a 3-sigma rule's events join the network's where it has none, "
                             "and the vetter judges them all (fitted on such unions)")
    parser.add_argument("--no-periodic", action="store_true",
                        help="score light curves as they are (default: conf/predict.yaml's periodic: a fast "
                             "rotator's periodic light curve removed first, flaredetect/data/periodic.py)")
    parser.add_argument("--versus-no-periodic", action="store_true",
                        help="the --versus model scores light curves as they are: e.g. the same folds, to measure "
                             "what removing the periodic light curve adds")
    parser.add_argument("--threshold", type=float, default=None, help="override events.threshold")
    parser.add_argument("--min-cadences", type=int, default=None, help="override events.min_cadences")
    parser.add_argument("--min-snr", type=float, default=None, help="override events.min_snr (white-noise sigma)")
    gate = parser.add_mutually_exclusive_group()
    gate.add_argument("--no-candidates", action="store_true",
                      help="the network alone, without predict's significance gate")
    gate.add_argument("--gate", nargs=2, type=float, default=None, metavar=("N_SIGMA", "MIN_POINTS"),
                      help="the network vets these significance candidates instead of predict's (e.g. 3 2)")
    parser.add_argument("--searched-only", action="store_true",
                        help="count the vetted ultracool-dwarf table only where its search ran (the stretches its "
                             "rows' indices show were searched, flaredetect/catalog_coverage.py): elsewhere its "
                             "silence is no label, and events and windows there are not scored")
    parser.add_argument("--per-light-curve", action="store_true", help="print a line per light curve")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = parser.parse_args(argv)
    if args.versus_no_periodic and not args.versus:
        parser.error("--versus-no-periodic needs --versus: the model it applies to")
    if args.versus and not args.ckpt:
        parser.error("--versus needs --ckpt: the model to compare with it")
    if args.tune_events and (args.calibration_stars or args.threshold is not None or args.min_snr is not None):
        parser.error("--tune-events chooses threshold and min_snr itself: not with --calibration-stars, "
                     "--threshold or --min-snr")
    if args.vet_events and (args.tune_events or not args.ckpt or len(args.ckpt) < 2):
        parser.error("--vet-events needs the folds of a cross-validation (--ckpt with two or more runs), "
                     "not with --tune-events")
    if args.save_vetters is not None and not args.vet_events:
        parser.error("--save-vetters needs --vet-events: there is no vetter to save otherwise")
    if args.propose_rule and not args.vet_events:
        parser.error("--propose-rule needs --vet-events: the vetter judges the rule's proposals")
    if args.stride is not None and args.stride < 1:
        parser.error(f"--stride={args.stride} must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        catalogs = read_benchmark_catalogs(args.data, searched_only=args.searched_only)
    except (FileNotFoundError, ValueError) as err:
        print(f"flaredetect-benchmark: {err}", file=sys.stderr)
        return 2
    sets = SETS[args.sets](args.data)
    if not sets:
        print(f"flaredetect-benchmark: no labelled light curves under {args.data}", file=sys.stderr)
        return 2
    predict_cfg = OmegaConf.load(Path(CONFIG_DIR) / "predict.yaml")
    events = EventParams.from_settings(OmegaConf.to_container(predict_cfg.events))
    events = replace(events, **{k: v for k, v in (("threshold", args.threshold),
                                                  ("min_cadences", args.min_cadences),
                                                  ("min_snr", args.min_snr)) if v is not None})
    refine = None if args.no_refine else refine_settings(predict_cfg.get("refine"))
    periodic = None if args.no_periodic else PeriodicBackground.from_settings(predict_cfg.get("periodic"))
    proposals = None
    if args.propose_rule:
        from flaredetect.inference.candidates import threshold_scorer

        proposals = threshold_scorer(args.propose_rule[0], int(args.propose_rule[1]))
    gate = (None if args.no_candidates else SignificanceGate(n_sigma=args.gate[0], min_points=int(args.gate[1]))
            if args.gate else SignificanceGate.from_settings(predict_cfg.get("candidates")))
    print(f"event settings: {events}\nwindows: {refine or 'every overlapping window'}\n"
          f"significance gate: {gate or 'none (the network alone)'}\n"
          f"periodic light curve removed: {periodic or 'no'}\n"
          f"ultracool-dwarf table counted: {'where it searched (--searched-only)' if args.searched_only else 'everywhere'}\n"
          f"light curves: " + ", ".join(f"{name}: {len(items)}" for name, items in sets.items()))
    options = {"out": print, "per_light_curve": args.per_light_curve}
    report: dict = {"settings": {"events": events.__dict__, "gate": gate.__dict__ if gate else None,
                                 "periodic": periodic.settings() if periodic else None,
                                 "sets": args.sets, "data": str(args.data), "ckpt": args.ckpt, "versus": args.versus,
                                 "searched_only": args.searched_only}}
    scored: dict = {}
    for role, ckpts in (("model", args.ckpt or []), ("versus model", args.versus)):
        runs = []
        for ckpt in ckpts:
            net, cfg = load_net(ckpt)
            runs.append((ckpt, net, window_geometry(cfg), trained_tics(cfg)))
        second_stage = role == "model" or not args.versus_alone
        for head in args.heads:
            if head == "cadence" and any(getattr(net, "cadence_head", None) is None for _, net, _, _ in runs):
                print(f"\n(skipping head=cadence for the {role}: a run has no cadence head)")
                continue
            labelled = [item for items in sets.values() for item in items]
            folds = [(str(ckpt), lazy_predictor(net, geometry, head, events, gate, args.stride, args.calibration_stars,
                                                tuning=([i for i in labelled if _tic_of(i.path) in skip], catalogs)
                                                if args.tune_events else None, refine=refine,
                                                proposals=proposals if second_stage else None,
                                                periodic=None if role == "versus model" and args.versus_no_periodic
                                                else periodic),
                      skip) for ckpt, net, geometry, skip in runs]
            if folds and args.vet_events and second_stage:
                from flaredetect.evaluation.vetting_cv import collect_events, fit_fold_vetters, vetted_folds

                records = collect_events(folds, sets, catalogs)
                vetters = fit_fold_vetters(records, [name for name, _, _ in folds])
                report[f"event vetters ({head} head)"] = {name: v.info for name, v in vetters.items()}
                if args.save_vetters is not None and role == "model":
                    from flaredetect.inference.vetting import save_fold_vetters

                    print(f"event vetters written to {save_fold_vetters(vetters, args.save_vetters)}")
                folds = vetted_folds(folds, vetters)
            if folds:
                how = "the network alone" if gate is None else "vetting significance candidates"
                how += ", events vetted" if args.vet_events and second_stage else ""
                how += f", with {args.propose_rule[0]:g}-sigma x {int(args.propose_rule[1])} rule proposals" \
                    if proposals is not None and second_stage else ""
                report[f"{role} ({head} head)"], scored[role, head] = score_detector(
                    f"{role}, {head} head, {how}", folds, sets, catalogs, **options)
    agreement = catalog_agreement(sets, catalogs)
    if agreement["light_curves"]:
        report["catalog agreement"] = agreement
        print(f"\n=== the catalogs against each other, on the {agreement['light_curves']} light curves both label: "
              f"the ultracool-dwarf table's {agreement['ucd_flares']} flares scored against Günther's "
              f"{agreement['guenther_flares']}: precision {agreement['precision']:.2f}, recall {agreement['recall']:.2f}, "
              f"event F1 {agreement['f1']:.2f} (what one published catalog reaches against another)")
    baseline = threshold_predictor(events)
    report["threshold 3-sigma"], scored_threshold = score_detector(
        "3-sigma rule (flags as probabilities; AUROC/AP from its continuous window score)",
        [("threshold", lambda: baseline, set())], sets, catalogs, window_score_fn=threshold_window_scores, **options)
    for (role, head), parts in scored.items():
        if role == "model":
            report[f"model ({head} head) - threshold 3-sigma"] = compare(f"model ({head} head) - 3-sigma rule",
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
