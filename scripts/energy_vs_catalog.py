"""Bolometric flare energies of flaredetect (ED + header Teff/radius, flaredetect.energy) against
the Günther et al. 2020 catalog's Ebol, for the catalogued flares it detects on the sector-1
SPOC light curves of ../shared/data (their headers carry TEFF and RADIUS).

    python scripts/energy_vs_catalog.py [--model threshold|<run dir>] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from flaredetect.benchmark import default_data_dir


def main() -> None:
    import lightkurve as lk

    from flaredetect import Detector
    from flaredetect.catalogs import read_guenther2020
    from flaredetect.data.lightcurve import CADENCE_DAYS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="threshold")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    args = parser.parse_args()
    catalog = read_guenther2020(args.data / "catalogs" / "guenther2020.csv")
    detector = Detector(args.model)
    ratios = []
    for path in sorted((args.data / "fits" / "spoc").glob("*-s0001-*_lc.fits")):
        lc = lk.read(str(path), quality_bitmask="none")
        tic = int(lc.meta["TICID"])
        if tic not in catalog:
            continue
        flares = detector.find_flares(lc).flares
        own = catalog.for_star(tic, float(lc.time.value.min()), float(lc.time.value.max()), by="peak")
        if not np.isfinite(flares["energy"].value).any():
            print(f"TIC {tic}: no TEFF/RADIUS in the header (Teff {lc.meta.get('TEFF')}, R {lc.meta.get('RADIUS')}): skipped")
            continue
        tol = 3.5 * CADENCE_DAYS  # an outburst's components (Günther's Flare rows) sum into one event
        for row in flares:
            on = (own.peak_time_btjd >= row["tstart"].value - tol) & (own.peak_time_btjd <= row["tstop"].value + tol)
            ebol = own.energy_erg[on]
            if not on.any() or not np.isfinite(ebol).all():
                continue
            ratio = float(row["energy"].value / ebol.sum())
            ratios.append(ratio)
            print(f"TIC {tic} {row['tpeak'].value:.4f}: ED {row['ed_rec'].value:7.1f} s, E {row['energy'].value:.3g} erg; "
                  f"Günther Ebol {ebol.sum():.3g} erg ({on.sum()} component(s)); ratio {ratio:.2f}  "
                  f"(Teff {lc.meta['TEFF']:.0f} K, R {lc.meta['RADIUS']:.3f} R_sun)")
    ratios = np.asarray(ratios)
    if ratios.size:
        q = np.percentile(ratios, [16, 50, 84])
        print(f"\n{ratios.size} catalogued detected events: E / Ebol median {q[1]:.2f} (16-84 %: {q[0]:.2f}-{q[2]:.2f}), "
              f"log10 ratio mean {np.mean(np.log10(ratios)):+.2f} +/- {np.std(np.log10(ratios)):.2f}")


if __name__ == "__main__":
    main()
