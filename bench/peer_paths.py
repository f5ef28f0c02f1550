"""The per-item data paths peer code uses, for the benchmarks to compare against.

``ReleaseStyleWindows`` does, per sample, what the MLP-Graph release's data set does (look the
sequence up by key, copy it whole, edge-pad the 2D and 3D windows with ``np.pad``, return the
release's eight fields); ``PerItemWindows`` is a lean per-item path (slice and pad one 2D window),
a lower bound for any per-item design. ``random_arrays`` makes Human3.6M-like data for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class ReleaseStyleWindows(Dataset):
    """The release's per-item path, written from its description (see the module docstring)."""

    def __init__(self, poses_2d: np.ndarray, poses_3d: np.ndarray, sequences: np.ndarray, pad: int) -> None:
        self.pad = pad
        self.poses_2d, self.poses_3d, self.cameras = {}, {}, {}
        self.pairs: list[tuple[tuple[str, str, int], int]] = []
        for row, (start, length) in enumerate(sequences.tolist()):
            key = (f"S{row % 7}", f"action {row}", row % 4)
            self.poses_2d[key] = poses_2d[start : start + length]
            self.poses_3d[key] = poses_3d[start : start + length]
            self.cameras[key] = np.array([1.1, 1.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
            self.pairs.extend((key, frame) for frame in range(length))

    def __len__(self) -> int:
        return len(self.pairs)

    def _window(self, seq: np.ndarray, frame: int) -> np.ndarray:
        low, high = frame - self.pad, frame + self.pad + 1
        low_c, high_c = max(low, 0), min(high, len(seq))
        if low_c != low or high_c != high:
            return np.pad(seq[low_c:high_c], ((low_c - low, high - high_c), (0, 0), (0, 0)), "edge")
        return seq[low_c:high_c]

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        key, frame = self.pairs[i]
        seq_2d = self.poses_2d[key].copy()
        seq_3d = self.poses_3d[key].copy()
        window_2d, window_3d = self._window(seq_2d, frame), self._window(seq_3d, frame)
        subject, action, camera = key
        box = np.array([0, 0, 1, 1])
        return self.cameras[key], window_3d, window_2d, action, subject, 1.0, box, camera


def release_epoch(
    dataset: ReleaseStyleWindows, batch_size: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The release's loop: ``DataLoader(dataset, batch_size, shuffle=True)``, centre-frame target."""
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0, generator=gen)
    for _cam, window_3d, window_2d, *_rest in loader:
        yield window_2d, window_3d[:, dataset.pad]


class PerItemWindows(Dataset):
    """The lean per-item path: one edge-padded window per ``__getitem__``, built in numpy."""

    def __init__(
        self,
        poses_2d: np.ndarray,
        poses_3d: np.ndarray,
        seq_start: np.ndarray,
        seq_end: np.ndarray,
        pad: int,
    ) -> None:
        self.poses_2d, self.poses_3d = poses_2d, poses_3d
        self.seq_start, self.seq_end, self.pad = seq_start, seq_end, pad

    def __len__(self) -> int:
        return len(self.poses_2d)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = int(self.seq_start[i]), int(self.seq_end[i])
        low, high = i - self.pad, i + self.pad + 1
        low_c, high_c = max(low, start), min(high, end)
        window = self.poses_2d[low_c:high_c]
        if low_c != low or high_c != high:
            window = np.pad(window, ((low_c - low, high - high_c), (0, 0), (0, 0)), "edge")
        return torch.from_numpy(window), torch.from_numpy(self.poses_3d[i])


def random_arrays(num_samples: int, joints: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random (poses_2d, poses_3d, sequences), Human3.6M-like sequence lengths (1-5 k frames)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1000, 5000, size=num_samples // 1000 + 1)
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), num_samples) + 1]
    lengths[-1] -= int(lengths.sum()) - num_samples
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    sequences = np.stack([starts, lengths], axis=1).astype(np.int64)
    poses_2d = rng.standard_normal((num_samples, joints, 2), dtype=np.float32)
    poses_3d = rng.standard_normal((num_samples, joints, 3), dtype=np.float32)
    return poses_2d, poses_3d, sequences[lengths > 0]


def per_item_epoch(dataset: PerItemWindows, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The peer path: ``DataLoader(dataset, batch_size, shuffle=True, num_workers=0)``."""
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0, generator=gen)
    return iter(loader)
