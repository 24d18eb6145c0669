"""Sweep results: one row per job, and mean ± std over seeds per configuration.

A sweep dir is what ``flaredetect-train -m ...`` (a grid, or ``hparams_search=thesis_optuna``)
writes: one run dir per job, each with ``.hydra/overrides.yaml`` (the job's overrides) and,
when it finished, ``summary.json`` (its metrics). Optuna studies add an ``optuna.db`` and
several session folders; all job dirs below the given folder are collected.

    python -m flaredetect.sweeps outputs/train/multirun_2026-01-01_12-00-00-000000
    python -m flaredetect.sweeps outputs/train/optuna_thesis --metrics val/f1_best test/f1 --csv

Also holds the hyper-parameters and final metrics that ``flaredetect.train`` logs to
TensorBoard's HPARAMS tab, so ``tensorboard --logdir <sweep dir>`` compares the jobs.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path

import yaml

DEFAULT_METRICS = ("val/f1_best", "val/f1", "val/auroc", "test/f1", "test/auroc", "test/ap")
# Keys that identify a repetition of a configuration, not the configuration itself.
SEED_KEYS = ("seed",)
# Final metrics shown in the HPARAMS tab (prefixed "hp/": their own scalar tags).
HPARAM_METRICS = ("val/f1_best", "val/loss", "test/f1", "test/precision", "test/recall", "test/auroc", "test/ap")


# ---------------------------------------------------------------- config resolver

def _mkdir(path: str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return str(path)


def scaled_lr(base_lr: float, base_batch: int, batch: int, rule: str = "sqrt") -> float:
    """The learning rate for ``batch`` from one tuned at ``base_batch``: ``linear`` (Goyal et al.
    2017) or ``sqrt`` (Krizhevsky 2014; Hoffer et al. 2017, safer with Adam) scaling."""
    ratio = float(batch) / float(base_batch)
    if rule == "linear":
        return float(base_lr) * ratio
    if rule == "sqrt":
        return float(base_lr) * ratio ** 0.5
    raise ValueError(f"flaredetect.scaled_lr rule={rule!r} must be 'linear' or 'sqrt'")


def cadences_in(minutes: float, cadence_s: float) -> int:
    """How many cadences of ``cadence_s`` seconds span ``minutes`` (at least one): a time
    written once for every cadence, e.g. the catalogs' 3 two-minute cadences (6 min) are
    2 cadences at 200 s and 1 at 10 and 30 min."""
    if not (float(minutes) > 0 and float(cadence_s) > 0):
        raise ValueError(f"flaredetect.cadences_in: minutes={minutes} and cadence_s={cadence_s} must be > 0")
    return max(1, int(round(float(minutes) * 60.0 / float(cadence_s))))


def register_resolvers() -> None:
    """``${flaredetect.mkdir:<dir>}`` creates ``<dir>`` and returns it: the Optuna study's
    SQLite file is opened before Hydra creates any sweep folder, and SQLite cannot create one.
    ``${flaredetect.scaled_lr:<lr>,<batch>,${data.batch_size},sqrt}``: :func:`scaled_lr`.
    ``${flaredetect.cadences_in:<minutes>,${cadence_s}}``: :func:`cadences_in`."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("flaredetect.mkdir"):
        OmegaConf.register_new_resolver("flaredetect.mkdir", _mkdir)
    if not OmegaConf.has_resolver("flaredetect.scaled_lr"):
        OmegaConf.register_new_resolver("flaredetect.scaled_lr", scaled_lr)
    if not OmegaConf.has_resolver("flaredetect.cadences_in"):
        OmegaConf.register_new_resolver("flaredetect.cadences_in", cadences_in)


# ---------------------------------------------------------------- TensorBoard HPARAMS

