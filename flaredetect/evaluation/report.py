"""The human-readable side of an evaluation: a comparison table and ``report.md``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flaredetect.interpret import PHASES

COLUMNS = (("acc", "Acc"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
           ("f1_tuned", "F1 (val-tuned thr.)"), ("tuned_threshold", "tuned thr."), ("auroc", "AUROC"), ("ap", "AP"),
           ("low_energy_recall", "Recall < 1e32 erg"), ("multi_flare_f1", "F1 multi-flare"))


def _num(x, std=None) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.3f}" if std is None else f"{x:.3f} ± {std:.3f}"


def comparison_markdown(table: list[dict]) -> str:
    """Markdown table: one row per detector (metrics at threshold 0.5 unless noted)."""
    lines = ["| Detector | " + " | ".join(c for _, c in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for row in table:
        std = row.get("std", {})
        lines.append(f"| {row['name']} | " + " | ".join(_num(row.get(k), std.get(k)) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def _table(rows: list[dict], keys: list[tuple[str, str]]) -> str:
    out = ["| " + " | ".join(h for _, h in keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(_num(r[k]) if isinstance(r[k], float) else str(r[k]) for k, _ in keys) + " |")
    return "\n".join(out)


def write_report(path: Path, result: dict) -> None:
    """``report.md`` next to ``metrics.json``; figures are linked relative to it."""
    first = result["primary"]
    m = result["metrics"][first]
    d = result["data"]
    ea = result["error_analysis"]
    L = [f"# Evaluation of {', '.join(r['name'] for r in result['runs'])}", ""]
    L += ["| run | model | checkpoint |", "|---|---|---|"]
    L += [f"| {r['run_dir']} | {r['kind']} | {r['checkpoint']} |" for r in result["runs"]]
    L += ["", f"Split **{d['split']}**: {d['n_windows']} windows, {d['n_flare_windows']} with a flare "
              f"({d['n_val_windows']} validation windows tune the threshold). "
              + ("Data swapped by the eval config." if d["swapped"] else "Data: the run's own config."), ""]
    L += ["## Comparison", "", comparison_markdown(result["comparison"]), "",
          "Thresholded metrics at 0.5 (the threshold detector: score >= 1, its own decision); "
          "'val-tuned' uses the threshold that maximised F1 on the validation split. "
          "Multi-flare F1: windows with >= 2 detectable flares against all negatives.", "",
          "![ROC and PR](roc_pr.png)", "", "![confusion](confusion_matrix.png)", ""]
    L += [f"## {first}: details", "",
          f"- at threshold {m['at_default']['threshold']:.2f}: F1 {_num(m['at_default']['f1'])}, "
          f"precision {_num(m['at_default']['precision'])}, recall {_num(m['at_default']['recall'])}",
          f"- at the validation-F1 threshold {m['tuned_threshold']:.4f} (val F1 {_num(m['val_f1_at_tuned'])}): "
          f"F1 {_num(m['at_tuned']['f1'])}, precision {_num(m['at_tuned']['precision'])}, "
          f"recall {_num(m['at_tuned']['recall'])}",
          f"- AUROC {_num(m['auroc'])}, average precision {_num(m['ap'])}", ""]
    if "recall_by_energy" in m:
        L += ["### Recall by flare energy", "", _table(m["recall_by_energy"], [("bin", "energy"), ("n", "flares"),
                                                                              ("recall", "recall")]),
              "", "![recall by energy](recall_by_energy.png)", ""]
    else:
        L += ["Flare energies are unknown for these windows; recall by energy is skipped.", ""]
    L += ["### Recall by amplitude (peak amplitude / noise sigma)", "",
          _table(m["recall_by_amplitude_sigma"], [("bin", "amplitude"), ("n", "flares"), ("recall", "recall")]), "",
          "![recall by amplitude](recall_by_amplitude.png)", ""]
    L += ["### Several flares per window", "",
          _table([{"set": k, **m[k]} for k in ("single_flare", "multi_flare")],
                 [("set", "windows"), ("n_pos", "flare windows"), ("recall", "recall"), ("precision", "precision"),
                  ("f1", "F1")]), ""]
    L += ["### By stellar variability (out-of-flare 5–95 % flux range / noise sigma)", "",
          _table(m["by_variability"], [("group", "variability"), ("n", "windows"), ("n_pos", "flares"),
                                       ("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
                                       ("auroc", "AUROC")]), ""]
    L += ["## Error analysis", "",
          f"{ea['n_false_positives']} false positives, {ea['n_false_negatives']} false negatives at threshold "
          f"{result['threshold']}. False positives by rule (first match: instrumental, cosmic ray, step/ramp, other; "
          "see `flaredetect.evaluation.error_analysis`):", "",
          _table(ea["false_positive_categories"], [("label", "category"), ("count", "count"), ("share", "share")]), "",
          "![fp categories](fp_categories.png)", "", "False negatives (recall) by amplitude and duration:", "",
          _table(ea["recall_by_amplitude_sigma"], [("bin", "amplitude"), ("n", "flares"), ("detected", "found"),
                                                   ("recall", "recall")]), "",
          _table(ea["recall_by_duration_min"], [("bin", "duration"), ("n", "flares"), ("detected", "found"),
                                                ("recall", "recall")]), "",
          "![false positives](gallery_false_positives.png)", "", "![missed](gallery_missed_flares.png)", ""]
    interp = result["interpretability"]
    if interp["phase_mass"]:
        L += ["## Where attention falls", "",
              "Mean share of each flare window's attention (rollout, received per cadence) or |integrated "
              "gradients| (against quiet-star baselines) per phase, against the share of cadences in that phase "
              "(enrichment = ratio).", ""]
        rows = []
        for label, s in interp["phase_mass"].items():
            for ph in PHASES:
                rows.append({"weight": label, "phase": ph, **s[ph]})
        L += [_table(rows, [("weight", "weight"), ("phase", "phase"), ("mass", "mass share"),
                            ("cadence_share", "cadence share"), ("enrichment", "enrichment")]), "",
              "![attention by phase](attention_by_phase.png)", ""]
    figs = [f for f in result["figures"] if f.startswith("interpret/")]
    if figs:
        L += ["## Explained windows", ""] + [f"![{f}]({f})" for f in figs] + [""]
    L += [f"Evaluation took {result['wall_time_s']:.1f} s."]
    Path(path).write_text("\n".join(L) + "\n")
