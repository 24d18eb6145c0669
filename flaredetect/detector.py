"""Find flares from Python: :func:`find_flares`, :class:`Detector` and :class:`FlareResult`.

The same code as ``flaredetect-predict``: the settings of ``conf/predict.yaml`` (overridable
by keyword), the same cleaning, :class:`~flaredetect.inference.Predictor` and flare table
(:func:`~flaredetect.inference.writers.flare_table`, catalog-standard columns), so a
notebook and the command line give the same flares.

>>> import flaredetect
>>> from flaredetect.data.synthetic import generate_light_curve
>>> lc = generate_light_curve(0, tic=1, sector=2)           # a synthetic star with flares
>>> det = flaredetect.Detector("threshold")      # the 3-sigma rule; a run dir or .ckpt for a model
>>> result = det.find_flares(lc.time_btjd, 1 + lc.flux_rel, lc.flux_err)
>>> len(result.flares) > 0 and result.flares["ed_rec"].unit == "s"
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flaredetect import CONFIG_DIR

EVENT_SETTINGS = ("threshold", "merge_gap_minutes", "min_cadences", "baseline_minutes", "min_snr", "fit_template",
                  "bridge_gap_minutes")
DETECTOR_SETTINGS = ("head", "stride", "refine", "reduce", "batch_size", "candidates", "periodic", "quality_bitmask",
                     "low_sigma",
                     "luminosity_erg_s", "recovery", "threads", "device")
THRESHOLD_RULE = "threshold"  # model name of the 3-sigma rule


@dataclass
class FlareResult:
    """What :meth:`Detector.find_flares` found.

    Attributes
    ----------
    flares : astropy ``QTable``, one row per flare (columns of
        :data:`flaredetect.inference.writers.COLUMNS`, with units).
    probability : per-cadence flare probability aligned with the input's cadences (NaN where
        cleaning dropped a cadence); for a collection, the sectors' arrays one after another.
    light_curves : the cleaned light curves that were searched (one per sector).
    parts : per-sector results of a collection (empty for one light curve).
    """

    flares: object
    probability: np.ndarray
    light_curves: list
    threshold: float
    events: list = field(default_factory=list, repr=False)
    probabilities: list = field(default_factory=list, repr=False)  # per cleaned light curve
    parts: list = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.flares)

    def plot(self, path: str | Path | None = None, max_zooms: int = 6, catalog_peaks_btjd=None):
        """The light curve(s) with the flares marked, the probability, and zoom panels of the
        strongest flares (:func:`~flaredetect.inference.writers.plot_prediction`). Returns the
        figure (a list for a collection) unless ``path`` is given."""
        from flaredetect.inference.writers import plot_prediction

        figures = []
        for k, (lc, prob, events) in enumerate(zip(self.light_curves, self.probabilities, self.events)):
            target = None
            if path is not None:
                target = Path(path) if len(self.light_curves) == 1 else Path(path).with_name(
                    f"{Path(path).stem}_{k}{Path(path).suffix or '.png'}")
            figures.append(plot_prediction(target, lc, prob, events, self.threshold, max_zooms=max_zooms,
                                           catalog_peaks_btjd=catalog_peaks_btjd))
        if path is not None:
            return None
        return figures[0] if len(figures) == 1 else figures


def _predict_config(model, settings: dict):
    """``conf/predict.yaml`` with ``model`` and the keyword settings (unknown ones refused)."""
    from omegaconf import OmegaConf

    unknown = sorted(set(settings) - set(EVENT_SETTINGS) - set(DETECTOR_SETTINGS))
    if unknown:
        raise TypeError(f"unknown setting(s) {unknown}; valid: {sorted(EVENT_SETTINGS + DETECTOR_SETTINGS)}")
    cfg = OmegaConf.load(Path(CONFIG_DIR) / "predict.yaml")
    for key in ("defaults", "hydra", "paths", "out_dir", "cache_dir", "input", "plot", "progress"):
        if key in cfg:
            del cfg[key]  # file and CLI settings (pop would resolve their interpolations)
    cfg.ckpt = model
    for key, value in settings.items():
        if key in EVENT_SETTINGS:
            cfg.events[key] = value
        elif key in ("candidates", "refine", "periodic") and value is True:
            continue  # predict.yaml's gate / refinement / periodic removal
        else:
            cfg[key] = None if value is False and key in ("candidates", "refine", "periodic") else value
    return cfg


class Detector:
    """A flare detector loaded once, for many light curves.

    Parameters
    ----------
    model : a training run directory or a ``.ckpt`` inside one; a list of them, one per
        cadence (each light curve is scored by the one trained at its cadence; another
        cadence is refused); ``"threshold"`` for the 3-sigma rule (any cadence); None for
        the detector bundled with the package (:func:`flaredetect.pretrained.pretrained_run`).
    **settings : ``conf/predict.yaml`` settings: ``threshold``, ``min_cadences``,
        ``merge_gap_minutes``, ``bridge_gap_minutes``, ``baseline_minutes``, ``min_snr``, ``fit_template`` (events);
        ``head``, ``stride``, ``refine`` (None: every window), ``reduce``, ``batch_size``, ``candidates`` (True: predict's
        significance gate, False/None: the network alone, or a dict of gate settings), ``periodic``
        (True: predict's removal of a fast rotator's periodic light curve, False/None: none, or a dict),
        ``quality_bitmask``, ``low_sigma``, ``luminosity_erg_s``, ``recovery`` (a
        ``recovery_correction.json`` of ``flaredetect-recovery``), ``threads``, ``device``
        (``auto``: a GPU when torch sees one). ``threshold``, ``min_cadences`` and the gate's
        settings not given here are the run's own where its config has them (FFI runs: one
        cadence, threshold 0.8, their own gate), else predict's defaults.

    Examples
    --------
    >>> det = Detector("outputs/recommended", threshold=0.6)          # doctest: +SKIP
    >>> for lc in lightkurve.search_lightcurve("TIC 2760232").download_all():  # doctest: +SKIP
    ...     print(len(det.find_flares(lc).flares))
    """

    def __init__(self, model: str | Path | list | None = None, **settings) -> None:
        from flaredetect.config_checks import check_predict_config
        from flaredetect.inference import EventParams
        from flaredetect.inference.candidates import threshold_predictor
        from flaredetect.predict import build_predictors, load_correction

        if model is None:
            from flaredetect.pretrained import pretrained_run

            model = pretrained_run()
        models = [str(m) for m in model] if isinstance(model, (list, tuple)) else str(model)
        cfg = _predict_config(models, settings)
        if models == THRESHOLD_RULE:
            from omegaconf import OmegaConf

            cfg.ckpt = "none"
            check_predict_config(cfg)
            self.predictors = [threshold_predictor(EventParams.from_settings(OmegaConf.to_container(cfg.events)))]
        else:
            self.predictors = build_predictors(cfg)
        self.predictor = self.predictors[0]
        self.model = models if isinstance(models, str) else ", ".join(models)
        self.cfg = cfg
        self.correction = load_correction(cfg.get("recovery"))
        if cfg.get("threads"):
            import torch

            torch.set_num_threads(int(cfg.threads))

    def __repr__(self) -> str:
        return f"Detector({self.model!r}, head={self.predictor.head!r}, threshold={self.predictor.events.threshold})"

    def find_flares(self, lc, flux=None, flux_err=None, quality=None, *, tic: int | None = None,
                    sector: int | None = None, luminosity_erg_s: float | None = None, teff_k: float | None = None,
                    radius_rsun: float | None = None, tic_lookup: bool = False) -> FlareResult:
        """Flares of ``lc``: a ``lightkurve.LightCurve`` (its ``flux`` column as chosen), a
        ``LightCurveCollection`` (each sector searched on its own, one table), a flaredetect
        ``LightCurve``, or arrays ``lc=time_btjd, flux, flux_err[, quality]`` (flux in any
        unit; normalised by its median like a file's).

        ``energy`` (erg): ``ed_rec * luminosity_erg_s`` when a luminosity is given, else the
        bolometric energy from ``teff_k`` and ``radius_rsun``
        (:func:`flaredetect.energy.bolometric_flare_energy`; a SPOC light curve's ``TEFF`` and
        ``RADIUS`` header values when not given, else with ``tic_lookup=True`` the TESS Input
        Catalog's at MAST, online), else NaN.

        Returns
        -------
        FlareResult
            ``.flares`` (astropy QTable), ``.probability`` (per input cadence), ``.plot()``.
        """
        from astropy.table import vstack

        luminosity = luminosity_erg_s if luminosity_erg_s is not None else self.cfg.get("luminosity_erg_s")
        raws = _raw_light_curves(lc, flux, flux_err, quality, tic, sector)
        parts = [self._one(raw, luminosity, _stellar(meta, teff_k, radius_rsun, raw.tic if tic_lookup else None))
                 for raw, meta in raws]
        if len(parts) == 1:
            return parts[0]
        flares = vstack([p.flares for p in parts], metadata_conflicts="silent")
        flares.meta["sectors"] = [p.light_curves[0].sector for p in parts]
        return FlareResult(flares=flares, probability=np.concatenate([p.probability for p in parts]),
                           light_curves=[p.light_curves[0] for p in parts], threshold=self.predictor.events.threshold,
                           events=[p.events[0] for p in parts], probabilities=[p.probabilities[0] for p in parts],
                           parts=parts)

    def _one(self, raw, luminosity_erg_s, stellar: tuple) -> FlareResult:
        from flaredetect.data.cleaning import clean
        from flaredetect.inference.pipeline import check_cadence, input_index
        from flaredetect.inference.writers import flare_table

        lc = clean(raw, self.cfg.get("quality_bitmask", "default"), low_sigma=self.cfg.get("low_sigma"))
        index = input_index(raw.time_btjd, lc)
        predictor = check_cadence(lc, self.predictors)
        prob, events = predictor.predict(lc, luminosity_erg_s, self.correction)
        meta = {"model": predictor.name or self.model, "threshold": predictor.events.threshold, "head": predictor.head,
                "energy": "ed_rec * luminosity_erg_s" if luminosity_erg_s else None}
        if not luminosity_erg_s and None not in stellar:
            from flaredetect.energy import FLARE_TEMPERATURE_K, bolometric_flare_energy

            events["energy_erg"] = bolometric_flare_energy(events["ed_s"], *stellar)
            meta["energy"] = (f"bolometric, {FLARE_TEMPERATURE_K:.0f} K blackbody flare through the TESS response "
                              f"(Shibayama et al. 2013); Teff {stellar[0]:.0f} K, radius {stellar[1]:.3f} R_sun")
        aligned = np.full(len(raw), np.nan, dtype=np.float32)
        aligned[index] = prob
        table = flare_table(events, lc, meta, index, raw.cadenceno)
        return FlareResult(flares=table, probability=aligned, light_curves=[lc], threshold=predictor.events.threshold,
                           events=[events], probabilities=[prob])


def _stellar(meta, teff_k, radius_rsun, lookup_tic: int | None = None) -> tuple:
    """``(Teff, radius)``: as given, else from the light curve's header, else (``lookup_tic``)
    from the TESS Input Catalog (None where unknown)."""
    from flaredetect.energy import stellar_parameters, tic_stellar_parameters

    header_teff, header_radius = stellar_parameters(meta or {})
    teff = teff_k if teff_k is not None else header_teff
    radius = radius_rsun if radius_rsun is not None else header_radius
    if (teff is None or radius is None) and lookup_tic is not None:
        tic_teff, tic_radius = tic_stellar_parameters(lookup_tic)
        teff, radius = teff if teff is not None else tic_teff, radius if radius is not None else tic_radius
    return teff, radius


def _raw_light_curves(lc, flux, flux_err, quality, tic, sector) -> list:
    """The input as ``(RawLightCurve, header meta)`` pairs (one per sector)."""
    from flaredetect.data.cleaning import RawLightCurve
    from flaredetect.data.lightcurve import LightCurve
    from flaredetect.sources.local import raw_from_lightkurve

    if flux is not None:  # arrays
        time = np.asarray(lc, dtype=np.float64)
        flux = np.asarray(getattr(flux, "value", flux), dtype=np.float64)
        err = np.full_like(flux, np.nan) if flux_err is None else np.asarray(getattr(flux_err, "value", flux_err),
                                                                               dtype=np.float64)
        q = np.zeros(len(time), dtype=np.int64) if quality is None else np.asarray(quality)
        for name, values in (("flux", flux), ("flux_err", err), ("quality", q)):
            if np.shape(values) != time.shape:
                raise ValueError(f"{name} has shape {np.shape(values)} but time has {time.shape}")
        return [(RawLightCurve(tic, sector, time, flux, err, q, source="arrays"), {})]
    if isinstance(lc, LightCurve):  # already normalised: back to flux = 1 + flux_rel
        return [(RawLightCurve(tic if tic is not None else lc.tic, sector if sector is not None else lc.sector,
                               lc.time_btjd, 1.0 + lc.flux_rel, lc.flux_err, lc.quality, source=f"TIC {lc.tic}",
                               cadence_s=lc.cadence_s), {})]
    if hasattr(lc, "time") and hasattr(lc, "flux"):  # lightkurve.LightCurve
        return [(raw_from_lightkurve(lc, source=str(lc.meta.get("LABEL") or lc.meta.get("OBJECT") or "light curve"),
                                     tic=tic, sector=sector), lc.meta)]
    if hasattr(lc, "__getitem__") and hasattr(lc, "__len__") and not isinstance(lc, (str, bytes, np.ndarray)):
        items = [lc[k] for k in range(len(lc))]  # LightCurveCollection (indexable, not iterable), list
        if items and all(hasattr(x, "time") and hasattr(x, "flux") for x in items):
            return [r for x in items for r in _raw_light_curves(x, None, None, None, tic, sector)]
    raise TypeError(f"cannot find flares in a {type(lc).__name__}: pass a lightkurve LightCurve or "
                    "LightCurveCollection, a flaredetect LightCurve, or arrays (time_btjd, flux, flux_err)")


def find_flares(lc, flux=None, flux_err=None, quality=None, *, model: str | Path | Detector | None = None,
                tic: int | None = None, sector: int | None = None, teff_k: float | None = None,
                radius_rsun: float | None = None, tic_lookup: bool = False, **settings) -> FlareResult:
    """Find flares in one light curve (or a collection of sectors).

    ``model``: a :class:`Detector`, a training run dir or ``.ckpt``, ``"threshold"`` (the
    3-sigma rule), or None (the bundled pretrained detector); ``settings`` as for
    :class:`Detector`. For many light curves build the :class:`Detector` once.

    Examples
    --------
    >>> import lightkurve as lk, flaredetect                               # doctest: +SKIP
    >>> lc = lk.read("tess2018206045859-s0001-0000000358108509-0120-s_lc.fits")  # doctest: +SKIP
    >>> result = flaredetect.find_flares(lc, model="outputs/recommended")  # doctest: +SKIP
    >>> result.flares["tstart", "tpeak", "ampl_rec", "ed_rec"]             # doctest: +SKIP
    >>> result.plot()                                                      # doctest: +SKIP
    """
    if isinstance(model, Detector):
        if settings:
            raise TypeError(f"settings {sorted(settings)} go to Detector(...), not with a built Detector")
        detector = model
    else:
        luminosity = settings.pop("luminosity_erg_s", None)
        detector = Detector(model, **settings)
        return detector.find_flares(lc, flux, flux_err, quality, tic=tic, sector=sector, luminosity_erg_s=luminosity,
                                    teff_k=teff_k, radius_rsun=radius_rsun, tic_lookup=tic_lookup)
    return detector.find_flares(lc, flux, flux_err, quality, tic=tic, sector=sector, teff_k=teff_k,
                                radius_rsun=radius_rsun, tic_lookup=tic_lookup)
