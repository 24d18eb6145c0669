"""Bin a light curve to a longer cadence: FFI-like data (200 s, 10 min, 30 min) from
2-minute or 20-second light curves, with their labels carried.

Bins are fixed in time, ``[k * cadence, (k + 1) * cadence)`` from BTJD 0, so the same
star binned twice (or two sectors) gets the same grid, as full-frame images have one
exposure grid. A bin is kept when it holds at least ``min_fill`` of the cadences it
would hold without gaps; its time is the mean time of its cadences (the middle of the
exposure they make up together: mid-exposure times, as TESS files give), its flux the mean of its cadences
(the exposure average a longer exposure records, so a flare's equivalent duration,
``sum(flux_rel) * cadence``, is preserved over full bins), its error the propagated
error of that mean, its quality the OR of its cadences' bits and its flare mask true
when any of its cadences is. Flares (times, amplitudes, EDs of the continuous flare)
are carried unchanged: their peak *observed* flux drops with the cadence, which is
what the detector has to cope with.
"""
from __future__ import annotations

import numpy as np

from flaredetect.data.lightcurve import SECONDS_PER_DAY, LightCurve


def bin_light_curve(lc: LightCurve, cadence_s: float, min_fill: float = 0.5) -> LightCurve:
    """``lc`` binned to ``cadence_s`` seconds (see the module doc).

    Raises
    ------
    ValueError
        When ``cadence_s`` is not longer than the light curve's own cadence, or
        ``min_fill`` is not in (0, 1].
    """
    if not 0 < min_fill <= 1:
        raise ValueError(f"min_fill={min_fill} must be in (0, 1]")
    own_s = lc.cadence_d * SECONDS_PER_DAY
    if not cadence_s > own_s * 1.01:
        raise ValueError(f"cannot bin a {own_s:.0f}-s light curve to cadence_s={cadence_s}: the new cadence must "
                         f"be longer than the light curve's")
    cadence_d = cadence_s / SECONDS_PER_DAY
    if len(lc) == 0:
        return lc.replace(cadence_s=float(cadence_s))
    index = np.floor(lc.time_btjd / cadence_d).astype(np.int64)
    bins, inverse, count = np.unique(index, return_inverse=True, return_counts=True)
    keep = count >= min_fill * cadence_s / own_s

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=values, minlength=len(bins)) / count

    err = np.asarray(lc.flux_err, dtype=np.float64)
    flux_err = np.sqrt(np.bincount(inverse, weights=err ** 2, minlength=len(bins))) / count
    quality = np.zeros(len(bins), dtype=np.int64)
    np.bitwise_or.at(quality, inverse, np.asarray(lc.quality, dtype=np.int64))
    flare_mask = None
    if lc.flare_mask is not None:
        flare_mask = np.bincount(inverse, weights=np.asarray(lc.flare_mask, dtype=np.float64), minlength=len(bins)) > 0
    noise = None if lc.noise_sigma is None else lc.noise_sigma / np.sqrt(cadence_s / own_s)
    return LightCurve(
        tic=lc.tic, sector=lc.sector,
        time_btjd=mean(np.asarray(lc.time_btjd, dtype=np.float64))[keep],
        flux_rel=mean(np.asarray(lc.flux_rel, dtype=np.float64))[keep],
        flux_err=flux_err[keep], quality=quality[keep], flares=lc.flares,
        flare_mask=None if flare_mask is None else flare_mask[keep],
        noise_sigma=noise, cadence_s=float(cadence_s),
    )
