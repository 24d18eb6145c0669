"""Deterministic synthetic TESS 2-minute light curves with known flares.

Why: real labels (catalogs) miss weak flares and contain vetting errors, and fetching
real light curves is slow. Synthetic sectors give exact per-cadence truth, any amount of
data, and injection-recovery tests. They imitate what makes the real task hard: stellar
variability (rotation, pulsation, eclipses), white + weak red noise, gaps, SPOC QUALITY
flags, and unlabelled look-alikes (cosmic-ray spikes, jumps and settling ramps after
momentum dumps and gaps, flagged outliers).

Model of one star (all in relative flux, quiescent level 0)::

    flux_rel = variability + flares + white noise + red noise + artefacts

Truth conventions (``LightCurve.flares`` / ``flare_mask``):

* one ``Flares`` row per flare *component*; the components of a complex flare share
  ``event_id``;
* ``amplitude`` and ``fwhm_days`` are those of the continuous template (the physical
  flare), ``ed_s`` is analytic (:func:`~flaredetect.data.flare_model.equivalent_duration_s`),
  ``energy_erg`` is NaN (no stellar luminosity is simulated);
* ``start_time_btjd``/``stop_time_btjd`` bound the cadences where that component's
  exposure-integrated flux exceeds ``max(mask_level_sigma * sigma, mask_level_rel *
  amplitude)``, and always include the cadence nearest the peak (when the peak falls
  in a gap only the visible part counts, and a component with nothing visible is
  dropped from the table; its flux is still added);
* ``detectable``: at least ``detect_min_cadences`` (3) of the component's
  exposure-integrated cadences reach ``detect_sigma * sigma`` (3 sigma), sigma being the
  star's white noise (the catalogs' "3 consecutive points above 3 sigma").
  It is a property of the injected signal, not of any detector;
* ``flare_mask`` is the union of the components' [start, stop] extents (of all
  components, or only the detectable ones with ``mask_only_detectable=True``).
  Look-alikes are never in the mask; cosmic rays are placed outside it.

Randomness comes only from the ``numpy.random.Generator`` passed in, drawn in a fixed
order, so a seed gives bit-identical arrays. :func:`generate_light_curves` gives each
star its own child seed, so star ``i`` does not depend on how many stars are made.

Every tunable is a field of :class:`SyntheticConfig` and can be passed as a keyword
argument. Ranges are ``(low, high)`` pairs; "log-uniform" means uniform in log.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import signal, special

from flaredetect.data import flare_model
from flaredetect.data.lightcurve import CADENCE_DAYS, QUALITY_BITS, SECONDS_PER_DAY, Flares, LightCurve

MINUTE_DAYS = 1.0 / 1440.0
DESAT = QUALITY_BITS["desat"]


@dataclass(frozen=True)
class SyntheticConfig:
    """Tunables of the generator (defaults aim at TESS 2-min M-dwarf light curves).

    Sampling and gaps
    -----------------
    cadence_days : exposure and cadence length (TESS 2 minutes).
    sector_days : time span of a sector, gap included (sector 2: 27.4 d).
    start_btjd : first cadence time; None = approximate start of ``sector``
        (1325.29 for sector 1, 1354.11 for sector 2, then ~27.6 d per sector),
        plus a random sub-cadence offset.
    downlink_gap_days : mid-sector data-downlink gap length, uniform.
    downlink_start_fraction : where in the sector the downlink gap starts, uniform.
    n_short_gaps : number of short gaps (inclusive integer range).
    short_gap_cadences : short-gap length in cadences, log-uniform.

    QUALITY flags and instrumental artefacts (unlabelled look-alikes)
    -----------------------------------------------------------------
    dump_interval_days : momentum-dump period per star, uniform (TESS: 2.5-3.5 d).
    dump_jitter_days : each dump moves by up to this much from the regular schedule.
    dump_cadences : cadences flagged 32 per dump (inclusive integer range).
    dump_cadence_sigma : Gaussian offset (in sigma) of the flux at dump cadences.
    dump_artifact_probability : chance that a dump leaves a jump that then relaxes.
    dump_artifact_sigma : size of that jump in sigma, log-uniform, random sign.
    dump_artifact_timescale_days : its exponential relaxation time, log-uniform
        (long ones look like steps, short positive ones like flare decays).
    gap_ramp_probability : chance of a settling ramp after an orbit start
        (sector start, end of the downlink gap); half that before an orbit end.
    gap_ramp_sigma : ramp size in sigma, log-uniform, random sign.
    gap_ramp_timescale_days : ramp e-folding time, log-uniform.
    short_gap_ramp_probability : chance of a (smaller, x0.5) ramp after a short gap.
    other_flag_rate : fraction of cadences with another QUALITY bit set.
    other_flag_bits : bits to draw from (manual exclude, impulsive outlier,
        collateral cosmic ray).
    flagged_outlier_fraction : fraction of those flagged cadences that are outliers.
    flagged_outlier_sigma : outlier size in sigma, log-uniform, random sign.
    cosmic_ray_rate_per_day : unflagged single-cadence positive spikes, Poisson rate.
    cosmic_ray_sigma : spike height in sigma, log-uniform.

    Stellar variability
    -------------------
    quiet_fraction : fraction of stars without rotational modulation.
    rotation_period_days : log-uniform.
    rotation_amplitude : semi-amplitude of the fundamental, log-uniform.
    n_harmonics : number of rotation harmonics incl. the fundamental (inclusive range).
    harmonic_ratio : amplitude of each higher harmonic relative to the fundamental.
    evolution_timescale_days : periods of the slow amplitude/phase evolution, uniform.
    amplitude_evolution : rms of the log-amplitude evolution (spot growth/decay).
    phase_evolution_rad : rms of the phase drift (spot migration, differential rotation).
    pulsator_fraction : fraction of stars with delta-Scuti-like pulsations.
    n_pulsation_modes : inclusive integer range.
    pulsation_period_days : log-uniform.
    pulsation_amplitude : per-mode semi-amplitude, log-uniform.
    eclipsing_fraction : fraction of stars with eclipses.
    eclipse_period_days : log-uniform.
    eclipse_depth : primary depth, log-uniform.
    eclipse_width_phase : Gaussian sigma of an eclipse, in orbital phase, uniform.
    secondary_depth_ratio : secondary/primary depth, uniform.

    Noise
    -----
    noise_sigma : white noise per cadence, log-uniform (``flux_err``, ``noise_sigma``).
    red_noise_ratio : rms of the AR(1) red noise relative to ``noise_sigma``, log-uniform.
    red_noise_timescale_days : its correlation time, log-uniform.
    blend_probability : chance that a neighbour shares the aperture (0: never, and no
        random number is drawn, so 2-minute data are as before blending existed).
    blend_fraction : the neighbour's share of the aperture flux (1 - SPOC's ``CROWDSAP``),
        log-uniform: the star's own variability and flares are diluted by ``1 - share``
        (flare truth and labels as observed) and the neighbour's variability (its own
        rotation, pulsations, eclipses) adds ``share`` of itself.

    Flares
    ------
    no_flare_fraction : fraction of stars without flares.
    flare_rate_per_day : events per day for flaring stars, uniform (most injected
        flares are below the noise: ~10 % end up ``detectable``).
    fwhm_median_days : median FWHM of the (truncated) log-normal FWHM distribution;
        5 min, near the Günther et al. 2020 catalog's median ``FWHMdt``.
    fwhm_log_sigma : its natural-log standard deviation.
    fwhm_range_days : truncation of the FWHM distribution (1-60 min).
    amplitude_index : power-law index of dN/dA.
    amplitude_min_sigma : lowest amplitude in units of sigma (below the noise, so that
        the set includes undetectable flares).
    amplitude_max : highest amplitude (relative flux).
    complex_fraction : fraction of events with extra components.
    complex_extra_components : inclusive integer range.
    complex_delay_fwhm : delay of each extra peak after the previous one, in units of
        the main component's FWHM, uniform.
    complex_amplitude_ratio : extra/main amplitude, uniform.
    complex_fwhm_ratio : extra/main FWHM, log-uniform.
    mask_level_sigma, mask_level_rel : the mask threshold (see the module docstring).
    detect_sigma, detect_min_cadences : a flare is ``detectable`` when at least
        ``detect_min_cadences`` of its exposure-integrated cadences reach ``detect_sigma``
        noise sigma — the "3 consecutive points above 3 sigma" criterion catalogs such as
        Günther et al. 2020 were built with, so synthetic labels mean what catalog labels mean.
    mask_only_detectable : mark only detectable components in ``flare_mask``.
    tail_level_sigma : a flare is evaluated until its template falls below this
        fraction of sigma (its flux beyond that is negligible).
    """

    cadence_days: float = CADENCE_DAYS
    sector_days: float = 27.4
    start_btjd: float | None = None
    downlink_gap_days: tuple[float, float] = (0.9, 1.5)
    downlink_start_fraction: tuple[float, float] = (0.46, 0.50)
    n_short_gaps: tuple[int, int] = (1, 4)
    short_gap_cadences: tuple[float, float] = (3.0, 60.0)

    dump_interval_days: tuple[float, float] = (2.6, 3.4)
    dump_jitter_days: float = 0.04
    dump_cadences: tuple[int, int] = (1, 3)
    dump_cadence_sigma: float = 3.0
    dump_artifact_probability: float = 0.5
    dump_artifact_sigma: tuple[float, float] = (0.5, 6.0)
    dump_artifact_timescale_days: tuple[float, float] = (0.01, 1.0)
    gap_ramp_probability: float = 0.7
    gap_ramp_sigma: tuple[float, float] = (0.5, 10.0)
    gap_ramp_timescale_days: tuple[float, float] = (0.05, 0.5)
    short_gap_ramp_probability: float = 0.3
    other_flag_rate: float = 1e-3
    other_flag_bits: tuple[int, ...] = (128, 512, 1024)
    flagged_outlier_fraction: float = 0.3
    flagged_outlier_sigma: tuple[float, float] = (4.0, 20.0)
    cosmic_ray_rate_per_day: float = 0.1
    cosmic_ray_sigma: tuple[float, float] = (3.0, 15.0)

    quiet_fraction: float = 0.15
    rotation_period_days: tuple[float, float] = (0.1, 15.0)
    rotation_amplitude: tuple[float, float] = (1e-4, 5e-2)
    n_harmonics: tuple[int, int] = (1, 3)
    harmonic_ratio: tuple[float, float] = (0.05, 0.5)
    evolution_timescale_days: tuple[float, float] = (5.0, 40.0)
    amplitude_evolution: float = 0.3
    phase_evolution_rad: float = 0.5
    pulsator_fraction: float = 0.08
    n_pulsation_modes: tuple[int, int] = (1, 5)
    pulsation_period_days: tuple[float, float] = (0.02, 0.2)
    pulsation_amplitude: tuple[float, float] = (1e-4, 3e-3)
    eclipsing_fraction: float = 0.05
    eclipse_period_days: tuple[float, float] = (0.5, 10.0)
    eclipse_depth: tuple[float, float] = (1e-3, 0.1)
    eclipse_width_phase: tuple[float, float] = (0.01, 0.04)
    secondary_depth_ratio: tuple[float, float] = (0.0, 0.5)

    noise_sigma: tuple[float, float] = (3e-4, 1e-2)
    red_noise_ratio: tuple[float, float] = (0.05, 0.3)
    red_noise_timescale_days: tuple[float, float] = (0.01, 0.3)
    blend_probability: float = 0.0
    blend_fraction: tuple[float, float] = (0.02, 0.8)

    no_flare_fraction: float = 0.25
    flare_rate_per_day: tuple[float, float] = (0.05, 3.0)
    fwhm_median_days: float = 5.0 * MINUTE_DAYS
    fwhm_log_sigma: float = 1.0
    fwhm_range_days: tuple[float, float] = (1.0 * MINUTE_DAYS, 60.0 * MINUTE_DAYS)
    amplitude_index: float = -2.0
    amplitude_min_sigma: float = 0.3
    amplitude_max: float = 3.0
    complex_fraction: float = 0.15
    complex_extra_components: tuple[int, int] = (1, 3)
    complex_delay_fwhm: tuple[float, float] = (0.5, 4.0)
    complex_amplitude_ratio: tuple[float, float] = (0.1, 0.8)
    complex_fwhm_ratio: tuple[float, float] = (0.5, 2.0)
    mask_level_sigma: float = 0.5
    mask_level_rel: float = 0.01
    detect_sigma: float = 3.0
    detect_min_cadences: int = 3
    mask_only_detectable: bool = False
    tail_level_sigma: float = 1e-3

    def __post_init__(self) -> None:
        # Hydra hands over lists (ListConfig); store hashable, immutable tuples.
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
                object.__setattr__(self, f.name, tuple(value))

    @classmethod
    def from_params(cls, **params) -> "SyntheticConfig":
        """Build from keyword arguments, refusing unknown names (typos in a yaml)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise TypeError(f"unknown synthetic-data parameters: {unknown}")
        return cls(**params)


