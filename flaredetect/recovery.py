"""``flaredetect-recovery``: injection–recovery of a trained run, or of the 3-sigma rule,
on real light curves (:mod:`flaredetect.evaluation.recovery`).

Writes to ``out_dir``: ``recovery_trials.csv`` (one row per injected flare),
``recovery_summary.csv`` (per amplitude x FWHM bin), ``recovery_heatmap.png``,
``recovery_correction.json`` (for ``flaredetect-predict recovery=<it>``: per-event
``recovery_probability`` and ``ed_corr``) and ``recovery.json`` (false events per day, the
amplitude of 50 % recovery, every setting). Exit 1 when a light curve could not be read.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from flaredetect import CONFIG_DIR
from flaredetect.config_checks import ConfigError
from flaredetect.evaluation.recovery import (RecoveryCorrection, amplitude_at_recovery, ed_at_recovery,
                                             injection_recovery_by_threshold, recovery_heatmap, recovery_summary)
from flaredetect.evaluation.runs import RunError
from flaredetect.inference import EventParams
from flaredetect.inference.candidates import threshold_predictor
from flaredetect.inference.pipeline import iter_targets
from flaredetect.injection import InjectionGrid
from flaredetect.utils import exit_with_error, package_versions, settings_of, write_json

log = logging.getLogger(__name__)
DETECTORS = ("model", "threshold")
RATE_KEYS = {"data": "false_events_per_day", "inverted": "false_events_per_day_inverted"}  # false_rate_on: its key
LIMIT_KEYS = {"amplitude_sigma": "amplitude_sigma_at_50pc_all", "ed_s": "ed_s_at_50pc_all"}  # choose_by: its key


def build_detector(cfg: DictConfig):
    """``(lc -> predictor, trained stars of every fold)``: the 3-sigma rule, or the predictor
    flaredetect-predict would build from ``ckpt`` (a run, or a list of cross-validation folds:
    each light curve goes to the first fold that never trained on its star)."""
    if cfg.detector not in DETECTORS:
        raise ConfigError(f"detector={cfg.detector} must be one of {list(DETECTORS)}")
    if cfg.detector == "threshold":
        rule = threshold_predictor(EventParams.from_settings(OmegaConf.to_container(cfg.events, resolve=True)))
        return (lambda lc: rule), []
    from flaredetect.evaluation.catalog_benchmark import trained_tics
    from flaredetect.inference import resolve_checkpoint
    from flaredetect.predict import build_predictor

    ckpts = list(cfg.ckpt) if OmegaConf.is_list(cfg.get("ckpt")) else [cfg.get("ckpt")]
    folds = []
    for ckpt in ckpts:
        one = cfg.copy()
        one.ckpt = ckpt
        predictor = build_predictor(one)  # resolves ckpt (null: the bundled detector)
        skip = set()
        if cfg.get("skip_trained", True):  # the run's config only: its weights are already loaded
            skip = trained_tics(OmegaConf.load(resolve_checkpoint(one.ckpt)[1]))
        folds.append((predictor, skip))

    def pick(lc):
        return next(p for p, skip in folds if lc.tic not in skip)
    return pick, [skip for _, skip in folds]


def rotation_groups(curves: list) -> dict[str, list[str]]:
    """Light-curve names of fast rotators (Lomb–Scargle period < 1 d, >= 0.5 % peak to peak,
    as in flaredetect-benchmark) and of the other stars."""
    from flaredetect.evaluation.rotation import is_fast_rotator, rotation_period

    groups: dict[str, list[str]] = {"fast rotators": [], "other stars": []}
    for name, lc in curves:
        groups["fast rotators" if is_fast_rotator(*rotation_period(lc)) else "other stars"].append(name)
    return groups


def recovery_numbers(trials, false_events, fwhm_bins, amplitude_bins) -> dict:
    """False events per day, the amplitude of 50 % recovery (per FWHM range and overall) and
    the recovery probability per amplitude bin (noise sigma) of a set of trials."""
    days = float(false_events["days"].sum())
    fwhm = list(fwhm_bins)
    amp = list(amplitude_bins)
    by_amp = {}
    for lo, hi in zip(amp[:-1], amp[1:]):
        sel = trials[(trials["amplitude_sigma"] >= lo) & (trials["amplitude_sigma"] < hi)]
        by_amp[f"[{lo:g}, {hi:g}) sigma"] = float(sel["recovered"].mean()) if len(sel) else float("nan")
    return {"light_curves": int(len(false_events)), "injected": int(len(trials)),
            "recovered": int(trials["recovered"].sum()),
            "false_events_per_day": float(false_events["n_events"].sum() / days) if days else float("nan"),
            "false_events_per_day_inverted": float(false_events["n_events_inverted"].sum() / days) if days
            else float("nan"),
            "days_searched": days,
            "amplitude_sigma_at_50pc": {f"fwhm [{a:g}, {b:g}) min": amplitude_at_recovery(trials, 0.5, (a, b))
                                        for a, b in zip(fwhm[:-1], fwhm[1:])},
            "amplitude_sigma_at_50pc_all": amplitude_at_recovery(trials, 0.5, (fwhm[0], fwhm[-1])),
            "ed_s_at_50pc_all": ed_at_recovery(trials, 0.5, (fwhm[0], fwhm[-1])),
            "recovery_by_amplitude_sigma": by_amp}


def at_cadence(lc, cadence_s: float | None, name: str):
    """``lc`` binned to ``cadence_s`` (None: as it is); a longer own cadence is an error."""
    from flaredetect.data.binning import bin_light_curve
    from flaredetect.data.lightcurve import same_cadence

    if cadence_s is None or same_cadence(lc.cadence_seconds, cadence_s):
        return lc
    if lc.cadence_seconds > cadence_s:
        raise ValueError(f"{name}: a {lc.cadence_seconds:g}-s light curve cannot be binned to cadence_s={cadence_s:g}")
    return bin_light_curve(lc, cadence_s)


def load_light_curves(cfg: DictConfig) -> tuple[list, list]:
    """``[(name, LightCurve)]`` of the inputs, cleaned as predict cleans them (and binned to
    ``cadence_s`` when set), and the failures."""
    inputs = list(cfg.input) if OmegaConf.is_list(cfg.input) else str(cfg.input)
    cadence_s = cfg.get("cadence_s")
    if cadence_s is not None and not (isinstance(cadence_s, (int, float)) and cadence_s > 0):
        raise ConfigError(f"cadence_s={cadence_s} must be a positive number of seconds (or null)")
    curves, failed = [], []
    for name, load, _ in iter_targets(inputs, cfg.get("quality_bitmask", "default"), cfg.get("low_sigma"),
                                      cfg.get("cache_dir", "data/mast")):
        try:
            curves += [(f"{name}#{k}" if k else name, at_cadence(lc, cadence_s, name))
                       for k, (lc, *_) in enumerate(load())]
        except Exception as exc:  # one bad file is a failure line, the others go on
            failed.append((name, " ".join(str(exc).split())))
            log.error("FAILED %s", failed[-1][1])
    return curves, failed


def event_thresholds(cfg: DictConfig) -> tuple[list[float] | None, float | None, str]:
    """``(thresholds, false_rate, of)``, checked: the thresholds tried on the same injections
    (``thresholds``: the network's event threshold, ``of="events"``; ``vet_thresholds``: the
    event vetter's, ``of="vetter"``; None: the detector's own), and ``false_rate`` (false
    events per day to match: a number, or the ``recovery.json`` of another run, e.g. the
    3-sigma rule's)."""
    false_rate, on = cfg.get("false_rate"), cfg.get("false_rate_on", "data")
    if on not in RATE_KEYS:
        raise ConfigError(f"false_rate_on={on} must be one of {list(RATE_KEYS)}")
    if cfg.get("choose_by", "amplitude_sigma") not in LIMIT_KEYS:
        raise ConfigError(f"choose_by={cfg.choose_by} must be one of {list(LIMIT_KEYS)}")
    if cfg.get("thresholds") is not None and cfg.get("vet_thresholds") is not None:
        raise ConfigError("thresholds= and vet_thresholds= sweep one threshold each: give one of them "
                          "(fix the other with events.threshold= or vet_threshold=)")
    key, of = ("vet_thresholds", "vetter") if cfg.get("vet_thresholds") is not None else ("thresholds", "events")
    thresholds = cfg.get(key)
    if thresholds is not None:
        if not OmegaConf.is_list(thresholds) or not len(thresholds):
            raise ConfigError(f"{key}={thresholds} must be a non-empty list of thresholds, e.g. [0.5,0.7,0.9]")
        bad = [t for t in thresholds if not isinstance(t, (int, float)) or not 0 < t < 1]
        if bad:
            raise ConfigError(f"{key}={list(thresholds)}: {bad} not strictly between 0 and 1")
        if cfg.detector == "threshold":
            raise ConfigError(f"{key}= is for detector=model: the 3-sigma rule's flags do not change with it")
        if of == "vetter" and not cfg.get("vetter"):
            raise ConfigError("vet_thresholds= needs vetter=<a directory of flaredetect-benchmark --save-vetters>")
        thresholds = sorted({float(t) for t in thresholds})
    if false_rate is None:
        return thresholds, None, of
    if thresholds is None:
        raise ConfigError(f"false_rate={false_rate} needs thresholds=[...] or vet_thresholds=[...] to choose from")
    if isinstance(false_rate, str):
        path = Path(false_rate)
        if path.is_dir():
            path = path / "recovery.json"
        if not path.is_file():
            raise ConfigError(f"false_rate={false_rate}: neither a number nor a recovery.json (or its run dir)")
        import json

        false_rate = json.loads(path.read_text()).get(RATE_KEYS[on])
        if false_rate is None:
            raise ConfigError(f"false_rate: {path} has no {RATE_KEYS[on]} (false_rate_on={on}; an older run: redo it)")
    if not isinstance(false_rate, (int, float)) or not false_rate >= 0:
        raise ConfigError(f"false_rate={false_rate} must be a non-negative number of false events per day")
    return thresholds, float(false_rate), of


def choose_threshold(by_threshold: dict, false_rate: float | None, on: str = "data",
                     by: str = "amplitude_sigma") -> float:
    """The threshold to report: with ``false_rate``, the lowest 50 %-recovery limit (``by``:
    amplitude in noise sigma, or ED ``"ed_s"``) among thresholds at or below that false-event
    rate (``on``: of the data or of the inverted light curves; none: the one with the fewest
    false events); without, the lowest threshold (the list is a sweep)."""
    if false_rate is None:
        return min(by_threshold)
    key = RATE_KEYS[on]
    ok = {t: n for t, n in by_threshold.items() if n[key] <= false_rate}
    if not ok:
        log.warning("no threshold reaches false_rate=%.3f/day; reporting the one with the fewest false events",
                    false_rate)
        return min(by_threshold, key=lambda t: (by_threshold[t][key], -t))
    limit = {t: n[LIMIT_KEYS[by]] for t, n in ok.items()}
    return min(ok, key=lambda t: (np.inf if not np.isfinite(limit[t]) else limit[t], t))


def run_recovery(cfg: DictConfig) -> dict:
    grid = InjectionGrid(**{k: tuple(v) if OmegaConf.is_list(v) else v for k, v in cfg.injection.items()})
    thresholds, false_rate, of = event_thresholds(cfg)  # checked before any checkpoint or file is read
    predictor_for, trained = build_detector(cfg)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves, failed = load_light_curves(cfg)
    if trained:  # never measure a model on stars it trained on (biased upward)
        seen = [(n, lc) for n, lc in curves if all(lc.tic in skip for skip in trained)]
        curves = [(n, lc) for n, lc in curves if not all(lc.tic in skip for skip in trained)]
        if seen:
            log.info("skipped %d light curve(s) of stars every run trained on (skip_trained=false keeps them)",
                     len(seen))
    if not curves:
        raise ConfigError(f"input={cfg.input}: no light curve could be read or left to measure"
                          + (f" ({failed[0][1]})" if failed else ""))
    results = injection_recovery_by_threshold(predictor_for, curves, grid, thresholds, trials=int(cfg.trials),
                                              seed=int(cfg.seed), tolerance_cadences=int(cfg.tolerance_cadences),
                                              of=of)
    fwhm, amp = list(cfg.bins.fwhm_minutes), list(cfg.bins.amplitude_sigma)
    by_threshold = {t: recovery_numbers(r.trials, r.false_events, fwhm, amp) for t, r in results.items()}
    on = cfg.get("false_rate_on", "data")
    chosen = (choose_threshold(by_threshold, false_rate, on, cfg.get("choose_by", "amplitude_sigma"))
              if thresholds is not None else None)
    result = results[chosen]
    trials = result.trials
    trials.to_csv(out_dir / "recovery_trials.csv", index=False)
    summary = recovery_summary(trials, list(cfg.bins.amplitude_sigma), list(cfg.bins.fwhm_minutes))
    summary.to_csv(out_dir / "recovery_summary.csv", index=False)
    label = "3-sigma rule" if cfg.detector == "threshold" else f"{cfg.ckpt}"
    recovery_heatmap(summary, out_dir / "recovery_heatmap.png", title=f"recovery: {label}")
    RecoveryCorrection.from_trials(trials).save(out_dir / "recovery_correction.json")
    groups = rotation_groups(curves) if cfg.get("by_rotation", True) else {}
    report = {
        "detector": cfg.detector, "ckpt": OmegaConf.to_container(cfg.ckpt) if OmegaConf.is_list(cfg.get("ckpt"))
        else cfg.get("ckpt"), "failed": failed,
        **by_threshold[chosen],
        "median_ed_ratio": float(np.nanmedian(trials["ed_rec"] / trials["ed_s"])) if trials["recovered"].any()
        else float("nan"),
        "by_rotation": {group: recovery_numbers(trials[trials["light_curve"].isin(names)],
                                                result.false_events[result.false_events["light_curve"].isin(names)],
                                                fwhm, amp)
                        for group, names in groups.items() if names},
        **({} if thresholds is None else {
            ("vet_threshold" if of == "vetter" else "event_threshold"): chosen, "false_rate_matched": false_rate,
            "false_rate_on": on, "choose_by": cfg.get("choose_by", "amplitude_sigma"),
            "by_threshold": [{"threshold": t, **{k: v for k, v in numbers.items() if k != "recovery_by_amplitude_sigma"}}
                             for t, numbers in by_threshold.items()]}),
        "flaredetect_version": package_versions(("flaredetect",))["flaredetect"],
        "settings": settings_of(cfg),
    }
    write_json(out_dir / "recovery.json", report)
    if thresholds is not None:
        print(f"\n{'vet threshold' if of == 'vetter' else 'event threshold':>15} | false events/day | "
              f"inverted | 50 % recovery (sigma) | ED of 50 % recovery (s)")
        for t, numbers in by_threshold.items():
            print(f"{t:15.3g} | {numbers['false_events_per_day']:16.3f} | {numbers['false_events_per_day_inverted']:8.3f} | "
                  f"{numbers['amplitude_sigma_at_50pc_all']:21.2f} | "
                  f"{numbers['ed_s_at_50pc_all']:.3g}" + ("   <- reported" if t == chosen else ""))
        if false_rate is not None:
            limit = "ED" if cfg.get("choose_by") == "ed_s" else "amplitude"
            print(f"reported: the threshold with the lowest 50 % {limit} at <= {false_rate:.3f} false events/day "
                  f"(false_rate) {'of the inverted light curves' if on == 'inverted' else 'of the data'}")
    print(f"\n{report['recovered']}/{report['injected']} injected flares recovered in {len(curves)} light curve(s); "
          f"{report['false_events_per_day']:.3f} false events/day on the uninjected data "
          f"({report['false_events_per_day_inverted']:.3f} on them inverted); 50 % recovery at "
          f"{report['amplitude_sigma_at_50pc_all']:.2f} sigma, ED {report['ed_s_at_50pc_all']:.3g} s "
          f"(FWHM {fwhm[0]}-{fwhm[-1]} min) -> {out_dir}")
    for group, numbers in report["by_rotation"].items():
        print(f"  {group} ({numbers['light_curves']}): 50 % at {numbers['amplitude_sigma_at_50pc_all']:.2f} sigma, "
              f"{numbers['false_events_per_day']:.3f} false events/day")
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="recovery")
def main(cfg: DictConfig) -> None:
    try:
        report = run_recovery(cfg)
    except (ConfigError, RunError, ValueError) as err:
        exit_with_error("flaredetect-recovery", err)
    if report["failed"]:
        for _, reason in report["failed"]:
            print(f"failed: {reason}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
