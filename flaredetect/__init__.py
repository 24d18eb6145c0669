"""flaredetect: find stellar flares in TESS light curves with a transformer."""
import warnings
from pathlib import Path

# lightkurve warns at import that an optional PRF-fitting dependency is missing; flaredetect
# never fits PRFs, so every command would print an irrelevant warning.
warnings.filterwarnings("ignore", message=".*tpfmodel submodule is not available.*")
# Lightning 2.6's pytree helper calls a torch API deprecated in torch 2.10, on every fit.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")

# conf/ sits next to the package in the repository (editable install, see README).
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def __getattr__(name):  # the Python API, imported on first use (torch is slow to import)
    if name in ("find_flares", "Detector", "FlareResult"):
        from flaredetect import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'flaredetect' has no attribute {name!r}")


__all__ = ["CONFIG_DIR", "find_flares", "Detector", "FlareResult"]
