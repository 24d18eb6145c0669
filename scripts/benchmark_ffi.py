"""FFI-cadence benchmark (issue 16): injection–recovery on the real 2-minute light curves of
../shared/data binned to each run's cadence, on the stars the run never trained on, for the
run and for the 3-sigma rule at the same cadence: the ED and amplitude of 50 % recovery at
equal false-event rate, and the model's over the rule's ED (and amplitude) of 50 % recovery
paired on the same injections with a 95 % bootstrap interval over light curves. The network
vets the significance candidates of the run's own gate (its config's candidates:, as
flaredetect-predict does; --gate or --no-gate change it) and scores each light curve once; of
THRESHOLDS, the run's event threshold is the one of lowest 50 %-recovery ED whose false events
per day on the uninjected light curves do not exceed the rule's (``flaredetect-recovery
thresholds=[...] false_rate=<the rule's run> choose_by=ed_s``).
Several runs of one cadence (cross-validation folds) are measured together: each light curve
by a fold that never trained on its star.

    python scripts/benchmark_ffi.py --ckpt outputs/ffi_200/0 outputs/ffi_600/0 outputs/ffi_1800/0
    python scripts/benchmark_ffi.py --tables outputs/benchmark_ffi   # the table again from its saved trials
    python scripts/benchmark_ffi.py --ckpt outputs/ffi_200/0 --no-gate     # the network alone (or --gate 3 2)
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
    parser.add_argument("--ckpt", nargs="+", default=[],
                        help="runs of the FFI cadences (several of one cadence: its cross-validation folds)")
    parser.add_argument("--tables", type=Path, default=None,
                        help="print the table from an earlier run's output dir (its recovery_trials.csv files)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA", "../shared/data")))
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmark_ffi"))
    gate = parser.add_mutually_exclusive_group()
    gate.add_argument("--gate", nargs=2, type=float, default=None, metavar=("N_SIGMA", "MIN_POINTS"),
                      help="the network vets these significance candidates (predict's candidates:), e.g. 3 2; "
                           "default: the run's own gate, as flaredetect-predict uses it")
    gate.add_argument("--no-gate", action="store_true", help="the network alone (candidates=null)")
    args = parser.parse_args(argv)
    if args.tables is not None:
        print_table(json.loads((args.tables / "benchmark_ffi.json").read_text()), args.tables)
        return 0
    if not args.ckpt:
        parser.error("--ckpt (runs of the FFI cadences) or --tables")

    files = find_light_curve_files([args.data / f for f in FOLDERS])
    by_cadence: dict[float, list] = {}
    for ckpt in args.ckpt:
        cfg = OmegaConf.load(resolve_checkpoint(ckpt)[1])
        by_cadence.setdefault(training_cadence_s(cfg), []).append((ckpt, trained_tics(cfg)))
    tics = {f: _tic(f) for f in files}
    rows = {}
    for cadence, runs in by_cadence.items():
        held_out = [str(f) for f in files if not all(tics[f] in seen for _, seen in runs)]
        ckpts = [ckpt for ckpt, _ in runs]
        common = [f"input=[{','.join(held_out)}]", f"cadence_s={cadence:g}", f"trials={args.trials}",
                  "by_rotation=false", "progress=false", "skip_trained=false",
                  "events.min_cadences=1"]  # a flare spans one or two FFI cadences (no cosmic rays: mitigated onboard)
        rule = recovery(common + ["detector=threshold", "candidates=null", f"out_dir={args.out / f'{cadence:g}s_rule'}"])
        gate = (["candidates=null"] if args.no_gate else [] if args.gate is None
                else [f"candidates={{n_sigma: {args.gate[0]:g}, min_points: {args.gate[1]:g}}}"])
        model = recovery(common + gate + [f"ckpt=[{','.join(ckpts)}]", "skip_trained=true",
                                          f"thresholds=[{','.join(map(str, THRESHOLDS))}]", "choose_by=ed_s",
                                          f"false_rate={rule['false_events_per_day']}",
                                          f"out_dir={args.out / f'{cadence:g}s_model'}"])
        model["threshold"] = model["event_threshold"]
        rows[f"{cadence:g}"] = {"light_curves": len(held_out), "runs": ckpts,
                                "gate": "none" if args.no_gate else args.gate or "the run's own", "rule": rule,
                                "model": model,
                                "dirs": {"rule": str(args.out / f"{cadence:g}s_rule"),
                                         "model": str(args.out / f"{cadence:g}s_model")}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark_ffi.json").write_text(json.dumps(rows, indent=1, default=float))
    print_table(rows, args.out)
    return 0


def print_table(rows: dict, out: Path) -> None:
    """ED and amplitude of 50 % recovery (from each run's saved trials), false events per day,
    and the model's over the rule's limits, paired over light curves."""
    import pandas as pd

    from flaredetect.evaluation.recovery import AMPLITUDE_SIGMA_BINS, paired_recovery_limit_ratio

    print(f"\n{'cadence':>8s} {'LCs':>4s} | {'rule: ED50 (s)':>14s} {'amp50 (sigma)':>13s} {'false/day':>9s} | "
          f"{'model: ED50 (s)':>15s} {'amp50 (sigma)':>13s} {'false/day':>9s} {'threshold':>9s} | "
          f"{'model/rule ED50 [95 %]':>22s} {'amp50 [95 %]':>19s}")
    for cadence, row in rows.items():
        trials = {}
        for who in ("rule", "model"):
            directory = row.get("dirs", {}).get(who) or str(
                out / (f"{cadence}s_rule" if who == "rule" else f"{cadence}s_model_{row['model']['threshold']}"))
            trials[who] = pd.read_csv(Path(directory) / "recovery_trials.csv")
        ed = paired_recovery_limit_ratio(trials["model"], trials["rule"], fwhm_range=(2, 30))
        amp = paired_recovery_limit_ratio(trials["model"], trials["rule"], fwhm_range=(2, 30),
                                          column="amplitude_sigma", bins=AMPLITUDE_SIGMA_BINS, min_trials=1)
        row["paired"] = {"ed_ratio": ed, "amplitude_ratio": amp}
        print(f"{cadence + ' s':>8s} {row['light_curves']:4d} | {ed['b']:14.3g} {amp['b']:13.2f} "
              f"{row['rule']['false_events_per_day']:9.3f} | {ed['a']:15.3g} {amp['a']:13.2f} "
              f"{row['model']['false_events_per_day']:9.3f} {row['model']['threshold']:9.2f} | "
              f"{_ratio(ed)} [{ed['interval'][0]:.2f}, {ed['interval'][1]:.2f}]   "
              f"{_ratio(amp)} [{amp['interval'][0]:.2f}, {amp['interval'][1]:.2f}]")
    (out / "benchmark_ffi_paired.json").write_text(json.dumps({c: r["paired"] for c, r in rows.items()}, indent=1,
                                                              default=float))


def _ratio(paired: dict) -> str:
    """The ratio, marked as a bound where one detector never reached 50 % (its limit set to the top bin)."""
    return {"upper": "<", "lower": ">"}.get(paired.get("bound"), " ") + f"{paired['ratio']:5.2f}"


def _tic(path: Path) -> int | None:
    try:
        return read_raw_light_curve(path).tic
    except ValueError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
