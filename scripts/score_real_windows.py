"""Window-level score of a trained run on real TESS light curves, the thesis's way.

Each light curve in ``<data>/tess/*.npy`` (and, with ``--spoc``, the sector-1 SPOC files of
Günther stars) is cut into consecutive, non-overlapping windows of the model's length
inside gap-free segments; a window is positive when a Günther et al. 2020 catalog peak
falls inside it. The model's window head scores each window once (no sliding), so the
numbers are comparable with the thesis's window classification. Prints precision,
recall, F1 at the threshold, AUROC and AP per light curve and pooled.

    python scripts/score_real_windows.py --ckpt outputs/train/<run> [--threshold 0.5] [--spoc]

Only models that never saw these stars may be scored (synthetic-trained runs are fine).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from flaredetect.catalogs import read_guenther2020
from flaredetect.data.features import n_features_of, window_features
from flaredetect.data.lightcurve import CADENCE_DAYS
from flaredetect.data.windowing import segments
from flaredetect.evaluation.metrics import classification_report
from flaredetect.inference import load_net, window_geometry
from flaredetect.sources import read_light_curve

REPO = Path(__file__).resolve().parents[1]
GUENTHER_SECTOR1 = (358108509, 29779873, 31740375, 32150630)


def cut(lc, length: int, max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start indices of consecutive windows inside gap-free segments, with their flux and quality."""
    starts = [s for a, b in segments(lc.time_btjd, max_gap) for s in range(a, b - length + 1, length)]
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)[None, :]
    return idx, lc.flux_rel[idx].astype(np.float32), (lc.quality[idx] != 0).astype(np.uint8)


def score(net, lc, peaks_btjd: np.ndarray, length: int, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    idx, flux, quality = cut(lc, length, max_gap)
    t0 = lc.time_btjd[idx[:, 0]] - CADENCE_DAYS / 2
    t1 = lc.time_btjd[idx[:, -1]] + CADENCE_DAYS / 2
    labels = ((peaks_btjd[None, :] >= t0[:, None]) & (peaks_btjd[None, :] < t1[:, None])).any(axis=1)
    with torch.inference_mode():
        x = window_features(torch.from_numpy(flux), torch.from_numpy(quality), n_features_of(net))
        prob = torch.sigmoid(net(x)["logit"].float()).numpy()
    return labels, prob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="training run dir or .ckpt")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--spoc", action="store_true", help="also score the sector-1 SPOC files of Günther stars")
    args = parser.parse_args()

    net, cfg = load_net(args.ckpt)
    geometry = window_geometry(cfg)
    catalog = read_guenther2020(args.data / "catalogs" / "guenther2020.csv")
    files = sorted((args.data / "tess").glob("*.npy"))
    if args.spoc:
        files += [p for p in sorted((args.data / "fits" / "spoc").glob("*_lc.fits"))
                  if any(f"{tic:016d}" in p.name for tic in GUENTHER_SECTOR1)]
    print(f"{'light curve':<40} {'win':>5} {'pos':>4} | {'P':>5} {'R':>5} {'F1':>5} {'AUROC':>6} {'AP':>5}")
    all_y, all_p = [], []
    for path in files:
        lc = read_light_curve(path)
        flares = catalog.for_star(lc.tic, lc.time_btjd[0], lc.time_btjd[-1], by="peak")
        y, p = score(net, lc, flares.peak_time_btjd, geometry["length"], geometry["max_gap_cadences"])
        all_y.append(y)
        all_p.append(p)
        _row(path.name, y, p, args.threshold)
    _row("POOLED", np.concatenate(all_y), np.concatenate(all_p), args.threshold)


def _row(name: str, y: np.ndarray, p: np.ndarray, threshold: float) -> None:
    r = classification_report(y, p, threshold)
    m = r["at_default"]
    print(f"{name[:40]:<40} {r['n']:>5} {r['n_pos']:>4} | {m['precision']:5.2f} {m['recall']:5.2f} {m['f1']:5.2f} "
          f"{r['auroc']:6.3f} {r['ap']:5.2f}")


if __name__ == "__main__":
    main()
