"""FFI-cadence benchmark (issue 16): injection–recovery on the real 2-minute light curves of
../shared/data binned to each run's cadence, on the stars the run never trained on, for the
run and for the 3-sigma rule at the same cadence: the ED and amplitude of 50 % recovery at
equal false-event rate (the network scores each light curve once; of THRESHOLDS, the run's
event threshold is the one of lowest 50 %-recovery amplitude whose false events per day on
the uninjected light curves do not exceed the rule's: ``flaredetect-recovery thresholds=[...]
false_rate=<the rule's run>``).

    python scripts/benchmark_ffi.py --ckpt outputs/ffi_200/0 outputs/ffi_600/0 outputs/ffi_1800/0
    python scripts/benchmark_ffi.py --tables outputs/benchmark_ffi   # the table again from its saved trials
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from flaredetect import CONFIG_DIR
from flaredetect.evaluation.catalog_benchmark import trained_tics
from flaredetect.inference import resolve_checkpoint
from flaredetect.inference.loading import training_cadence_s
from flaredetect.recovery import run_recovery
from flaredetect.sources.local import find_light_curve_files, read_raw_light_curve

THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99]
FOLDERS = ["tess", "fits/spoc", "fits/custom_aperture", "fits/custom_aperture_s03-13", "tess_young"]


def recovery(overrides: list[str]) -> dict:
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(CONFIG_DIR).resolve())):
        cfg = compose("recovery", overrides=overrides)
    GlobalHydra.instance().clear()
    return run_recovery(cfg)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", default=[], help="one run per FFI cadence")
    parser.add_argument("--tables", type=Path, default=None,
                        help="print the table from an earlier run's output dir (its recovery_trials.csv files)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", "../shared/data")))
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmark_ffi"))
    args = parser.parse_args(argv)
    if args.tables is not None:
        print_table(json.loads((args.tables / "benchmark_ffi.json").read_text()), args.tables)
        return 0
    if not args.ckpt:
        parser.error("--ckpt (one run per FFI cadence) or --tables")

    files = find_light_curve_files([args.data / f for f in FOLDERS])
    rows = {}
    for ckpt in args.ckpt:
        cfg = OmegaConf.load(resolve_checkpoint(ckpt)[1])
        cadence = training_cadence_s(cfg)
        seen = trained_tics(cfg)
        held_out = [str(f) for f in files if _tic(f) not in seen]
        common = [f"input=[{','.join(held_out)}]", f"cadence_s={cadence:g}", f"trials={args.trials}",
                  "by_rotation=false", "progress=false", "candidates=null", "skip_trained=false",
                  "events.min_cadences=1"]  # a flare spans one or two FFI cadences (no cosmic rays: mitigated onboard)
        rule = recovery(common + ["detector=threshold", f"out_dir={args.out / f'{cadence:g}s_rule'}"])
        model = recovery(common + [f"ckpt={ckpt}", f"thresholds=[{','.join(map(str, THRESHOLDS))}]",
                                   f"false_rate={rule['false_events_per_day']}",
                                   f"out_dir={args.out / f'{cadence:g}s_model'}"])
        model["threshold"] = model["event_threshold"]
        rows[f"{cadence:g}"] = {"light_curves": len(held_out), "rule": rule, "model": model,
                                "dirs": {"rule": str(args.out / f"{cadence:g}s_rule"),
                                         "model": str(args.out / f"{cadence:g}s_model")}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark_ffi.json").write_text(json.dumps(rows, indent=1, default=float))
    print_table(rows, args.out)
    return 0


def print_table(rows: dict, out: Path) -> None:
    """ED and amplitude of 50 % recovery (from each run's saved trials) and false events per day."""
    import pandas as pd

    from flaredetect.evaluation.recovery import amplitude_at_recovery, ed_at_recovery

    print(f"\n{'cadence':>8s} {'LCs':>4s} | {'rule: ED50 (s)':>14s} {'amp50 (sigma)':>13s} {'false/day':>9s} | "
          f"{'model: ED50 (s)':>15s} {'amp50 (sigma)':>13s} {'false/day':>9s} {'threshold':>9s}")
    for cadence, row in rows.items():
        numbers = []
        for who in ("rule", "model"):
            directory = row.get("dirs", {}).get(who) or str(
                out / (f"{cadence}s_rule" if who == "rule" else f"{cadence}s_model_{row['model']['threshold']}"))
            trials = pd.read_csv(Path(directory) / "recovery_trials.csv")
            numbers.append((ed_at_recovery(trials, 0.5, (2, 30)), amplitude_at_recovery(trials, 0.5, (2, 30)),
                            row[who]["false_events_per_day"]))
        (r_ed, r_amp, r_false), (m_ed, m_amp, m_false) = numbers
        print(f"{cadence + ' s':>8s} {row['light_curves']:4d} | {r_ed:14.3g} {r_amp:13.2f} {r_false:9.3f} | "
              f"{m_ed:15.3g} {m_amp:13.2f} {m_false:9.3f} {row['model']['threshold']:9.2f}")


def _tic(path: Path) -> int | None:
    try:
        return read_raw_light_curve(path).tic
    except ValueError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