def default_params() -> dict:
    """The default tunables as a plain dict (e.g. to write a Hydra yaml)."""
    return asdict(SyntheticConfig())


def cadence_params(cadence_s: float) -> dict:
    """Generator settings of the data kind a TESS cadence is (on top of the 2-minute defaults).

    * Every cadence: ``cadence_days``; the white noise of the same stars per cadence scales
      as ``sqrt(120 s / cadence)``; short gaps keep their length in time; a flare is
      ``detectable`` over as many cadences as 3 two-minute ones span (at least 1: a 30-min
      cadence holds most flares whole).
    * 20 s: the cosmic rays the 2-minute pipeline removes onboard stay in (measured on
      ``tess20s/``: ~100 per day, 1.5-35 sigma).
    * FFI (200 s, 10 min, 30 min): scattered light and coarser systematics (a settling
      ramp at every orbit edge, larger and slower; stronger red noise), fainter stars (noise
      range twice as high at its top) and blends: half the stars share the aperture with a
      neighbour taking 2-80 % of its flux (log-uniform; the 10 two-minute SPOC files of
      ``../shared/data`` have 1 - CROWDSAP (their headers) of median 0.09, a quarter above 0.24; FFI stars
      are fainter and their apertures larger, so more blended; an assumption, not a fit).

    2 minutes gives ``{}``: the defaults are the 2-minute kind.
    """
    cadence_s = float(cadence_s)
    if abs(cadence_s - 120.0) < 1e-6:
        return {}
    base = SyntheticConfig()
    scale = np.sqrt(120.0 / cadence_s)
    lo, hi = base.noise_sigma
    params = {"cadence_days": cadence_s / 86400.0,
              "noise_sigma": (lo * scale, hi * scale * (2.0 if cadence_s >= 200 else 1.0)),
              "short_gap_cadences": tuple(max(1.0, g * 120.0 / cadence_s) for g in base.short_gap_cadences),
              "detect_min_cadences": max(1, int(round(base.detect_min_cadences * min(1.0, 120.0 / cadence_s))))
              if cadence_s > 120 else base.detect_min_cadences}
    if cadence_s < 60:
        params.update(cosmic_ray_rate_per_day=100.0, cosmic_ray_sigma=(1.5, 35.0))
    if cadence_s >= 200:
        params.update(gap_ramp_probability=1.0, gap_ramp_sigma=(2.0, 30.0), gap_ramp_timescale_days=(0.2, 2.0),
                      red_noise_ratio=(0.1, 0.6), red_noise_timescale_days=(0.05, 1.0),
                      blend_probability=0.5, blend_fraction=(0.02, 0.8))
    return params


