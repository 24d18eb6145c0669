"""The detector bundled with the package: it loads, is small, gives its recorded outputs on a
fixed synthetic light curve, and finds catalogued flares on a real one.

Regenerate the recorded outputs after re-training it (python -m flaredetect.pretrained <run>):
    python tests/test_pretrained.py --write-golden
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "data" / "pretrained_golden.json"
MAX_MB = 10.0


def _golden_outputs(refine: bool = False) -> dict:
    """Every window scored (refine=False): the network's own outputs; refine=True: predict's default."""
    import flaredetect
    from flaredetect.data.synthetic import generate_light_curve

    lc = generate_light_curve(20261202, tic=7, sector=3)
    result = flaredetect.find_flares(lc.time_btjd, 1 + lc.flux_rel, lc.flux_err, tic=7, sector=3, candidates=False,
                                     refine=refine)
    return {"every_500th_probability": result.probability[::500].astype(float).tolist(),
            "tpeak": result.flares["tpeak"].value.tolist(), "ed_rec": result.flares["ed_rec"].value.tolist()}


def test_bundled_detector_loads_is_small_and_matches_its_record():
    from flaredetect.checkpoints import sha256
    from flaredetect.inference import load_net
    from flaredetect.pretrained import CHECKPOINT, pretrained_run

    run = pretrained_run()
    record = json.loads((run / "summary.json").read_text())
    assert (run / CHECKPOINT).stat().st_size <= MAX_MB * 2 ** 20
    assert record["sha256"] == sha256(run / CHECKPOINT)  # the bundled file is the one recorded
    net, cfg = load_net(run)
    assert sum(p.numel() for p in net.parameters()) == record["n_parameters"]
    assert len(cfg.trained_tics) > 50  # the real stars it saw: never benchmark it on them


def test_bundled_detector_gives_its_recorded_outputs():
    golden = json.loads(GOLDEN.read_text())
    now = _golden_outputs()
    np.testing.assert_allclose(now["every_500th_probability"], golden["every_500th_probability"], atol=1e-4)
    np.testing.assert_allclose(now["tpeak"], golden["tpeak"], atol=1e-6)
    np.testing.assert_allclose(now["ed_rec"], golden["ed_rec"], rtol=1e-3)
    refined = _golden_outputs(refine=True)  # coarse to fine: fewer windows, the same flares
    np.testing.assert_allclose(refined["tpeak"], golden["tpeak"], atol=1e-6)
    np.testing.assert_allclose(refined["ed_rec"], golden["ed_rec"], rtol=1e-3)


def test_bundled_detector_finds_the_catalogued_flares_of_a_real_light_curve(shared_data):
    import lightkurve as lk

    import flaredetect
    from flaredetect.catalogs import read_guenther2020
    from flaredetect.data.lightcurve import CADENCE_DAYS

    path = next((shared_data / "fits" / "spoc").glob("*-s0001-0000000358108509-*_lc.fits"))
    lc = lk.read(str(path), quality_bitmask="none")
    flares = flaredetect.find_flares(lc).flares  # no model: the bundled one, predict's settings
    catalog = read_guenther2020(shared_data / "catalogs" / "guenther2020.csv")
    peaks = catalog.for_star(358108509, float(lc.time.value.min()), float(lc.time.value.max()), by="peak").peak_time_btjd
    found = [np.any(np.abs(flares["tpeak"].value - p) <= 3.5 * CADENCE_DAYS) or
             np.any((flares["tstart"].value - 3.5 * CADENCE_DAYS <= p) & (p <= flares["tstop"].value)) for p in peaks]
    assert len(peaks) >= 3 and np.mean(found) >= 0.75, (peaks, flares["tpeak"])


def test_predict_without_ckpt_uses_the_bundled_detector(tmp_path):
    from omegaconf import OmegaConf

    from flaredetect.pretrained import pretrained_run
    from flaredetect.predict import predict
    from tests.test_predict import _save_star

    _save_star(tmp_path / "in" / "tic000000005_s02.npy")
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "predict.yaml")
    cfg.merge_with({"input": str(tmp_path / "in"), "out_dir": str(tmp_path / "out"), "progress": False,
                    "cache_dir": str(tmp_path / "mast"),
                    "plot": False, "paths": {"output_dir": str(tmp_path / "out")}})
    del cfg["defaults"]
    assert cfg.ckpt is None
    summary = predict(cfg)
    assert summary["complete"] and Path(summary["checkpoint"]["run_dir"]).resolve() == pretrained_run().resolve()


if __name__ == "__main__":
    if "--write-golden" in sys.argv:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(_golden_outputs(), indent=1))
        print(f"wrote {GOLDEN}")
