"""Speed on this machine: training and inference windows/s, one full sector end to end,
an eager ``nn.TransformerEncoder`` implementation of the thesis architecture trained in
the same run, and the large float32 matmul FLOP/s as the yardstick.

    python scripts/benchmark_speed.py [--ckpt outputs/train/<run>] [--threads 2] [--size thesis|default]
                                      [--override optimizer.fused=false ...]

flaredetect's training step is the real one: the network, optimizer and loss composed from
``conf/`` (``--size thesis``: ``model=transformer_thesis``, the architecture the eager
implementation copies), ``FlareDetector.training_step``, backward, gradient clipping as
``trainer.gradient_clip_val``, optimizer step. The eager baseline is a plain loop with
``torch.optim.AdamW`` defaults and the same clipping. FLOPs of a training step are counted
with ``torch.utils.flop_counter`` (forward + backward matmuls/attention; element-wise ops
not counted), so "fraction of matmul peak" is a lower bound on the hardware utilisation;
the peak is the best of several matmul timings before and after the training race.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from flaredetect.data.features import n_features_of, window_features
from flaredetect.inference import EventParams, Predictor, SignificanceGate, load_net
from flaredetect.lit_module import weighted_bce
from flaredetect.models.transformer import FlareTransformer

REPO = Path(__file__).resolve().parents[1]
SIZES = {"default": dict(d_model=64, num_heads=4, d_ff=128), "thesis": dict(d_model=256, num_heads=8, d_ff=512)}
MODEL_CONFIG = {"default": "transformer", "thesis": "transformer_thesis"}


class EagerThesisTransformer(nn.Module):
    """The thesis model written the straightforward way: nn.TransformerEncoder (post-norm),
    sinusoidal positions, flatten → 512 → 128 → 1."""

    def __init__(self, seq_len=100, d_model=256, num_heads=8, num_layers=2, d_ff=512, dropout=0.1):
        super().__init__()
        self.embed = nn.Linear(3, d_model)
        pos = torch.arange(seq_len)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(seq_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(seq_len * d_model, 512), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(512, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 1))

    def forward(self, x):
        return {"logit": self.head(self.encoder(self.embed(x) + self.pe)).squeeze(-1)}


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times)


def batch(batch_size: int, seq_len: int = 100, seed: int = 0, n_features: int = 3):
    gen = torch.Generator().manual_seed(seed)
    flux = 1e-3 * torch.randn(batch_size, seq_len, generator=gen)
    flux[::3, 50:55] += 0.02
    y = torch.zeros(batch_size)
    y[::3] = 1
    cadence_y = torch.zeros(batch_size, seq_len)
    cadence_y[::3, 50:60] = 1
    return window_features(flux, torch.zeros_like(flux), n_features), y, cadence_y


def eager_step_fn(net, x, y, cadence_y, clip: float = 1.0):
    """The straightforward loop: forward, weighted BCE, backward, clip, AdamW defaults."""
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=1e-5)

    def step():
        out = net(x)
        loss = weighted_bce(out["logit"], y, 1.4, 0.7)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
    return step


def flaredetect_step_fn(cfg, x, y, cadence_y):
    """flaredetect's training step as Lightning runs it, built from the composed config."""
    from flaredetect.train import build_module

    module = build_module(cfg)
    module.train()
    configured = module.configure_optimizers()
    opt = configured["optimizer"] if isinstance(configured, dict) else configured
    clip = cfg.trainer.get("gradient_clip_val") or 0.0
    batch_ = {"x": x, "y": y, "cadence_y": cadence_y}

    def step():
        loss = module.training_step(batch_, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(module.parameters(), clip)
        opt.step()
    return module.net, step


def compose_config(size: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from flaredetect import CONFIG_DIR
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"model={MODEL_CONFIG[size]}", *overrides])


