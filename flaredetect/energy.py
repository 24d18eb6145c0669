"""Bolometric flare energies from equivalent durations and stellar parameters.

The method of the TESS flare catalogs (Shibayama et al. 2013, ApJS 209, 5; Günther et al.
2020, AJ 159, 60): the flare is a blackbody of ``flare_temperature_k`` (~9,000 K) whose
area makes its TESS-band flux the observed excess, so

    E_bol = ED * sigma_SB * T_flare**4 * pi * R_star**2 * int(R B(T_eff)) / int(R B(T_flare))

with ``R`` the TESS response and ``B`` the Planck function per wavelength. The response is
the SVO Filter Profile Service's ``TESS/TESS.Red`` as reconstructed by the ``tynt`` package
(offline; its Fourier approximation of the profile).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

FLARE_TEMPERATURE_K = 9000.0
TESS_FILTER = "TESS/TESS.Red"


@lru_cache(maxsize=1)
def tess_response() -> tuple[np.ndarray, np.ndarray]:
    """``(wavelength in Angstrom, transmission)`` of the TESS band (tynt, SVO ``TESS/TESS.Red``)."""
    from tynt import FilterGenerator

    band = FilterGenerator().reconstruct(TESS_FILTER)
    wavelength = np.asarray(band.wavelength.to_value("AA"), dtype=np.float64)
    return wavelength, np.clip(np.asarray(band.transmittance, dtype=np.float64), 0.0, None)


def band_integral(temperature_k: float, response: tuple[np.ndarray, np.ndarray]) -> float:
    """``int R(lambda) B_lambda(T) dlambda`` (any consistent unit: only ratios are used)."""
    import astropy.units as u
    from astropy.modeling.models import BlackBody

    wavelength, transmission = response
    b = BlackBody(temperature=temperature_k * u.K)(wavelength * u.AA).to_value(
        u.erg / (u.cm ** 2 * u.s * u.AA * u.sr), equivalencies=u.spectral_density(wavelength * u.AA))
    return float(np.trapezoid(transmission * b, wavelength))


def bolometric_flare_energy(ed_s, teff_k: float, radius_rsun: float, flare_temperature_k: float = FLARE_TEMPERATURE_K,
                            response: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Bolometric energy (erg) of flares of equivalent duration ``ed_s`` (s, TESS band) on a star of
    ``teff_k`` and ``radius_rsun``; ``response`` (wavelength in Angstrom, transmission) defaults to
    :func:`tess_response`.

    >>> round(float(bolometric_flare_energy(10.0, 3200.0, 0.3)) / 1e32, 2)   # doctest: +SKIP
    """
    import astropy.constants as const

    for name, value in (("teff_k", teff_k), ("radius_rsun", radius_rsun), ("flare_temperature_k", flare_temperature_k)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value} must be a positive number")
    response = tess_response() if response is None else response
    ratio = band_integral(teff_k, response) / band_integral(flare_temperature_k, response)
    radius_cm = radius_rsun * const.R_sun.cgs.value
    flare_flux = const.sigma_sb.cgs.value * flare_temperature_k ** 4  # erg / s / cm^2
    return np.asarray(ed_s, dtype=np.float64) * flare_flux * np.pi * radius_cm ** 2 * ratio


def stellar_parameters(meta) -> tuple[float | None, float | None]:
    """``(Teff in K, radius in R_sun)`` from a SPOC header or lightkurve ``meta`` (``TEFF``,
    ``RADIUS``; None where missing or not positive)."""
    def value(key):
        try:
            v = float(meta.get(key))
        except (TypeError, ValueError):
            return None
        return v if np.isfinite(v) and v > 0 else None
    return value("TEFF"), value("RADIUS")


def tic_stellar_parameters(tic: int) -> tuple[float | None, float | None]:
    """``(Teff in K, radius in R_sun)`` of a star from the TESS Input Catalog at MAST (online;
    ``astroquery``, which lightkurve installs); None where the catalog has no value."""
    from astroquery.mast import Catalogs

    rows = Catalogs.query_criteria(catalog="Tic", ID=int(tic))
    if len(rows) == 0:
        raise LookupError(f"TIC {tic} is not in the TESS Input Catalog")
    row = rows[0]
    return stellar_parameters({"TEFF": row["Teff"], "RADIUS": row["rad"]})
