"""Dropout with a cheaper random mask on CPU.

PyTorch's CPU dropout draws one random number per element with the (serial) CPU
generator; at the thesis sizes that was ~25 % of a training step on a 2-core machine.
This draws one 64-bit number per 8 elements and keeps an element when its byte is
>= round(256 p), so the drop probability is quantised to 1/256 (p=0.1 → 0.1016) and the
kept values are scaled by 256 / (256 - round(256 p)) to keep the expectation. The
generator is torch's, so ``seed_everything`` still makes runs reproducible. On other
devices, and in eval mode, it is ``nn.Dropout``.
"""
from __future__ import annotations

import torch
from torch import nn


def byte_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of ``x`` with a byte-quantised drop probability ``p``."""
    threshold = min(round(256 * p), 255)
    if threshold == 0:
        return x
    n = x.numel()
    bits = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device).random_(-2**63, None)
    # Comparing straight into a float mask is several times faster than a bool mask cast
    # afterwards, and multiplying by it (forward and backward) faster than torch.where.
    keep = torch.ge(bits.view(torch.uint8)[:n].view(x.shape), threshold, out=torch.empty_like(x))
    return x * keep.mul_(256.0 / (256 - threshold))


class Dropout(nn.Dropout):
    """``nn.Dropout`` that uses :func:`byte_dropout` when training on CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.p > 0 and x.device.type == "cpu" and not torch.jit.is_tracing():
            return byte_dropout(x, self.p)
        return super().forward(x)
