"""``flaredetect-eval``: metrics, baselines, error analysis and interpretability for
trained runs, on the runs' own saved configs and splits.

Reads top to bottom: resolve the runs, build the data (the first run's, or a swapped
``data=``), predict validation and test windows with every run, score the threshold
baseline on the same windows, compute metrics per detector (plus mean ± std and the
ensemble when several runs share a model), analyse the first run's errors and attention,
write ``metrics.json``, ``comparison.{md,json}``, ``report.md`` and figures.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from flaredetect.data.features import FEATURE_SETS, n_features_of
from flaredetect.baselines.threshold import score_to_probability, threshold_window_scores
from flaredetect.evaluation import plots
from flaredetect.evaluation.error_analysis import (FPRules, categorise_false_positives, category_table,
                                                   flare_duration_minutes)
from flaredetect.evaluation.metrics import (HEADLINE, headline, mean_std, out_of_flare_range_sigma, recall_by_bins,
                                            window_metrics)
from flaredetect.evaluation.report import comparison_markdown, write_report
from flaredetect.evaluation.runs import (Run, RunError, build_datamodule, features, load_module, predict_split,
                                         resolve_run, split_windows)
from flaredetect.interpret import (PHASES, attention_and_probability, flare_phases, integrated_gradients, phase_mass,
                                   rollout_received)
from flaredetect.models.transformer import attention_rollout
from flaredetect.plotting import attention_heads, attention_overlay
from flaredetect import CONFIG_DIR
from flaredetect.utils import package_versions, write_json

log = logging.getLogger(__name__)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_runs(cfg: DictConfig) -> list[Run]:
    """The primary run (``run_dir``/``ckpt``) followed by ``runs``; each run that cannot be
    loaded is reported on one line and the others go on."""
    runs, problems = [], []
    if cfg.get("run_dir") or cfg.get("ckpt"):
        try:
            runs.append(resolve_run(cfg.get("run_dir"), cfg.get("ckpt")))
        except RunError as err:
            problems.append(str(err))
    for extra in cfg.get("runs") or []:
        try:
            runs.append(resolve_run(extra))
        except RunError as err:
            problems.append(str(err))
    for p in problems:
        log.error("skipped: %s", p)
    if not runs:
        raise RunError("nothing to evaluate: " + ("; ".join(problems) or "give run_dir=<dir> or ckpt=<file>"))
    return runs


def window_meta(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sigma = w["noise_sigma"].astype(np.float64)
    with np.errstate(all="ignore"):
        amp_sigma = np.where(sigma > 0, w["peak_amp"] / sigma, np.nan)
    return {"energy_erg": w["energy_erg"], "amp_sigma": amp_sigma, "n_flares": w["n_flares"],
            "variability_sigma": out_of_flare_range_sigma(w["flux_rel"], w["flare_mask"], sigma),
            "duration_min": flare_duration_minutes(w["flare_mask"], w["peak_mask"])}


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate as configured; returns the metrics dict also written to ``metrics.json``."""
    started = time.perf_counter()
    device = _device(cfg.device)
    runs = resolve_runs(cfg)
    primary = runs[0]
    out_dir = Path(cfg.out_dir) if cfg.get("out_dir") else primary.run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    data_cfg = cfg.data if cfg.get("data") is not None else primary.cfg.data
    dm = build_datamodule(data_cfg, cfg.batch_size, n_features=primary.cfg.model.get("input_dim", 3))
    split = cfg.split
    val, test = split_windows(dm, "val"), split_windows(dm, split)
    y_val, y = val["label"].astype(bool), test["label"].astype(bool)
    meta = window_meta(test)
    bins = {k: [float(v) for v in cfg.bins[k]] for k in cfg.bins}

    # Predictions of every run on the same windows.
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    modules, kinds, run_of = {}, {}, {}
    for run in runs:
        try:
            module = load_module(run, device)
        except RunError as err:
            log.error("skipped: %s", err)
            continue
        seq_len = getattr(module.net, "seq_len", dm.length)
        if seq_len != dm.length:
            log.error("skipped: run %s expects %d cadences but the data's windows have %d", run.run_dir, seq_len,
                      dm.length)
            continue
        name = run.name if run.name not in probs else f"{run.name}-{len(probs)}"
        probs[name] = (predict_split(module, dm, "val", device), predict_split(module, dm, split, device))
        modules[name], kinds[name], run_of[name] = module, run.model_kind, run
    if not probs:
        raise RunError("no run could be evaluated (see the errors above)")

    # Rows of the comparison: each model kind (mean ± std over runs, ensemble), threshold baseline.
    detailed: dict[str, dict] = {}
    table: list[dict] = []
    for kind in dict.fromkeys(kinds.values()):
        names = [n for n in probs if kinds[n] == kind]
        for n in names:
            detailed[n] = window_metrics(y_val, probs[n][0], y, probs[n][1], meta, bins, cfg.threshold,
                                         cfg.low_energy_erg)
        if len(names) == 1:
            table.append({"name": kind, "kind": kind, "runs": names, **headline(detailed[names[0]])})
            continue
        for n in names:
            table.append({"name": f"{kind} [{n}]", "kind": kind, "runs": [n], **headline(detailed[n])})
        stats = mean_std([headline(detailed[n]) for n in names], HEADLINE)
        table.append({"name": f"{kind} mean ± std (n={len(names)})", "kind": f"{kind}-mean", "runs": names,
                      **{k: v[0] for k, v in stats.items()}, "std": {k: v[1] for k, v in stats.items()}})
        ens = f"{kind} ensemble (n={len(names)})"
        probs[ens] = (np.mean([probs[n][0] for n in names], axis=0), np.mean([probs[n][1] for n in names], axis=0))
        detailed[ens] = window_metrics(y_val, probs[ens][0], y, probs[ens][1], meta, bins, cfg.threshold,
                                       cfg.low_energy_erg)
        table.append({"name": ens, "kind": f"{kind}-ensemble", "runs": names, **headline(detailed[ens])})

    th = cfg.baselines.threshold
    if th.enabled:
        def score(w):
            return score_to_probability(threshold_window_scores(w["flux_rel"], th.n_sigma, th.min_points))
        probs["threshold"] = (score(val), score(test))
        detailed["threshold"] = window_metrics(y_val, probs["threshold"][0], y, probs["threshold"][1], meta, bins,
                                               cfg.threshold, cfg.low_energy_erg)
        table.append({"name": f"threshold ({th.n_sigma:g} sigma, >= {th.min_points} points)", "kind": "threshold",
                      "runs": [], **headline(detailed["threshold"])})

    # Error analysis and interpretability of the primary run.
    first = next(iter(modules))
    p_first = probs[first][1]
    errors = error_analysis(cfg, test, meta, y, p_first, bins, cfg.threshold)
    plots_written = write_plots(cfg, out_dir, probs, detailed, first, y, errors)
    interp = interpretability(cfg, out_dir, modules[first], test, y, p_first, errors, device)
    plots_written += interp.pop("figures")

    result = {
        "runs": [{"name": n, "kind": kinds[n], "run_dir": str(r.run_dir), "checkpoint": str(r.ckpt)}
                 for n, r in run_of.items()],
        "data": {"split": split, "n_windows": int(len(y)), "n_flare_windows": int(y.sum()),
                 "n_val_windows": int(len(y_val)), "swapped": cfg.get("data") is not None,
                 "window_length": dm.length},
        "threshold": cfg.threshold,
        "comparison": table,
        "metrics": detailed,
        "primary": first,
        "error_analysis": {k: v for k, v in errors.items() if not k.startswith("_")},
        "interpretability": interp,
        "figures": sorted(plots_written),
        "wall_time_s": time.perf_counter() - started,
        "versions": package_versions(),
    }
    write_json(out_dir / "metrics.json", result)
    write_json(out_dir / "comparison.json", {"comparison": table})
    (out_dir / "comparison.md").write_text(comparison_markdown(table) + "\n")
    write_report(out_dir / "report.md", result)
    print(f"\n{comparison_markdown(table)}\n\nevaluation written to {out_dir} (metrics.json, report.md, "
          f"{len(plots_written)} figures)\n")
    return result


