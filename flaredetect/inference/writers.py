"""Per light curve outputs: ECSV flare table, ECSV time series, ``.npy`` probabilities, PNG.

Units travel with the ECSV columns (astropy), so the tables read back as quantities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flaredetect.data.lightcurve import BTJD_OFFSET, LightCurve

# Flare-table columns: (name, event key or None, unit, description). Named as AltaiPony names
# them where it has a name (the columns flare-rate papers and FFD code read).
COLUMNS = (
    ("TIC", None, None, "TIC id (masked when unknown)"),
    ("sector", None, None, "TESS sector (masked when unknown)"),
    ("tstart", "start_time_btjd", "d", "first cadence of the event (BTJD = BJD - 2457000)"),
    ("tpeak", "peak_time_btjd", "d", "cadence of largest flux above the local baseline (BTJD)"),
    ("tstop", "stop_time_btjd", "d", "last cadence of the event (BTJD)"),
    ("istart", None, None, "index of tstart among the input's cadences (before cleaning)"),
    ("istop", None, None, "index of tstop among the input's cadences (before cleaning)"),
    ("cstart", None, None, "instrument cadence number of tstart (masked when the input has none)"),
    ("cstop", None, None, "instrument cadence number of tstop (masked when the input has none)"),
    ("dur", "duration_min", "d", "tstop - tstart + one exposure"),
    ("ampl_rec", "amplitude", None, "peak excess flux over the local quiescent baseline, (F - F_q) / F_q (> 0)"),
    ("ed_rec", "ed_s", "s", "equivalent duration: integral of (F - F_q) / F_q over the event and its faint tail"),
    ("ed_rec_err", "ed_err_s", "s", "photometric error of ed_rec: sqrt(sum(flux_err / F_q)^2) * exposure"),
    ("prob", "prob_max", None, "largest per-cadence flare probability of the network in the event"),
    ("n_cadences", "n_cadences", None, "cadences in the event (tstart to tstop)"),
    ("energy", "energy_erg", "erg", "ed_rec times the quiescent luminosity (NaN when not given)"),
    ("fit_ampl", "fit_amplitude", None, "peak of the flare template (Mendoza et al. 2022) fitted to the event"),
    ("fit_fwhm", "fit_fwhm_min", "min", "FWHM of the fitted template"),
    ("fit_ed", "fit_ed_s", "s", "equivalent duration of the fitted template, faint tail included"),
    ("vet_prob", "vet_prob", None, "probability the event vetter (flaredetect-benchmark --save-vetters) gave that "
     "the catalogs would list the event (only with vetter=)"),
    ("recovery_probability", "recovery_probability", None,
     "share of injected flares like this one (corrected amplitude and ED) that the detector recovered "
     "(flaredetect-recovery)"),
    ("ed_corr", "ed_corr", "s", "ed_rec divided by the median recovered/injected ED ratio of injected flares "
     "recovered with this amplitude and ED (flaredetect-recovery)"),
    ("total_n_valid_data_points", None, None, "cadences of the light curve searched (after cleaning)"),
    ("cadence", None, "s", "exposure time of one cadence"),
)
# How the properties are measured (flaredetect.inference.events), in every flare table's metadata.
MEASUREMENT = {
    "baseline": "robust quadratic fitted to up to events.baseline_minutes of free flux points (at least 5) on each side "
                "of the event and its tail (other events excluded, points 3 sigma above the fit dropped)",
    "ampl_rec": "largest (F - F_q) / F_q inside the event, F_q the baseline",
    "ed_rec": "sum of (F - F_q) / F_q times the exposure over the event and its faint tail (while the "
              "3-cadence mean excess over the baseline stays above the white-noise sigma)",
    "kept": "only events with ampl_rec > 0 and ed_rec > 0",
}


def flare_table(events: dict[str, np.ndarray], lc: LightCurve, meta: dict | None = None,
                input_index: np.ndarray | None = None, cadenceno: np.ndarray | None = None):
    """The events as an astropy ``QTable`` with the catalog-standard columns of
    :data:`COLUMNS`, units, descriptions and provenance meta.

    ``input_index`` maps the cleaned light curve's cadences onto the input's (identity when
    None); ``cadenceno`` gives the input's cadence numbers (``cstart``/``cstop`` masked when
    None)."""
    import astropy.units as u
    from astropy.table import MaskedColumn, QTable

    from flaredetect.data.lightcurve import SECONDS_PER_DAY

    n = len(events["peak_time_btjd"])
    index = np.arange(len(lc)) if input_index is None else np.asarray(input_index, dtype=np.int64)
    start, stop = (np.asarray(events[k], dtype=np.int64) for k in ("start_index", "stop_index"))
    derived = {
        "TIC": _id_column(lc.tic, n), "sector": _id_column(lc.sector, n),
        "istart": index[start], "istop": index[stop],
        "cstart": (MaskedColumn(np.zeros(n, dtype=np.int64), mask=np.ones(n, dtype=bool)) if cadenceno is None
                   else np.asarray(cadenceno, dtype=np.int64)[index[start]]),
        "cstop": (MaskedColumn(np.zeros(n, dtype=np.int64), mask=np.ones(n, dtype=bool)) if cadenceno is None
                  else np.asarray(cadenceno, dtype=np.int64)[index[stop]]),
        "dur": np.asarray(events["duration_min"], dtype=np.float64) / 1440.0,
        "total_n_valid_data_points": np.full(n, len(lc), dtype=np.int64),
        "cadence": np.full(n, lc.cadence_d * SECONDS_PER_DAY if len(lc) > 1 or lc.cadence_s else np.nan),
    }
    table = QTable()
    for name, key, unit, description in COLUMNS:
        if name in derived:
            values = derived[name]
        elif key in events:
            values = np.asarray(events[key])
        else:
            continue  # optional columns (recovery) only when computed
        table[name] = values * u.Unit(unit) if unit else values
        table[name].info.description = description
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


def plot_prediction(path: Path | None, lc: LightCurve, prob: np.ndarray, events: dict[str, np.ndarray],
                    threshold: float, title: str = "", max_zooms: int = 6, catalog_peaks_btjd=None):
    """The whole light curve with events shaded and peaks marked, the probability below, and
    a row of zoom panels (one per event, strongest ``ampl_rec`` first, at most ``max_zooms``)
    with the catalog's peaks when given. Saved to ``path`` (closed) or returned (``path=None``)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(lc.time_btjd)
    flux = np.asarray(lc.flux_rel)
    catalog_peaks_btjd = None if catalog_peaks_btjd is None else np.asarray(catalog_peaks_btjd, dtype=np.float64)
    order = np.argsort(-np.asarray(events["amplitude"]))[:max_zooms]
    n_zoom = len(order)
    fig = plt.figure(figsize=(14, 7.5 if n_zoom else 5.5))
    grid = fig.add_gridspec(3 if n_zoom else 2, max(n_zoom, 1), height_ratios=[2, 1, 1.6][:3 if n_zoom else 2],
                            hspace=0.35)
    ax0 = fig.add_subplot(grid[0, :])
    ax1 = fig.add_subplot(grid[1, :], sharex=ax0)
    gaps = np.flatnonzero(np.diff(t) > 0.1) + 1  # break the lines at data gaps (> 2.4 h)
    ax0.plot(t, flux, ".", ms=1.5, color="k", rasterized=True)
    for a, b in zip(events["start_time_btjd"], events["stop_time_btjd"]):
        ax0.axvspan(a, b, color="tab:red", alpha=0.25, lw=0)
        ax1.axvspan(a, b, color="tab:red", alpha=0.25, lw=0)
    if len(events["peak_time_btjd"]):
        peak_flux = np.interp(events["peak_time_btjd"], t, flux)
        ax0.plot(events["peak_time_btjd"], peak_flux, "v", color="tab:red", ms=6, label=f"{len(peak_flux)} events")
    if catalog_peaks_btjd is not None and len(catalog_peaks_btjd):
        ax0.plot(catalog_peaks_btjd, np.interp(catalog_peaks_btjd, t, flux) + 0.02 * np.ptp(flux), "|",
                 color="tab:blue", ms=10, label=f"{len(catalog_peaks_btjd)} catalog peaks")
    if ax0.get_legend_handles_labels()[0]:
        ax0.legend(loc="upper right")
    ax0.set_ylabel("relative flux")
    ax0.set_title(title or f"TIC {lc.tic if lc.tic is not None else 'unknown'} sector "
                  f"{lc.sector if lc.sector is not None else 'unknown'}")
    ax1.plot(np.insert(t, gaps, np.nan), np.insert(np.asarray(prob, dtype=np.float64), gaps, np.nan), lw=0.7,
             color="tab:blue")
    ax1.axhline(threshold, color="tab:red", ls="--", lw=0.8)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel("flare probability")
    ax1.set_xlabel("time (BTJD)")
    for col, k in enumerate(order):
        ax = fig.add_subplot(grid[2, col])
        a, b = events["start_time_btjd"][k], events["stop_time_btjd"][k]
        pad = max(3 * (b - a), 1.0 / 24)
        t0 = events["peak_time_btjd"][k]
        near = (t >= a - pad) & (t <= b + 2 * pad)
        ax.plot((t[near] - t0) * 24, flux[near], ".-", ms=2, lw=0.5, color="k")
        ax.axvspan((a - t0) * 24, (b - t0) * 24, color="tab:red", alpha=0.25, lw=0)
        if catalog_peaks_btjd is not None:
            for p in catalog_peaks_btjd[(catalog_peaks_btjd >= a - pad) & (catalog_peaks_btjd <= b + 2 * pad)]:
                ax.axvline((p - t0) * 24, color="tab:blue", lw=0.8)
        ax.set_title(f"BTJD {t0:.3f}, ampl {events['amplitude'][k]:.3g}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("hours from peak", fontsize=7)
    if path is None:
        return fig
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return None


def table_rows(table) -> dict[str, list]:
    """A flare table's values as JSON-able column lists (units dropped: :data:`COLUMNS` has
    them; masked values None), for the completion marker the catalog merge reads."""
    rows = {}
    for name in table.colnames:
        column = table[name]
        values = np.asarray(getattr(column, "value", column))
        mask = np.ma.getmaskarray(np.ma.asarray(column)) if hasattr(column, "mask") else np.zeros(len(values), bool)
        rows[name] = [None if m else v for v, m in zip(values.tolist(), mask.tolist())]
    return rows


def rows_table(rows: list[dict[str, list]], extra: dict[str, list] | None = None):
    """One ``QTable`` of many :func:`table_rows` results (columns in :data:`COLUMNS` order,
    with their units and descriptions; a column some lack, or a None, is masked) plus the
    ``extra`` plain columns."""
    import astropy.units as u
    from astropy.table import MaskedColumn, QTable

    sizes = [len(next(iter(r.values()), [])) for r in rows]
    table = QTable()
    for name, _, unit, description in COLUMNS:
        if not any(name in r for r in rows):
            continue
        values = [v for r, n in zip(rows, sizes) for v in r.get(name, [None] * n)]
        mask = np.array([v is None for v in values], dtype=bool)
        sample = next((v for v in values if v is not None), 0)
        dtype = np.int64 if isinstance(sample, int) and not isinstance(sample, bool) else np.float64
        data = np.array([0 if v is None else v for v in values], dtype=dtype)
        column = MaskedColumn(data, mask=mask) if mask.any() else data
        table[name] = column * u.Unit(unit) if unit and not mask.any() else column
        if unit and mask.any():
            table[name].unit = unit
        table[name].info.description = description
    for name, values in (extra or {}).items():
        table[name] = np.asarray(values, dtype=str)
    return table


def write_outputs(out_dir: Path, stem: str, lc: LightCurve, prob: np.ndarray, events: dict[str, np.ndarray],
                  threshold: float, input_prob: np.ndarray | None = None, meta: dict | None = None,
                  plot: bool = True, input_index: np.ndarray | None = None,
                  cadenceno: np.ndarray | None = None, catalog_peaks_btjd: np.ndarray | None = None,
                  timeseries: bool = True, flare_tables: bool = True) -> tuple[dict[str, Path], object]:
    """Write ``<stem>_flares.ecsv`` (``flare_tables``), ``<stem>_prob.ecsv`` (``timeseries``),
    ``<stem>_prob.npy`` and ``<stem>.png`` (``plot``) under ``out_dir``; returns the paths
    and the flare table.
    ``input_prob`` (aligned with the input file's cadences, NaN where cleaning dropped one)
    is what goes into the ``.npy``."""
    from flaredetect.inference.events import event_mask

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"npy": out_dir / f"{stem}_prob.npy"}
    table = flare_table(events, lc, meta, input_index, cadenceno)
    if flare_tables:  # ~14 ms per light curve (the YAML header): at catalog scale the markers hold the rows
        paths["flares"] = out_dir / f"{stem}_flares.ecsv"
        table.write(paths["flares"], format="ascii.ecsv", overwrite=True)
    if timeseries:  # ~0.1 s per 2-minute sector: off at catalog scale
        paths["timeseries"] = out_dir / f"{stem}_prob.ecsv"
        time_series(lc, prob, event_mask(len(lc), events), meta).write(paths["timeseries"], format="ascii.ecsv",
                                                                       overwrite=True)
    np.save(paths["npy"], np.asarray(prob if input_prob is None else input_prob, dtype=np.float32))
    if plot:
        paths["png"] = out_dir / f"{stem}.png"
        plot_prediction(paths["png"], lc, prob, events, threshold, catalog_peaks_btjd=catalog_peaks_btjd)
    return paths, table
