"""flaredetect-export: exported TorchScript and ONNX models give the checkpoint's outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from flaredetect.data.features import window_features
from flaredetect.export import example_windows, export, run_exported
from flaredetect.inference import load_net
from test_predict import make_run_dir


@pytest.mark.parametrize("cadence_head", [True, False])
def test_export_parity(tmp_path, cadence_head):
    run = make_run_dir(tmp_path / "run", seed=1, cadence_head=cadence_head)
    report = export(run, tmp_path / "export", formats=["torchscript", "onnx"])
    assert set(report) == {"torchscript", "onnx"} and all(r["max_abs_diff"] < 1e-4 for r in report.values())
    meta = json.loads((tmp_path / "export" / "export.json").read_text())
    assert meta["outputs"] == (["window_prob", "cadence_prob"] if cadence_head else ["window_prob"])
    # independent check on other windows and another batch size (dynamic batch axis)
    net, _ = load_net(run)
    rng = np.random.default_rng(7)
    flux = torch.from_numpy(rng.normal(0, 1e-3, (13, 100)).astype(np.float32))
    flux[4, 40:46] += torch.tensor([0.03, 0.02, 0.012, 0.008, 0.005, 0.003])
    quality = torch.from_numpy((rng.random((13, 100)) < 0.02).astype(np.float32))
    with torch.inference_mode():
        out = net(window_features(flux, quality))
    expected = [torch.sigmoid(out["logit"]).numpy()]
    if cadence_head:
        expected.append(torch.sigmoid(out["cadence_logit"]).numpy())
    for fmt, info in report.items():
        got = run_exported(fmt, tmp_path / "export" / ("model.pt" if fmt == "torchscript" else "model.onnx"),
                           flux, quality)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, atol=1e-5)


def test_export_rejects_unknown_format(tmp_path):
    run = make_run_dir(tmp_path / "run")
    with pytest.raises(ValueError, match="tflite"):
        export(run, tmp_path / "x", formats=["tflite"])


def test_export_of_a_missing_run_is_one_line_and_exit_1(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "flaredetect.export", f"ckpt={tmp_path / 'nope'}",
                           f"hydra.run.dir={tmp_path / 'h'}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"flaredetect-export: run dir {tmp_path / 'nope'} does not exist"]
