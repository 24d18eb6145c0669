"""20-second TESS light curves with injected flares and their truth (``tess20s/`` of the
shared data: the training set of a 20-s flare-detection CNN).

Each ``TIC_<tic>_<sector>_<orbit>_data[_pulsations|_rrlyrae].csv.gz`` holds the star's
flux without flares (``flux``, e-/s, cosmic rays re-added) and the flux with the flares
(plus a synthetic asteroid crossing and, in ``_pulsations``/``_rrlyrae`` files, synthetic
variability) injected and then *standardised*, ``(x - mean) / std`` over the sector
(``flux_with_flares``). ``artificial_flare_params/TIC_<tic>_<sector>_flareparams*.npy``
lists the injected flares as (tpeak BTJD, relative amplitude, FWHM days) triples.

:func:`read_tess20s` undoes the standardisation (the scale and offset are fitted by least
squares of ``flux`` on ``flux_with_flares`` over the cadences the file marks flare-free,
``flareArr`` = 0) and returns a normalised :class:`LightCurve` of the injected flux with the
truth as its flares: the light curve then goes through the same cleaning as any other
(default quality mask, low-outlier clip), and the catalogued-flare code paths label it.
The equivalent durations are left NaN: the flares follow another template (Tovar Mendoza
et al. 2022) than :mod:`flaredetect.data.flare_model`.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from flaredetect.data.cleaning import clean
from flaredetect.data.lightcurve import Flares, LightCurve, runs
from flaredetect.sources.local import LightCurveReadError, read_csv_table, read_raw_csv

_NAME = re.compile(r"TIC_(\d+)_(\d+)_(\d+)_data(.*)\.csv(?:\.gz)?$", re.IGNORECASE)


def flare_params_path(path: str | Path) -> Path:
    """``artificial_flare_params/TIC_<tic>_<sector>_flareparams<suffix>.npy`` beside ``path``."""
    path = Path(path)
    match = _NAME.search(path.name)
    if not match:
        raise LightCurveReadError(f"{path}: not a tess20s file name (TIC_<tic>_<sector>_<orbit>_data*.csv.gz)")
    tic, sector, _, suffix = match.groups()
    return path.parent / "artificial_flare_params" / f"TIC_{tic}_{sector}_flareparams{suffix}.npy"


def injected_flux(table) -> np.ndarray:
    """The injected flux in the file's units (e-/s): ``flux_with_flares`` de-standardised."""
    flux = table["flux"].to_numpy(np.float64)
    standard = table["flux_with_flares"].to_numpy(np.float64)
    quiet = np.isfinite(flux) & np.isfinite(standard) & (table["flareArr"].to_numpy() == 0)
    if quiet.sum() < 10:
        raise ValueError("fewer than 10 finite flare-free cadences to undo the standardisation")
    scale, offset = np.polyfit(standard[quiet], flux[quiet], 1)
    return scale * standard + offset


def truth_flares(params: np.ndarray, lc: LightCurve, flare_arr: np.ndarray, time_all: np.ndarray) -> Flares:
    """Flares whose peak lies inside the light curve; start/stop: the ``flareArr`` run
    around the peak (detectable: the peak cadence is in one), else peak ± FWHM."""
    triples = np.asarray(params, dtype=np.float64).reshape(-1, 3)
    t0, t1 = float(lc.time_btjd.min()), float(lc.time_btjd.max())
    triples = triples[(triples[:, 0] >= t0) & (triples[:, 0] <= t1)]
    triples = triples[np.argsort(triples[:, 0])]
    peak, amp, fwhm = triples.T
    start, stop = peak - fwhm, peak + fwhm
    detectable = np.zeros(len(peak), dtype=bool)
    flagged = runs(flare_arr == 1)
    run_start = np.array([time_all[a] for a, _ in flagged])
    run_stop = np.array([time_all[b - 1] for _, b in flagged])
    for i, p in enumerate(peak):
        inside = np.flatnonzero((run_start <= p + 1e-6) & (run_stop >= p - 1e-6))
        if inside.size:
            k = inside[0]
            start[i], stop[i], detectable[i] = min(start[i], run_start[k]), max(stop[i], run_stop[k]), True
    n = len(peak)
    return Flares(peak_time_btjd=peak, amplitude=amp, fwhm_days=fwhm, start_time_btjd=start, stop_time_btjd=stop,
                  event_id=np.arange(n, dtype=np.int64), ed_s=np.full(n, np.nan), energy_erg=np.full(n, np.nan),
                  detectable=detectable)


def read_tess20s(path: str | Path, quality_bitmask: str | int | None = "default",
                 low_sigma: float | None = 5.0) -> LightCurve:
    """The injected light curve of one ``tess20s`` file with its truth (see the module doc).

    Raises
    ------
    LightCurveReadError
        One line naming the file: not a tess20s table, no flare parameters beside it, or
        too few usable cadences.
    """
    path = Path(path)
    params_path = flare_params_path(path)
    if not params_path.is_file():
        raise LightCurveReadError(f"{path}: no injected-flare parameters at {params_path}")
    table = read_csv_table(path)
    raw = read_raw_csv(path, table=table)
    try:
        missing = {"flux", "flux_with_flares", "flareArr"} - set(table.columns)
        if missing:
            raise ValueError(f"missing columns {sorted(missing)}")
        lc = clean(replace(raw, flux=injected_flux(table)), quality_bitmask, low_sigma=low_sigma)
    except ValueError as exc:
        raise LightCurveReadError(" ".join(f"{path}: {exc}".split())) from exc
    flares = truth_flares(np.load(params_path), lc, table["flareArr"].to_numpy(), raw.time_btjd)
    return lc.replace(flares=flares)
