"""Plot a synthetic light curve above a real TESS sector-2 M-dwarf light curve.

Why: a quick visual check that the embedded synthetic data look like the real thing
(noise level, variability, flare shapes, gaps). Each row: the full sector and a 1-day
zoom centred on a flare; flare truth is marked (synthetic: the truth mask and peaks;
real: the Günther et al. 2020 catalog peaks).

Usage::

    python scripts/plot_synthetic_vs_real.py [SHARED_DATA_DIR] [--seed 3] [--out PATH]

``SHARED_DATA_DIR`` defaults to ``$FLAREDETECT_SHARED_DATA`` or ``../shared/data``
relative to the repository root.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from flaredetect.data.lightcurve import QUALITY_BITS, robust_noise_sigma  # noqa: E402
from flaredetect.data.synthetic import simulate_star  # noqa: E402

BJD_TO_BTJD = 2457000.0


def default_shared_data() -> Path:
    return Path(os.environ.get("FLAREDETECT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def catalog_peaks(shared: Path, tic: int) -> np.ndarray:
    """Günther et al. 2020 peak times (BTJD) of ``tic``; empty if the catalog is absent."""
    path = shared / "catalogs" / "guenther2020.csv"
    if not path.is_file():
        return np.zeros(0)
    cat = np.genfromtxt(path, delimiter=",", names=True, usecols=("TIC", "tpeak"))
    return np.sort(cat["tpeak"][cat["TIC"] == tic] - BJD_TO_BTJD)


def pick_real(shared: Path, name: str | None):
    files = sorted((shared / "tess").glob("tic*_s02.npy"))
    if not files:
        raise SystemExit(f"no tess/tic*_s02.npy under {shared}")
    if name:
        files = [f for f in files if name in f.name] or files
    best = None
    for f in files:  # the one with most catalog flares, for an interesting zoom
        tic = int(f.stem[3:].split("_")[0])
        n = len(catalog_peaks(shared, tic))
        if best is None or n > best[0]:
            best = (n, f, tic)
    _, f, tic = best
    time, flux, err = np.load(f)
    return f, tic, time, flux - 1.0, err


def pick_synthetic(seed: int, target_sigma: float, n_try: int = 200):
    """A flaring star rotating in 0.5-5 d (like active M dwarfs) with noise close to the
    real one's: a representative example, not a random draw."""
    children = np.random.SeedSequence(seed).spawn(n_try)
    best = None
    for i, child in enumerate(children):
        star = simulate_star(np.random.default_rng(child), 9_000_000_000 + i, 2)
        fl = star.light_curve.flares
        n_det = int(fl.detectable.sum())
        p_rot, a_rot = star.params["rotation_period_days"], star.params["rotation_amplitude"]
        if n_det < 3 or star.params["quiet"] or not (0.5 < p_rot < 5 and 0.003 < a_rot < 0.02):
            continue
        score = abs(np.log(star.light_curve.noise_sigma / target_sigma))
        if best is None or score < best[0]:
            best = (score, star)
    return best[1]


def zoom_window(t_peak: float, width: float = 1.0) -> tuple[float, float]:
    return t_peak - 0.3 * width, t_peak + 0.7 * width


def plot_row(ax_full, ax_zoom, time, flux, label, peaks, zoom_peak, mask=None, dumps=None,
             weak_mask=None):
    ax_full.plot(time, flux, ",", color="k", alpha=0.6, rasterized=True)
    ax_full.plot(time, flux, "-", color="k", lw=0.2, alpha=0.4, rasterized=True)
    lo, hi = np.percentile(flux, [0.5, 99.5])  # big flares go off-scale (see the zoom)
    ax_full.set_ylim(lo - 0.3 * (hi - lo), hi + 1.2 * (hi - lo))
    ax_full.set_ylabel("relative flux")
    ax_full.set_title(label, fontsize=9, loc="left")
    z0, z1 = zoom_window(zoom_peak)
    sel = (time >= z0) & (time <= z1)
    ax_zoom.plot(time[sel], flux[sel], ".-", color="k", ms=2, lw=0.4)
    if mask is not None:
        for ax, s in ((ax_full, np.ones_like(mask)), (ax_zoom, sel)):
            if weak_mask is not None:
                m = weak_mask & s
                ax.plot(time[m], flux[m], ".", color="tab:orange", ms=1.5, alpha=0.5)
            m = mask & s
            ax.plot(time[m], flux[m], ".", color="tab:red", ms=2.5)
    for ax in (ax_full, ax_zoom):
        for p in peaks:
            ax.axvline(p, color="tab:red", lw=0.5, alpha=0.35)
        if dumps is not None:
            for d in dumps:
                ax.axvline(d, color="tab:blue", lw=0.5, alpha=0.5, ls=":")
    ax_full.axvspan(z0, z1, color="gold", alpha=0.3)
    ax_zoom.set_xlim(z0, z1)
    ax_zoom.set_title(f"1-day zoom at BTJD {zoom_peak:.2f}", fontsize=9, loc="left")


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shared_data", nargs="?", type=Path, default=default_shared_data())
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--real", default=None, help="substring of the real file name to use")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "figures" / "synthetic_vs_real.png")
    args = parser.parse_args(argv)

    path, tic, t_real, f_real, _ = pick_real(args.shared_data, args.real)
    sigma_real = robust_noise_sigma(f_real)
    star = pick_synthetic(args.seed, sigma_real)
    lc = star.light_curve
    fl = lc.flares

    det = np.flatnonzero(fl.detectable)
    zoom_syn = fl.peak_time_btjd[det[np.argsort(fl.amplitude[det])[len(det) // 2]]]  # median flare
    real_peaks = catalog_peaks(args.shared_data, tic)
    real_peaks = real_peaks[(real_peaks >= t_real[0]) & (real_peaks <= t_real[-1])]
    if real_peaks.size:
        idx = np.searchsorted(t_real, real_peaks).clip(0, len(t_real) - 1)
        zoom_real = real_peaks[np.argsort(f_real[idx])[len(idx) // 2]]
    else:
        zoom_real = t_real[np.argmax(f_real)]

    fig, axes = plt.subplots(2, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [3, 1]})
    det_mask = np.zeros(len(lc), dtype=bool)
    for j in det:
        det_mask |= (lc.time_btjd >= fl.start_time_btjd[j]) & (lc.time_btjd <= fl.stop_time_btjd[j])
    dumps = lc.time_btjd[(lc.quality & QUALITY_BITS["desat"]) > 0]
    plot_row(
        axes[0, 0], axes[0, 1], lc.time_btjd, lc.flux_rel,
        f"synthetic TIC {lc.tic} (sigma={lc.noise_sigma:.1e}, P_rot={star.params['rotation_period_days']:.2f} d, "
        f"{int(fl.detectable.sum())} detectable / {len(fl)} injected flares)\nred = truth mask of "
        f"detectable flares, orange = of undetectable ones, blue dotted = momentum dumps)",
        fl.peak_time_btjd[fl.detectable], zoom_syn, mask=det_mask, dumps=dumps,
        weak_mask=lc.flare_mask & ~det_mask,
    )
    plot_row(
        axes[1, 0], axes[1, 1], t_real, f_real,
        f"real {path.name} (robust sigma={sigma_real:.1e}; red = Günther 2020 catalog peaks)",
        real_peaks, zoom_real,
    )
    axes[1, 0].set_xlabel("time [BTJD]")
    axes[1, 1].set_xlabel("time [BTJD]")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
