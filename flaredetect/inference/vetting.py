"""An event-level second stage: a classifier that keeps or drops each network event from
what a human vetter looks at, learned from catalogued flares.

The network scores cadences inside a 100-cadence window; the catalogs' vetters judge a whole
event against its light curve: how many consecutive cadences stand 3 sigma above the local
median, whether the light curve is full of bumps like it (scattered light, systematics),
whether a dip of the same size sits next to it (noise), where the peak lies in the event
(a flare rises fast and decays slowly), how close a gap is. :func:`event_features` measures
these per event; :class:`EventVetter` (scikit-learn gradient-boosted trees) turns them into a
probability that the catalogs would list the event, and keeps events above a threshold chosen
by F1 on grouped out-of-fold predictions of its training events (never on its own fit).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flaredetect.data.lightcurve import LightCurve, robust_noise_sigma, segments

FEATURE_NAMES = (
    "snr_peak", "log_ed_s", "ed_significance", "log_duration_min", "n_cadences", "prob_max", "prob_mean",
    "rule_z_max", "rule_run_3sigma", "rule_n_2sigma", "rule_z_sum", "dip_z_min", "peak_fraction", "decay_share",
    "local_noise_ratio", "events_per_day", "rule_runs_per_day", "log_gap_distance")
THRESHOLD_TOLERANCE = 0.01  # event F1 within which out-of-fold thresholds count as equally good
_AROUND = 15  # cadences each side where a dip would betray noise
_LOCAL = 360  # cadences each side for the local noise level (half a day at 2 min)


def _longest_run(above: np.ndarray) -> int:
    if not above.any():
        return 0
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def event_features(lc: LightCurve, prob: np.ndarray, events: dict) -> np.ndarray:
    """``(n_events, len(FEATURE_NAMES))`` float64 features of the events of one light curve."""
    from flaredetect.baselines.threshold import threshold_residuals

    n_events = len(events["peak_time_btjd"])
    out = np.full((n_events, len(FEATURE_NAMES)), np.nan)
    if n_events == 0:
        return out
    flux = np.asarray(lc.flux_rel, dtype=np.float64)
    prob = np.asarray(prob, dtype=np.float64)
    n = len(flux)
    sigma = max(robust_noise_sigma(flux), 1e-12)
    z, flags = threshold_residuals(lc.time_btjd, flux)
    z = np.nan_to_num(z, nan=0.0)
    days = max(float(np.ptp(lc.time_btjd)), 1e-3)
    rule_runs = int(np.sum(np.diff(np.concatenate([[0], flags.astype(np.int8)])) == 1))
    bounds = np.array(segments(lc.time_btjd, 5), dtype=np.int64).reshape(-1, 2)
    abs_dev = np.abs(z)
    global_noise = max(float(np.median(abs_dev)), 1e-12)
    for i in range(n_events):
        a, p, b = int(events["start_index"][i]), int(events["peak_index"][i]), int(events["stop_index"][i])
        b = max(b, a)
        span = slice(max(0, a - 2), min(n, b + 3))
        around = slice(max(0, a - _AROUND), min(n, b + _AROUND + 1))
        local = slice(max(0, p - _LOCAL), min(n, p + _LOCAL + 1))
        zs = z[span]
        excess = np.clip(z[a:b + 1], 0, None)
        after = excess[p - a:].sum() if p >= a else 0.0
        ed, ed_err = float(events["ed_s"][i]), float(events["ed_err_s"][i])
        seg = bounds[(bounds[:, 0] <= p) & (bounds[:, 1] > p)]
        gap = min(p - seg[0, 0], seg[0, 1] - 1 - p) if len(seg) else 0
        out[i] = (
            float(events["amplitude"][i]) / sigma,
            np.log10(max(ed, 1e-3)),
            ed / ed_err if ed_err > 0 else 0.0,
            np.log10(max(float(events["duration_min"][i]), 1e-3)),
            b - a + 1,
            float(prob[a:b + 1].max()),
            float(prob[a:b + 1].mean()),
            float(zs.max()),
            _longest_run(zs > 3.0),
            int(np.sum(zs > 2.0)),
            float(np.clip(zs, 0, None).sum()),
            float(z[around].min()),
            (p - a) / max(1, b - a),
            after / excess.sum() if excess.sum() > 0 else 0.5,
            float(np.median(abs_dev[local])) / global_noise,
            n_events / days,
            rule_runs / days,
            np.log10(1 + gap),
        )
    return out


def event_labels(events: dict, peaks_btjd: np.ndarray, cadence_d: float) -> tuple[np.ndarray, np.ndarray]:
    """``(true, flares covered)`` per event: whether it matches a catalogued flare (the
    benchmark's rule, :func:`~flaredetect.inference.metrics.match_events`) and how many."""
    from flaredetect.inference.metrics import match_events

    n_events = len(events["peak_time_btjd"])
    covered = np.zeros(n_events, dtype=np.int64)
    for i in range(n_events):
        recovered, _ = match_events(events["start_time_btjd"][i:i + 1], events["stop_time_btjd"][i:i + 1],
                                    peaks_btjd, cadence_d=cadence_d)
        covered[i] = int(recovered.sum())
    return covered > 0, covered


def best_f1_threshold(score: np.ndarray, true: np.ndarray, covered: np.ndarray, n_flares: int,
                      tolerance: float = 0.0) -> tuple[float, float]:
    """``(threshold, F1)``: the score threshold with the best event F1 when only events
    scoring at least it are kept (recall over all ``n_flares``, proposed or not).
    ``tolerance`` > 0: the middle (lower median) of the thresholds within ``tolerance`` of the
    best F1 instead of the best itself: out-of-fold F1 is flat and noisy near its top, and its
    argmax jumps between refits on nearly the same events."""
    thresholds, f1s = [], []
    for t in np.unique(np.round(score, 3)):
        keep = score >= t
        if not keep.any():
            continue
        precision = true[keep].mean()
        recall = covered[keep & true].sum() / max(n_flares, 1)
        thresholds.append(float(t))
        f1s.append(float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0)
    if not thresholds or max(f1s) <= 0:
        return 0.5, 0.0
    f1s_arr = np.asarray(f1s)
    if tolerance <= 0:
        best = int(np.argmax(f1s_arr))
        return thresholds[best], f1s[best]
    near = np.flatnonzero(f1s_arr >= f1s_arr.max() - tolerance)
    chosen = int(near[(len(near) - 1) // 2])
    return thresholds[chosen], f1s[chosen]


@dataclass
class EventVetter:
    """Keeps an event when the classifier's probability reaches ``threshold``."""

    model: object = None
    threshold: float = 0.5
    info: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, features: np.ndarray, true: np.ndarray, covered: np.ndarray, groups: np.ndarray, n_flares: int,
            seed: int = 0, n_splits: int = 5) -> "EventVetter":
        """Fit on labelled events (``groups``: the star of each, so the threshold is chosen on
        out-of-fold predictions of other stars); ``n_flares``: all catalogued flares of the
        training light curves (those no event proposed count against recall)."""
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import GroupKFold

        if len(np.unique(true)) < 2:
            raise ValueError("the vetter needs true and false events to learn from")

        def make():
            return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                                  min_samples_leaf=20, l2_regularization=1.0, random_state=seed)
        splits = min(n_splits, len(np.unique(groups)))
        oof = np.zeros(len(true))
        for fit_rows, predict_rows in GroupKFold(splits).split(features, true, groups):
            if len(np.unique(true[fit_rows])) < 2:  # stars with no flare between them: no ranking to learn
                oof[predict_rows] = float(true[fit_rows].mean())
            else:
                oof[predict_rows] = make().fit(features[fit_rows], true[fit_rows]).predict_proba(
                    features[predict_rows])[:, 1]
        threshold, f1 = best_f1_threshold(oof, true, covered, n_flares, tolerance=THRESHOLD_TOLERANCE)
        model = make().fit(features, true)
        return cls(model, threshold, {"events": int(len(true)), "true": int(true.sum()), "n_flares": int(n_flares),
                                      "out_of_fold_f1": f1, "threshold": threshold})

    def save(self, path, fold: str | None = None) -> None:
        """Write the vetter (joblib: scikit-learn's own format) with the features it expects
        and ``fold``, the run whose network events it was fitted for."""
        import joblib

        joblib.dump({"vetter": self, "features": list(FEATURE_NAMES), "fold": fold}, path)

    @staticmethod
    def load(path) -> tuple["EventVetter", str | None]:
        """``(vetter, fold)`` from :meth:`save`'s file. joblib files run code when loaded:
        load only vetters you made."""
        import joblib

        try:
            saved = joblib.load(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file: say which
            raise ValueError(f"{path} is not a saved event vetter ({type(err).__name__}: {err})") from None
        if not isinstance(saved, dict) or not isinstance(saved.get("vetter"), EventVetter):
            raise ValueError(f"{path} is not a saved event vetter (flaredetect-benchmark --save-vetters)")
        if saved.get("features") != list(FEATURE_NAMES):
            raise ValueError(f"{path} was fitted on other event features ({saved.get('features')}); "
                             f"refit it with this version (flaredetect-benchmark --vet-events --save-vetters)")
        return saved["vetter"], saved.get("fold")

    def scores(self, lc: LightCurve, prob: np.ndarray, events: dict) -> np.ndarray:
        features = event_features(lc, prob, events)
        if not len(features):
            return np.zeros(0)
        return self.model.predict_proba(features)[:, 1]

    def filter(self, lc: LightCurve, prob: np.ndarray, events: dict) -> dict:
        """``events`` with only the kept rows, and a ``vet_prob`` column."""
        return kept_above(events, self.scores(lc, prob, events), self.threshold)


def kept_above(events: dict, score: np.ndarray, threshold: float) -> dict:
    """The rows of ``events`` whose vetter ``score`` reaches ``threshold``, with ``vet_prob``."""
    keep = score >= threshold
    kept = {k: np.asarray(v)[keep] for k, v in events.items()}
    kept["vet_prob"] = score[keep]
    return kept


VETTERS_INDEX = "vetters.json"


def save_fold_vetters(vetters: dict, out_dir) -> "Path":
    """Each fold's vetter as ``out_dir/vetter_<k>.joblib`` and an index ``vetters.json``
    (fold run, resolved -> file); returns the index."""
    import json
    from pathlib import Path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for k, (fold, vetter) in enumerate(vetters.items()):
        name = f"vetter_{k}.joblib"
        vetter.save(out_dir / name, fold=str(Path(fold).resolve()))  # found from any working directory
        index[str(Path(fold).resolve())] = name
    (out_dir / VETTERS_INDEX).write_text(json.dumps({"folds": index}, indent=1))
    return out_dir / VETTERS_INDEX


def _names_run(fold: Path, runs: set) -> bool:
    """Whether a vetter's recorded ``fold`` is one of ``runs`` (resolved paths). Vetters saved
    before folds were recorded resolved hold the path as given then: its last parts must match."""
    if fold.is_absolute():
        return fold.resolve() in runs
    return any(run.parts[-len(fold.parts):] == fold.parts for run in runs)


def vetter_for(path, run) -> EventVetter:
    """The vetter of ``path`` for the network of ``run`` (its run dir or checkpoint): a file of
    :meth:`EventVetter.save`, or a directory of :func:`save_fold_vetters` (the fold's own). A
    vetter judges the events of the network it was fitted on: any other run is refused."""
    import json
    from pathlib import Path

    path, run = Path(path), Path(run).resolve()
    runs = {run, run.parent.parent} if run.suffix == ".ckpt" else {run}  # a .ckpt in <run>/checkpoints/
    if path.is_dir():
        index_file = path / VETTERS_INDEX
        if not index_file.is_file():
            raise ValueError(f"vetter={path}: no {VETTERS_INDEX} (a directory of flaredetect-benchmark --save-vetters)")
        index = json.loads(index_file.read_text())["folds"]
        match = [name for fold, name in index.items() if Path(fold) in runs]
        if not match:
            raise ValueError(f"vetter={path} has no vetter for {run} (it has: {', '.join(index)})")
        path = path / match[0]
    if not path.is_file():
        raise ValueError(f"vetter={path} does not exist (a vetter file or directory of flaredetect-benchmark "
                         f"--save-vetters)")
    vetter, fold = EventVetter.load(path)
    if fold is not None and not _names_run(Path(fold), runs):
        raise ValueError(f"vetter={path} was fitted on the events of {fold}, not of {run}")
    from flaredetect.checkpoints import sha256

    vetter.info = {**vetter.info, "file": str(path.resolve()), "sha256": sha256(path)}  # for the outputs' provenance
    return vetter
