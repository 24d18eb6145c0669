"""Shared fixtures. Real TESS data lives outside the repo at ``../shared/data``
(override with ``FLAREDETECT_SHARED_DATA``); tests that need it skip when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("FLAREDETECT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "catalogs" / "guenther2020.csv").is_file():
        pytest.skip(f"real TESS data not found at {path} (set FLAREDETECT_SHARED_DATA)")
    return path


def pytest_collection_modifyitems(config, items):
    if os.environ.get("FLAREDETECT_REMOTE_DATA") == "1":
        return
    skip = pytest.mark.skip(reason="needs the network (MAST); set FLAREDETECT_REMOTE_DATA=1")
    for item in items:
        if "remote_data" in item.keywords:
            item.add_marker(skip)
