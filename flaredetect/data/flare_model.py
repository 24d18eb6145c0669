"""Empirical white-light flare template, integrated over TESS exposures.

The shape is the continuous flare template of Tovar Mendoza et al. 2022, "Llamaradas
Estelares: Modeling the Morphology of White-Light Flares", AJ 164, 17
(doi:10.3847/1538-3881/ac6fe6): a Gaussian (impulsive heating) convolved with a double
exponential (fast and gradual decay), fitted to Kepler short-cadence flares of GJ 1243.
Its MCMC coefficients (A, B, C, D1, D2, f1) are those of the authors' public code
(github.com/lupitatovar/Llamaradas-Estelares, ``Flare_model.py``).

In its published parameterisation the template peaks at 0.950 (at t = -0.0026) and its
full width at half maximum is 1.087 "FWHM units". We re-centre and re-scale it so that
the maximum is exactly 1 at phase 0 and the FWHM is exactly 1: then ``amplitude`` and
``fwhm_days`` are the physical peak height and width of the continuous flare, which is
what catalogs such as Günther et al. 2020 (``Amp``, ``FWHMdt``) report.

A 2-minute TESS cadence reports the flux *averaged* over its exposure, so a flare shorter
than a few cadences is smeared: its recorded peak is lower than its physical amplitude.
Because the template is ``g * e`` (Gaussian convolved with one-sided exponential), its
antiderivative is closed-form (``(g * e)' = g - D (g * e)``), and we integrate exactly
over each exposure instead of supersampling (supersampling is kept as an option, for
checks).
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

from flaredetect.data.lightcurve import CADENCE_DAYS, SECONDS_PER_DAY

# Tovar Mendoza et al. 2022 coefficients (MCMC medians, authors' code).
_A = 0.9687734504375167
_B = -0.251299705922117
_C = 0.22675974948468916
_D = np.array([0.15551880775110513, 1.2150539528490194])  # fast/gradual decay rates
_F1 = 0.12695865022878844
_F = np.array([_F1, 1.0 - _F1])
_SQRT_PI = np.sqrt(np.pi)
# Component i of the published template is  _K[i] * h_i(u), where
# h_i(u) = integral_0^inf exp(-D_i s) exp(-((u - s - B) / C)^2) ds.
_K = _A * _F * np.exp(_B**2 / _C**2)


def _conv(u: np.ndarray, d: float) -> np.ndarray:
    """h(u) = Gaussian exp(-((u-B)/C)^2) convolved with exp(-d s) H(s), overflow-free.

    Uses erfcx before the peak (where exp(-d u) would overflow) and erfc after it.
    """
    u = np.asarray(u, dtype=np.float64)
    z = (_B - u) / _C + _C * d / 2.0
    out = np.empty_like(z)
    pos = z >= 0.0
    up, un = u[pos], u[~pos]
    out[pos] = np.exp(-(((up - _B) / _C) ** 2)) * special.erfcx(z[pos])
    out[~pos] = np.exp(_C**2 * d**2 / 4.0 - d * (un - _B)) * special.erfc(z[~pos])
    return out * (_SQRT_PI * _C / 2.0)


def _raw_template(u: np.ndarray) -> np.ndarray:
    """The published template in its own units (peak ~0.95, FWHM ~1.087)."""
    u = np.asarray(u, dtype=np.float64)
    return _K[0] * _conv(u, _D[0]) + _K[1] * _conv(u, _D[1])


def _raw_primitive(u: np.ndarray) -> np.ndarray:
    """Antiderivative of the published template: sum_i K_i (G(u) - h_i(u)) / D_i."""
    u = np.asarray(u, dtype=np.float64)
    gauss_cum = (_SQRT_PI * _C / 2.0) * special.erf((u - _B) / _C)
    return sum(_K[i] / _D[i] * (gauss_cum - _conv(u, _D[i])) for i in range(2))


def _normalisation() -> tuple[float, float, float]:
    """Peak position, peak value and FWHM of the published template (computed once)."""
    res = optimize.minimize_scalar(
        lambda u: -_raw_template(np.atleast_1d(u))[0], bounds=(-0.5, 0.5), method="bounded",
        options={"xatol": 1e-12},
    )
    u_peak = float(res.x)
    peak = float(_raw_template(np.atleast_1d(u_peak))[0])
    half = lambda u: _raw_template(np.atleast_1d(u))[0] - peak / 2.0  # noqa: E731
    left = optimize.brentq(half, u_peak - 3.0, u_peak, xtol=1e-14)
    right = optimize.brentq(half, u_peak, u_peak + 5.0, xtol=1e-14)
    return u_peak, peak, right - left


_U_PEAK, _PEAK, _FWHM = _normalisation()
# Integral over all time of the unit template (peak 1, FWHM 1), in FWHM units: ~1.80.
TEMPLATE_INTEGRAL_FWHM = float(_SQRT_PI * _C * np.sum(_K / _D)) / (_PEAK * _FWHM)


def flare_template(phase: np.ndarray) -> np.ndarray:
    """Continuous unit flare template: maximum 1 at ``phase`` = 0, FWHM 1.

    Parameters
    ----------
    phase : array_like
        ``(time - peak_time) / fwhm``.
    """
    return _raw_template(np.asarray(phase, dtype=np.float64) * _FWHM + _U_PEAK) / _PEAK


def template_primitive(phase: np.ndarray) -> np.ndarray:
    """Antiderivative of :func:`flare_template` in phase (0 at -inf, ``TEMPLATE_INTEGRAL_FWHM``
    at +inf), so that exposure averages are exact differences."""
    u = np.asarray(phase, dtype=np.float64) * _FWHM + _U_PEAK
    return (_raw_primitive(u) - _raw_primitive(np.array([-np.inf]))) / (_PEAK * _FWHM)


def tail_phase(rel_level: float) -> float:
    """Phase after the peak beyond which the template stays below ``rel_level``.

    Used to bound the cadences over which a flare is evaluated. Conservative: it uses the
    slow decay component's asymptote (erfc -> 2) with a factor-2 margin.
    """
    rel_level = float(max(rel_level, 1e-300))
    d = _D[0]
    amp = 2.0 * _K[0] * _SQRT_PI * _C * np.exp(_C**2 * d**2 / 4.0 + d * _B) / _PEAK
    u = np.log(amp / rel_level) / d
    return float(max((u - _U_PEAK) / _FWHM, 1.0))


# The rise is a Gaussian of width C: below 1e-16 of the peak before this phase.
RISE_PHASE = float((_B - 6.5 * _C - _U_PEAK) / _FWHM)  # about -1.6


def flare_flux(
    time_btjd: np.ndarray,
    peak_time_btjd: float,
    fwhm_days: float,
    amplitude: float,
    exposure_days: float = CADENCE_DAYS,
    supersample: int | None = None,
) -> np.ndarray:
    """Relative flux of one flare as recorded by exposures centred on ``time_btjd``.

    Parameters
    ----------
    time_btjd : array_like
        Mid-exposure times (BTJD, days).
    peak_time_btjd : float
        Time of the continuous template's maximum.
    fwhm_days : float
        Full width at half maximum of the continuous flare.
    amplitude : float
        Peak relative flux of the continuous flare.
    exposure_days : float, optional
        Exposure length; 2 minutes for TESS 2-minute cadence. 0 gives the continuous
        template (no smoothing).
    supersample : int, optional
        None (default): exact analytic exposure average. An integer n: mean of the
        continuous template at n evenly spaced sub-exposure midpoints (for checks).

    Returns
    -------
    numpy.ndarray
        Exposure-averaged relative flux, same shape as ``time_btjd``.
    """
    time_btjd = np.asarray(time_btjd, dtype=np.float64)
    phase = (time_btjd - peak_time_btjd) / fwhm_days
    if exposure_days <= 0:
        return amplitude * flare_template(phase)
    half = 0.5 * exposure_days / fwhm_days
    if supersample is None:
        num = template_primitive(phase + half) - template_primitive(phase - half)
        return amplitude * num / (2.0 * half)
    n = int(supersample)
    offsets = ((np.arange(n) + 0.5) / n - 0.5) * (2.0 * half)
    sub = flare_template(phase[..., None] + offsets)
    return amplitude * sub.mean(axis=-1)


def equivalent_duration_s(amplitude, fwhm_days):
    """Equivalent duration (seconds): time integral of the relative flare flux.

    Analytic: ``amplitude * fwhm_days * TEMPLATE_INTEGRAL_FWHM * 86400``. Exposure
    averaging conserves it, so it holds for the integrated light curve too.
    """
    return (
        np.asarray(amplitude, dtype=np.float64)
        * np.asarray(fwhm_days, dtype=np.float64)
        * TEMPLATE_INTEGRAL_FWHM
        * SECONDS_PER_DAY
    )
