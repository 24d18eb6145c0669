"""The detector bundled with the package (``find_flares(lc)`` with no model).

Looked up under ``flaredetect/pretrained_models/<name>/`` (a run directory: ``config.yaml``,
``checkpoints/``, ``summary.json``). None is bundled yet: training and shipping one is issue 15,
item 5; until then a model must be named.
"""
from __future__ import annotations

from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained_models"
DEFAULT = "default"


def pretrained_run(name: str = DEFAULT) -> Path:
    """The bundled run directory ``name``; ``FileNotFoundError`` naming what to do when absent."""
    run = PRETRAINED_DIR / name
    if not (run / "config.yaml").is_file():
        raise FileNotFoundError(f"no pretrained detector {name!r} is bundled with this install ({run}); pass "
                                "model=<a training run dir or .ckpt> (flaredetect-train ...) or model='threshold' "
                                "for the 3-sigma rule")
    return run
