"""``flaredetect-catalog``: one flare catalog from the outputs of ``flaredetect-predict`` runs
(shards of a manifest, or any runs), whatever the number of shards.

    flaredetect-catalog outputs/catalog_s27 [more predict dirs ...] --out outputs/catalog_s27/merged

Reads every completed input (the ``done/`` markers, :mod:`flaredetect.inference.manifest`)
and writes to ``--out``:

* ``flares.parquet`` and ``flares.ecsv``: every flare table row (the columns of
  ``flaredetect-predict``'s flare table: TIC, sector, cadence, times, amplitude, ED, ...)
  plus ``input`` (the light-curve file or target) and ``model`` (the checkpoint sha256
  and settings digest that made it), sorted by TIC, sector, input and start time;
* ``stars.ecsv``: per star the light curves and days searched, the number of flares, the
  flare rate per day and the inputs that failed, with their reasons;
* ``failures.ecsv``: every input that failed and never completed, with its reason.

An input completed by several runs (a re-run) is counted once, from its newest marker.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def completed(dirs: list[Path]) -> dict[str, dict]:
    """``{input name: completion record}`` over the predict dirs (the newest marker wins)."""
    records: dict[str, tuple[float, dict]] = {}
    for d in dirs:
        for marker in sorted((d / "done").glob("*.json")):
            record = json.loads(marker.read_text())
            mtime = marker.stat().st_mtime
            if record["input"] not in records or records[record["input"]][0] < mtime:
                records[record["input"]] = (mtime, record)
    return {name: rec for name, (_, rec) in records.items()}


def failures(dirs: list[Path], done: dict) -> list[tuple[str, str]]:
    """Inputs a run reported as failed that no run completed (the last reason kept)."""
    failed: dict[str, str] = {}
    for d in dirs:
        for summary in sorted(d.glob("predictions*.json")):
            for name, reason in json.loads(summary.read_text()).get("failed", []):
                if name not in done:
                    failed[name] = reason
    return sorted(failed.items())


def flare_rows(done: dict):
    """All flare-table rows of the completed inputs, with ``input`` and ``model``: from the
    rows the markers hold (markers of older runs: from the light curve's flare table)."""
    from astropy.table import QTable

    from flaredetect.inference.writers import rows_table, table_rows

    rows, extra = [], {"input": [], "model": []}
    for name, record in sorted(done.items()):
        for lc in record["light_curves"]:
            if lc.get("n_events") == 0:
                continue  # nothing to read
            part = lc.get("flares")
            if part is None:
                part = table_rows(QTable.read(lc["outputs"]["flares"], format="ascii.ecsv"))
            n = len(next(iter(part.values()), []))
            if not n:
                continue  # a light curve without flares adds none (it is counted in stars.ecsv)
            rows.append(part)
            extra["input"] += [name] * n
            extra["model"] += [record["sha256"]] * n
    if not rows:
        return QTable()
    merged = rows_table(rows, extra)
    merged.meta = {"merged_inputs": len(done)}
    tic = np.ma.filled(np.ma.asarray(merged["TIC"]), -1)
    sector = np.ma.filled(np.ma.asarray(merged["sector"]), -1)
    order = np.lexsort((np.asarray(merged["tstart"].value), np.asarray(merged["input"]), sector, tic))
    return merged[order]


def star_rows(done: dict, failed: list[tuple[str, str]]):
    """Per star: light curves and days searched, flares, rate, failures with reasons."""
    from astropy.table import Table

    from flaredetect.sources.local import _ids_from_name

    stars: dict[int, dict] = {}

    def star(tic):
        return stars.setdefault(int(tic), {"TIC": int(tic), "n_light_curves": 0, "days_searched": 0.0,
                                           "n_flares": 0, "sectors": set(), "n_failed": 0, "failures": []})

    for record in done.values():
        for lc in record["light_curves"]:
            if lc.get("tic") is None:
                continue
            row = star(lc["tic"])
            row["n_light_curves"] += 1
            row["days_searched"] += lc["n_cadences"] * float(lc.get("cadence_s") or 120.0) / 86400.0
            row["n_flares"] += int(lc["n_events"])
            if lc.get("sector") is not None:
                row["sectors"].add(int(lc["sector"]))
    for name, reason in failed:
        tic, _ = _ids_from_name(Path(name))
        if tic is not None:
            row = star(tic)
            row["n_failed"] += 1
            row["failures"].append(reason)
    rows = [stars[t] for t in sorted(stars)]
    return Table({
        "TIC": [r["TIC"] for r in rows], "n_light_curves": [r["n_light_curves"] for r in rows],
        "sectors": [",".join(str(s) for s in sorted(r["sectors"])) for r in rows],
        "days_searched": [r["days_searched"] for r in rows], "n_flares": [r["n_flares"] for r in rows],
        "flare_rate_per_day": [r["n_flares"] / r["days_searched"] if r["days_searched"] else np.nan for r in rows],
        "n_failed": [r["n_failed"] for r in rows], "failures": [" | ".join(r["failures"]) for r in rows]})


def build_catalog(dirs: list[str | Path], out: str | Path) -> dict:
    """Merge the predict dirs into ``out`` (see the module doc); returns the counts."""
    from astropy.table import Table

    dirs = [Path(d) for d in dirs]
    missing = [str(d) for d in dirs if not (d / "done").is_dir()]
    if missing:
        raise ValueError(f"no completed inputs (done/) in {', '.join(missing)}: not flaredetect-predict output dirs?")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = completed(dirs)
    failed = failures(dirs, done)
    flares = flare_rows(done)
    flares.write(out / "flares.ecsv", format="ascii.ecsv", overwrite=True)
    plain = Table(flares)  # Parquet: plain columns (units in flares.ecsv and the column names' docs)
    for name in plain.colnames:
        if getattr(plain[name], "unit", None) is not None:
            plain[name].unit = None
    plain.write(out / "flares.parquet", format="parquet", overwrite=True)
    star_rows(done, failed).write(out / "stars.ecsv", format="ascii.ecsv", overwrite=True)
    Table({"input": [n for n, _ in failed], "reason": [r for _, r in failed]},
          dtype=[str, str]).write(out / "failures.ecsv", format="ascii.ecsv", overwrite=True)
    return {"inputs": len(done), "light_curves": sum(len(r["light_curves"]) for r in done.values()),
            "flares": len(flares), "failed": len(failed), "out": str(out)}


CATALOG_HELP = """\
flaredetect-catalog: merge the outputs of flaredetect-predict runs (the shards of a manifest, or
any runs) into one flare catalog: flares.parquet and flares.ecsv (every flare with its input and
model), stars.ecsv (light curves and days searched, flares, rate and failures per star) and
failures.ecsv; identical whatever the number of shards.
Required: the predict output dirs (each run's out_dir) and --out.

examples:
  flaredetect-catalog outputs/catalog_s27 --out outputs/catalog_s27/merged
  flaredetect-catalog outputs/catalog_s27 outputs/catalog_s28 --out outputs/catalog_s27_s28
  flaredetect-catalog outputs/predict/latest --out outputs/one_run_catalog   # a single run works too"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="flaredetect-catalog", description=CATALOG_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, help="flaredetect-predict output dirs (out_dir of each run)")
    parser.add_argument("--out", type=Path, required=True, help="where the merged catalog goes")
    args = parser.parse_args(argv)
    try:
        counts = build_catalog(args.dirs, args.out)
    except (ValueError, OSError) as err:
        print(f"flaredetect-catalog: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(f"{counts['flares']} flares from {counts['light_curves']} light curves of {counts['inputs']} inputs, "
          f"{counts['failed']} failed -> {counts['out']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
