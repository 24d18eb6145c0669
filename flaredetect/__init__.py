"""flaredetect: find stellar flares in TESS light curves with a transformer."""
from pathlib import Path

# conf/ sits next to the package in the repository (editable install, see README).
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
