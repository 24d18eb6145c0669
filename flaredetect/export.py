"""``flaredetect-export``: a trained run's network as TorchScript and/or ONNX.

The exported graph takes raw windows, ``flux_rel`` (B, L) float32 and ``quality``
(B, L) float32 (1 where a SPOC quality bit is set), computes the three features inside
(:func:`flaredetect.data.features.window_features`) and returns probabilities:
``window_prob`` (B,) and, with a cadence head, ``cadence_prob`` (B, L). So a user of the
ONNX file needs neither torch nor this package. After writing, each file is reloaded and
compared with the checkpoint's eager outputs (parity; the export fails if they differ).

    flaredetect-export ckpt=outputs/train/<run> formats=[torchscript,onnx]
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from flaredetect.data.features import n_features_of, window_features
from flaredetect.inference.loading import load_net, window_geometry
from flaredetect import CONFIG_DIR
from flaredetect.utils import exit_with_error, write_json

log = logging.getLogger(__name__)
FORMATS = ("torchscript", "onnx")


class ProbabilityModel(nn.Module):
    """Raw windows → probabilities (features and sigmoid inside the exported graph)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, flux_rel: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(window_features(flux_rel, quality, n_features_of(self.net)))
        probs = [torch.sigmoid(out["logit"])]
        if "cadence_logit" in out:
            probs.append(torch.sigmoid(out["cadence_logit"]))
        return tuple(probs)


def example_windows(length: int, batch: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic test windows: noise, a flare-like spike and a flagged cadence."""
    gen = torch.Generator().manual_seed(seed)
    flux = 1e-3 * torch.randn(batch, length, generator=gen)
    flux[0, length // 2:length // 2 + 5] += torch.tensor([0.05, 0.03, 0.02, 0.01, 0.005])
    quality = torch.zeros(batch, length)
    quality[1, 3] = 1.0
    return flux, quality


def export_torchscript(model: ProbabilityModel, path: Path, example) -> Path:
    traced = torch.jit.trace(model, example, check_trace=False)
    traced.save(str(path))
    return path


def export_onnx(model: ProbabilityModel, path: Path, example, opset: int = 17) -> Path:
    outputs = ["window_prob", "cadence_prob"][: len(model(*example))]
    dynamic = {"flux_rel": {0: "batch"}, "quality": {0: "batch"}, **{name: {0: "batch"} for name in outputs}}
    torch.onnx.export(model, example, str(path), input_names=["flux_rel", "quality"], output_names=outputs,
                      dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    return path


def run_exported(fmt: str, path: Path, flux: torch.Tensor, quality: torch.Tensor) -> list[np.ndarray]:
    """Outputs of an exported file, as numpy arrays."""
    if fmt == "torchscript":
        with torch.inference_mode():
            return [o.numpy() for o in torch.jit.load(str(path))(flux, quality)]
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"flux_rel": flux.numpy(), "quality": quality.numpy()})


def export(ckpt: str | Path, out_dir: str | Path, formats=FORMATS, atol: float = 1e-4, batch: int = 8) -> dict:
    """Export ``ckpt`` (run dir or .ckpt) to ``out_dir`` in each format and check parity.

    Returns ``{format: {"path": ..., "max_abs_diff": ...}}``; raises ``RuntimeError`` when
    an exported model's probabilities differ from the checkpoint's by more than ``atol``.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"formats={list(formats)}: {bad} not in {list(FORMATS)}")
    net, cfg = load_net(ckpt)
    length = window_geometry(cfg)["length"]
    model = ProbabilityModel(net).eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    example = example_windows(length, batch=2)
    flux, quality = example_windows(length, batch=batch, seed=1)
    with torch.inference_mode():  # the reference uses the training code's own features
        out = net(window_features(flux, quality, n_features_of(net)))
        reference = [torch.sigmoid(out[k]).numpy() for k in ("logit", "cadence_logit") if k in out]
    report = {}
    for fmt in formats:
        path = out_dir / ("model.pt" if fmt == "torchscript" else "model.onnx")
        (export_torchscript if fmt == "torchscript" else export_onnx)(model, path, example)
        got = run_exported(fmt, path, flux, quality)
        diff = max(float(np.max(np.abs(g - r))) for g, r in zip(got, reference))
        if len(got) != len(reference) or diff > atol:
            raise RuntimeError(f"{path}: exported outputs differ from the checkpoint's (max |diff| {diff:.2e} > {atol})")
        report[fmt] = {"path": str(path), "max_abs_diff": diff}
        log.info("%s -> %s (max |diff| %.2e)", fmt, path, diff)
    write_json(out_dir / "export.json", {"ckpt": str(ckpt), "seq_len": length,
                                          "outputs": ["window_prob", "cadence_prob"][: len(reference)], **report})
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    formats = list(cfg.formats) if OmegaConf.is_list(cfg.formats) else [str(cfg.formats)]
    try:
        report = export(cfg.ckpt, cfg.out_dir, formats, atol=float(cfg.atol))
    except (ValueError, RuntimeError) as err:  # bad run dir/checkpoint (RunError), format, or parity
        exit_with_error("flaredetect-export", err)
    for fmt, info in report.items():
        print(f"{fmt:12s} {info['path']}  parity max |diff| = {info['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
