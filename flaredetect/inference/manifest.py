"""Many inputs for one prediction run: manifests, deterministic shards and completion markers.

A **manifest** is a text file (``.txt``, ``.lst``, ``.manifest``) with one input per line
(a light-curve path, relative paths taken from the manifest's folder, or ``TIC <id>``;
blank lines and ``#`` comments skipped), or a CSV table with a ``path`` column or a ``tic``
column (and optionally ``sector``).

A **shard** ``shard=i num_shards=N`` takes every input whose position in the full,
de-duplicated input list is ``i`` modulo ``N``: the N shards cover every input exactly once
whatever N is, and an input's output names are decided over the full list, so they do
not depend on N.

A **completion marker** ``done/<stem>.json`` is written after every output of an input,
with the sha256 of the checkpoint that made them; a re-run with ``resume=true`` skips the
inputs whose marker names the same checkpoint and redoes the rest, so a killed or
timed-out shard finishes with the same outputs as an uninterrupted one and nothing
partial looks complete.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

MANIFEST_SUFFIXES = (".txt", ".lst", ".manifest")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_manifest(item) -> bool:
    """A manifest file (by suffix; a CSV only when it has a ``path`` or ``tic`` column and no
    ``flux`` column, else it is a light curve)."""
    path = Path(str(item))
    if not path.is_file():
        return False
    name = path.name.lower()
    if name.endswith(MANIFEST_SUFFIXES):
        return True
    if name.endswith((".csv", ".csv.gz")):
        import pandas as pd

        try:
            columns = {str(c).strip().lower() for c in pd.read_csv(path, nrows=0).columns}
        except Exception:
            return False
        return bool(columns & {"path", "tic"}) and "flux" not in columns
    return False


def read_manifest(path: str | Path) -> list[str]:
    """The manifest's inputs, in order: paths (absolute, relative ones from the manifest's
    folder) and ``TIC <id>`` (with ``sector`` a CSV entry reads ``TIC <id> sector <s>``)."""
    path = Path(path)
    base = path.resolve().parent
    if path.name.lower().endswith((".csv", ".csv.gz")):
        import pandas as pd

        table = pd.read_csv(path)
        table.columns = [str(c).strip().lower() for c in table.columns]
        if "path" in table.columns:
            return [str(_resolve(str(p), base)) for p in table["path"].astype(str)]
        sectors = table["sector"] if "sector" in table.columns else [None] * len(table)
        return [f"TIC {t}" + (f" sector {int(s)}" if s is not None and s == s else "")
                for t, s in zip(table["tic"], sectors)]
    from flaredetect.inference.pipeline import _TIC

    entries = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append(line if _TIC.match(line) and not (base / line).exists() else str(_resolve(line, base)))
    return entries


def _resolve(entry: str, base: Path) -> Path:
    p = Path(os.path.expanduser(entry))
    return p if p.is_absolute() else base / p


def in_shard(position: int, shard: int, num_shards: int) -> bool:
    return position % num_shards == shard


def check_shard(shard, num_shards) -> None:
    """One-line ``ValueError`` for shard settings that select nothing or overlap."""
    if not (isinstance(num_shards, int) and num_shards >= 1):
        raise ValueError(f"num_shards={num_shards} must be an integer >= 1")
    if not (isinstance(shard, int) and 0 <= shard < num_shards):
        raise ValueError(f"shard={shard} must be an integer in [0, num_shards={num_shards})")


def marker_path(out_dir: Path, key: str) -> Path:
    return Path(out_dir) / "done" / f"{_SAFE.sub('_', key)}.json"


def read_marker(out_dir: Path, key: str, sha256: str) -> dict | None:
    """The completion record of ``key`` if it was made by the checkpoint ``sha256`` and its
    outputs still exist, else None."""
    path = marker_path(out_dir, key)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("sha256") != sha256:
        return None
    if not all(Path(p).is_file() for part in record.get("light_curves", []) for p in part["outputs"].values()):
        return None
    return record


def write_marker(out_dir: Path, key: str, record: dict) -> None:
    """Atomically (write, then rename): a marker is either whole or absent."""
    path = marker_path(out_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)