@dataclass(frozen=True)
class SyntheticStar:
    """A generated light curve plus the hidden components and parameters behind it
    (for tests and diagnostics; training only needs ``light_curve``)."""

    light_curve: LightCurve
    variability: np.ndarray
    flare_flux: np.ndarray
    white_noise: np.ndarray
    red_noise: np.ndarray
    artefact_flux: np.ndarray
    cosmic_ray_index: np.ndarray
    dump_time_btjd: np.ndarray
    downlink_gap_btjd: tuple[float, float]
    params: dict


# --------------------------------------------------------------------------- helpers


def _as_rng(seed_or_rng) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def _loguniform(rng, bounds, size=None):
    lo, hi = bounds
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _uniform(rng, bounds, size=None):
    return rng.uniform(bounds[0], bounds[1], size)


def _int_range(rng, bounds, size=None):
    return rng.integers(int(bounds[0]), int(bounds[1]) + 1, size)


def _sector_start_btjd(sector: int) -> float:
    """Approximate first-cadence time of a sector (exact-ish for sectors 1 and 2)."""
    if sector == 1:
        return 1325.29
    if sector == 2:
        return 1354.11
    return 1325.29 + 27.6 * (sector - 1)


def _smooth_series(rng, time_btjd, timescale_bounds, n_terms: int = 3) -> np.ndarray:
    """Zero-mean, unit-rms-ish slow random function (sum of a few long sinusoids)."""
    periods = _uniform(rng, timescale_bounds, n_terms)
    phases = rng.uniform(0.0, 2.0 * np.pi, n_terms)
    weights = rng.normal(0.0, 1.0, n_terms) * np.sqrt(2.0 / n_terms)
    out = np.zeros_like(time_btjd)
    for p, ph, w in zip(periods, phases, weights):
        out += w * np.sin(2.0 * np.pi * time_btjd / p + ph)
    return out


