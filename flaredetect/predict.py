"""``flaredetect-predict``: per-cadence flare probabilities and flare tables for whole
light curves, from a trained run (its own saved config rebuilds the network).

Writes per light curve ``<stem>_flares.ecsv``, ``<stem>_prob.ecsv`` (time series with a
``flare_prob`` column), ``<stem>_prob.npy`` (aligned with the input file's cadences, NaN
where cleaning dropped a cadence) and ``<stem>.png``, plus ``predictions.json``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from flaredetect.inference import EventParams, Predictor, SignificanceGate, load_net, run_prediction, window_geometry
from flaredetect import CONFIG_DIR
from flaredetect.utils import write_json

log = logging.getLogger(__name__)


def build_predictor(cfg: DictConfig) -> Predictor:
    """Network from ``cfg.ckpt`` and the window/event settings of a predict config."""
    net, train_cfg = load_net(cfg.ckpt)
    geometry = window_geometry(train_cfg)
    return Predictor(net=net, length=geometry["length"], stride=cfg.get("stride"), head=cfg.get("head", "cadence"),
                     reduce=cfg.get("reduce", "mean"), max_gap_cadences=geometry["max_gap_cadences"],
                     batch_size=int(cfg.get("batch_size", 1024)),
                     events=EventParams(**OmegaConf.to_container(cfg.events, resolve=True)),
                     gate=SignificanceGate(**cfg.candidates) if cfg.get("candidates") else None)


def predict(cfg: DictConfig) -> dict:
    """Run prediction as configured; returns the summary written to ``predictions.json``."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    predictor = build_predictor(cfg)
    inputs = cfg.input
    inputs = list(inputs) if OmegaConf.is_list(inputs) else str(inputs)
    out_dir = Path(cfg.out_dir)
    result = run_prediction(predictor, inputs, out_dir, luminosity_erg_s=cfg.get("luminosity_erg_s"),
                            quality_bitmask=cfg.get("quality_bitmask", "default"), low_sigma=cfg.get("low_sigma"),
                            plot=bool(cfg.get("plot", True)), progress=bool(cfg.get("progress", True)),
                            cache_dir=cfg.get("cache_dir", "data/mast"), log=log.error)
    summary = {"ckpt": str(cfg.ckpt), "out_dir": str(out_dir), **result}
    write_json(out_dir / "predictions.json", summary)
    n_events = sum(r["n_events"] for r in result["ok"])
    print(f"\n{len(result['ok'])} light curve(s), {n_events} event(s), {len(result['failed'])} failed -> {out_dir}")
    for _, reason in result["failed"]:
        print(f"  failed: {reason}")
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
