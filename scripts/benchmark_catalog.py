"""Catalog-building throughput (issue 17): the 2-minute light curves of ../shared/data
repeated through a manifest to --n inputs, end to end (reading, cleaning, scoring, events,
outputs and the merged catalog) in one process, and the share of each stage measured on the
first --profile inputs.

    python scripts/benchmark_catalog.py --n 1000                 # the bundled detector
    python scripts/benchmark_catalog.py --n 1000 --processes 2   # two scoring processes (one torch thread each)
    python scripts/benchmark_catalog.py --n 1000 --processes 2 --lc-batch 8   # 8 inputs' windows in shared batches
    python scripts/benchmark_catalog.py --n 2000 --device cuda --lc-batch 64 --batch-size 8192 --workers 8   # a GPU
    python scripts/benchmark_catalog.py --n 1000 --processes 2 --no-refine --flare-tables   # as before issue 17's last steps
    python scripts/benchmark_catalog.py --n 1000 --ckpt outputs/real_cv_catalog/0
    python scripts/benchmark_catalog.py --n 2000 --synthetic 200 --device cuda --lc-batch 64   # no data needed
      (200 synthetic 2-minute sectors written as FITS by lightkurve's to_fits, e.g. on a lent GPU machine)
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from flaredetect import Detector
from flaredetect.build_catalog import build_catalog
from flaredetect.data.cleaning import clean
from flaredetect.inference import run_prediction
from flaredetect.inference.events import extract_events
from flaredetect.inference.writers import write_outputs
from flaredetect.sources.local import find_light_curve_files, read_raw_light_curve

FOLDERS = ["tess", "fits/spoc", "fits/custom_aperture", "fits/custom_aperture_s03-13", "tess_young"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--profile", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1, help="reading threads (predict's workers=)")
    parser.add_argument("--processes", type=int, default=0, help="scoring processes (predict's processes=)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (predict's threads=)")
    parser.add_argument("--batch-size", type=int, default=None, help="windows per network batch (predict's batch_size=)")
    parser.add_argument("--lc-batch", type=int, default=None, help="inputs whose windows share the network's batches "
                        "(predict's lc_batch=; default: 1 on the CPU, 32 on a GPU)")
    parser.add_argument("--device", default="cpu", help="where the network runs (predict's device=: auto, cpu, cuda)")
    parser.add_argument("--no-refine", action="store_true", help="score every overlapping window (predict's refine=null)")
    parser.add_argument("--flare-tables", action="store_true", help="also write each light curve's _flares.ecsv")
    parser.add_argument("--no-periodic", action="store_true",
                        help="score light curves as read (predict's periodic=null)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", "../shared/data")))
    parser.add_argument("--synthetic", type=int, default=0, metavar="K",
                        help="read K synthetic 2-minute sectors written as FITS instead of --data")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    synthetic_dir = tempfile.TemporaryDirectory() if args.synthetic else None
    files = (write_synthetic_fits(Path(synthetic_dir.name), args.synthetic) if synthetic_dir
             else find_light_curve_files([args.data / f for f in FOLDERS]))
    if not files:
        raise SystemExit(f"no light curves under {args.data} (--synthetic K needs none)")
    predictor = Detector(args.ckpt, candidates=False, device=args.device).predictor
    if args.batch_size:
        predictor.batch_size = args.batch_size
    if args.no_refine:
        predictor.refine_above = None
    if args.no_periodic:
        predictor.periodic = None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "lcs").mkdir()
        entries = []
        for k in range(args.n):  # distinct names: the same input twice is scored once
            src = files[k % len(files)]
            link = tmp / "lcs" / f"r{k // len(files):03d}_{src.name}"
            link.symlink_to(src.resolve())
            entries.append(str(link))
        manifest = tmp / "inputs.txt"
        manifest.write_text("\n".join(entries) + "\n")

        stages = {"read": 0.0, "clean": 0.0, "network": 0.0, "events": 0.0, "write": 0.0}
        for path in entries[: args.profile]:  # stages in turn, as with workers=0
            t = time.perf_counter()
            raw = read_raw_light_curve(path)
            stages["read"] += time.perf_counter() - t
            t = time.perf_counter()
            try:
                lc = clean(raw)
            except ValueError:
                continue
            stages["clean"] += time.perf_counter() - t
            t = time.perf_counter()
            prob = predictor.probabilities(lc)
            stages["network"] += time.perf_counter() - t
            t = time.perf_counter()
            events = extract_events(lc, prob, predictor.events)
            stages["events"] += time.perf_counter() - t
            t = time.perf_counter()
            write_outputs(tmp / "profile", Path(path).stem, lc, prob, events, predictor.events.threshold, plot=False,
                          timeseries=False, flare_tables=args.flare_tables)
            stages["write"] += time.perf_counter() - t
        total = sum(stages.values())

        t0 = time.perf_counter()
        result = run_prediction(predictor, str(manifest), tmp / "out", plot=False, progress=False, timeseries=False,
                                flare_tables=args.flare_tables,
                                workers=args.workers, processes=args.processes, threads=args.threads,
                                lc_batch=args.lc_batch,
                                meta={"checkpoint": {"sha256": "benchmark"}})
        t1 = time.perf_counter()
        counts = build_catalog([tmp / "out"], tmp / "catalog")
        t2 = time.perf_counter()
    n_ok = len(result["ok"])
    print(f"{args.n} inputs ({len(files)} distinct light curves), {n_ok} scored, {len(result['failed'])} failed, "
          f"{counts['flares']} flares")
    print(f"end to end: {t2 - t0:.1f} s = {n_ok / (t2 - t0):.2f} light curves/s (prediction {t1 - t0:.1f} s, "
          f"merge {t2 - t1:.1f} s)")
    print("share of a light curve's time (first %d inputs): " % args.profile
          + ", ".join(f"{k} {v / total:.0%} ({1000 * v / args.profile:.0f} ms)" for k, v in stages.items()))
    print(f"cadences per light curve: median {int(np.median([r['n_cadences'] for r in result['ok']]))}")
    return 0


def write_synthetic_fits(folder: Path, k: int) -> list[Path]:
    """``k`` synthetic 2-minute sectors (flaredetect.data.synthetic) as lightkurve ``to_fits()``
    files with their TIC and sector in the header."""
    import warnings

    import lightkurve as lk
    from astropy.time import Time

    from flaredetect.data.synthetic import generate_light_curves

    paths = []
    for lc in generate_light_curves(k, seed=0):
        path = folder / f"tic{lc.tic}_s{lc.sector:02d}_lc.fits"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lk.LightCurve(time=Time(lc.time_btjd, format="btjd", scale="tdb"), flux=1 + lc.flux_rel,
                          flux_err=lc.flux_err, quality=lc.quality).to_fits(
                path, overwrite=True, TELESCOP="TESS", MISSION="TESS", TICID=lc.tic, SECTOR=lc.sector)
        paths.append(path)
    return paths


if __name__ == "__main__":
    raise SystemExit(main())