def _truncated_lognormal(rng, median, log_sigma, bounds, size):
    """Inverse-CDF sampling of a log-normal truncated to ``bounds`` (no rejection loop)."""
    a = (np.log(bounds[0]) - np.log(median)) / log_sigma
    b = (np.log(bounds[1]) - np.log(median)) / log_sigma
    u = rng.uniform(special.ndtr(a), special.ndtr(b), size)
    return median * np.exp(log_sigma * special.ndtri(u))


def _power_law(rng, index, lo, hi, size):
    """Samples of dN/dx ~ x**index on [lo, hi] (inverse CDF)."""
    u = rng.uniform(0.0, 1.0, size)
    if abs(index + 1.0) < 1e-12:
        return lo * (hi / lo) ** u
    g = index + 1.0
    return (lo**g + u * (hi**g - lo**g)) ** (1.0 / g)


# ------------------------------------------------------------------------ components


def _time_grid(rng, cfg: SyntheticConfig, sector: int):
    """Full regular grid, the kept-cadence mask, dump schedule and gap bounds."""
    cad = cfg.cadence_days
    start = cfg.start_btjd if cfg.start_btjd is not None else _sector_start_btjd(sector)
    start = start + rng.uniform(0.0, cad)
    n_full = int(round(cfg.sector_days / cad))
    t_full = start + cad * np.arange(n_full, dtype=np.float64)
    end = t_full[-1]

    gap_start = start + _uniform(rng, cfg.downlink_start_fraction) * cfg.sector_days
    gap_stop = gap_start + _uniform(rng, cfg.downlink_gap_days)
    keep = ~((t_full >= gap_start) & (t_full < gap_stop))

    # Momentum dumps: a regular schedule per orbit, restarted after the downlink.
    interval = _uniform(rng, cfg.dump_interval_days)
    dumps = []
    for orbit_start, orbit_end in ((start, gap_start), (gap_stop, end)):
        t = orbit_start + rng.uniform(0.3, interval)
        while True:
            td = t + rng.uniform(-cfg.dump_jitter_days, cfg.dump_jitter_days)
            if td >= orbit_end - 0.1:
                break
            dumps.append(td)
            t += interval
    dump_time = np.array(dumps, dtype=np.float64)
    dump_idx = np.searchsorted(t_full, dump_time)
    dump_len = _int_range(rng, cfg.dump_cadences, len(dump_idx))
    desat_full = np.zeros(n_full, dtype=bool)
    for i, n in zip(dump_idx, dump_len):
        desat_full[i : i + n] = True

    # Short gaps, kept away from dumps, the downlink gap and the sector edges.
    blocked = desat_full | ~keep
    blocked = np.convolve(blocked, np.ones(11), mode="same") > 0  # +-5 cadences
    short_gaps = []
    for _ in range(_int_range(rng, cfg.n_short_gaps)):
        for _try in range(20):
            length = int(round(_loguniform(rng, cfg.short_gap_cadences)))
            i0 = int(rng.integers(20, n_full - length - 20))
            if not blocked[i0 : i0 + length].any():
                keep[i0 : i0 + length] = False
                blocked[max(i0 - 5, 0) : i0 + length + 5] = True
                short_gaps.append((t_full[i0], t_full[i0 + length]))
                break
    return t_full, keep, desat_full, dump_time, (gap_start, gap_stop), short_gaps, interval


