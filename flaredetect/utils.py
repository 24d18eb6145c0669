"""Small helpers for run directories and JSON summaries."""
from __future__ import annotations

import importlib.metadata
import json
import math
from pathlib import Path


def package_versions(names=("flaredetect", "torch", "lightning", "hydra-core", "torchmetrics", "numpy",
                            "lightkurve", "h5py")) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def to_builtin(value):
    """Tensors, numpy scalars and NaN → JSON-friendly Python values."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    return value


def write_json(path: str | Path, data: dict) -> None:
    Path(path).write_text(json.dumps(to_builtin(data), indent=2, sort_keys=True))
