"""Cut light curves into fixed-length training windows (shared by synthetic and real data).

A window is stored with ``context`` extra cadences on each side so that training can
shift the peak by random cropping (see :mod:`flaredetect.data.augment`); evaluation
uses the centre crop. Stored per window: relative flux, the binary quality flag, the
per-cadence flare mask, the cadences of *detectable* flare peaks and the times.

Labels
------
A window is positive when its (cropped) ``length`` cadences contain the peak cadence
of a *detectable* flare. What is detectable is decided by the source: for synthetic
data a flare whose exposure-integrated peak reaches 3 noise sigma; for a catalog every
vetted flare. Windows whose only flares are undetectable are never cut: as positives
they would teach the model to fire on noise, as negatives to ignore real flares.
Negatives are windows whose whole context is free of any flare (detectable or not).

Gaps
----
TESS light curves have gaps. A window never spans more than ``max_gap_cadences``
missing cadences: light curves are split into segments at longer gaps and every
window lies inside one segment.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flaredetect.data.lightcurve import CADENCE_DAYS, LightCurve, robust_noise_sigma, segments  # noqa: F401 (re-exported)

# Fields of a window set, with their dtypes; every array has the window count as first axis.
WINDOW_FIELDS: dict[str, str] = {
    "flux_rel": "float32",       # (n, C) relative flux
    "quality": "uint8",          # (n, C) 1 where a SPOC quality bit is set
    "flare_mask": "uint8",       # (n, C) 1 on flare cadences (any flare)
    "peak_mask": "uint8",        # (n, C) 1 on the peak cadence of a detectable flare
    "time_btjd": "float64",      # (n, C)
    "label": "uint8",            # (n,) label of the centre crop
    "tic": "int64",
    "sector": "int16",
    "noise_sigma": "float32",    # white-noise sigma of the star (relative flux)
    "peak_amp": "float32",       # largest detectable flare amplitude in the centre crop (NaN if none)
    "energy_erg": "float32",     # energy of that flare when known (NaN otherwise)
    "n_flares": "int16",         # detectable flare peaks in the centre crop
    "kind": "uint8",             # 0 positive, 1 random negative, 2 hard negative (artefact)
}
KIND_POSITIVE, KIND_NEGATIVE, KIND_HARD_NEGATIVE = 0, 1, 2


@dataclass(frozen=True)
class WindowSpec:
    """Geometry and sampling of windows.

    Parameters
    ----------
    length : cadences seen by the model (thesis: 100).
    context : extra cadences stored on each side, the range of the random peak shift.
    max_peak_offset : positives place the peak up to this many cadences from the centre.
    negatives_per_positive : negative:positive ratio (thesis ~2).
    hard_negative_fraction : share of negatives centred on artefacts (quality flags,
        gap edges, single-cadence outliers), the thesis's main false positives.
    max_gap_cadences : longest run of missing cadences a window may contain.
    """

    length: int = 100
    context: int = 10
    max_peak_offset: int = 30
    negatives_per_positive: float = 2.0
    hard_negative_fraction: float = 0.3
    max_gap_cadences: int = 5

    def __post_init__(self) -> None:
        if self.length < 8:
            raise ValueError(f"window length={self.length} is too short (>= 8 cadences)")
        if self.context < 0:
            raise ValueError(f"window context={self.context} must be >= 0")
        if not 0 <= self.max_peak_offset < self.length // 2:
            raise ValueError(
                f"window max_peak_offset={self.max_peak_offset} must be in [0, length/2={self.length // 2})"
            )
        if not 0.0 <= self.hard_negative_fraction <= 1.0:
            raise ValueError(f"window hard_negative_fraction={self.hard_negative_fraction} must be in [0, 1]")
        if self.negatives_per_positive < 0:
            raise ValueError(f"window negatives_per_positive={self.negatives_per_positive} must be >= 0")

    @property
    def stored_length(self) -> int:
        return self.length + 2 * self.context


def flare_mask_from_flares(lc: LightCurve) -> np.ndarray:
    """Per-cadence flare mask: the given truth, or the union of catalogued start–stop spans."""
    if lc.flare_mask is not None:
        return np.asarray(lc.flare_mask, dtype=bool)
    mask = np.zeros(len(lc), dtype=bool)
    starts = np.searchsorted(lc.time_btjd, lc.flares.start_time_btjd, side="left")
    stops = np.searchsorted(lc.time_btjd, lc.flares.stop_time_btjd, side="right")
    for a, b in zip(starts, stops):
        mask[a:b] = True
    mask[peak_indices(lc, detectable_only=False)] = True
    return mask


def peak_indices(lc: LightCurve, detectable_only: bool = True) -> np.ndarray:
    """Cadence index nearest each flare peak (peaks more than one cadence away from any
    observed cadence, e.g. inside a gap, are dropped)."""
    flares = lc.flares
    if detectable_only and len(flares):
        flares = flares.select(flares.detectable.astype(bool))
    if len(flares) == 0 or len(lc) == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.clip(np.searchsorted(lc.time_btjd, flares.peak_time_btjd), 1, len(lc) - 1)
    left_closer = np.abs(lc.time_btjd[idx - 1] - flares.peak_time_btjd) < np.abs(lc.time_btjd[idx] - flares.peak_time_btjd)
    idx = np.where(left_closer, idx - 1, idx)
    ok = np.abs(lc.time_btjd[idx] - flares.peak_time_btjd) <= 1.01 * lc.cadence_d
    return idx[ok].astype(np.int64)


def artefact_indices(lc: LightCurve, segs: list[tuple[int, int]], outlier_sigma: float = 5.0) -> np.ndarray:
    """Cadences that look like the thesis's false positives: quality-flagged cadences,
    segment (gap) edges and isolated single-cadence upward outliers (cosmic rays)."""
    flagged = np.flatnonzero(lc.quality != 0)
    edges = np.array([i for a, b in segs for i in (a, b - 1)], dtype=np.int64)
    flux = lc.flux_rel
    sigma = lc.noise_sigma or robust_noise_sigma(flux)
    spikes = np.zeros(0, dtype=np.int64)
    if len(flux) >= 3 and sigma > 0:
        neighbours = np.maximum(flux[:-2], flux[2:])
        spikes = np.flatnonzero(flux[1:-1] - neighbours > outlier_sigma * sigma) + 1
    return np.unique(np.concatenate([flagged, edges, spikes]))


def _valid_starts(segs: list[tuple[int, int]], width: int) -> np.ndarray:
    return np.concatenate(
        [np.arange(a, b - width + 1) for a, b in segs if b - a >= width] or [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)


def cut_windows(
    lc: LightCurve, spec: WindowSpec, rng: np.random.Generator, n_negatives: int | None = None
) -> dict[str, np.ndarray]:
    """Cut one light curve into positive and negative windows.

    ``n_negatives`` fixes the number of negatives (used to balance a whole data set);
    by default it is ``spec.negatives_per_positive`` times this star's positives.
    Returns a dict of arrays keyed as :data:`WINDOW_FIELDS`.
    """
    width = spec.stored_length
    segs = segments(lc.time_btjd, spec.max_gap_cadences, lc.cadence_d)
    flare_mask = flare_mask_from_flares(lc)
    peaks = peak_indices(lc, detectable_only=True)
    peak_mask = np.zeros(len(lc), dtype=bool)
    peak_mask[peaks] = True
    seg_of = np.full(len(lc), -1, dtype=np.int64)
    for k, (a, b) in enumerate(segs):
        seg_of[a:b] = k

    starts: list[int] = []
    kinds: list[int] = []
    # Positives: one per flare event (the brightest detectable component).
    flares = lc.flares
    det = flares.select(flares.detectable.astype(bool)) if len(flares) else flares
    if len(det):
        order = np.argsort(-det.amplitude)
        _, first = np.unique(det.event_id[order], return_index=True)
        event_peaks = np.sort(det.peak_time_btjd[order][first])
        idx = np.clip(np.searchsorted(lc.time_btjd, event_peaks), 0, len(lc) - 1)
        for i in idx:
            a, b = segs[seg_of[i]] if seg_of[i] >= 0 else (0, 0)
            if b - a < width:
                continue
            offset = int(rng.integers(-spec.max_peak_offset, spec.max_peak_offset + 1))
            start = int(np.clip(i - offset - width // 2, a, b - width))
            if spec.context <= i - start < spec.context + spec.length:
                starts.append(start)
                kinds.append(KIND_POSITIVE)
    n_pos = len(starts)

    # Negatives: windows whose whole stored context is free of flares.
    if n_negatives is None:
        n_negatives = int(round(spec.negatives_per_positive * n_pos))
    candidates = _valid_starts(segs, width)
    if len(candidates) and n_negatives > 0:
        dirty = np.concatenate([[0], np.cumsum(flare_mask)])
        clean = candidates[dirty[candidates + width] - dirty[candidates] == 0]
        n_hard = int(round(spec.hard_negative_fraction * n_negatives))
        hard_starts = np.zeros(0, dtype=np.int64)
        if n_hard and len(clean):
            centres = artefact_indices(lc, segs)
            proposals = centres - width // 2 + rng.integers(-spec.length // 4, spec.length // 4 + 1, size=len(centres))
            ok = np.isin(proposals, clean)
            hard_starts = rng.permutation(np.unique(proposals[ok]))[:n_hard]
        n_random = n_negatives - len(hard_starts)
        pool = np.setdiff1d(clean, hard_starts)
        random_starts = rng.choice(pool, size=min(n_random, len(pool)), replace=False) if len(pool) else pool
        starts += hard_starts.tolist() + random_starts.tolist()
        kinds += [KIND_HARD_NEGATIVE] * len(hard_starts) + [KIND_NEGATIVE] * len(random_starts)

    return _gather(lc, spec, np.asarray(starts, dtype=np.int64), np.asarray(kinds, dtype=np.uint8),
                   flare_mask, peak_mask)


def windows_centred_on(lc: LightCurve, spec: WindowSpec, centres: np.ndarray, rng: np.random.Generator,
                       kind: int = KIND_HARD_NEGATIVE) -> dict[str, np.ndarray]:
    """Windows centred (within ``spec.max_peak_offset``) on the given cadences, each inside one
    segment and clear of ``lc``'s flare mask over its whole stored context; labels from
    ``lc``'s detectable flares as in :func:`cut_windows` (negatives where none peaks)."""
    width = spec.stored_length
    segs = segments(lc.time_btjd, spec.max_gap_cadences, lc.cadence_d)
    flare_mask = flare_mask_from_flares(lc)
    peak_mask = np.zeros(len(lc), dtype=bool)
    peak_mask[peak_indices(lc, detectable_only=True)] = True
    dirty = np.concatenate([[0], np.cumsum(flare_mask)])
    starts = []
    for i in np.asarray(centres, dtype=np.int64):
        seg = next(((a, b) for a, b in segs if a <= i < b), None)
        if seg is None or seg[1] - seg[0] < width:
            continue
        offset = int(rng.integers(-spec.max_peak_offset, spec.max_peak_offset + 1))
        start = int(np.clip(i - offset - width // 2, seg[0], seg[1] - width))
        if dirty[start + width] == dirty[start]:
            starts.append(start)
    starts = np.asarray(starts, dtype=np.int64)
    return _gather(lc, spec, starts, np.full(len(starts), kind, dtype=np.uint8), flare_mask, peak_mask)


def _gather(lc, spec, starts, kinds, flare_mask, peak_mask) -> dict[str, np.ndarray]:
    width = spec.stored_length
    n = len(starts)
    take = starts[:, None] + np.arange(width)[None, :] if n else np.zeros((0, width), dtype=np.int64)
    crop = slice(spec.context, spec.context + spec.length)
    peaks_in = peak_mask[take][:, crop] if n else np.zeros((0, spec.length), dtype=bool)

    # Amplitude / energy of the brightest detectable flare whose peak is in the centre crop.
    peak_amp = np.full(n, np.nan, dtype=np.float32)
    energy = np.full(n, np.nan, dtype=np.float32)
    det = lc.flares.select(lc.flares.detectable.astype(bool)) if len(lc.flares) else lc.flares
    if len(det) and n:
        t0 = lc.time_btjd[take[:, spec.context]]
        t1 = lc.time_btjd[take[:, spec.context + spec.length - 1]]
        half = 0.5 * lc.cadence_d
        inside = (det.peak_time_btjd[None, :] >= (t0 - half)[:, None]) & (det.peak_time_btjd[None, :] <= (t1 + half)[:, None])
        amp = np.where(inside, det.amplitude[None, :], -np.inf)
        best = np.argmax(amp, axis=1)
        has = inside.any(axis=1)
        peak_amp[has] = det.amplitude[best[has]]
        energy[has] = det.energy_erg[best[has]]

    noise = lc.noise_sigma if lc.noise_sigma is not None else np.nan
    return {
        "flux_rel": lc.flux_rel[take].astype(np.float32),
        "quality": (lc.quality[take] != 0).astype(np.uint8),
        "flare_mask": flare_mask[take].astype(np.uint8),
        "peak_mask": peak_mask[take].astype(np.uint8),
        "time_btjd": lc.time_btjd[take].astype(np.float64),
        "label": peaks_in.any(axis=1).astype(np.uint8),
        "tic": np.full(n, lc.tic, dtype=np.int64),
        "sector": np.full(n, lc.sector, dtype=np.int16),
        "noise_sigma": np.full(n, noise, dtype=np.float32),
        "peak_amp": peak_amp,
        "energy_erg": energy,
        "n_flares": peaks_in.sum(axis=1).astype(np.int16),
        "kind": kinds,
    }


def concat_windows(parts: list[dict[str, np.ndarray]], spec: WindowSpec) -> dict[str, np.ndarray]:
    """Concatenate window dicts (an empty list gives empty arrays of the right shape)."""
    if not parts:
        width = spec.stored_length
        return {
            k: np.zeros((0, width) if k in ("flux_rel", "quality", "flare_mask", "peak_mask", "time_btjd") else (0,), dtype=dt)
            for k, dt in WINDOW_FIELDS.items()
        }
    return {k: np.concatenate([p[k] for p in parts]) for k in WINDOW_FIELDS}


def negatives_per_star(n_positives: int, n_stars: int, ratio: float) -> int:
    """Spread ``ratio * n_positives`` negatives evenly over stars, so non-flaring stars
    contribute negatives too (the thesis drew them from stars without flares)."""
    return int(np.ceil(ratio * n_positives / max(n_stars, 1)))