def _variability(rng, cfg: SyntheticConfig, t: np.ndarray, params: dict) -> np.ndarray:
    """Rotation (evolving spots) + optional pulsations + optional eclipses."""
    flux = np.zeros_like(t)
    tt = t - t[0]
    quiet = rng.random() < cfg.quiet_fraction
    period = float(_loguniform(rng, cfg.rotation_period_days))
    amp = float(_loguniform(rng, cfg.rotation_amplitude))
    n_harm = int(_int_range(rng, cfg.n_harmonics))
    ratios = np.concatenate([[1.0], _uniform(rng, cfg.harmonic_ratio, n_harm - 1)])
    phases0 = rng.uniform(0.0, 2.0 * np.pi, n_harm)
    amp_t = amp * np.exp(cfg.amplitude_evolution * _smooth_series(rng, tt, cfg.evolution_timescale_days))
    phase_t = cfg.phase_evolution_rad * _smooth_series(rng, tt, cfg.evolution_timescale_days)
    if not quiet:
        base = 2.0 * np.pi * tt / period + phase_t
        for k in range(n_harm):
            flux += amp_t * ratios[k] * np.sin((k + 1) * base + phases0[k])
    params.update(quiet=quiet, rotation_period_days=period,
                  rotation_amplitude=0.0 if quiet else amp, n_harmonics=n_harm)

    pulsator = rng.random() < cfg.pulsator_fraction
    n_modes = int(_int_range(rng, cfg.n_pulsation_modes))
    p_periods = _loguniform(rng, cfg.pulsation_period_days, n_modes)
    p_amps = _loguniform(rng, cfg.pulsation_amplitude, n_modes)
    p_phases = rng.uniform(0.0, 2.0 * np.pi, n_modes)
    if pulsator:
        for p, a, ph in zip(p_periods, p_amps, p_phases):
            flux += a * np.sin(2.0 * np.pi * tt / p + ph)
    params.update(pulsator=pulsator, pulsation_period_days=p_periods if pulsator else np.zeros(0))

    eclipsing = rng.random() < cfg.eclipsing_fraction
    e_period = float(_loguniform(rng, cfg.eclipse_period_days))
    e_depth = float(_loguniform(rng, cfg.eclipse_depth))
    e_width = float(_uniform(rng, cfg.eclipse_width_phase))
    e_ratio = float(_uniform(rng, cfg.secondary_depth_ratio))
    e_t0 = rng.uniform(0.0, e_period)
    if eclipsing:
        ph = ((tt - e_t0) / e_period + 0.5) % 1.0 - 0.5
        ph2 = ((tt - e_t0) / e_period) % 1.0 - 0.5
        flux -= e_depth * np.exp(-0.5 * (ph / e_width) ** 2)
        flux -= e_ratio * e_depth * np.exp(-0.5 * (ph2 / e_width) ** 2)
    params.update(eclipsing=eclipsing, eclipse_period_days=e_period if eclipsing else np.nan)
    return flux


