"""LightningDataModule over one or more window sources (synthetic, prepared real data)."""
from __future__ import annotations

from pathlib import Path

import h5py
import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from flaredetect.data.augment import Augmentation, augment, centre_offsets, crop
from flaredetect.data.datasets import EpochShuffleSampler, WeightedEpochSampler, WindowDataset
from flaredetect.data.features import window_features
from flaredetect.data.splits import SPLIT_CODES, SPLITS
from flaredetect.data.window_file import check_window_file


def model_inputs(batch: dict[str, torch.Tensor], n_features: int = 3) -> dict[str, torch.Tensor]:
    """Add model features ``x`` (B, L, 3), window label ``y`` and per-cadence target
    ``cadence_y`` to a batch of cropped windows."""
    out = dict(batch)
    out["x"] = window_features(batch["flux_rel"], batch["quality"], n_features)
    out["y"] = (batch["peak_mask"] > 0).any(dim=1).float()
    out["cadence_y"] = batch["flare_mask"].float()
    return out


class FlareDataModule(L.LightningDataModule):
    """Windows from ``sources`` (a dict name → source), split by star.

    Each source writes or checks a window file in :meth:`prepare_data` and carries its
    star-grouped split; :meth:`setup` reads the split indices. Batches hold raw windows
    with their context; cropping, augmentation (training only) and feature computation
    happen after the batch reaches its device, so they run on the GPU when there is one.

    ``source_weights`` (name -> weight, null: every window alike) mixes the training windows
    of the sources by weight instead of by their sizes (:class:`~flaredetect.data.datasets.WeightedEpochSampler`):
    ``{synthetic: 1, injected: 1}`` draws half of every epoch from each.

    ``device_resident=True`` (GPU fast path) copies the whole training split to the
    training device once and draws batches there (:class:`flaredetect.gpu_data.DeviceWindowLoader`)
    instead of through a ``DataLoader``; validation and test keep their loaders.
    """

    def __init__(self, sources: dict, batch_size: int = 64, eval_batch_size: int | None = None,
                 num_workers: int = 0, pin_memory: bool = False, persistent_workers: bool = False,
                 in_memory: bool = True, augmentation: dict | Augmentation | None = None,
                 device_resident: bool = False, n_features: int = 3, source_weights: dict | None = None) -> None:
        super().__init__()
        if not sources:
            raise ValueError("data.sources is empty: name at least one window source")
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size} must be >= 1")
        self.sources = dict(sources)
        self.source_weights = self._check_weights(source_weights)
        if self.source_weights and device_resident:
            raise ValueError("data.source_weights cannot be combined with data.device_resident=true "
                             "(the device loader draws every window alike); set one of them")
        self.n_features = int(n_features)  # = model.input_dim (see flaredetect.data.features)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.in_memory = bool(in_memory)
        self.device_resident = bool(device_resident)
        if isinstance(augmentation, Augmentation):
            self.augmentation = augmentation
        else:
            self.augmentation = Augmentation(**(augmentation or {}))
        self.length: int | None = None
        self.context: int | None = None
        self.datasets: dict[str, ConcatDataset] = {}
        # Per split: list of (source name, path, row indices in the file), read by
        # flaredetect.evaluation.runs.split_windows.
        self.index: dict[str, list[tuple[str, Path, np.ndarray]]] = {}

    def _check_weights(self, weights: dict | None) -> dict[str, float] | None:
        if not weights:
            return None
        unknown = sorted(set(weights) - set(self.sources))
        if unknown:
            raise ValueError(f"data.source_weights names {unknown}, not among data.sources {list(self.sources)}")
        out = {}
        for name in self.sources:
            try:
                out[name] = float(weights.get(name, 0.0))
            except (TypeError, ValueError):
                raise ValueError(f"data.source_weights.{name}={weights.get(name)!r} is not a number") from None
            if not out[name] >= 0.0 or out[name] == float("inf"):
                raise ValueError(f"data.source_weights.{name}={out[name]} must be a finite number >= 0")
        if not any(out.values()):
            raise ValueError(f"data.source_weights {weights} gives every source weight 0")
        return out

    def prepare_data(self) -> None:
        for source in self.sources.values():
            source.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        parts: dict[str, list] = {s: [] for s in SPLITS}
        emptied: dict[str, list[str]] = {s: [] for s in SPLITS}  # why a split may end up empty
        self.index = {s: [] for s in SPLITS}
        for name, source in self.sources.items():
            path = source.prepare()
            header = check_window_file(path)
            if self.length is None:
                self.length, self.context = header["length"], header["context"]
            elif (header["length"], header["context"]) != (self.length, self.context):
                raise ValueError(
                    f"data.sources.{name}: windows of length {header['length']} (context {header['context']}) "
                    f"cannot be mixed with length {self.length} (context {self.context})")
            with h5py.File(path, "r") as f:
                split = f["split"][...]
                tic = f["tic"][...] if hasattr(source, "split_rows") else None
            try:
                per_split = (source.split_rows(split, tic) if tic is not None else
                             {s: np.flatnonzero(split == SPLIT_CODES[s]) for s in source.splits})
            except ValueError as err:
                raise ValueError(f"data.sources.{name}: {err}") from None
            for split_name, rows in per_split.items():
                if len(rows):
                    parts[split_name].append(WindowDataset(path, rows, in_memory=self.in_memory))
                    self.index[split_name].append((name, Path(path), rows))
                elif (split == SPLIT_CODES[split_name]).any():  # only held-out stars empty a split
                    emptied[split_name].append(f"data.sources.{name}: "
                                               + source.emptied_split_note(split_name, split, tic))
        for split_name in ("train", "val"):
            if not parts[split_name]:
                raise ValueError(f"no windows for the {split_name} split in data.sources {list(self.sources)}"
                                 + "".join(f"; {why}" for why in emptied[split_name]))
        self.datasets = {s: ConcatDataset(p) for s, p in parts.items() if p}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise ValueError(f"no windows for the {split} split in data.sources {list(self.sources)}")
        dataset = self.datasets[split]
        # Shuffling and the loader's own seed draw stay off torch's global generator: the
        # data order of an epoch is then the same in a resumed run (see EpochShuffleSampler).
        seed = torch.initial_seed() % 2**31
        sampler = EpochShuffleSampler(dataset, seed) if shuffle else None
        if shuffle and self.source_weights:
            sizes = {name: 0 for name in self.sources}
            for name, _, rows in self.index[split]:
                sizes[name] += len(rows)
            if not any(sizes[n] for n, w in self.source_weights.items() if w > 0):
                raise ValueError(f"data.source_weights {self.source_weights}: no {split} windows in a weighted source")
            # ConcatDataset order = self.index order (sources with windows in this split)
            names = [name for name, _, _ in self.index[split]]
            sampler = WeightedEpochSampler(dataset, [len(r) for _, _, r in self.index[split]],
                                           [self.source_weights[n] for n in names], seed)
        return DataLoader(dataset, batch_size=self.batch_size if shuffle else self.eval_batch_size,
                          sampler=sampler,
                          generator=torch.Generator().manual_seed(seed), num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.persistent_workers)

    def train_dataloader(self):
        if self.device_resident and self.trainer is not None:
            from flaredetect.gpu_data import DeviceWindowLoader, stack_dataset

            if "train" not in self.datasets:
                raise ValueError(f"no windows for the train split in data.sources {list(self.sources)}")
            return DeviceWindowLoader(stack_dataset(self.datasets["train"]), self.batch_size,
                                      self.trainer.strategy.root_device, shuffle=True,
                                      seed=torch.initial_seed() % 2**31, rank=self.trainer.global_rank,
                                      world_size=self.trainer.world_size)
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if not isinstance(batch, dict):  # already model features (the summary's example input)
            return batch
        training = self.trainer is not None and self.trainer.training
        return self.transform(batch, training)

    def transform(self, batch: dict, training: bool) -> dict:
        """Crop (randomly and augmented when training, else centred) and add features."""
        if training:
            batch = augment(batch, self.length, self.context, self.augmentation)
        else:
            batch = crop(batch, self.length, centre_offsets(batch["flux_rel"].shape[0], self.context,
                                                            batch["flux_rel"].device))
        return model_inputs(batch, self.n_features)
