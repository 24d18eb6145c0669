"""``--help`` of every console script: what the tool does, its required keys and three
examples that parse, instead of Hydra's generic "powered by Hydra" page."""
from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from flaredetect import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
HYDRA_CONFIGS = {"flaredetect-train": "train", "flaredetect-prepare": "prepare", "flaredetect-eval": "eval",
                 "flaredetect-predict": "predict", "flaredetect-export": "export",
                 "flaredetect-recovery": "recovery"}
# Required without being ``???`` in a config: eval needs one of two null keys; sweeps and benchmark are argparse.
ALSO_REQUIRED = {"flaredetect-eval": ["run_dir", "ckpt"], "flaredetect-sweeps": ["sweep dirs"],
                 "flaredetect-benchmark": ["--data", "--ckpt"],
                 "flaredetect-recovery": ["ckpt"], "flaredetect-catalog": ["predict output dirs", "--out"]}


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


def _compose(config_name: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # resolves ${hydra:...} in missing_keys
        with open_dict(cfg):
            del cfg.hydra
    return cfg


def required_keys(script: str) -> list[str]:
    """The ``???`` keys of the script's composed config, and those it documents as required."""
    missing = sorted(OmegaConf.missing_keys(_compose(HYDRA_CONFIGS[script], []))) if script in HYDRA_CONFIGS else []
    return missing + ALSO_REQUIRED.get(script, [])


def examples(script: str, text: str) -> list[list[str]]:
    """The argument lists of the example commands (the lines below "Examples:", comments cut)."""
    block = text.split("xamples:\n", 1)[1].split("\n\n", 1)[0]
    return [shlex.split(line.split("  #")[0])[1:] for line in block.splitlines()
            if line.strip().split(" ")[0] == script]


def test_every_console_script_is_covered():
    assert set(SCRIPTS) == set(HYDRA_CONFIGS) | {"flaredetect-sweeps", "flaredetect-benchmark", "flaredetect-catalog"}


@pytest.mark.slow  # one interpreter start (torch, Lightning imports) per script
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_says_what_the_tool_does_needs_and_how_to_run_it(script, tmp_path):
    module = SCRIPTS[script].split(":")[0]
    run = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    text = out.split("\n\n", 1)[1] if out.startswith("usage:") else out  # argparse puts its usage line first
    assert text.startswith(f"{script}: "), out[:500]
    assert "powered by hydra" not in out.lower(), out[:500]
    head = text.split("==", 1)[0]  # before the config dump
    required = head.split("Required", 1)[-1].split("\n\n", 1)[0]
    for key in required_keys(script):
        assert key in required, f"{script} --help does not name the required key {key}:\n{head}"
    commands = examples(script, text)
    assert len(commands) >= 3, f"{script} --help has {len(commands)} examples:\n{head}"
    if script in HYDRA_CONFIGS:
        for overrides in commands:
            _compose(HYDRA_CONFIGS[script], overrides)  # raises on an unknown key or a bad override
