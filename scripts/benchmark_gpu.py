#!/usr/bin/env python
"""Training throughput of the thesis transformer on one GPU: is a thesis-scale run ≤ 15 min?

Runs from the repository root on a bare GPU box (torch, numpy, lightning, torchmetrics;
no Hydra, h5py, astropy or installed flaredetect needed):

    python scripts/benchmark_gpu.py                 # the full benchmark (< 4 min on an H100)
    python scripts/benchmark_gpu.py --smoke         # tiny sizes, CPU is fine (a test of the script)

It makes its own random TESS-like windows (noise plus injected flare bumps; speed does not
depend on the values), keeps them on the device (:class:`flaredetect.gpu_data.DeviceWindowLoader`)
and times the real training step: GPU augmentation + features
(``flaredetect.data.augment`` / ``features``), the thesis ``FlareTransformer()``, weighted BCE,
AdamW, bf16 autocast on CUDA. For the thesis batch sizes (32/64/128) and powers of two up to
``--max-batch`` it prints windows/s, epoch time and peak memory, then a full Lightning epoch
(``FlareDetector``, metrics included, optionally ``torch.compile``) at the best batch size,
and the projected wall time of ``--epochs`` epochs over ``--windows`` windows.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from flaredetect.data.augment import Augmentation, augment, centre_offsets, crop  # noqa: E402
from flaredetect.data.features import window_features  # noqa: E402
from flaredetect.gpu_data import DeviceWindowLoader  # noqa: E402
from flaredetect.models.transformer import FlareTransformer  # noqa: E402

THESIS_BATCHES = (32, 64, 128)


def make_windows(n: int, length: int, context: int, device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random windows shaped like prepared ones: a third hold a flare (fast rise, exponential decay)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    total = length + 2 * context
    sigma = 10 ** (-3.5 + torch.rand(n, generator=gen))                     # 0.03 %–0.3 % white noise
    flux = 1 + sigma[:, None] * torch.randn(n, total, generator=gen)
    has_flare = torch.rand(n, generator=gen) < 1 / 3
    t = torch.arange(total, dtype=torch.float32)[None, :]
    peak = total // 2 + torch.randint(-5, 6, (n, 1), generator=gen)
    amp = sigma[:, None] * (3 + 30 * torch.rand(n, 1, generator=gen))
    decay = 2 + 10 * torch.rand(n, 1, generator=gen)
    bump = torch.where(t >= peak, torch.exp(-(t - peak) / decay), torch.exp((t - peak) / 0.7))
    flare_mask = (bump > 0.05) & has_flare[:, None]
    flux = flux + torch.where(has_flare[:, None], amp * bump, torch.zeros(()))
    peak_mask = (t == peak) & has_flare[:, None]
    quality = (torch.rand(n, total, generator=gen) < 0.01).to(torch.int32)
    return {"flux_rel": flux.float(), "quality": quality, "flare_mask": flare_mask.to(torch.uint8),
            "peak_mask": peak_mask.to(torch.uint8), "noise_sigma": sigma.float()}


def model_batch(raw: dict, length: int, context: int, training: bool, aug: Augmentation) -> dict:
    if training:
        raw = augment(raw, length, context, aug)
    else:
        raw = crop(raw, length, centre_offsets(raw["flux_rel"].shape[0], context, raw["flux_rel"].device))
    return {"x": window_features(raw["flux_rel"], raw["quality"]),
            "y": (raw["peak_mask"] > 0).any(dim=1).float()}


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(model, optimizer, data: dict, batch_size: int, args, device, seconds: float) -> dict:
    """Steady-state training-step rate at one batch size (after warm-up steps)."""
    loader = DeviceWindowLoader(data, batch_size, device, shuffle=True, drop_last=True, seed=0)
    weight = torch.tensor([0.7, 1.4], device=device)
    aug = Augmentation()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(raw):
        batch = model_batch(raw, args.length, args.context, True, aug)
        with autocast:
            logit = model(batch["x"])["logit"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logit.float(), batch["y"], weight=weight[batch["y"].long()])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    it = iter(loader)
    try:
        for _ in range(args.warmup):
            step(next(it))
        sync(device)
        n_steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(5):
                try:
                    raw = next(it)
                except StopIteration:
                    it = iter(loader)
                    raw = next(it)
                step(raw)
                n_steps += 1
            sync(device)
        elapsed = time.perf_counter() - t0
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"batch_size": batch_size, "error": "out of memory"}
    rate = n_steps * batch_size / elapsed
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"batch_size": batch_size, "windows_per_s": rate, "step_ms": 1000 * elapsed / n_steps,
            "epoch_s": args.windows / rate, "peak_mem_gib": peak,
            "projected_run_min": args.windows * args.epochs / rate / 60}


def lightning_epoch(data: dict, val: dict, batch_size: int, args, device, compile_model: bool,
                    epochs: int) -> dict | None:
    """One full training epoch (plus validation) through Lightning and ``FlareDetector``."""
    try:
        import lightning as L

        from flaredetect.lit_module import FlareDetector
    except ImportError as err:  # lightning/torchmetrics missing: the plain-loop numbers stand alone
        print(f"(skipping the Lightning epoch: {err})")
        return None
    aug = Augmentation()

    class Module(FlareDetector):
        def on_after_batch_transfer(self, batch, dataloader_idx):
            return model_batch(batch, args.length, args.context, self.trainer.training, aug)

    net = FlareTransformer(seq_len=args.length, **args.model)
    # compile=True is the training config's `compile: true` (nn.Module.compile when fitting starts).
    module = Module(net=net, optimizer=lambda params: torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-5),
                    compile=compile_model)
    train_loader = DeviceWindowLoader(data, batch_size, device, shuffle=True, drop_last=compile_model, seed=0)
    val_loader = DeviceWindowLoader(val, 4096, device, shuffle=False)

    class Timer(L.Callback):
        def __init__(self):
            self.epoch_s: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module):
            sync(device)
            self.t0 = time.perf_counter()

        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                sync(device)
                self.epoch_s.append(time.perf_counter() - self.t0)

    timer = Timer()
    trainer = L.Trainer(accelerator=device.type if device.type == "cuda" else "cpu", devices=1,
                        precision="bf16-mixed" if device.type == "cuda" else "32-true",
                        max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        gradient_clip_val=1.0, callbacks=[timer])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    total = time.perf_counter() - t0
    # The first epoch carries start-up (and compilation); the last is the steady state.
    epoch_s = timer.epoch_s[-1]
    return {"batch_size": batch_size, "compile": compile_model, "epochs": len(timer.epoch_s),
            "first_epoch_s": timer.epoch_s[0], "epoch_s": epoch_s, "fit_total_s": total,
            "windows_per_s": len(data["flux_rel"]) / epoch_s,
            "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan"),
            "projected_run_min": (epoch_s * args.epochs + (total - sum(timer.epoch_s))) / 60,
            "val_f1": float(trainer.callback_metrics.get("val/f1", float("nan")))}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes and a tiny model: checks the script on CPU")
    p.add_argument("--windows", type=int, default=122_000, help="training windows per epoch (thesis ≈122k)")
    p.add_argument("--epochs", type=int, default=100, help="epochs of the projected run")
    p.add_argument("--max-batch", type=int, default=4096)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per batch size")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--lightning-epochs", type=int, default=2)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile epoch")
    p.add_argument("--json", type=str, default=None, help="also write the results here")
    args = p.parse_args(argv)
    args.length, args.context = 100, 10
    args.model = {}  # FlareTransformer() defaults are the thesis sizes: d_model 256, 8 heads, 2 layers, d_ff 512
    if args.smoke:
        args.windows, args.max_batch, args.seconds, args.warmup = 512, 128, 0.3, 1
        args.lightning_epochs, args.no_compile = 1, True
        args.model = {"d_model": 16, "num_heads": 2, "d_ff": 32, "head_hidden": (32,)}

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device: {name}   torch {torch.__version__}   windows/epoch: {args.windows}   epochs: {args.epochs}")
    t_start = time.perf_counter()
    data = make_windows(args.windows, args.length, args.context, device, seed=0)
    val = make_windows(max(args.windows // 8, 256), args.length, args.context, device, seed=1)
    nbytes = sum(t.numel() * t.element_size() for t in data.values())
    print(f"training data on the device: {nbytes / 2**20:.0f} MiB")

    model = FlareTransformer(seq_len=args.length, **args.model).to(device)
    n_params = sum(q.numel() for q in model.parameters())
    print(f"thesis FlareTransformer: {n_params / 1e6:.2f} M parameters\n")
    sizes = sorted(set(THESIS_BATCHES) | {2**k for k in range(8, 20) if 2**k <= args.max_batch})
    rows = []
    print(f"{'batch':>6} {'windows/s':>11} {'step ms':>8} {'epoch s':>8} {'peak GiB':>9} {'100-epoch min':>14}")
    for bs in sizes:
        model = FlareTransformer(seq_len=args.length, **args.model).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-5, fused=device.type == "cuda")
        row = time_steps(model, optimizer, data, bs, args, device, args.seconds)
        rows.append(row)
        if "error" in row:
            print(f"{bs:>6} {row['error']}")
            continue
        print(f"{bs:>6} {row['windows_per_s']:>11.0f} {row['step_ms']:>8.2f} {row['epoch_s']:>8.2f} "
              f"{row['peak_mem_gib']:>9.2f} {row['projected_run_min']:>14.1f}")
    ok = [r for r in rows if "error" not in r]
    best = max(ok, key=lambda r: r["windows_per_s"])
    print(f"\nbest batch size (plain loop): {best['batch_size']} at {best['windows_per_s']:.0f} windows/s")

    results = {"device": name, "torch": torch.__version__, "windows": args.windows, "epochs": args.epochs,
               "n_parameters": n_params, "plain_loop": rows, "best_batch_size": best["batch_size"], "lightning": []}
    # Full Lightning epochs at the best batch size and at a thesis batch size, eager and compiled.
    plans = [(best["batch_size"], False, args.lightning_epochs)]
    if not args.no_compile:
        plans.append((best["batch_size"], True, args.lightning_epochs))
    if not args.smoke:
        plans.append((64, False, 1))  # the thesis's batch size, for comparison
    for bs, compiled, epochs in plans:
        res = lightning_epoch(data, val, bs, args, device, compiled, epochs)
        if res is None:
            break
        results["lightning"].append(res)
        print(f"Lightning epoch, batch {bs}{' + torch.compile' if compiled else ''}: "
              f"{res['epoch_s']:.2f} s/epoch incl. validation ({res['windows_per_s']:.0f} windows/s; "
              f"first epoch {res['first_epoch_s']:.1f} s), peak {res['peak_mem_gib']:.2f} GiB → "
              f"projected {args.epochs} epochs: {res['projected_run_min']:.1f} min")
    if results["lightning"]:
        fastest = min(results["lightning"], key=lambda r: r["projected_run_min"])
        verdict = "meets" if fastest["projected_run_min"] <= 15 else "misses"
        print(f"\nthesis-scale run ({args.windows} windows × {args.epochs} epochs): "
              f"{fastest['projected_run_min']:.1f} min → {verdict} the ≤ 15 min target "
              f"(batch {fastest['batch_size']}, compile={fastest['compile']})")
    print(f"benchmark wall time: {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=lambda v: None if isinstance(v, float)
                                              and math.isnan(v) else str(v)))


if __name__ == "__main__":
    main()
