"""Injection–recovery: how a detector's completeness and measurements depend on the flare.

Following AltaiPony's ``sample_flare_recovery`` (Ilin et al. 2021): flares of known
amplitude and FWHM are injected into real light curves (:mod:`flaredetect.injection`), the
detector runs exactly as ``flaredetect-predict`` runs it (a :class:`~flaredetect.inference.Predictor`),
and each injected flare counts as recovered when an event covers a cadence within
``tolerance_cadences`` of its peak. Peaks are never injected near events the detector
already finds in the uninjected light curve, so those cannot pass for recoveries; those
events give the false-event rate per day (on these light curves every event of the
uninjected data is counted as false: real flares among them make the rate an upper bound).
The events of the inverted light curve (``-flux_rel``: its real flares become dips, its
noise, rotation and systematics stay as bright as they were) give a second rate with no
real flare in it, the false-alarm estimate of transit searches; a detector that finds
more real flares than another is not charged for them there.

:func:`recovery_summary` bins the trials by amplitude (in noise sigma) and FWHM:
recovery probability, and the median ratios of recovered to injected ED and amplitude.
:class:`RecoveryCorrection` turns such a table into AltaiPony's per-event
``recovery_probability`` and recovery-corrected ``ed_corr`` (``ed_rec / ed_ratio``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from flaredetect.data.lightcurve import LightCurve, cadence_days, robust_noise_sigma
from flaredetect.inference.events import event_mask
from flaredetect.inference.pipeline import check_cadence, check_light_curve
from flaredetect.inference.vetting import kept_above
from flaredetect.injection import MINUTES_PER_DAY, InjectionGrid, inject_flares

SECONDS_PER_DAY = 86400.0
TRIAL_COLUMNS = ("light_curve", "trial", "peak_time_btjd", "amplitude", "amplitude_sigma", "fwhm_min", "ed_s",
                 "recovered", "ed_rec", "ampl_rec")


@dataclass(frozen=True)
class RecoveryResult:
    """Per injected flare (``trials``) and per light curve (false events on uninjected data)."""

    trials: pd.DataFrame
    false_events: pd.DataFrame  # light_curve, days, n_events, n_events_inverted

    @property
    def false_events_per_day(self) -> float:
        days = float(self.false_events["days"].sum())
        return float(self.false_events["n_events"].sum()) / days if days > 0 else float("nan")

    @property
    def false_events_per_day_inverted(self) -> float:
        days = float(self.false_events["days"].sum())
        return float(self.false_events["n_events_inverted"].sum()) / days if days > 0 else float("nan")


def inverted(lc: LightCurve) -> LightCurve:
    """``lc`` upside down: flares become dips, everything else keeps its amplitude."""
    return replace(lc, flux_rel=-np.asarray(lc.flux_rel), flares=type(lc.flares)(), flare_mask=None)


def observed_days(lc: LightCurve) -> float:
    """Time covered by cadences (gaps excluded): cadences times the cadence."""
    return len(lc) * cadence_days(lc.time_btjd)


def _recovered(events: dict, peak_index: np.ndarray, tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """Per injected peak cadence: is it covered (within ``tolerance``) by an event, and which."""
    starts, stops = np.asarray(events["start_index"]), np.asarray(events["stop_index"])
    which = np.full(len(peak_index), -1, dtype=np.int64)
    for k, i in enumerate(peak_index):
        hit = np.flatnonzero((starts - tolerance <= i) & (i <= stops + tolerance))
        if hit.size:
            which[k] = hit[np.argmin(np.abs(np.asarray(events["peak_index"])[hit] - i))]
    return which >= 0, which


def injection_recovery(predictor, light_curves: Iterable[tuple[str, LightCurve]], grid: InjectionGrid,
                       trials: int = 5, seed: int = 0, tolerance_cadences: int = 3,
                       avoid_padding: int = 30) -> RecoveryResult:
    """Inject ``grid`` flares into each light curve ``trials`` times and run ``predictor``
    (a :class:`~flaredetect.inference.Predictor`, or a function ``lc -> Predictor``, e.g. the
    cross-validation fold that never trained on the star).

    Each trial injects ``grid.per_day`` flares per day of data at once (at least one), at
    least ``grid.min_separation_days`` apart and ``avoid_padding`` cadences from the events
    of the uninjected light curve. Seeded by ``(seed, light-curve index, trial)``.
    """
    return injection_recovery_by_threshold(predictor, light_curves, grid, None, trials, seed, tolerance_cadences,
                                           avoid_padding)[None]


def injection_recovery_by_threshold(predictor, light_curves: Iterable[tuple[str, LightCurve]], grid: InjectionGrid,
                                    thresholds=None, trials: int = 5, seed: int = 0, tolerance_cadences: int = 3,
                                    avoid_padding: int = 30, of: str = "events") -> dict:
    """:func:`injection_recovery` at several thresholds on the same injections:
    ``{threshold: RecoveryResult}`` (``thresholds=None``: ``{None: ...}`` at the predictor's own).
    ``of="events"``: the network's event threshold; ``of="vetter"``: the event vetter's
    (the predictor's second stage), the network's events unchanged.

    The network scores each light curve (uninjected, inverted, each injection) once; only the
    events are redone per threshold, so a detector can be compared with another at equal false-event rate. Flares
    are kept away from the uninjected events of every threshold (the lowest finds the most).
    """
    if of not in ("events", "vetter"):
        raise ValueError(f"of={of!r} must be 'events' or 'vetter'")
    keys = [None] if thresholds is None else [float(t) for t in thresholds]
    for t in keys:
        if t is not None and not 0.0 < t < 1.0:
            raise ValueError(f"{'vetter' if of == 'vetter' else 'event'} threshold {t} must lie strictly between 0 and 1")

    def events_at(detector, lc, prob) -> dict:
        """``{threshold: events}`` of ``lc``; the vetter scores the network's events once."""
        if of == "events" or keys == [None]:
            return {t: (detector if t is None else replace(detector, events=replace(detector.events, threshold=t)))
                    .events_from(lc, prob) for t in keys}
        if detector.vetter is None:
            raise ValueError(f"vetter thresholds need a predictor with an event vetter ({detector.name} has none)")
        unvetted = replace(detector, vetter=None).events_from(lc, prob)
        score = detector.vetter.scores(detector.prepared(lc), prob, unvetted)  # the flux predict's vetter judges
        return {t: kept_above(unvetted, score, t) for t in keys}

    rows = {t: [] for t in keys}
    false_rows = {t: [] for t in keys}
    pick = predictor if callable(predictor) else (lambda _lc: predictor)
    for i, (name, lc) in enumerate(light_curves):
        chosen = pick(lc)
        check_light_curve(lc, chosen.length)  # predict's checks (length, cadence), then its probabilities
        check_cadence(lc, [chosen])
        base_prob = chosen.probabilities(lc)
        upside_down = inverted(lc)
        upside_down_prob = chosen.probabilities(upside_down)
        days = observed_days(lc)
        busy = np.zeros(len(lc), dtype=bool)
        upside_down_events = events_at(chosen, upside_down, upside_down_prob)
        for t, base_events in events_at(chosen, lc, base_prob).items():
            false_rows[t].append({"light_curve": name, "days": days, "n_events": len(base_events["peak_time_btjd"]),
                                  "n_events_inverted": len(upside_down_events[t]["peak_time_btjd"])})
            busy |= event_mask(len(lc), base_events)
        sigma = robust_noise_sigma(lc.flux_rel)
        n = max(1, int(round(grid.per_day * days)))
        for trial in range(trials):
            rng = np.random.default_rng([seed, i, trial])
            amp_sigma, fwhm_min = grid.draw(rng, n)
            injected, truth = inject_flares(lc, amp_sigma, fwhm_min, rng, avoid=busy,
                                            min_separation_days=grid.min_separation_days, sigma=sigma)
            prob = chosen.probabilities(injected)
            peak_index = np.clip(np.searchsorted(injected.time_btjd, truth.peak_time_btjd), 0, len(lc) - 1)
            for t, events in events_at(chosen, injected, prob).items():
                hit, which = _recovered(events, peak_index, tolerance_cadences)
                for k in range(len(truth)):
                    j = which[k]
                    rows[t].append((name, trial, truth.peak_time_btjd[k], truth.amplitude[k],
                                    truth.amplitude[k] / sigma, truth.fwhm_days[k] * MINUTES_PER_DAY, truth.ed_s[k],
                                    bool(hit[k]), events["ed_s"][j] if hit[k] else np.nan,
                                    events["amplitude"][j] if hit[k] else np.nan))
    return {t: RecoveryResult(pd.DataFrame(rows[t], columns=list(TRIAL_COLUMNS)), pd.DataFrame(false_rows[t]))
            for t in keys}


def _bin_labels(edges) -> list[str]:
    return [f"[{a:g}, {b:g})" for a, b in zip(edges[:-1], edges[1:])]


def recovery_summary(trials: pd.DataFrame, amplitude_sigma_bins, fwhm_bins) -> pd.DataFrame:
    """Per (amplitude-in-sigma, FWHM) bin: injected, recovered, recovery probability and the
    median recovered/injected ratios of ED and amplitude (of the recovered flares)."""
    frame = trials.assign(amp_bin=pd.cut(trials["amplitude_sigma"], amplitude_sigma_bins, right=False),
                          fwhm_bin=pd.cut(trials["fwhm_min"], fwhm_bins, right=False),
                          ed_ratio=trials["ed_rec"] / trials["ed_s"],
                          amplitude_ratio=trials["ampl_rec"] / trials["amplitude"])
    grouped = frame.groupby(["amp_bin", "fwhm_bin"], observed=False)
    out = grouped.agg(injected=("recovered", "size"), recovered=("recovered", "sum"),
                      ed_ratio=("ed_ratio", "median"), amplitude_ratio=("amplitude_ratio", "median")).reset_index()
    out["recovery_probability"] = out["recovered"] / out["injected"].where(out["injected"] > 0)
    out["amp_bin"] = out["amp_bin"].astype(str)
    out["fwhm_bin"] = out["fwhm_bin"].astype(str)
    return out


def _bin_counts(trials: pd.DataFrame, fwhm_range, bins, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Recovered and injected flares per bin of ``column``, of flares with FWHM in ``fwhm_range``."""
    sel = trials[(trials["fwhm_min"] >= fwhm_range[0]) & (trials["fwhm_min"] < fwhm_range[1])]
    idx = np.digitize(sel[column], bins) - 1
    inside = (idx >= 0) & (idx < len(bins) - 1)
    n_bins = len(bins) - 1
    recovered = np.bincount(idx[inside], weights=sel["recovered"].to_numpy(float)[inside], minlength=n_bins)
    return recovered, np.bincount(idx[inside], minlength=n_bins).astype(float)


def _level_crossing(recovered: np.ndarray, injected: np.ndarray, bins, level: float, min_trials: int) -> float:
    """Where the binned recovery probability first reaches ``level``, interpolated in log
    between the centres of bins of at least ``min_trials`` trials (NaN when never reached)."""
    centres = np.sqrt(bins[:-1] * bins[1:])
    ok = injected >= max(min_trials, 1)
    centres, prob = centres[ok], recovered[ok] / injected[ok]
    above = np.flatnonzero(prob >= level)
    if not above.size:
        return float("nan")
    k = above[0]
    if k == 0:
        return float(centres[0])
    x0, x1, p0, p1 = np.log(centres[k - 1]), np.log(centres[k]), prob[k - 1], prob[k]
    return float(np.exp(x0 + (level - p0) * (x1 - x0) / (p1 - p0)))


AMPLITUDE_SIGMA_BINS = np.geomspace(0.5, 200, 25)


def amplitude_at_recovery(trials: pd.DataFrame, level: float = 0.5, fwhm_range=(2.0, 30.0),
                          bins=AMPLITUDE_SIGMA_BINS, column: str = "amplitude_sigma",
                          min_trials: int = 1) -> float:
    """Amplitude (noise sigma) at which the recovery probability first reaches ``level``,
    interpolated in log amplitude between bins with at least ``min_trials`` trials, for
    flares with FWHM in ``fwhm_range`` (NaN when never reached). ``column="ed_s"`` (with ED
    ``bins``): the same in equivalent duration, see :func:`ed_at_recovery`."""
    bins = np.asarray(bins, dtype=np.float64)
    return _level_crossing(*_bin_counts(trials, fwhm_range, bins, column), bins, level, min_trials)


ED_BINS = np.geomspace(0.01, 1e4, 31)
ED_MIN_TRIALS = 10


def ed_at_recovery(trials: pd.DataFrame, level: float = 0.5, fwhm_range=(2.0, 30.0),
                   bins=ED_BINS, min_trials: int = ED_MIN_TRIALS) -> float:
    """Injected equivalent duration (s) at which the recovery probability first reaches
    ``level`` (the completeness limit in ED that flare-frequency distributions need), over
    bins of at least ``min_trials`` trials: injected EDs spread over decades, so the
    smallest-ED bins hold a handful of flares and one lucky recovery must not set the limit."""
    return amplitude_at_recovery(trials, level, fwhm_range, bins, column="ed_s", min_trials=min_trials)


def paired_recovery_limit_ratio(trials_a: pd.DataFrame, trials_b: pd.DataFrame, level: float = 0.5,
                                fwhm_range=(2.0, 30.0), column: str = "ed_s", bins=ED_BINS,
                                min_trials: int = ED_MIN_TRIALS, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Detector A's ``level``-recovery limit (ED by default; ``column="amplitude_sigma"``
    with ``AMPLITUDE_SIGMA_BINS`` and ``min_trials=1`` for amplitude) over detector B's, on
    trials of the same light curves, with a 95 % percentile bootstrap interval resampling
    light curves (both detectors' trials of a drawn light curve go together: they share its
    noise). A ratio below 1: A completes at
    smaller flares. A limit never reached is set to the top bin edge (a lower bound on it) in
    the ratio and its resamples, which then understate how much worse that detector is;
    ``a``/``b`` stay NaN there and ``bound`` says which way the ratio is a bound.
    """
    from scipy.stats import bootstrap

    bins = np.asarray(bins, dtype=np.float64)
    names = sorted(set(trials_a["light_curve"]) & set(trials_b["light_curve"]))
    if not names:
        raise ValueError("the two trial tables share no light curve: the ratio would not be paired")

    def per_light_curve(trials):
        groups = dict(tuple(trials[trials["light_curve"].isin(names)].groupby("light_curve")))
        empty = (np.zeros(len(bins) - 1), np.zeros(len(bins) - 1))
        counts = [_bin_counts(groups[n], fwhm_range, bins, column) if n in groups else empty for n in names]
        return np.array([c[0] for c in counts]), np.array([c[1] for c in counts])

    (rec_a, inj_a), (rec_b, inj_b) = per_light_curve(trials_a), per_light_curve(trials_b)

    def limit(recovered, injected):
        value = _level_crossing(recovered, injected, bins, level, min_trials)
        return float(bins[-1]) if np.isnan(value) else value

    def ratio(index):
        index = np.asarray(index, dtype=np.int64)
        return limit(rec_a[index].sum(0), inj_a[index].sum(0)) / limit(rec_b[index].sum(0), inj_b[index].sum(0))

    a = _level_crossing(rec_a.sum(0), inj_a.sum(0), bins, level, min_trials)
    b = _level_crossing(rec_b.sum(0), inj_b.sum(0), bins, level, min_trials)
    bound = {(True, False): "upper", (False, True): "lower"}.get((np.isnan(b), np.isnan(a)), None)
    ratio_all = ratio(np.arange(len(names))) if not (np.isnan(a) and np.isnan(b)) else float("nan")
    out = {"a": a, "b": b, "ratio": ratio_all, "bound": bound, "interval": (float("nan"), float("nan")),
           "light_curves": len(names)}
    if len(names) >= 2:
        ci = bootstrap((np.arange(len(names)),), ratio, vectorized=False, n_resamples=n_resamples,
                       random_state=seed, method="percentile")
        out["interval"] = (float(ci.confidence_interval.low), float(ci.confidence_interval.high))
    return out


@dataclass
class RecoveryCorrection:
    """Per-event ``recovery_probability`` and ``ed_corr`` from injection–recovery trials.

    Recovered trials are binned by their *recovered* amplitude and ED (what a detected event
    has); each bin's median ratios map an event's ``ampl_rec``/``ed_rec`` back to the
    injected scale (``ed_corr = ed_rec / ed_ratio``), and the recovery probability is that
    of injected flares whose true amplitude and ED fall in the corrected values' bin.
    """

    amplitude_bins: list[float]
    ed_bins: list[float]
    ed_ratio: list[list[float]]          # [amplitude bin][ED bin], recovered flares
    amplitude_ratio: list[list[float]]
    recovery_probability: list[list[float]]  # over injected flares

    @classmethod
    def from_trials(cls, trials: pd.DataFrame, n_bins: int = 8) -> "RecoveryCorrection":
        def edges(values):
            values = np.asarray(values, dtype=np.float64)
            values = values[np.isfinite(values) & (values > 0)]
            return np.geomspace(values.min(), values.max() * 1.0001, n_bins + 1) if values.size else np.array([1.0, 2.0])
        amp_edges = edges(np.concatenate([trials["amplitude"], trials["ampl_rec"]]))
        ed_edges = edges(np.concatenate([trials["ed_s"], trials["ed_rec"]]))
        shape = (len(amp_edges) - 1, len(ed_edges) - 1)
        ed_ratio, amp_ratio, prob = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
        rec = trials[trials["recovered"]]
        ra, re = np.digitize(rec["ampl_rec"], amp_edges) - 1, np.digitize(rec["ed_rec"], ed_edges) - 1
        ta, te = np.digitize(trials["amplitude"], amp_edges) - 1, np.digitize(trials["ed_s"], ed_edges) - 1
        for a in range(shape[0]):
            for e in range(shape[1]):
                here = (ra == a) & (re == e)
                if here.any():
                    ed_ratio[a, e] = np.median(rec["ed_rec"][here] / rec["ed_s"][here])
                    amp_ratio[a, e] = np.median(rec["ampl_rec"][here] / rec["amplitude"][here])
                injected = (ta == a) & (te == e)
                if injected.any():
                    prob[a, e] = trials["recovered"][injected].mean()
        return cls(amp_edges.tolist(), ed_edges.tolist(), ed_ratio.tolist(), amp_ratio.tolist(), prob.tolist())

    def _bin(self, edges, value) -> int:
        k = int(np.digitize(value, edges)) - 1
        return k if 0 <= k < len(edges) - 1 else -1

    def correct(self, ampl_rec: np.ndarray, ed_rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(recovery_probability, ed_corr)`` per event; NaN outside the trials' range."""
        prob, ed_corr = [], []
        ed_ratio, amp_ratio, recovery = (np.asarray(x) for x in (self.ed_ratio, self.amplitude_ratio,
                                                                  self.recovery_probability))
        for amp, ed in zip(np.asarray(ampl_rec, dtype=float), np.asarray(ed_rec, dtype=float)):
            a, e = self._bin(self.amplitude_bins, amp), self._bin(self.ed_bins, ed)
            if a < 0 or e < 0 or not np.isfinite(ed_ratio[a, e]):
                prob.append(np.nan), ed_corr.append(np.nan)
                continue
            corrected_ed, corrected_amp = ed / ed_ratio[a, e], amp / amp_ratio[a, e]
            ed_corr.append(corrected_ed)
            ta, te = self._bin(self.amplitude_bins, corrected_amp), self._bin(self.ed_bins, corrected_ed)
            prob.append(recovery[ta, te] if ta >= 0 and te >= 0 else np.nan)
        return np.asarray(prob, dtype=float), np.asarray(ed_corr, dtype=float)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1, default=lambda v: None))

    @classmethod
    def load(cls, path: str | Path) -> "RecoveryCorrection":
        data = json.loads(Path(path).read_text())
        nan = lambda rows: [[np.nan if v is None else v for v in row] for row in rows]  # noqa: E731
        return cls(data["amplitude_bins"], data["ed_bins"], nan(data["ed_ratio"]), nan(data["amplitude_ratio"]),
                   nan(data["recovery_probability"]))


def recovery_heatmap(summary: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Recovery probability over amplitude (noise sigma) x FWHM, with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    amp = list(dict.fromkeys(summary["amp_bin"]))
    fwhm = list(dict.fromkeys(summary["fwhm_bin"]))
    grid = summary.pivot(index="fwhm_bin", columns="amp_bin", values="recovery_probability").loc[fwhm, amp]
    counts = summary.pivot(index="fwhm_bin", columns="amp_bin", values="injected").loc[fwhm, amp]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(amp), 1.2 + 0.6 * len(fwhm)))
    image = ax.imshow(grid.to_numpy(dtype=float), origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for y in range(len(fwhm)):
        for x in range(len(amp)):
            value = grid.iloc[y, x]
            if np.isfinite(value):
                ax.text(x, y, f"{value:.2f}\n({int(counts.iloc[y, x])})", ha="center", va="center", fontsize=7,
                        color="w" if value < 0.6 else "k")
    ax.set_xticks(range(len(amp)), amp, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(fwhm)), fwhm, fontsize=7)
    ax.set_xlabel("injected amplitude (white-noise sigma)")
    ax.set_ylabel("injected FWHM (min)")
    ax.set_title(title or "recovery probability")
    fig.colorbar(image, ax=ax, label="recovery probability")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