def _red_noise(rng, cfg: SyntheticConfig, n_full: int, sigma: float, params: dict) -> np.ndarray:
    """Stationary AR(1) noise on the full regular grid (so gaps do not reset it)."""
    rms = sigma * float(_loguniform(rng, cfg.red_noise_ratio))
    tau = float(_loguniform(rng, cfg.red_noise_timescale_days))
    phi = np.exp(-cfg.cadence_days / tau)
    drive = rng.normal(0.0, 1.0, n_full)
    x0 = rng.normal(0.0, rms)
    out, _ = signal.lfilter([rms * np.sqrt(1.0 - phi**2)], [1.0, -phi], drive, zi=[phi * x0])
    params.update(red_noise_rms=rms, red_noise_timescale_days=tau)
    return out


def _blend(rng, cfg: SyntheticConfig, t: np.ndarray, variability: np.ndarray, params: dict
           ) -> tuple[np.ndarray, float]:
    """``(variability of the blend, dilution of the star's own signal)``: with
    ``blend_probability`` a neighbour takes a ``blend_fraction`` share of the aperture flux."""
    share = 0.0
    if cfg.blend_probability > 0 and rng.random() < cfg.blend_probability:
        share = float(_loguniform(rng, cfg.blend_fraction))
        variability = (1.0 - share) * variability + share * _variability(rng, cfg, t, {})
    params.update(blend_fraction=share)
    return variability, 1.0 - share


def _flares(rng, cfg: SyntheticConfig, t: np.ndarray, sigma: float, params: dict, dilution: float = 1.0):
    """Inject flares (amplitudes as observed: ``dilution`` times the star's own); returns
    their summed flux, the truth table and the mask."""
    n = len(t)
    cad = cfg.cadence_days
    flux = np.zeros(n)
    mask = np.zeros(n, dtype=bool)

    flaring = rng.random() >= cfg.no_flare_fraction
    rate = float(_uniform(rng, cfg.flare_rate_per_day))
    n_events = int(rng.poisson(rate * n * cad)) if flaring else 0
    params.update(flaring=flaring, flare_rate_per_day=rate if flaring else 0.0)

    peak_idx = rng.integers(0, n, n_events)
    peaks = t[peak_idx] + rng.uniform(-0.5 * cad, 0.5 * cad, n_events)
    amp_lo = min(cfg.amplitude_min_sigma * sigma, 0.5 * cfg.amplitude_max)
    amps = _power_law(rng, cfg.amplitude_index, amp_lo, cfg.amplitude_max, n_events) * dilution
    fwhms = _truncated_lognormal(rng, cfg.fwhm_median_days, cfg.fwhm_log_sigma,
                                 cfg.fwhm_range_days, n_events)
    is_complex = rng.random(n_events) < cfg.complex_fraction

    comp_peak, comp_amp, comp_fwhm, comp_event = [], [], [], []
    for e in range(n_events):
        comp_peak.append(peaks[e])
        comp_amp.append(amps[e])
        comp_fwhm.append(fwhms[e])
        comp_event.append(e)
        if is_complex[e]:
            t_prev = peaks[e]
            for _ in range(_int_range(rng, cfg.complex_extra_components)):
                t_prev = t_prev + _uniform(rng, cfg.complex_delay_fwhm) * fwhms[e]
                fw = np.clip(fwhms[e] * _loguniform(rng, cfg.complex_fwhm_ratio), *cfg.fwhm_range_days)
                comp_peak.append(t_prev)
                comp_amp.append(amps[e] * _uniform(rng, cfg.complex_amplitude_ratio))
                comp_fwhm.append(fw)
                comp_event.append(e)

    comp_peak = np.asarray(comp_peak, dtype=np.float64)
    comp_amp = np.asarray(comp_amp, dtype=np.float64)
    comp_fwhm = np.asarray(comp_fwhm, dtype=np.float64)
    comp_event = np.asarray(comp_event, dtype=np.int64)
    m = len(comp_peak)
    start = np.full(m, np.nan)
    stop = np.full(m, np.nan)
    detectable = np.zeros(m, dtype=bool)
    keep = np.ones(m, dtype=bool)
    for j in range(m):
        tail = min(flare_model.tail_phase(cfg.tail_level_sigma * sigma / comp_amp[j]), 200.0)
        lo = comp_peak[j] + flare_model.RISE_PHASE * comp_fwhm[j] - cad
        hi = comp_peak[j] + tail * comp_fwhm[j] + cad
        i0, i1 = np.searchsorted(t, [lo, hi])
        if i1 <= i0:  # an extra component that fell into a gap or after the sector
            keep[j] = False
            continue
        f = flare_model.flare_flux(t[i0:i1], comp_peak[j], comp_fwhm[j], comp_amp[j], cad)
        flux[i0:i1] += f
        level = max(cfg.mask_level_sigma * sigma, cfg.mask_level_rel * comp_amp[j])
        above = np.flatnonzero(f > level)
        ipk = int(np.argmin(np.abs(t[i0:i1] - comp_peak[j])))
        if abs(t[i0 + ipk] - comp_peak[j]) > cad:
            # An extra component peaking inside a gap: only its visible tail is marked.
            if not above.size:
                keep[j] = False
                continue
            ipk = above[0]
        k0 = min(above[0], ipk) if above.size else ipk
        k1 = max(above[-1], ipk) if above.size else ipk
        start[j], stop[j] = t[i0 + k0], t[i0 + k1]
        detectable[j] = np.count_nonzero(f >= cfg.detect_sigma * sigma) >= cfg.detect_min_cadences
        if detectable[j] or not cfg.mask_only_detectable:
            mask[i0 + k0 : i0 + k1 + 1] = True

    truth = Flares(
        peak_time_btjd=comp_peak,
        amplitude=comp_amp,
        fwhm_days=comp_fwhm,
        start_time_btjd=start,
        stop_time_btjd=stop,
        event_id=comp_event,
        ed_s=flare_model.equivalent_duration_s(comp_amp, comp_fwhm),
        energy_erg=np.full(m, np.nan),
        detectable=detectable,
    ).select(keep)
    order = np.argsort(truth.peak_time_btjd, kind="stable")
    return flux, truth.select(order), mask