def timed(fn, seconds: float = 4.0, warmup: int = 2) -> float:
    """Median seconds per call over at least ``seconds`` of calls."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def step_flops(step) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def sector_light_curve(data: Path):
    files = sorted((data / "tess").glob("tic*_s02.npy"))
    if files:
        from flaredetect.sources import read_light_curve
        return read_light_curve(files[0]), files[0].name
    from flaredetect.data.synthetic import generate_light_curve
    return generate_light_curve(0, tic=1, sector=2), "synthetic sector"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="run dir for the full-sector timing (default: untrained default model)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--size", choices=list(SIZES), default="thesis", help="model sizes for the training race")
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides for flaredetect's training step")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0, help="timing budget per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds of the training race")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA",
                                                                          REPO.parent / "shared" / "data")))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    peaks = [matmul_flops() for _ in range(3)]
    print(f"large float32 matmul (2048^3):        {max(peaks) / 1e9:8.1f} GFLOP/s (before the race)")

    x, y, cy = batch(args.batch)
    rows = []
    for cadence_head in (True, False):
        cfg = compose_config(args.size, [f"model.cadence_head={cadence_head}", *args.override])
        _, step = flaredetect_step_fn(cfg, x, y, cy)
        name = f"flaredetect ({'+cadence head' if cadence_head else 'thesis head'})"
        rows.append((name, step))
    eager = EagerThesisTransformer(**SIZES[args.size]).train()
    rows.append(("eager nn.TransformerEncoder (thesis)", eager_step_fn(eager, x, y, cy)))
    # Round-robin rounds, best round per contestant: a neighbour's load or the CPU's clock
    # then hits every contestant alike rather than whichever ran at the wrong moment.
    flops = [step_flops(step) for _, step in rows]
    secs = [timed(step, args.seconds / args.rounds) for _, step in rows]
    for _ in range(args.rounds - 1):
        secs = [min(sec, timed(step, args.seconds / args.rounds)) for sec, (_, step) in zip(secs, rows)]
    measured = [(name, args.batch / sec, f / sec) for (name, _), sec, f in zip(rows, secs, flops)]
    peaks += [matmul_flops() for _ in range(3)]
    peak = max(peaks)
    print(f"large float32 matmul, best of {len(peaks)}:         {peak / 1e9:8.1f} GFLOP/s (the yardstick)")
    for name, rate, flop_rate in measured:
        print(f"train  {name:46s} {rate:8.0f} windows/s  {flop_rate / 1e9:6.1f} GFLOP/s "
              f"({flop_rate / peak:5.1%} of matmul)")
    print(f"training throughput vs eager: {measured[0][1] / measured[2][1]:.2f}x "
          f"(thesis head: {measured[1][1] / measured[2][1]:.2f}x); batch {args.batch}, size {args.size}, "
          f"optimizer {cfg.optimizer._target_} fused={cfg.optimizer.get('fused')}")

    if args.ckpt:
        net, _ = load_net(args.ckpt)
    else:
        net = FlareTransformer(cadence_head=True, **SIZES[args.size]).eval()
    xi, _, _ = batch(512, seed=1, n_features=n_features_of(net))
    from flaredetect.inference.scoring import cadence_only
    fast = cadence_only(net)
    with torch.inference_mode():
        sec = timed(lambda: net(xi), args.seconds)
        print(f"infer  full forward (window + cadence heads)      {512 / sec:8.0f} windows/s")
        if fast is not None:
            sec = timed(lambda: fast(xi), args.seconds)
            print(f"infer  cadence head only (predict's fast path)     {512 / sec:8.0f} windows/s")

    lc, label = sector_light_curve(args.data)
    predict_cfg = OmegaConf.load(REPO / "conf" / "predict.yaml")  # predict's default gate and events
    gate = SignificanceGate.from_settings(predict_cfg.get("candidates"))
    event_params = EventParams.from_settings(OmegaConf.to_container(predict_cfg.events))
    for head in (["cadence"] if fast is not None else []) + ["window"]:
        predictor = Predictor(net=net, head=head, length=getattr(net, "seq_len", 100), gate=gate, events=event_params)
        walls = []
        for _ in range(5):
            t = time.perf_counter()
            prob, events = predictor.predict(lc)
            walls.append(time.perf_counter() - t)
        print(f"sector {label} ({len(lc)} cadences) -> probabilities + {len(events['peak_time_btjd'])} events, "
              f"head={head}, stride {predictor.stride or ('length/2' if head == 'cadence' else 'length/10')}: "
              f"median {statistics.median(walls):.3f} s (min {min(walls):.3f}){' incl. significance gate' if gate else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
