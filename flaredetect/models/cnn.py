"""A stella-like 1-D CNN (Feinstein et al. 2020), the thesis's learned baseline.

Three convolution blocks (Conv1d + ReLU + max-pool + dropout) over the same three
per-cadence features the transformer sees, then a dense head. Trained by the same
:class:`~flaredetect.lit_module.FlareDetector`, on the same windows and splits, so the
comparison isolates the architecture.
"""
from __future__ import annotations

import torch
from torch import nn


class FlareCNN(nn.Module):
    """Window classifier with the same forward contract as ``FlareTransformer``.

    Parameters
    ----------
    seq_len : cadences per window.
    input_dim : features per cadence.
    channels : output channels of the three conv layers (stella: 16, 64; a third added).
    kernel_sizes : kernel size of each conv layer (odd, "same" padding).
    pool : max-pool factor after each conv layer.
    hidden : width of the dense layer.
    dropout : dropout after each block and in the head.

    ``forward(x, return_attention=False)`` returns ``{"logit": (B,)}``; a CNN has no
    attention, so ``return_attention`` is accepted and ignored (callers check for the key).
    """

    def __init__(self, seq_len: int = 100, input_dim: int = 3, channels: tuple[int, ...] | list[int] = (16, 32, 64),
                 kernel_sizes: tuple[int, ...] | list[int] = (7, 5, 3), pool: int = 2, hidden: int = 32,
                 dropout: float = 0.1) -> None:
        super().__init__()
        channels, kernel_sizes = list(channels), list(kernel_sizes)
        if len(channels) != len(kernel_sizes) or not channels:
            raise ValueError(f"model.channels={channels} and model.kernel_sizes={kernel_sizes} must be "
                             f"non-empty lists of equal length")
        if any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"model.kernel_sizes={kernel_sizes} must be odd positive integers")
        if pool < 1 or seq_len // pool ** len(channels) < 1:
            raise ValueError(f"model.pool={pool} leaves no cadences after {len(channels)} poolings "
                             f"of seq_len={seq_len}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout={dropout} must be in [0, 1)")
        self.seq_len = seq_len
        blocks: list[nn.Module] = []
        self.input_dim = input_dim  # selects the feature set (flaredetect.data.features)
        width_in = input_dim
        for width, kernel in zip(channels, kernel_sizes):
            blocks += [nn.Conv1d(width_in, width, kernel, padding=kernel // 2), nn.ReLU(),
                       nn.MaxPool1d(pool), nn.Dropout(dropout)]
            width_in = width
        self.features = nn.Sequential(*blocks)
        flat = width_in * (seq_len // pool ** len(channels))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> dict:
        if x.shape[1] != self.seq_len:
            raise ValueError(f"input has {x.shape[1]} cadences but the model was built for seq_len={self.seq_len}")
        h = self.features(x.transpose(1, 2))
        return {"logit": self.head(h).squeeze(-1)}