def _exp_ramps(t, flux, t_ref, amp, tau, after: bool) -> None:
    """Add amp * exp(-|t - t_ref| / tau) on one side of ``t_ref`` (in place, locally)."""
    if after:
        i0, i1 = np.searchsorted(t, [t_ref, t_ref + 12.0 * tau])
    else:
        i0, i1 = np.searchsorted(t, [t_ref - 12.0 * tau, t_ref], side="right")
    flux[i0:i1] += amp * np.exp(-np.abs(t[i0:i1] - t_ref) / tau)


# ------------------------------------------------------------------------ public API


def simulate_star(seed_or_rng, tic: int, sector: int, config: SyntheticConfig | None = None,
                  **params) -> SyntheticStar:
    """Generate one star-sector and keep its hidden components (see module docstring).

    Parameters
    ----------
    seed_or_rng : int, numpy.random.SeedSequence or numpy.random.Generator
    tic, sector : int
        Identifiers written into the ``LightCurve``; ``sector`` also sets the start time.
    config : SyntheticConfig, optional
        Tunables; keyword ``params`` override its fields.
    """
    cfg = config if config is not None else SyntheticConfig()
    if params:
        cfg = SyntheticConfig.from_params(**{**asdict(cfg), **params})
    rng = _as_rng(seed_or_rng)
    cad = cfg.cadence_days
    info: dict = {}

    t_full, keep, desat_full, dump_time, downlink, short_gaps, interval = _time_grid(rng, cfg, sector)
    info.update(dump_interval_days=interval, short_gaps_btjd=short_gaps)
    t = t_full[keep]
    n = len(t)
    sigma = float(_loguniform(rng, cfg.noise_sigma))
    info["noise_sigma"] = sigma

    variability = _variability(rng, cfg, t, info)
    red = _red_noise(rng, cfg, len(t_full), sigma, info)[keep]
    white = rng.normal(0.0, sigma, n)
    variability, dilution = _blend(rng, cfg, t, variability, info)
    flare_flux, truth, mask = _flares(rng, cfg, t, sigma, info, dilution)

    # QUALITY and artefacts.
    quality = np.where(desat_full[keep], DESAT, 0).astype(np.int32)
    artefact = np.zeros(n)
    desat = quality & DESAT > 0
    artefact[desat] += rng.normal(0.0, cfg.dump_cadence_sigma * sigma, int(desat.sum()))

    other = rng.random(n) < cfg.other_flag_rate
    n_other = int(other.sum())
    bits = np.asarray(cfg.other_flag_bits, dtype=np.int32)
    quality[other] |= bits[rng.integers(0, len(bits), n_other)]
    outlier = rng.random(n_other) < cfg.flagged_outlier_fraction
    out_amp = (_loguniform(rng, cfg.flagged_outlier_sigma, n_other) * sigma
               * rng.choice([-1.0, 1.0], n_other))
    artefact[np.flatnonzero(other)[outlier]] += out_amp[outlier]

    # Jumps after momentum dumps that relax exponentially (sometimes positive: flare-like).
    for td in dump_time:
        hit = rng.random() < cfg.dump_artifact_probability
        a = float(_loguniform(rng, cfg.dump_artifact_sigma)) * sigma * rng.choice([-1.0, 1.0])
        tau = float(_loguniform(rng, cfg.dump_artifact_timescale_days))
        if hit:
            _exp_ramps(t, artefact, td, a, tau, after=True)

    # Settling ramps at orbit starts / ends and after short gaps.
    orbit_edges = [(t[0], True), (downlink[1], True), (downlink[0], False), (t[-1], False)]
    for t_edge, after in orbit_edges:
        p = cfg.gap_ramp_probability if after else 0.5 * cfg.gap_ramp_probability
        hit = rng.random() < p
        a = float(_loguniform(rng, cfg.gap_ramp_sigma)) * sigma * rng.choice([-1.0, 1.0])
        tau = float(_loguniform(rng, cfg.gap_ramp_timescale_days))
        if hit:
            t_ref = t[np.searchsorted(t, t_edge)] if after else t_edge
            _exp_ramps(t, artefact, t_ref - (0.5 * cad if after else -0.5 * cad), a, tau, after)
    for _g0, g1 in short_gaps:
        hit = rng.random() < cfg.short_gap_ramp_probability
        a = 0.5 * float(_loguniform(rng, cfg.gap_ramp_sigma)) * sigma * rng.choice([-1.0, 1.0])
        tau = float(_loguniform(rng, cfg.gap_ramp_timescale_days))
        if hit:
            _exp_ramps(t, artefact, g1 - 0.5 * cad, a, tau, after=True)

    # Cosmic rays: single unflagged positive cadences, outside the flare mask.
    n_cr = int(rng.poisson(cfg.cosmic_ray_rate_per_day * n * cad))
    free = np.flatnonzero(~mask)
    cr_idx = np.sort(rng.choice(free, size=min(n_cr, free.size), replace=False))
    artefact[cr_idx] += _loguniform(rng, cfg.cosmic_ray_sigma, cr_idx.size) * sigma

    flux = variability + flare_flux + white + red + artefact
    lc = LightCurve(
        tic=int(tic),
        sector=int(sector),
        time_btjd=t,
        flux_rel=flux,
        flux_err=np.full(n, sigma),
        quality=quality,
        flares=truth,
        flare_mask=mask,
        noise_sigma=sigma,
        cadence_s=cfg.cadence_days * SECONDS_PER_DAY,
    )
    return SyntheticStar(
        light_curve=lc, variability=variability, flare_flux=flare_flux, white_noise=white,
        red_noise=red, artefact_flux=artefact, cosmic_ray_index=cr_idx,
        dump_time_btjd=dump_time, downlink_gap_btjd=(float(downlink[0]), float(downlink[1])),
        params=info,
    )