def error_analysis(cfg, test, meta, y, prob, bins, threshold) -> dict:
    """False positives by rule-based category; false negatives by amplitude and duration."""
    ea = cfg.error_analysis
    rules = FPRules(near=ea.near, spike_sigma=ea.spike_sigma, spike_decay_fraction=ea.spike_decay_fraction,
                    step_sigma=ea.step_sigma, block=ea.block, ramp_r2=ea.ramp_r2,
                    ramp_pre_fraction=ea.ramp_pre_fraction)
    pred = prob >= threshold
    fp = np.flatnonzero(pred & ~y)
    fn = np.flatnonzero(~pred & y)
    cats = categorise_false_positives(test["flux_rel"][fp], test["quality"][fp], test["time_btjd"][fp],
                                      test["noise_sigma"][fp], rules)
    return {
        "n_false_positives": int(len(fp)), "n_false_negatives": int(len(fn)),
        "false_positive_categories": category_table(cats),
        "false_positives": [{"index": int(i), "prob": float(prob[i]), "category": c, "tic": int(test["tic"][i]),
                             "kind": int(test["kind"][i])} for i, c in zip(fp, cats)],
        "recall_by_amplitude_sigma": recall_by_bins(y, prob, meta["amp_sigma"], bins["amplitude_sigma"], threshold,
                                                    "sigma"),
        "recall_by_duration_min": recall_by_bins(y, prob, meta["duration_min"], bins["duration_min"], threshold,
                                                 "min"),
        "_fp": fp[np.argsort(-prob[fp])], "_fn": fn[np.argsort(prob[fn])], "_cats": dict(zip(fp.tolist(), cats)),
    }


