"""Coarse-to-fine scoring (predict's ``refine:``) against scoring every window, on every
two-minute light curve of ../shared/data: windows scored and light curves whose events change.

    python scripts/benchmark_refine.py                         # the bundled detector, predict's refine
    python scripts/benchmark_refine.py --above 0.05 --n-sigma 2.0 --ckpt outputs/real_cv_catalog/0
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import flaredetect.inference.scoring as scoring
from flaredetect import Detector
from flaredetect.data.cleaning import clean
from flaredetect.inference.events import extract_events
from flaredetect.sources.local import find_light_curve_files, read_raw_light_curve

FOLDERS = ["tess", "fits/spoc", "fits/custom_aperture", "fits/custom_aperture_s03-13", "tess_young"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--above", type=float, default=None, help="refine.above (default: predict's)")
    parser.add_argument("--n-sigma", type=float, default=None, help="refine.n_sigma (default: predict's)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", "../shared/data")))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    predictor = Detector(args.ckpt, candidates=False).predictor
    refined = (args.above if args.above is not None else predictor.refine_above,
               args.n_sigma if args.n_sigma is not None else predictor.refine_sigma)
    windows = {"every": 0, "refined": 0}
    seconds = {"every": 0.0, "refined": 0.0}
    run_net, counted = scoring.run_net, {"n": 0}

    def counting(net, flux, *a, **k):  # windows through the network
        counted["n"] += len(flux)
        return run_net(net, flux, *a, **k)
    scoring.run_net = counting
    n_lc = n_events = changed = 0
    for path in find_light_curve_files([args.data / f for f in FOLDERS]):
        try:
            lc = clean(read_raw_light_curve(path))
        except ValueError:
            continue
        if not 100 < lc.cadence_seconds < 150:
            continue
        spans = {}
        for name, (above, n_sigma) in (("every", (None, refined[1])), ("refined", refined)):
            predictor.refine_above, predictor.refine_sigma = above, n_sigma
            counted["n"], t = 0, time.perf_counter()
            events = extract_events(lc, predictor.probabilities(lc), predictor.events)
            seconds[name] += time.perf_counter() - t
            windows[name] += counted["n"]
            spans[name] = sorted(zip(events["start_index"].tolist(), events["stop_index"].tolist()))
        n_lc += 1
        n_events += len(spans["every"])
        changed += spans["every"] != spans["refined"]
    print(f"{n_lc} two-minute light curves, {n_events} events scoring every window; refine.above={refined[0]}, "
          f"refine.n_sigma={refined[1]}: {windows['refined'] / max(windows['every'], 1):.1%} of the windows, "
          f"{seconds['refined'] / max(seconds['every'], 1e-9):.0%} of the time, events changed on {changed} light curves")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
