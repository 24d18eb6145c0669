"""Light curves scored together (issue 17): their windows share the network's batches, the
results are those of scoring each alone, and one bad input never fails its batch-mates."""
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from flaredetect.data.lightcurve import LightCurve
from flaredetect.data.synthetic import generate_light_curve
from flaredetect.inference import Predictor, run_prediction
from flaredetect.inference.candidates import threshold_scorer
from flaredetect.inference.scoring import score_light_curve, score_light_curves
from flaredetect.models.transformer import FlareTransformer
from test_catalog_scale import _inputs


def _curves() -> list[LightCurve]:
    """A full sector, one cut by a gap, one shorter than a window (padded)."""
    full = generate_light_curve(1, tic=11, sector=2)
    gapped = generate_light_curve(2, tic=12, sector=3)
    keep = np.r_[0:4000, 4300:9000]
    gapped = LightCurve(12, 3, gapped.time_btjd[keep], gapped.flux_rel[keep], gapped.flux_err[keep],
                        gapped.quality[keep])
    short = generate_light_curve(3, tic=13, sector=4)
    short = LightCurve(13, 4, short.time_btjd[:70], short.flux_rel[:70], short.flux_err[:70], short.quality[:70])
    return [full, gapped, short]


@pytest.mark.parametrize("head,refine_above", [("cadence", 0.5), ("cadence", None), ("window", None)])
def test_light_curves_scored_together_equal_each_scored_alone_in_fewer_passes(head, refine_above):
    torch.manual_seed(0)
    net = FlareTransformer(seq_len=100, d_model=32, num_heads=4, num_layers=1, d_ff=64, head_hidden=(32,),
                           cadence_head=True).eval()
    passes = []
    net.embed.register_forward_hook(lambda *_: passes.append(1))
    curves = _curves()
    kw = dict(length=100, head=head, batch_size=100_000, refine_above=refine_above)
    alone = [score_light_curve(net, lc, **kw) for lc in curves]
    n_alone = len(passes)
    passes.clear()
    together = score_light_curves(net, curves, **kw)
    assert [p.shape for p in together] == [(len(lc),) for lc in curves]
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert len(passes) == (2 if refine_above is not None else 1) < n_alone  # shared batches, not one per curve
    assert len({round(float(p.std()), 6) for p in together}) == 3  # three different curves, not one repeated


def _faulty(bad_tic: int, how: str):
    rule = threshold_scorer(3.0, 3)

    def scorer(lc):
        if lc.tic == bad_tic:
            if how == "raise":
                raise RuntimeError(f"cannot score TIC {lc.tic}")
            return np.full(len(lc), np.nan, np.float32)
        return rule(lc)
    return scorer


@pytest.mark.parametrize("how,reason", [("raise", "cannot score TIC 102"), ("nan", "not finite")])
def test_an_input_that_cannot_be_scored_fails_alone_in_its_batch(tmp_path, how, reason):
    paths = [str(p) for p in _inputs(tmp_path / "in", 5)]
    kw = dict(plot=False, progress=False, timeseries=False)
    predictor = Predictor(scorer=_faulty(102, how))
    one_by_one = run_prediction(predictor, paths, tmp_path / "a", lc_batch=1, **kw)
    batched = run_prediction(predictor, paths, tmp_path / "b", lc_batch=4, workers=2, **kw)
    assert [f for f, _ in batched["failed"]] == [f for f, _ in one_by_one["failed"]] == [paths[2]]
    assert reason in batched["failed"][0][1]
    assert [r["name"] for r in batched["ok"]] == [r["name"] for r in one_by_one["ok"]] == paths[:2] + paths[3:]
    assert [r["n_events"] for r in batched["ok"]] == [r["n_events"] for r in one_by_one["ok"]]
    assert sum(r["n_events"] for r in batched["ok"]) > 0
    for name in ("a", "b"):  # the failed input has no completion marker, the others have one
        assert len(list((tmp_path / name / "done").glob("*.json"))) == 4
    with pytest.raises(ValueError, match="lc_batch=0 must be >= 1"):
        run_prediction(predictor, paths, tmp_path / "c", lc_batch=0, **kw)


def test_the_bundled_detector_gives_the_same_events_scored_in_batches(tmp_path):
    from astropy.table import Table

    from flaredetect import Detector

    paths = [str(p) for p in _inputs(tmp_path / "in", 4)]
    predictor = Detector(None, candidates=False).predictor
    kw = dict(plot=False, progress=False, meta={"checkpoint": {"sha256": "test"}})
    alone = run_prediction(predictor, paths, tmp_path / "a", lc_batch=1, **kw)
    together = run_prediction(predictor, paths, tmp_path / "b", lc_batch=3, **kw)
    assert [r["n_events"] for r in together["ok"]] == [r["n_events"] for r in alone["ok"]]
    assert sum(r["n_events"] for r in alone["ok"]) >= 4  # each input holds an injected flare
    for a in sorted((tmp_path / "a").glob("*_prob.npy")):
        np.testing.assert_allclose(np.load(a), np.load(tmp_path / "b" / a.name), atol=1e-5)
    for a in sorted((tmp_path / "a").glob("*_flares.ecsv")):
        ta, tb = Table.read(a), Table.read(tmp_path / "b" / a.name)
        assert list(ta["tpeak"]) == list(tb["tpeak"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: device=cuda is valid here")
def test_a_device_torch_cannot_use_is_refused_naming_the_key():
    from flaredetect.config_checks import ConfigError, check_predict_config
    from flaredetect.inference.pipeline import resolve_device

    assert resolve_device("auto") == torch.device("cpu") == resolve_device(None)
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "predict.yaml")
    for bad, message in (({"device": "cuda"}, "device=cuda but torch sees no GPU"),
                         ({"device": "banana"}, "device='banana' is not a torch device"),
                         ({"lc_batch": 0}, "lc_batch=0 must be an integer >= 1")):
        with pytest.raises(ConfigError, match=message):
            check_predict_config(OmegaConf.merge(cfg, bad))
