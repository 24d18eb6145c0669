"""Device-resident training data: the whole prepared split on the GPU, batches by indexing.

The thesis-scale training set (~150k windows × 120 cadences × a few fields) is a few
hundred MB, so it fits on any training GPU. Keeping it there removes the DataLoader
(collation, pinned copies, worker processes) from the loop: a batch is one random-index
gather, and the existing batched torch augmentation and features then run on the GPU
(:meth:`FlareDataModule.transform` in ``on_after_batch_transfer``).

Torch and numpy only (no h5py, no Hydra), so ``scripts/benchmark_gpu.py`` can use it on a
bare GPU box.
"""
from __future__ import annotations

import math
from typing import Iterator, Mapping

import numpy as np
import torch


def stack_dataset(dataset, fields: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """Stack every row of a map-style dataset of dicts into ``{field: (N, ...) tensor}``.

    In-memory :class:`~flaredetect.data.datasets.WindowDataset` parts (also inside a
    ``ConcatDataset``) are stacked from their arrays directly, without a per-row loop.
    """
    parts = getattr(dataset, "datasets", [dataset])
    arrays = [getattr(p, "_arrays", None) for p in parts]
    if all(a is not None for a in arrays):
        keys = fields or tuple(arrays[0])
        return {k: torch.as_tensor(np.concatenate([a[k] for a in arrays])) for k in keys}
    rows = [dataset[i] for i in range(len(dataset))]
    keys = fields or tuple(rows[0])
    return {k: torch.stack([r[k] for r in rows]) for k in keys}


class DeviceWindowLoader:
    """Iterates shuffled batches of tensors that already live on ``device``.

    Parameters
    ----------
    tensors : ``{field: (N, ...)}`` tensors (any device; moved to ``device`` once).
    batch_size : windows per batch.
    device : where the data and the batches live (e.g. ``cuda``).
    shuffle : draw a new permutation every epoch (else fixed order).
    drop_last : drop the last incomplete batch (keeps batch shapes static for ``torch.compile``).
    seed : base seed of the permutations; epoch ``e`` uses ``seed + e``, so runs repeat.
    rank, world_size : shard of every permutation this process sees (DDP): the loader is
        not a ``DataLoader``, so Lightning cannot insert a ``DistributedSampler`` itself.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], batch_size: int, device: torch.device | str,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if not tensors:
            raise ValueError("no tensors to load")
        sizes = {k: len(v) for k, v in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"fields have different numbers of windows: {sizes}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        self.device = torch.device(device)
        self.tensors = {k: v.to(self.device) for k, v in tensors.items()}
        self.n = next(iter(sizes.values()))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        # Every rank sees the same number of windows (padding by wrap-around, as DistributedSampler).
        self.per_rank = math.ceil(self.n / self.world_size)

    def __len__(self) -> int:
        if self.drop_last:
            return self.per_rank // self.batch_size
        return math.ceil(self.per_rank / self.batch_size)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> torch.Tensor:
        if self.shuffle:
            gen = torch.Generator(device="cpu").manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        total = self.per_rank * self.world_size
        if total > self.n:
            order = torch.cat([order, order[: total - self.n]])
        return order[self.rank:total:self.world_size].to(self.device)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = self._order()
        self.epoch += 1
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield {k: v.index_select(0, idx) for k, v in self.tensors.items()}
