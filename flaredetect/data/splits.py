"""Star-grouped train/val/test splits: no star in two splits, the same seed gives the
same assignment whatever order the stars arrive in."""
from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}


def split_stars(tics: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 42) -> dict[int, int]:
    """Map each unique TIC to a split code (0 train, 1 val, 2 test).

    Stars are sorted before a seeded permutation, so the result depends only on the set
    of stars and the seed. Each split with a positive fraction gets at least one star
    when there are enough stars.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions={list(fractions)} must be three non-negative numbers summing to 1")
    stars = np.unique(np.asarray(tics, dtype=np.int64))
    order = np.random.default_rng(seed).permutation(len(stars))
    n = len(stars)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_val = max(n_val, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    codes = np.zeros(n, dtype=np.uint8)
    codes[order[:n_val]] = 1
    codes[order[n_val:n_val + n_test]] = 2
    return {int(s): int(c) for s, c in zip(stars, codes)}


def assign_splits(tics: np.ndarray, fractions=(0.8, 0.1, 0.1), seed: int = 42) -> np.ndarray:
    """Split code per window, grouped by star."""
    mapping = split_stars(tics, fractions, seed)
    return np.array([mapping[int(t)] for t in tics], dtype=np.uint8)