def _weights(module, x: torch.Tensor, steps: int, n_baselines: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-cadence weight for overlays: rollout received for attention nets, else |IG|
    (against quiet-star baselines: how far each cadence moves the logit, for or against)."""
    prob, att = attention_and_probability(module.net, x)
    if att is not None:
        received = rollout_received([torch.as_tensor(a) for a in att]).numpy()
        return received, prob, "attention rollout"
    ig = integrated_gradients(module.net, x, steps=steps, n_baselines=n_baselines).abs().sum(-1).detach().cpu().numpy()
    return ig, prob, "IG magnitude"


def write_plots(cfg, out_dir: Path, probs, detailed, first, y, errors) -> list[str]:
    written = []

    def put(fig, name):
        plots.save(fig, out_dir / name)
        written.append(name)

    put(plots.roc_pr({n: (y, p[1]) for n, p in probs.items()}), "roc_pr.png")
    m = detailed[first]
    put(plots.confusion_matrices({f"{first} at {m['at_default']['threshold']:.2f}": m["at_default"],
                                  f"at val-F1 threshold {m['tuned_threshold']:.3f}": m["at_tuned"]}),
        "confusion_matrix.png")
    put(plots.recall_bins({n: d["recall_by_amplitude_sigma"] for n, d in detailed.items()},
                          "peak amplitude / noise sigma"), "recall_by_amplitude.png")
    if "recall_by_energy" in m:
        put(plots.recall_bins({n: d["recall_by_energy"] for n, d in detailed.items() if "recall_by_energy" in d},
                              "flare energy (erg)"), "recall_by_energy.png")
    put(plots.fp_categories(errors["false_positive_categories"], f"{first}: false positives by category"),
        "fp_categories.png")
    return written


def interpretability(cfg, out_dir: Path, module, test, y, prob, errors, device) -> dict:
    """Gallery of errors, explained windows, and attention / IG mass by flare phase."""
    ic = cfg.interpret
    figures: list[str] = []
    n_gal = int(cfg.error_analysis.gallery_size)
    for kind, idx in (("false_positives", errors["_fp"][:n_gal]), ("missed_flares", errors["_fn"][:n_gal])):
        if not len(idx):
            continue
        weight, _, label = _weights(module, features(test, idx, device, n_features_of(module.net)), ic.ig_steps,
                                    ic.ig_baselines)
        panels = []
        for k, i in enumerate(idx):
            extra = errors["_cats"].get(int(i), "") if kind == "false_positives" else \
                f"amp {test['peak_amp'][i] / test['noise_sigma'][i]:.1f} sigma"
            panels.append({"flux": test["flux_rel"][i], "weight": weight[k], "flare_mask": test["flare_mask"][i],
                           "quality": test["quality"][i],
                           "title": f"#{i} TIC {test['tic'][i]}  p={prob[i]:.2f}  {extra}"})
        title = "most confident false positives" if kind == "false_positives" else "most missed flares"
        plots.save(plots.gallery(panels, title, label), out_dir / f"gallery_{kind}.png")
        figures.append(f"gallery_{kind}.png")

    # Chosen windows: rollout, heads, overlay and integrated gradients.
    chosen = list(ic.windows) if ic.get("windows") is not None else \
        [int(i) for i in np.flatnonzero(y)[np.argsort(-prob[y])][: ic.n_windows]]
    chosen = [i for i in chosen if 0 <= i < len(y)]
    sub = out_dir / "interpret"
    sub.mkdir(exist_ok=True)
    for i in chosen:
        x = features(test, [i], device, n_features_of(module.net))
        p, att = attention_and_probability(module.net, x)
        ig = integrated_gradients(module.net, x, steps=ic.ig_steps, n_baselines=ic.ig_baselines)[0]
        ig = ig.detach().cpu().numpy()
        tag = f"window{i:05d}"
        title = f"test window {i} (TIC {test['tic'][i]}, label {int(y[i])})"
        plots.save(plots.integrated_gradients_plot(test["flux_rel"][i], ig, FEATURE_SETS[n_features_of(module.net)],
                                                   title=title + f" p={p[0]:.2f}"),
                   sub / f"{tag}_ig.png")
        figures.append(f"interpret/{tag}_ig.png")
        if att is not None:
            roll = attention_rollout([torch.as_tensor(a) for a in att])[0].numpy()
            ids = {"tic": test["tic"][i], "sector": test["sector"][i]}
            plots.save(attention_overlay(test["flux_rel"][i], roll.mean(axis=0), test["flare_mask"][i], f"test window {i}",
                                         float(p[0]), time_btjd=test["time_btjd"][i], quality=test["quality"][i], **ids),
                       sub / f"{tag}_overlay.png")
            plots.save(attention_heads([a[0] for a in att], f"test window {i}", prob=float(p[0]), **ids),
                       sub / f"{tag}_heads.png")
            figures += [f"interpret/{tag}_{s}.png" for s in ("overlay", "heads")]

    # Where the mass falls, over the flare windows of the split.
    flare_idx = np.flatnonzero(y)
    summaries: dict[str, dict] = {}
    if len(flare_idx):
        phases = np.stack([flare_phases(test["flux_rel"][i], test["flare_mask"][i], test["peak_mask"][i],
                                        ic.pre_flare_cadences)
                           for i in flare_idx])
        received = []
        for start in range(0, len(flare_idx), 256):
            _, att = attention_and_probability(module.net, features(test, flare_idx[start:start + 256], device, n_features_of(module.net)))
            if att is None:
                break
            received.append(rollout_received([torch.as_tensor(a) for a in att]).numpy())
        if received:
            summaries["attention rollout"] = phase_mass(np.concatenate(received), phases)
        ig_idx = flare_idx[: ic.max_phase_windows]
        ig = np.concatenate([
            integrated_gradients(module.net, features(test, ig_idx[s:s + 128], device, n_features_of(module.net)),
                                 steps=ic.ig_steps, n_baselines=ic.ig_baselines)
            .abs().sum(-1).detach().cpu().numpy() for s in range(0, len(ig_idx), 128)])
        summaries["IG magnitude"] = phase_mass(ig, phases[: len(ig_idx)])
        plots.save(plots.phase_mass_bars(summaries), out_dir / "attention_by_phase.png")
        figures.append("attention_by_phase.png")
    return {"chosen_windows": chosen, "phase_mass": summaries, "phases": list(PHASES), "figures": figures}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except RunError as err:
        log.error("%s", err)
        raise SystemExit(f"flaredetect-eval: {err}") from None


if __name__ == "__main__":
    main()
