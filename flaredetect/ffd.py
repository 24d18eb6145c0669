"""Flare frequency distributions: cumulative rates with Poisson errors and a power-law fit.

``dN/dx = beta' * x**-alpha`` for ``x`` the ED (s) or energy (erg) of the flares above
``x_min``. The exponent is the maximum-likelihood estimate of Maschberger & Kroupa (2009,
MNRAS 395, 931; the estimator AltaiPony's ``FFD.fit_powerlaw("mmle")`` uses), de-biased:

    alpha_ML = 1 + n / sum(ln(x_i / x_min)),   alpha = 1 + (alpha_ML - 1) * (n - 2) / n,

with the standard error ``(alpha - 1) / sqrt(n)``. The cumulative rate above ``x`` is
``N(>x) = (n / T) * (x / x_min)**(1 - alpha)`` per day of observing time ``T``.
Recovery-corrected (``corrected=True``): ``ed_corr`` instead of ``ed_rec``, each flare
weighted by ``1 / recovery_probability`` in the rates (columns of ``flaredetect-predict``
with a ``recovery=`` table).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FFD:
    """A cumulative flare frequency distribution and its power-law fit (see the module docstring)."""

    values: np.ndarray           # ED (s) or energy (erg), descending
    rate_per_day: np.ndarray     # cumulative rate of flares >= each value
    rate_err_per_day: np.ndarray  # Poisson: sqrt(N) / T (weighted: sqrt(sum w^2) / T)
    observing_time_days: float
    column: str
    x_min: float
    alpha: float
    alpha_err: float
    n_fit: int

    def rate_above(self, x) -> np.ndarray:
        """The fitted cumulative rate (per day) of flares above ``x``."""
        x = np.asarray(x, dtype=np.float64)
        return (self.n_fit / self.observing_time_days) * (x / self.x_min) ** (1.0 - self.alpha)

    def plot(self, ax=None):
        """Cumulative rate with Poisson errors and the fitted power law (log-log)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 4.2))
        ax.errorbar(self.values, self.rate_per_day, yerr=self.rate_err_per_day, fmt="o", ms=3, color="k",
                    ecolor="0.6", label=f"{len(self.values)} flares in {self.observing_time_days:.1f} d")
        if np.isfinite(self.alpha):
            x = np.geomspace(self.x_min, self.values.max(), 50)
            ax.plot(x, self.rate_above(x), color="tab:red",
                    label=f"alpha = {self.alpha:.2f} +/- {self.alpha_err:.2f} (>= {self.x_min:.3g})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel({"ed_rec": "ED (s)", "ed_corr": "recovery-corrected ED (s)"}.get(self.column, self.column))
        ax.set_ylabel("cumulative rate (per day)")
        ax.legend(fontsize=8)
        return ax


def fit_powerlaw(x, x_min: float | None = None) -> tuple[float, float, int, float]:
    """``(alpha, alpha_err, n, x_min)``: the de-biased maximum-likelihood exponent of the
    values ``>= x_min`` (default: the smallest value)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    x_min = float(x.min()) if x_min is None and x.size else float(x_min if x_min is not None else np.nan)
    tail = x[x >= x_min]
    n = tail.size
    if n < 3:
        raise ValueError(f"a power-law fit needs at least 3 flares >= x_min={x_min:g}; got {n}")
    s = float(np.sum(np.log(tail / x_min)))
    if s <= 0:
        raise ValueError("every flare has the same value: no power law to fit")
    alpha = 1.0 + (n / s) * (n - 2) / n
    return alpha, (alpha - 1.0) / np.sqrt(n), n, x_min


def ffd(table, observing_time_days: float, column: str = "ed_rec", x_min: float | None = None,
        corrected: bool = False) -> FFD:
    """The FFD of a flare table (``flaredetect-predict``'s columns, one star or several).

    Parameters
    ----------
    table : astropy Table/QTable or pandas DataFrame with ``column``.
    observing_time_days : the time searched (e.g. the sum over light curves of
        ``total_n_valid_data_points * cadence``).
    column : ``ed_rec`` (s), ``energy`` (erg) or any positive column.
    x_min : lower end of the power-law fit (default: the smallest value).
    corrected : use ``ed_corr`` and weight by ``1 / recovery_probability``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> ed = 10.0 * (1 - rng.random(400)) ** (-1 / 1.0)   # alpha = 2 above 10 s
    >>> fit = ffd({"ed_rec": ed}, 100.0)
    >>> bool(abs(fit.alpha - 2.0) < 2 * fit.alpha_err)
    True
    """
    if not (np.isfinite(observing_time_days) and observing_time_days > 0):
        raise ValueError(f"observing_time_days={observing_time_days} must be > 0")
    name = "ed_corr" if corrected else column
    if name not in (table.colnames if hasattr(table, "colnames") else table.keys()):
        raise KeyError(f"the table has no {name!r} column" + (" (flaredetect-predict recovery=... adds it)"
                                                              if corrected else ""))
    values = np.asarray(getattr(table[name], "value", table[name]), dtype=np.float64)
    weights = np.ones_like(values)
    if corrected:
        prob = np.asarray(table["recovery_probability"], dtype=np.float64)
        weights = np.where(prob > 0, 1.0 / np.where(prob > 0, prob, 1.0), np.nan)
    keep = np.isfinite(values) & (values > 0) & np.isfinite(weights)
    values, weights = values[keep], weights[keep]
    order = np.argsort(-values)
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    alpha, alpha_err, n, fit_min = fit_powerlaw(values, x_min)
    return FFD(values=values, rate_per_day=cumulative / observing_time_days,
               rate_err_per_day=np.sqrt(np.cumsum(weights ** 2)) / observing_time_days,
               observing_time_days=float(observing_time_days), column=name, x_min=fit_min, alpha=alpha,
               alpha_err=alpha_err, n_fit=n)
