"""Full-sector scoring time per light curve at each cadence (issue 16: <= 1 s on 2 cores):
for each run, a real light curve at the run's cadence (a 2-minute SPOC sector binned to FFI
cadences, a 20-s tess20s orbit doubled to a sector's length), probabilities and events as
flaredetect-predict computes them (median of 5 repeats).

    python scripts/benchmark_cadence_speed.py --ckpt outputs/cadence_20s/0 outputs/real_cv_catalog/0 \\
        outputs/ffi_200/0 outputs/ffi_600/0 outputs/ffi_1800/0
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from flaredetect import Detector
from flaredetect.data.binning import bin_light_curve
from flaredetect.data.lightcurve import SECONDS_PER_DAY, LightCurve
from flaredetect.sources.local import read_light_curve


def sector_at(cadence_s: float, data: Path) -> LightCurve:
    """A real light curve of about one sector (27 d) at ``cadence_s``."""
    if cadence_s < 60:
        orbit = read_light_curve(sorted((data / "tess20s").glob("*.csv.gz"))[1])
        span = orbit.time_btjd[-1] - orbit.time_btjd[0] + cadence_s / SECONDS_PER_DAY
        return orbit.replace(time_btjd=np.concatenate([orbit.time_btjd, orbit.time_btjd + span]),
                             flux_rel=np.tile(orbit.flux_rel, 2), flux_err=np.tile(orbit.flux_err, 2),
                             quality=np.tile(orbit.quality, 2))
    lc = read_light_curve(sorted((data / "fits" / "spoc").glob("*.fits"))[0])
    return lc if abs(cadence_s - lc.cadence_seconds) < 1 else bin_light_curve(lc, cadence_s)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", "../shared/data")))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{'run':40s} {'cadence':>8s} {'cadences':>9s} {'window':>6s} {'seconds':>8s}")
    for ckpt in args.ckpt:
        detector = Detector(ckpt, candidates=False)
        predictor = detector.predictor
        lc = sector_at(predictor.cadence_s, args.data)
        predictor.predict(lc)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            predictor.predict(lc)
            times.append(time.perf_counter() - t0)
        print(f"{str(ckpt)[-40:]:40s} {predictor.cadence_s:7g}s {len(lc):9d} {predictor.length:6d} {np.median(times):8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
