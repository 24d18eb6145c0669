"""The detector bundled with the package (``find_flares(lc)`` and ``flaredetect-predict`` with no model).

A bundled detector is a slim run directory under ``flaredetect/pretrained/<name>/``:
``config.yaml`` (the network, optimiser, loss and window geometry of its training run, and the TIC ids of
every real star it trained or validated on, so that benchmarks never score it on them),
``checkpoints/pretrained.ckpt`` (the network's weights in float16: half the size, outputs
within ~1e-3 of float32) and ``summary.json`` (the training run's metrics, its command and
the checkpoint's sha256). It is made from a training run by

    python -m flaredetect.pretrained outputs/<run> [--name default]

and loaded like any run directory (:func:`flaredetect.inference.load_net`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent  # flaredetect/pretrained/<name>/
DEFAULT = "default"
CHECKPOINT = "checkpoints/pretrained.ckpt"


def pretrained_run(name: str = DEFAULT) -> Path:
    """The bundled run directory ``name``; ``FileNotFoundError`` naming what to do when absent."""
    run = PRETRAINED_DIR / name
    if not (run / "config.yaml").is_file():
        raise FileNotFoundError(f"no pretrained detector {name!r} is bundled with this install ({run}); pass "
                                "model=<a training run dir or .ckpt> (flaredetect-train ...) or model='threshold' "
                                "for the 3-sigma rule")
    return run


def package_run(run_dir: str | Path, name: str = DEFAULT, out_root: str | Path = PRETRAINED_DIR) -> Path:
    """Write the slim bundled copy of training run ``run_dir`` (see the module docstring)."""
    import torch
    from omegaconf import OmegaConf

    from flaredetect.checkpoints import sha256
    from flaredetect.evaluation.catalog_benchmark import trained_tics
    from flaredetect.inference import load_net, window_geometry

    run_dir = Path(run_dir)
    net, cfg = load_net(run_dir)
    geometry = window_geometry(cfg)
    out = Path(out_root) / name
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    state = {f"net.{k}": (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    torch.save({"state_dict": state}, out / CHECKPOINT)
    slim = {"model": OmegaConf.to_container(cfg.model, resolve=True),
            "optimizer": OmegaConf.to_container(cfg.optimizer, resolve=True),  # a run dir's sections (for
            "loss": OmegaConf.to_container(cfg.loss, resolve=True),            # fine-tuning from it)
            "data": {"sources": {"synthetic": {"_target_": "flaredetect.data.synthetic_windows.SyntheticWindows",
                                               "window": {"length": geometry["length"],
                                                          "max_gap_cadences": geometry["max_gap_cadences"]}}}},
            "trained_tics": sorted(trained_tics(cfg)), "seed": cfg.get("seed")}
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(slim)))
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    overrides = run_dir / ".hydra" / "overrides.yaml"
    record = {"best_checkpoint": CHECKPOINT, "sha256": sha256(out / CHECKPOINT),
              "source_run": str(run_dir), "n_parameters": sum(p.numel() for p in net.parameters()),
              "overrides": OmegaConf.to_container(OmegaConf.load(overrides)) if overrides.is_file() else None,
              "metrics": summary.get("metrics"), "best_epoch": summary.get("best_epoch")}
    (out / "summary.json").write_text(json.dumps(record, indent=1))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flaredetect.pretrained",
                                     description="bundle a training run as the package's pretrained detector")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", default=DEFAULT)
    parser.add_argument("--out-root", type=Path, default=PRETRAINED_DIR)
    args = parser.parse_args(argv)
    out = package_run(args.run_dir, args.name, args.out_root)
    size = (out / CHECKPOINT).stat().st_size / 2 ** 20
    print(f"{out}: {size:.1f} MiB, sha256 {json.loads((out / 'summary.json').read_text())['sha256']}")
    return 0
