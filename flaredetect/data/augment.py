"""Training-time augmentation of raw windows, batched in torch (CPU or GPU).

Applied to *relative flux before* min–max normalisation. On its own, scaling the flux by
±10 % would be undone by the per-window normalisation; together with the added noise
(drawn relative to the star's white-noise sigma) it changes the flare's signal-to-noise,
which is what the thesis's amplitude scaling was for.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Augmentation:
    """Switches and strengths; each can be turned off from the config.

    peak_shift : random crop inside the stored context (else the centre crop).
    amplitude_scale : flux multiplied by 1 + U(-s, s) (0 disables).
    noise_sigma : Gaussian noise of this many star noise-sigmas added (0 disables).
    time_reversal_prob : probability to reverse a window in time (0 disables; flares
        rise fast and decay slowly, so reversal yields unphysical shapes — off by default).
    """

    peak_shift: bool = True
    amplitude_scale: float = 0.1
    noise_sigma: float = 0.3
    time_reversal_prob: float = 0.0


def crop(batch: dict[str, torch.Tensor], length: int, offsets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Crop every per-cadence tensor ``(B, C)`` to ``(B, length)`` starting at ``offsets``."""
    out = dict(batch)
    idx = offsets[:, None] + torch.arange(length, device=offsets.device)[None, :]
    for key, value in batch.items():
        if value.ndim == 2 and value.shape[1] >= length:
            out[key] = torch.gather(value, 1, idx.to(value.device))
    return out


def centre_offsets(batch_size: int, context: int, device) -> torch.Tensor:
    return torch.full((batch_size,), context, dtype=torch.long, device=device)


def augment(batch: dict[str, torch.Tensor], length: int, context: int, aug: Augmentation,
            generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Crop (randomly when ``peak_shift``) and perturb a batch of raw windows."""
    flux = batch["flux_rel"]
    b, device = flux.shape[0], flux.device
    if aug.peak_shift and context > 0:
        offsets = torch.randint(0, 2 * context + 1, (b,), device=device, generator=generator)
    else:
        offsets = centre_offsets(b, context, device)
    out = crop(batch, length, offsets)
    flux = out["flux_rel"].float()
    if aug.amplitude_scale > 0:
        scale = 1 + (2 * torch.rand(b, 1, device=device, generator=generator) - 1) * aug.amplitude_scale
        flux = flux * scale
    if aug.noise_sigma > 0:
        sigma = torch.nan_to_num(batch["noise_sigma"].float(), nan=0.0)[:, None]
        flux = flux + aug.noise_sigma * sigma * torch.randn(flux.shape, device=device, generator=generator)
    out["flux_rel"] = flux
    if aug.time_reversal_prob > 0:
        flip = torch.rand(b, device=device, generator=generator) < aug.time_reversal_prob
        for key, value in out.items():
            if value.ndim == 2 and value.shape[1] == length:
                out[key] = torch.where(flip[:, None], value.flip(1), value)
    return out
