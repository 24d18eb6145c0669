"""Speed on this machine: training and inference windows/s, one full sector end to end,
an eager ``nn.TransformerEncoder`` implementation of the thesis architecture trained in
the same run, and the large float32 matmul FLOP/s as the yardstick.

    python scripts/benchmark_speed.py [--ckpt outputs/train/<run>] [--threads 2] [--size default|thesis]

FLOPs of a training step are counted with ``torch.utils.flop_counter`` (forward +
backward matmuls/attention; element-wise ops not counted), so "fraction of matmul peak"
is a lower bound on the hardware utilisation.
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
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from flaredetect.data.features import n_features_of, window_features
from flaredetect.inference import Predictor, load_net
from flaredetect.lit_module import weighted_bce
from flaredetect.models.transformer import FlareTransformer

REPO = Path(__file__).resolve().parents[1]
SIZES = {"default": dict(d_model=64, num_heads=4, d_ff=128), "thesis": dict(d_model=256, num_heads=8, d_ff=512)}


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


def train_step_fn(net, x, y, cadence_y):
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=1e-5)

    def step():
        out = net(x)
        loss = weighted_bce(out["logit"], y, 1.4, 0.7)
        if "cadence_logit" in out:
            loss = loss + nn.functional.binary_cross_entropy_with_logits(out["cadence_logit"], cadence_y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


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


def step_flops(net, x, y, cadence_y) -> float:
    step = train_step_fn(net, x, y, cadence_y)
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
    parser.add_argument("--size", choices=list(SIZES), default="default", help="model sizes for the training race")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0, help="timing budget per measurement")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FLAREDETECT_SHARED_DATA",
                                                                          REPO.parent / "shared" / "data")))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    peak = matmul_flops()
    print(f"large float32 matmul (2048^3):        {peak / 1e9:8.1f} GFLOP/s")

    sizes = SIZES[args.size]
    x, y, cy = batch(args.batch)
    rows = []
    for name, net in [("flaredetect FlareTransformer (+cadence head)", FlareTransformer(cadence_head=True, **sizes)),
                      ("flaredetect FlareTransformer (thesis head)", FlareTransformer(**sizes)),
                      ("eager nn.TransformerEncoder (thesis)", EagerThesisTransformer(**sizes))]:
        net.train()
        flops = step_flops(net, x, y, cy)
        sec = timed(train_step_fn(net, x, y, cy), args.seconds)
        rows.append((name, args.batch / sec, flops / sec))
        print(f"train  {name:46s} {args.batch / sec:8.0f} windows/s  {flops / sec / 1e9:6.1f} GFLOP/s "
              f"({flops / sec / peak:5.1%} of matmul)")
    ratio = rows[0][1] / rows[2][1]
    print(f"training throughput vs eager: {ratio:.2f}x (thesis head: {rows[1][1] / rows[2][1]:.2f}x)")

    if args.ckpt:
        net, _ = load_net(args.ckpt)
    else:
        net = FlareTransformer(cadence_head=True, **sizes).eval()
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
    for head in (["cadence"] if fast is not None else []) + ["window"]:
        predictor = Predictor(net=net, head=head, length=getattr(net, "seq_len", 100))
        walls = []
        for _ in range(5):
            t = time.perf_counter()
            prob, events = predictor.predict(lc)
            walls.append(time.perf_counter() - t)
        print(f"sector {label} ({len(lc)} cadences) -> probabilities + {len(events['peak_time_btjd'])} events, "
              f"head={head}, stride {predictor.stride or ('length/2' if head == 'cadence' else 'length/10')}: "
              f"median {statistics.median(walls):.3f} s (min {min(walls):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