def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}/{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = str(list(value))
    elif value is None or isinstance(value, (bool, int, float, str)):
        out[prefix] = "null" if value is None else value


def hparams_for_logging(cfg) -> dict:
    """The hyper-parameters worth a column in the HPARAMS tab: model, optimizer, scheduler,
    loss, data batch/augmentation/source sizes, seed and the trainer's budget — not paths,
    callbacks or logger settings (hundreds of columns nobody compares)."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True)
    out: dict = {}
    for group in ("model", "optimizer", "scheduler", "loss"):
        if c.get(group):
            _flatten(group, {k: v for k, v in c[group].items() if k != "_partial_"}, out)
    data = c.get("data") or {}
    _flatten("data", {k: data[k] for k in ("batch_size", "augmentation", "device_resident") if k in data}, out)
    for name, source in (data.get("sources") or {}).items():
        if isinstance(source, dict):
            _flatten(f"data/sources/{name}", {k: v for k, v in source.items()
                                               if not k.endswith(("dir", "path", "_target_"))}, out)
    trainer = c.get("trainer") or {}
    _flatten("trainer", {k: trainer[k] for k in ("max_epochs", "precision", "devices", "num_nodes",
                                                 "accumulate_grad_batches", "gradient_clip_val") if k in trainer}, out)
    for key in ("seed", "compile", "task_name"):
        if key in c:
            _flatten(key, c[key], out)
    return out


def final_hparam_metrics(metrics: dict) -> dict[str, float]:
    """``hp/<metric>`` values for the HPARAMS tab (NaN for a metric the run did not produce,
    so every run has the same columns)."""
    out = {}
    for key in HPARAM_METRICS:
        value = metrics.get(key)
        out["hp/" + key.replace("/", "_")] = float(value) if value is not None else float("nan")
    return out


# ---------------------------------------------------------------- tabulation

def _read_overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return [str(o) for o in (yaml.safe_load(path.read_text()) or [])] if path.is_file() else []


def _split_override(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """Job dirs under ``sweep_dir`` (any depth): those with a Hydra ``overrides.yaml``.
    Sorted by session, then job number."""
    sweep_dir = Path(sweep_dir)
    jobs = [p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")]

    def order(p: Path):
        rel = p.relative_to(sweep_dir).parts
        return tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in rel)
    return sorted(set(jobs), key=order)


def job_rows(sweep_dir: str | Path) -> list[dict]:
    """One dict per job: ``job`` (path relative to the sweep dir), ``status``
    (``done``, ``invalid`` or ``incomplete``), ``overrides`` (dict) and ``metrics`` (dict)."""
    sweep_dir = Path(sweep_dir)
    rows = []
    for job in find_jobs(sweep_dir):
        overrides = dict(_split_override(o) for o in _read_overrides(job))
        summary_path = job / "summary.json"
        metrics: dict = {}
        if summary_path.is_file():
            status = "done"
            try:
                metrics = json.loads(summary_path.read_text()).get("metrics", {})
            except (json.JSONDecodeError, AttributeError):
                status = "unreadable summary.json"
        elif (job / "invalid_config.txt").is_file():
            status = "invalid"
        else:
            status = "incomplete"  # running, killed or failed (see its log)
        rows.append({"job": str(job.relative_to(sweep_dir)), "status": status, "overrides": overrides,
                     "metrics": {k: v for k, v in metrics.items() if v is not None}})
    return rows


def varying_keys(rows: list[dict]) -> list[str]:
    """Override keys whose value differs between jobs (the sweep's dimensions)."""
    keys = sorted({k for r in rows for k in r["overrides"]})
    return [k for k in keys if len({r["overrides"].get(k) for r in rows}) > 1]


def aggregate(rows: list[dict], metrics=DEFAULT_METRICS, seed_keys=SEED_KEYS) -> list[dict]:
    """Mean, std (sample, n-1) and count of each metric per configuration, where a
    configuration is the job's varying overrides except the seed. Finished jobs only."""
    config_keys = [k for k in varying_keys(rows) if k not in seed_keys]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "done":
            groups.setdefault(tuple(r["overrides"].get(k) for k in config_keys), []).append(r)
    out = []
    for values, members in groups.items():
        entry = {"config": dict(zip(config_keys, values)), "n": len(members), "mean": {}, "std": {}}
        for m in metrics:
            xs = [float(r["metrics"][m]) for r in members if m in r["metrics"]
                  and not math.isnan(float(r["metrics"][m]))]
            if xs:
                entry["mean"][m] = statistics.fmean(xs)
                entry["std"][m] = statistics.stdev(xs) if len(xs) > 1 else 0.0
        out.append(entry)
    first = metrics[0] if metrics else None
    out.sort(key=lambda e: -e["mean"].get(first, -math.inf) if first else 0)
    return out


def optuna_summary(sweep_dir: str | Path) -> dict | None:
    """Trial counts per state and the best trial of each study in ``sweep_dir/optuna.db``."""
    db = Path(sweep_dir) / "optuna.db"
    if not db.is_file():
        return None
    import optuna

    storage = f"sqlite:///{db.resolve()}"
    out = {}
    for s in optuna.study.get_all_study_summaries(storage=storage):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        states: dict[str, int] = {}
        for t in study.trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        entry = {"trials": states}
        if states.get("COMPLETE"):
            entry["best_value"] = study.best_value
            entry["best_params"] = study.best_params
        out[s.study_name] = entry
    return out


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (readable as text, pastes into notes and issues)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    line = lambda items: "| " + " | ".join(s.ljust(w) for s, w in zip(items, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def tabulate(sweep_dir: str | Path, metrics=DEFAULT_METRICS, write_csv: bool = False) -> str:
    """The report printed by ``python -m flaredetect.sweeps``: jobs, per-configuration
    mean ± std, and the Optuna study if there is one. ``write_csv`` also writes
    ``sweep_jobs.csv`` and ``sweep_configs.csv`` into the sweep dir."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep dir {sweep_dir} does not exist")
    rows = job_rows(sweep_dir)
    if not rows:
        raise ValueError(f"no job dirs (with .hydra/overrides.yaml) under {sweep_dir}: is it a -m sweep dir?")
    keys = varying_keys(rows)
    present = [m for m in metrics if any(m in r["metrics"] for r in rows)] or list(metrics)
    job_table = [[r["job"], r["status"], *(r["overrides"].get(k, "") for k in keys),
                  *(r["metrics"].get(m, "") for m in present)] for r in rows]
    parts = [f"sweep: {sweep_dir}   jobs: {len(rows)}   "
             f"done: {sum(r['status'] == 'done' for r in rows)}",
             "", format_table(["job", "status", *keys, *present], job_table)]
    groups = aggregate(rows, present)
    config_keys = [k for k in keys if k not in SEED_KEYS]
    if groups:
        table = [[*(g["config"].get(k, "") for k in config_keys), g["n"],
                  *(f"{g['mean'][m]:.4f} ± {g['std'][m]:.4f}" if m in g["mean"] else "" for m in present)]
                 for g in groups]
        parts += ["", "mean ± std over seeds (sample std; 0 with one seed):", "",
                  format_table([*config_keys, "n", *present], table)]
    study = optuna_summary(sweep_dir)
    if study:
        for name, s in study.items():
            parts += ["", f"optuna study {name!r}: trials {s['trials']}"]
            if "best_value" in s:
                parts.append(f"  best value {s['best_value']:.4f} with {s['best_params']}")
    if write_csv:
        with open(sweep_dir / "sweep_jobs.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["job", "status", *keys, *present])
            w.writerows(job_table)
        with open(sweep_dir / "sweep_configs.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([*config_keys, "n", *(f"{m} {s}" for m in present for s in ("mean", "std"))])
            for g in groups:
                w.writerow([*(g["config"].get(k, "") for k in config_keys), g["n"],
                            *(g[s].get(m, "") for m in present for s in ("mean", "std"))])
        parts += ["", f"wrote {sweep_dir / 'sweep_jobs.csv'} and {sweep_dir / 'sweep_configs.csv'}"]
    return "\n".join(parts)


SWEEPS_HELP = """\
flaredetect-sweeps: tabulate the jobs of a flaredetect-train -m sweep (a grid or an Optuna
study): one row per job, and mean ± std over seeds per configuration.
Required: one or more sweep dirs.

examples:
  flaredetect-sweeps outputs/train/multirun_2026-11-27_10-02-11-123456 --csv   # per job + mean ± std
  flaredetect-sweeps outputs/train/optuna_thesis
  flaredetect-sweeps outputs/train/optuna_thesis --metrics val/f1_best test/f1 --csv"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flaredetect-sweeps", description=SWEEPS_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dirs", nargs="+", help="sweep dir(s), e.g. outputs/train/multirun_<time>")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), help="metric columns")
    parser.add_argument("--csv", action="store_true", help="also write sweep_jobs.csv and sweep_configs.csv")
    args = parser.parse_args(argv)
    status = 0
    for sweep_dir in args.sweep_dirs:
        try:
            print(tabulate(sweep_dir, args.metrics, write_csv=args.csv))
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