def generate_light_curve(seed_or_rng, tic: int = 9_000_000_000, sector: int = 2,
                         **params) -> LightCurve:
    """One synthetic star-sector as a :class:`LightCurve` with exact flare truth.

    Parameters
    ----------
    seed_or_rng : int, numpy.random.SeedSequence or numpy.random.Generator
        Same seed, same arrays (bit for bit).
    tic, sector : int
        Identifiers; ``sector`` also sets the approximate start time.
    **params
        Any :class:`SyntheticConfig` field (unknown names raise ``TypeError``).
    """
    return simulate_star(seed_or_rng, tic, sector, **params).light_curve


def generate_light_curves(n_stars: int, seed: int = 0, sector: int = 2,
                          tic_offset: int = 9_000_000_000, **params) -> list[LightCurve]:
    """``n_stars`` independent synthetic stars, one sector each, TIC ids
    ``tic_offset + i``. Star ``i`` uses the ``i``-th child of ``SeedSequence(seed)``, so
    it is the same whatever ``n_stars`` is."""
    cfg = SyntheticConfig.from_params(**params)
    children = np.random.SeedSequence(seed).spawn(n_stars)
    return [
        simulate_star(np.random.default_rng(child), tic_offset + i, sector, config=cfg).light_curve
        for i, child in enumerate(children)
    ]
