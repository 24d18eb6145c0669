"""The thesis's encoder-only transformer, with an optional per-cadence head.

Linear embedding 3 → d_model, sinusoidal positional encoding, post-norm encoder layers,
then the thesis head (flatten → 512 → 128 → 1). Attention uses PyTorch's fused
``scaled_dot_product_attention`` unless the weights are asked for (or attention dropout
is trained on CPU), in which case the same projections are computed explicitly. Dropout
uses the cheaper CPU mask of :mod:`flaredetect.models.dropout`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flaredetect.models.dropout import Dropout, byte_dropout


def check_transformer_sizes(d_model: int, num_heads: int, num_layers: int, d_ff: int, dropout: float,
                            seq_len: int, prefix: str = "model") -> None:
    """Raise ``ValueError`` naming the config keys of an invalid architecture."""
    if d_model < 1 or num_heads < 1 or num_layers < 1 or d_ff < 1 or seq_len < 1:
        raise ValueError(f"{prefix}.d_model, num_heads, num_layers, d_ff and seq_len must be positive "
                         f"(got {d_model}, {num_heads}, {num_layers}, {d_ff}, {seq_len})")
    if d_model % num_heads:
        raise ValueError(f"{prefix}.d_model={d_model} is not divisible by {prefix}.num_heads={num_heads}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{prefix}.dropout={dropout} must be in [0, 1)")


class SinusoidalPositionalEncoding(nn.Module):
    """Vaswani et al. 2017 position encoding, added to the embedded cadences."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1]]


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer (as the thesis and ``nn.TransformerEncoderLayer``)."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), Dropout(dropout), nn.Linear(d_ff, d_model))
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        weights = None
        # Explicit attention when the weights are asked for, and when training with attention
        # dropout on CPU: there SDPA falls back to the same math with PyTorch's slow dropout mask.
        if need_weights or (p > 0 and x.device.type == "cpu"):
            weights = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1), dim=-1)
            context = (byte_dropout(weights, p) if p > 0 else weights) @ v
        else:
            context = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        x = self.norm1(x + self.dropout(self.out(context.transpose(1, 2).reshape(b, n, d))))
        x = self.norm2(x + self.dropout(self.ff(x)))
        return x, (weights if need_weights else None)


class FlareTransformer(nn.Module):
    """Window classifier; optionally also a per-cadence flare-mask head.

    Parameters
    ----------
    seq_len : cadences per window (thesis 100).
    input_dim : features per cadence: 3 (flux, gradient, quality), 4 (+ significance) or 5 (+ detrended significance).
    d_model, num_heads, num_layers, d_ff, dropout : encoder sizes (thesis 256, 8, 2, 512, 0.1).
    head_hidden : hidden sizes of the window head (thesis [512, 128]).
    pooling : ``flatten`` (thesis: all cadences × d_model into the head) or ``mean``.
    cadence_head : add a linear per-cadence head predicting the flare mask.

    ``forward`` returns a dict: ``logit`` (B,), ``cadence_logit`` (B, L) when the
    cadence head is on, and ``attention`` (list over layers of (B, heads, L, L)) when
    ``return_attention=True``.
    """

    def __init__(self, seq_len: int = 100, input_dim: int = 3, d_model: int = 256, num_heads: int = 8,
                 num_layers: int = 2, d_ff: int = 512, dropout: float = 0.1,
                 head_hidden: tuple[int, ...] | list[int] = (512, 128), pooling: str = "flatten",
                 cadence_head: bool = False) -> None:
        super().__init__()
        check_transformer_sizes(d_model, num_heads, num_layers, d_ff, dropout, seq_len)
        if pooling not in ("flatten", "mean"):
            raise ValueError(f"model.pooling={pooling!r} must be one of ['flatten', 'mean']")
        self.seq_len = seq_len
        self.input_dim = input_dim  # selects the feature set (flaredetect.data.features)
        self.embed = nn.Linear(input_dim, d_model)
        self.position = SinusoidalPositionalEncoding(d_model, seq_len)
        self.input_dropout = Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.pooling = pooling
        width = seq_len * d_model if pooling == "flatten" else d_model
        head: list[nn.Module] = []
        for hidden in head_hidden:
            head += [nn.Linear(width, hidden), nn.ReLU(), Dropout(dropout)]
            width = hidden
        head.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*head)
        self.cadence_head = nn.Linear(d_model, 1) if cadence_head else None

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> dict:
        if x.shape[1] != self.seq_len:
            raise ValueError(f"input has {x.shape[1]} cadences but the model was built for seq_len={self.seq_len}")
        h = self.input_dropout(self.position(self.embed(x)))
        attention = []
        for layer in self.layers:
            h, weights = layer(h, need_weights=return_attention)
            attention.append(weights)
        pooled = h.flatten(1) if self.pooling == "flatten" else h.mean(dim=1)
        out = {"logit": self.head(pooled).squeeze(-1)}
        if self.cadence_head is not None:
            out["cadence_logit"] = self.cadence_head(h).squeeze(-1)
        if return_attention:
            out["attention"] = attention
        return out


def attention_rollout(attention: list[torch.Tensor]) -> torch.Tensor:
    """Abnar & Zuidema 2020 rollout: head-averaged attention plus identity (residual),
    row-normalised and multiplied through the layers. Returns (B, L, L)."""
    rollout = None
    for layer in attention:
        a = layer.mean(dim=1)
        a = a + torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout
