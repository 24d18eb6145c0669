"""Model inputs from raw windows: the thesis's three features per cadence.

1. flux min–max normalised within the window (the thesis's key fix: each window on its
   own scale, stellar variability kept, no detrending);
2. its gradient (difference to the previous cadence, 0 at the first cadence);
3. the binary quality indicator.

Works on batches of torch tensors on any device, so it runs inside the data loader,
on the GPU after transfer, and in prediction alike.
"""
from __future__ import annotations

import torch

N_FEATURES = 3


def window_features(flux_rel: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` relative flux and quality flags → ``(B, L, 3)`` float32 features."""
    flux = flux_rel.float()
    low = flux.amin(dim=-1, keepdim=True)
    span = (flux.amax(dim=-1, keepdim=True) - low).clamp_min(1e-12)
    norm = (flux - low) / span
    grad = torch.diff(norm, dim=-1, prepend=norm[..., :1])
    return torch.stack([norm, grad, (quality != 0).float()], dim=-1)
