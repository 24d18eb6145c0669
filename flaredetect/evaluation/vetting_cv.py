"""Nested cross-validation of the event vetter (:mod:`flaredetect.inference.vetting`).

Every labelled light curve is scored by the fold that never trained on its star (as
:func:`~flaredetect.evaluation.catalog_benchmark.score_detector`); its events, their
features and whether they match a catalogued flare are collected. The vetter of fold k is
fitted on the events of the light curves the *other* folds scored (stars fold k's network
trained on, seen by networks that never trained on them), and applied to the events of fold
k's own held-out stars: no star's labels choose anything used to score it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from flaredetect.evaluation.catalog_benchmark import catalog_flares, drop_events_on, searched_mask, searched_part
from flaredetect.inference.vetting import EventVetter, event_features, event_labels


def collect_events(folds: list, sets: dict, catalogs: dict, read=None, out=print) -> list[dict]:
    """Per scored light curve: its fold, star, event features and labels, and flare count."""
    if read is None:
        from flaredetect.sources import read_light_curve as read
    records = []
    for items in sets.values():
        for item in items:
            try:
                lc = read(item.path)
            except ValueError:
                continue
            fold = next((f for f in folds if lc.tic not in f[2]), None)
            if fold is None:
                continue
            predictor = fold[1]()
            flares, ignore = catalog_flares(lc, item.catalogs, catalogs)
            prob, events = predictor.predict(lc)
            events = drop_events_on(events, ignore, flares.peak_time_btjd)
            # where the catalogs never searched an event is no example either way
            events = searched_part(lc, prob, events, searched_mask(lc, item.catalogs, catalogs), flares.peak_time_btjd)[2]
            true, covered = event_labels(events, flares.peak_time_btjd, lc.cadence_d)
            features = event_features(predictor.prepared(lc), prob, events)  # the flux the vetter will judge
            records.append({"fold": fold[0], "tic": int(lc.tic), "features": features,
                            "true": true, "covered": covered, "n_flares": len(flares)})
    out(f"event vetter: {sum(len(r['true']) for r in records)} events ({sum(int(r['true'].sum()) for r in records)} "
        f"on catalogued flares) on {len(records)} light curves, {sum(r['n_flares'] for r in records)} flares")
    return records


def fit_fold_vetters(records: list[dict], fold_names: list[str], seed: int = 0, out=print) -> dict[str, EventVetter]:
    """One vetter per fold, fitted on the records every other fold scored."""
    vetters = {}
    for name in fold_names:
        train = [r for r in records if r["fold"] != name]
        if not train:
            raise ValueError(f"fold {name}: no light curve scored by another fold to fit its event vetter on "
                             f"(the vetter needs a cross-validation of at least two folds)")
        vetter = EventVetter.fit(np.concatenate([r["features"] for r in train]),
                                 np.concatenate([r["true"] for r in train]),
                                 np.concatenate([r["covered"] for r in train]),
                                 np.concatenate([np.full(len(r["true"]), r["tic"]) for r in train]),
                                 sum(r["n_flares"] for r in train), seed=seed)
        out(f"event vetter of fold {name}: fitted on {vetter.info['events']} events of {len(train)} light curves "
            f"scored by the other folds; threshold {vetter.threshold:.3f} (out-of-fold event F1 "
            f"{vetter.info['out_of_fold_f1']:.2f})")
        vetters[name] = vetter
    return vetters


def vetted_folds(folds: list, vetters: dict[str, EventVetter]) -> list:
    """``folds`` whose predictors carry their fold's vetter."""
    def with_vetter(get, vetter):
        return lambda: replace(get(), vetter=vetter)
    return [(name, with_vetter(get, vetters[name]), skip) for name, get, skip in folds]
