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
from flaredetect.evaluation.recovery import (RecoveryCorrection, amplitude_at_recovery, injection_recovery,
                                             recovery_heatmap, recovery_summary)
from flaredetect.evaluation.runs import RunError
from flaredetect.inference import EventParams
from flaredetect.inference.candidates import threshold_predictor
from flaredetect.inference.pipeline import iter_targets
from flaredetect.injection import InjectionGrid
from flaredetect.utils import exit_with_error, package_versions, settings_of, write_json

log = logging.getLogger(__name__)
DETECTORS = ("model", "threshold")


def build_detector(cfg: DictConfig):
    """The predictor flaredetect-predict would build, or the 3-sigma rule (same events code)."""
    if cfg.detector not in DETECTORS:
        raise ConfigError(f"detector={cfg.detector} must be one of {list(DETECTORS)}")
    if cfg.detector == "threshold":
        return threshold_predictor(EventParams(**OmegaConf.to_container(cfg.events, resolve=True)))
    from flaredetect.predict import build_predictor

    return build_predictor(cfg)


def load_light_curves(cfg: DictConfig) -> tuple[list, list]:
    """``[(name, LightCurve)]`` of the inputs, cleaned as predict cleans them, and the failures."""
    inputs = list(cfg.input) if OmegaConf.is_list(cfg.input) else str(cfg.input)
    curves, failed = [], []
    for name, load, _ in iter_targets(inputs, cfg.get("quality_bitmask", "default"), cfg.get("low_sigma"),
                                      cfg.get("cache_dir", "data/mast")):
        try:
            curves += [(f"{name}#{k}" if k else name, lc) for k, (lc, *_) in enumerate(load())]
        except Exception as exc:  # one bad file is a failure line, the others go on
            failed.append((name, " ".join(str(exc).split())))
            log.error("FAILED %s", failed[-1][1])
    return curves, failed


def run_recovery(cfg: DictConfig) -> dict:
    grid = InjectionGrid(**{k: tuple(v) if OmegaConf.is_list(v) else v for k, v in cfg.injection.items()})
    predictor = build_detector(cfg)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves, failed = load_light_curves(cfg)
    if not curves:
        raise ConfigError(f"input={cfg.input}: no light curve could be read" + (f" ({failed[0][1]})" if failed else ""))
    result = injection_recovery(predictor, curves, grid, trials=int(cfg.trials), seed=int(cfg.seed),
                                tolerance_cadences=int(cfg.tolerance_cadences))
    trials = result.trials
    trials.to_csv(out_dir / "recovery_trials.csv", index=False)
    summary = recovery_summary(trials, list(cfg.bins.amplitude_sigma), list(cfg.bins.fwhm_minutes))
    summary.to_csv(out_dir / "recovery_summary.csv", index=False)
    label = "3-sigma rule" if cfg.detector == "threshold" else f"{cfg.ckpt}"
    recovery_heatmap(summary, out_dir / "recovery_heatmap.png", title=f"recovery: {label}")
    RecoveryCorrection.from_trials(trials).save(out_dir / "recovery_correction.json")
    fwhm = list(cfg.bins.fwhm_minutes)
    report = {
        "detector": cfg.detector, "ckpt": cfg.get("ckpt"), "light_curves": len(curves), "failed": failed,
        "injected": int(len(trials)), "recovered": int(trials["recovered"].sum()),
        "false_events_per_day": result.false_events_per_day,
        "days_searched": float(result.false_events["days"].sum()),
        "amplitude_sigma_at_50pc": {f"fwhm [{a:g}, {b:g}) min": amplitude_at_recovery(trials, 0.5, (a, b))
                                    for a, b in zip(fwhm[:-1], fwhm[1:])},
        "amplitude_sigma_at_50pc_all": amplitude_at_recovery(trials, 0.5, (fwhm[0], fwhm[-1])),
        "median_ed_ratio": float(np.nanmedian(trials["ed_rec"] / trials["ed_s"])) if trials["recovered"].any()
        else float("nan"),
        "flaredetect_version": package_versions(("flaredetect",))["flaredetect"],
        "settings": settings_of(cfg),
    }
    write_json(out_dir / "recovery.json", report)
    print(f"\n{report['recovered']}/{report['injected']} injected flares recovered in {len(curves)} light curve(s); "
          f"{report['false_events_per_day']:.3f} false events/day on the uninjected data; 50 % recovery at "
          f"{report['amplitude_sigma_at_50pc_all']:.2f} sigma (FWHM {fwhm[0]}-{fwhm[-1]} min) -> {out_dir}")
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
