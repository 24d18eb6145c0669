"""``flaredetect-predict``: per-cadence flare probabilities and flare tables for whole
light curves, from a trained run (its own saved config rebuilds the network).

Writes per light curve ``<stem>_flares.ecsv``, ``<stem>_prob.ecsv`` (time series with a
``flare_prob`` column), ``<stem>_prob.npy`` (aligned with the input file's cadences, NaN
where cleaning dropped a cadence) and ``<stem>.png``, plus ``predictions.json``.

Settings are checked before any file is read; the tables and ``predictions.json`` record
the checkpoint (path within its run dir and sha256), the flaredetect version and every
setting. The exit code is 0 only when every input produced its outputs; otherwise 1, with
the failures one line each on stderr and in ``predictions.json``, the other outputs kept.
``input`` may be a manifest and ``shard``/``num_shards`` a slice of it; a re-run skips the
inputs already complete (``done/``; :mod:`flaredetect.inference.manifest`), and
``flaredetect-catalog`` merges the shards' outputs into one catalog.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from flaredetect import CONFIG_DIR
from flaredetect.checkpoints import sha256
from flaredetect.config_checks import ConfigError, check_predict_config
from flaredetect.data.periodic import PeriodicBackground
from flaredetect.evaluation.runs import RunError, resolve_run
from flaredetect.inference import EventParams, Predictor, SignificanceGate, load_net, run_prediction, window_geometry
from flaredetect.inference.pipeline import refine_settings
from flaredetect.utils import exit_with_error, package_versions, point_latest, settings_of, write_json

log = logging.getLogger(__name__)


def resolve_head(head: str | None, net) -> str:
    """``head`` as asked, or (null) what the checkpoint has: ``cadence`` when the network
    has a per-cadence head, else ``window``."""
    has_cadence = getattr(net, "cadence_head", None) is not None
    if head is None:
        return "cadence" if has_cadence else "window"
    if head == "cadence" and not has_cadence:
        raise ConfigError("head=cadence but the checkpoint's network has no per-cadence head "
                          "(trained with model.cadence_head=false): use head=window, or leave head unset")
    return head


def build_predictors(cfg: DictConfig) -> list[Predictor]:
    """One predictor per checkpoint of ``cfg.ckpt`` (a run, or a list of runs trained at
    different cadences: each light curve is scored by the one trained at its cadence)."""
    if not OmegaConf.is_list(cfg.get("ckpt")):
        return [build_predictor(cfg)]
    if len(cfg.ckpt) == 0:
        raise ConfigError("ckpt=[] lists no run (one run dir or .ckpt per cadence)")
    predictors = []
    for ckpt in cfg.ckpt:
        one = cfg.copy()
        one.ckpt = str(ckpt)
        predictors.append(build_predictor(one))
    by_cadence: dict[float, str] = {}
    for p in predictors:
        same = next((c for c in by_cadence if abs(c - p.cadence_s) <= 0.05 * c), None)
        if same is not None:
            raise ConfigError(f"ckpt: {by_cadence[same]} and {p.name} were both trained on {p.cadence_s:g}-s data; "
                              f"give one run per cadence")
        by_cadence[p.cadence_s] = p.name
    return predictors


def build_predictor(cfg: DictConfig) -> Predictor:
    """Network from ``cfg.ckpt`` and the window/event settings of a predict config."""
    check_predict_config(cfg)
    if cfg.get("ckpt") is None:  # the detector bundled with the package
        from flaredetect.pretrained import pretrained_run

        try:
            cfg.ckpt = str(pretrained_run())
        except FileNotFoundError as err:
            raise ConfigError(f"ckpt is not set and {err}") from None
    net, train_cfg = load_net(cfg.ckpt)
    geometry = window_geometry(train_cfg)
    try:
        events = EventParams.from_settings(OmegaConf.to_container(cfg.events, resolve=True), train_cfg.get("events"))
    except (TypeError, ValueError) as err:  # the run's own events: (predict's were checked already)
        raise ConfigError(f"ckpt={cfg.ckpt}: the run's config has events: {dict(train_cfg.events)} ({err})") from None
    candidates = cfg.get("candidates")
    try:
        gate = SignificanceGate.from_settings(None if candidates is None else OmegaConf.to_container(candidates),
                                              train_cfg.get("candidates", {}))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"ckpt={cfg.ckpt}: the run's config has candidates: {train_cfg.get('candidates')} "
                          f"({err})") from None
    return Predictor(net=net, length=geometry["length"], stride=cfg.get("stride"), head=resolve_head(cfg.get("head"), net),
                     reduce=cfg.get("reduce", "mean"), max_gap_cadences=geometry["max_gap_cadences"],
                     batch_size=int(cfg.get("batch_size", 1024)),
                     events=events,
                     gate=gate,
                     cadence_s=geometry["cadence_s"], name=str(cfg.ckpt),
                     vetter=load_vetter(cfg.get("vetter"), cfg.ckpt, cfg.get("vet_threshold")),
                     periodic=PeriodicBackground.from_settings(cfg.get("periodic")),
                     device=str(cfg.get("device") or "auto"), **refine_settings(cfg.get("refine")))


def load_vetter(path: str | None, ckpt, threshold: float | None = None):
    """The event vetter of ``vetter=`` for the network of ``ckpt`` (None: no second stage),
    keeping events at ``threshold`` (None: the threshold it was fitted with)."""
    if not path:
        return None
    from dataclasses import replace

    from flaredetect.inference.vetting import vetter_for

    try:
        vetter = vetter_for(path, ckpt)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return vetter if threshold is None else replace(vetter, threshold=float(threshold))



def load_correction(path: str | None):
    """The injection–recovery table of ``recovery=`` (from flaredetect-recovery), or None."""
    if not path:
        return None
    from flaredetect.evaluation.recovery import RecoveryCorrection

    if not Path(path).is_file():
        raise ConfigError(f"recovery={path} does not exist (a recovery_correction.json of flaredetect-recovery)")
    try:
        return RecoveryCorrection.load(path)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"recovery={path} is not a recovery_correction.json ({err})") from err


def checkpoint_record(ckpt: str | Path) -> dict:
    """A checkpoint as the outputs record it: its run dir, file within it and sha256."""
    ckpt = Path(ckpt)
    run = resolve_run(ckpt=ckpt) if ckpt.is_file() else resolve_run(run_dir=ckpt)
    return {"run_dir": str(run.run_dir), "file": str(run.ckpt.resolve().relative_to(run.run_dir.resolve())),
            "sha256": sha256(run.ckpt)}


def provenance(cfg: DictConfig, predictors: list[Predictor]) -> dict:
    """What made these outputs: the checkpoint (path within its run dir, sha256; with
    several, ``detectors`` lists each with its cadence), the event settings and gate each
    detector used (predict's, or the run's own where predict's are null), the flaredetect
    version and every predict setting (the head as resolved)."""
    from dataclasses import asdict

    settings = settings_of(cfg)
    settings["head"] = predictors[0].head
    records = [{**checkpoint_record(p.name), "cadence_s": p.cadence_s, "events": asdict(p.events),
                "candidates": asdict(p.gate) if p.gate is not None else None,
                "periodic": p.periodic.settings() if p.periodic is not None else None,
                **({"vetter": {**{k: p.vetter.info.get(k) for k in ("file", "sha256")}, "threshold": p.vetter.threshold}}
                   if p.vetter is not None else {})}
               for p in predictors]
    out = {"checkpoint": records[0], "flaredetect_version": package_versions(("flaredetect",))["flaredetect"],
           "settings": settings}
    if len(records) > 1:
        out["detectors"] = records
    return out


def predict(cfg: DictConfig) -> dict:
    """Run prediction as configured; returns the summary written to ``predictions.json``."""
    predictors = build_predictors(cfg)  # settings and checkpoints first: a bad one fails before any file is read
    correction = load_correction(cfg.get("recovery"))
    catalog = None
    if cfg.get("catalog"):  # its flare peaks are marked in the plots
        from hydra.utils import instantiate

        try:
            catalog = instantiate(cfg.catalog)
        except Exception as err:  # a wrong path or reader: one line naming the key
            raise ConfigError(f"catalog: {' '.join(str(err).split())[:300]}") from None
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("paths", {}).get("log_dir"):
        point_latest(out_dir, Path(cfg.paths.log_dir) / str(cfg.get("task_name", "predict")))
    meta = provenance(cfg, predictors)
    inputs = cfg.input
    inputs = list(inputs) if OmegaConf.is_list(inputs) else str(inputs)
    shard, num_shards = int(cfg.get("shard", 0)), int(cfg.get("num_shards", 1))
    from flaredetect.inference.manifest import is_manifest

    at_scale = any(is_manifest(i) for i in (inputs if isinstance(inputs, list) else [inputs]))
    plot, timeseries = cfg.get("plot", True), cfg.get("timeseries", True)
    plot = not at_scale if plot is None else plot  # per-light-curve PNGs and time series: not at catalog scale
    timeseries = not at_scale if timeseries is None else timeseries
    flare_tables = cfg.get("flare_tables", True)
    flare_tables = not at_scale if flare_tables is None else flare_tables
    result = run_prediction(predictors, inputs, out_dir, luminosity_erg_s=cfg.get("luminosity_erg_s"),
                            quality_bitmask=cfg.get("quality_bitmask", "default"), low_sigma=cfg.get("low_sigma"),
                            plot=bool(plot), progress=bool(cfg.get("progress", True)),
                            shard=shard, num_shards=num_shards, resume=bool(cfg.get("resume", True)),
                            timeseries=bool(timeseries), flare_tables=bool(flare_tables), workers=int(cfg.get("workers") or 0),
                            processes=int(cfg.get("processes") or 0), lc_batch=cfg.get("lc_batch"),
                            threads=int(cfg.threads) if cfg.get("threads") else None,
                            cache_dir=cfg.get("cache_dir", "data/mast"), log=log.error, tic=cfg.get("tic"),
                            sector=cfg.get("sector"), meta=meta, correction=correction, catalog=catalog)
    summary = {"ckpt": [p.name for p in predictors] if len(predictors) > 1 else predictors[0].name, "out_dir": str(out_dir), **meta, **result,
               "shard": shard, "num_shards": num_shards, "complete": not result["failed"]}
    write_json(out_dir / ("predictions.json" if num_shards == 1 else f"predictions_shard{shard}of{num_shards}.json"),
               summary)
    n_events = sum(r["n_events"] for r in result["ok"])
    print(f"\n{len(result['ok'])} light curve(s), {n_events} event(s), {len(result['failed'])} failed"
          + (f", {result['resumed']} input(s) already complete" if result["resumed"] else "") + f" -> {out_dir}")
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        summary = predict(cfg)
    except (ConfigError, RunError) as err:
        exit_with_error("flaredetect-predict", err)
    if summary["failed"]:
        for _, reason in summary["failed"]:
            print(f"failed: {reason}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
