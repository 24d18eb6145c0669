"""Do two versions of flaredetect find the same flares? Runs the bundled detector (or --ckpt)
over every 2-minute light curve of ../shared/data with this checkout and with another source
tree (e.g. a git worktree of an older commit) and compares the events light curve by light curve.

    git worktree add /tmp/old 78db8fb
    python scripts/compare_versions.py --other /tmp/old
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

FOLDERS = ["tess", "fits/spoc", "fits/custom_aperture", "fits/custom_aperture_s03-13", "tess_young"]


def dump(data: Path, ckpt: str | None) -> list:
    """``[(file, peak times, EDs)]`` of every readable light curve (the code on sys.path)."""
    from flaredetect import Detector
    from flaredetect.sources.local import find_light_curve_files, read_raw_light_curve

    detector = Detector(ckpt)
    out = []
    for path in find_light_curve_files([data / f for f in FOLDERS]):
        raw = read_raw_light_curve(path)
        try:
            result = detector.find_flares(raw.time_btjd, raw.flux, raw.flux_err, raw.quality, tic=raw.tic,
                                          sector=raw.sector)
        except ValueError:
            continue
        out.append((path.name, [round(float(t), 6) for t in result.flares["tpeak"].value],
                    [float(e) for e in result.flares["ed_rec"].value]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, help="the other source tree (its flaredetect package is imported)")
    parser.add_argument("--ckpt", default=None, help="a run dir (default: the bundled detector)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", "../shared/data")))
    parser.add_argument("--dump", action="store_true", help=argparse.SUPPRESS)  # one side, as JSON
    args = parser.parse_args(argv)
    if args.dump:
        print(json.dumps(dump(args.data, args.ckpt)))
        return 0
    if args.other is None:
        parser.error("--other is required")
    sides = []
    for tree in (Path(__file__).resolve().parents[1], args.other.resolve()):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--dump", "--data", str(args.data)]
        cmd += ["--ckpt", args.ckpt] if args.ckpt else []
        run = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True)
        sides.append({name: (peaks, eds) for name, peaks, eds in json.loads(run.stdout.strip().splitlines()[-1])})
    this, other = sides
    common = sorted(set(this) & set(other))
    same = [n for n in common if this[n][0] == other[n][0]]
    ratios = [abs(a - b) / abs(b) for n in same for a, b in zip(this[n][1], other[n][1]) if b]
    print(f"{len(common)} light curves, {len(same)} with the same events "
          f"({sum(len(this[n][0]) for n in common)} events here, {sum(len(other[n][0]) for n in common)} there); "
          f"largest relative ED difference {max(ratios, default=0):.2g}")
    for n in common:
        if this[n][0] != other[n][0]:
            print(f"  differs: {n}: {len(this[n][0])} vs {len(other[n][0])} events")
    return 0 if len(same) == len(common) else 1


if __name__ == "__main__":
    raise SystemExit(main())
