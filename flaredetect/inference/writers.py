"""Per light curve outputs: ECSV flare table, ECSV time series, ``.npy`` probabilities, PNG.

Units travel with the ECSV columns (astropy), so the tables read back as quantities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flaredetect.data.lightcurve import BTJD_OFFSET, LightCurve

_UNITS = {"start_time_btjd": "d", "peak_time_btjd": "d", "stop_time_btjd": "d", "duration_min": "min",
          "ed_s": "s", "energy_erg": "erg", "fit_fwhm_min": "min", "fit_ed_s": "s", "ed_corr": "s"}
# How the properties are measured (flaredetect.inference.events), in every flare table's metadata.
MEASUREMENT = {
    "baseline": "robust quadratic fitted to up to events.baseline_cadences free flux points on each side "
                "of the event and its tail (other events excluded, points 3 sigma above the fit dropped)",
    "amplitude": "largest (F - F_q) / F_q inside the event, F_q the baseline",
    "ed_s": "sum of (F - F_q) / F_q times the exposure over the event and its faint tail (while the "
            "3-cadence mean excess over the baseline stays above the white-noise sigma)",
    "kept": "only events with amplitude > 0 and ed_s > 0",
}
_DESCRIPTIONS = {
    "start_time_btjd": "first cadence of the event (BTJD = BJD - 2457000)",
    "peak_time_btjd": "cadence of largest flux above the local baseline (BTJD)",
    "stop_time_btjd": "last cadence of the event (BTJD)",
    "amplitude": "peak excess flux over the local quiescent baseline, (F - F_q) / F_q (> 0)",
    "duration_min": "stop - start + one exposure",
    "ed_s": "equivalent duration: integral of (F - F_q) / F_q over the event and its faint tail (> 0)",
    "energy_erg": "ed_s times the quiescent luminosity (NaN when not given)",
    "fit_amplitude": "peak of the flare template (Mendoza et al. 2022) fitted to the event",
    "fit_fwhm_min": "FWHM of the fitted template",
    "fit_ed_s": "equivalent duration of the fitted template, faint tail included",
    "prob_max": "largest per-cadence flare probability in the event",
    "recovery_probability": "share of injected flares like this one (corrected amplitude and ED) that the "
                            "detector recovered (flaredetect-recovery)",
    "ed_corr": "ed_s divided by the median recovered/injected ED ratio of injected flares recovered with "
               "this amplitude and ED (flaredetect-recovery)",
}


def flare_table(events: dict[str, np.ndarray], lc: LightCurve, meta: dict | None = None):
    """The events as an astropy ``QTable`` with units, descriptions and provenance meta."""
    import astropy.units as u
    from astropy.table import QTable

    table = QTable()
    n = len(events["peak_time_btjd"])
    table["tic"] = _id_column(lc.tic, n)
    table["sector"] = _id_column(lc.sector, n)
    for name, values in events.items():
        unit = _UNITS.get(name)
        table[name] = values * u.Unit(unit) if unit else values
        if name in _DESCRIPTIONS:
            table[name].info.description = _DESCRIPTIONS[name]
    table.meta.update({"tic": lc.tic, "sector": lc.sector, "measurement": MEASUREMENT, **(meta or {})})
    return table


def _id_column(value: int | None, n: int):
    """TIC or sector for every row; masked (empty in ECSV) when unknown."""
    from astropy.table import MaskedColumn

    if value is None:
        return MaskedColumn(np.zeros(n, dtype=np.int64), mask=np.ones(n, dtype=bool))
    return np.full(n, int(value), dtype=np.int64)


def time_series(lc: LightCurve, prob: np.ndarray, in_event: np.ndarray, meta: dict | None = None):
    """Per-cadence astropy ``TimeSeries`` (time in TDB, BJD) with ``flare_prob``."""
    from astropy.time import Time
    from astropy.timeseries import TimeSeries

    ts = TimeSeries(time=Time(np.asarray(lc.time_btjd) + BTJD_OFFSET, format="jd", scale="tdb"))
    ts["time_btjd"] = np.asarray(lc.time_btjd)
    ts["flux_rel"] = np.asarray(lc.flux_rel)
    ts["flux_err"] = np.asarray(lc.flux_err)
    ts["quality"] = np.asarray(lc.quality)
    ts["flare_prob"] = np.asarray(prob, dtype=np.float32)
    ts["in_event"] = np.asarray(in_event, dtype=bool)
    ts.meta.update({"tic": lc.tic, "sector": lc.sector, **(meta or {})})
    return ts


def plot_prediction(path: Path, lc: LightCurve, prob: np.ndarray, events: dict[str, np.ndarray],
                    threshold: float, title: str = "") -> None:
    """Light curve with events shaded and peaks marked, and the probability below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(14, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    t = np.asarray(lc.time_btjd)
    ax0.plot(t, lc.flux_rel, ".", ms=1.5, color="k", rasterized=True)
    for a, b, p in zip(events["start_time_btjd"], events["stop_time_btjd"], events["peak_time_btjd"]):
        ax0.axvspan(a, b, color="tab:red", alpha=0.25, lw=0)
        ax1.axvspan(a, b, color="tab:red", alpha=0.25, lw=0)
    if len(events["peak_time_btjd"]):
        peak_flux = np.interp(events["peak_time_btjd"], t, lc.flux_rel)
        ax0.plot(events["peak_time_btjd"], peak_flux, "v", color="tab:red", ms=6, label=f"{len(peak_flux)} events")
        ax0.legend(loc="upper right")
    ax0.set_ylabel("relative flux")
    ax0.set_title(title or f"TIC {lc.tic if lc.tic is not None else 'unknown'} sector "
                  f"{lc.sector if lc.sector is not None else 'unknown'}")
    gaps = np.flatnonzero(np.diff(t) > 0.1) + 1  # break the line at data gaps (> 2.4 h)
    ax1.plot(np.insert(t, gaps, np.nan), np.insert(np.asarray(prob, dtype=np.float64), gaps, np.nan), lw=0.7,
             color="tab:blue")
    ax1.axhline(threshold, color="tab:red", ls="--", lw=0.8)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel("flare probability")
    ax1.set_xlabel("time (BTJD)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out_dir: Path, stem: str, lc: LightCurve, prob: np.ndarray, events: dict[str, np.ndarray],
                  threshold: float, input_prob: np.ndarray | None = None, meta: dict | None = None,
                  plot: bool = True) -> dict[str, Path]:
    """Write ``<stem>_flares.ecsv``, ``<stem>_prob.ecsv``, ``<stem>_prob.npy`` and
    ``<stem>.png`` under ``out_dir``. ``input_prob`` (aligned with the input file's
    cadences, NaN where cleaning dropped one) is what goes into the ``.npy``."""
    from flaredetect.inference.events import event_mask

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"flares": out_dir / f"{stem}_flares.ecsv", "timeseries": out_dir / f"{stem}_prob.ecsv",
             "npy": out_dir / f"{stem}_prob.npy"}
    flare_table(events, lc, meta).write(paths["flares"], format="ascii.ecsv", overwrite=True)
    time_series(lc, prob, event_mask(len(lc), events), meta).write(paths["timeseries"], format="ascii.ecsv",
                                                                   overwrite=True)
    np.save(paths["npy"], np.asarray(prob if input_prob is None else input_prob, dtype=np.float32))
    if plot:
        paths["png"] = out_dir / f"{stem}.png"
        plot_prediction(paths["png"], lc, prob, events, threshold)
    return paths
