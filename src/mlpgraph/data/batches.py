"""In-memory batches for training and evaluation: temporal windows by index arithmetic.

Whole arrays live in memory (or on the GPU); a batch of T-frame windows (T = 2 * pad + 1) is one
vectorised gather ``poses_2d[clamp(idx[:, None] + arange(-pad, pad + 1))]``, clamped per row to
the target's own sequence so that windows repeat the edge frame instead of crossing into a
neighbouring sequence. No window is ever materialised for the whole data set (243 frames x 1.5 M
samples would not fit in memory) and no per-sample Python code runs. See
:mod:`mlpgraph.data.schema` for the file contract.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mlpgraph.data import schema
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout


def gather_windows(
    poses: torch.Tensor,
    seq_start: torch.Tensor,
    seq_end: torch.Tensor,
    indices: torch.Tensor,
    pad: int,
) -> torch.Tensor:
    """Windows of ``2 * pad + 1`` frames centred on ``indices``, edge-padded within each sequence.

    ``poses`` is (N, ...) in sequence order (typically (N, J, 2)); ``seq_start`` / ``seq_end`` (N,)
    give each sample's sequence as a half-open index range. Returns (B, T, ...). Frames before the
    start or after the end of the target's sequence repeat its first or last frame.
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    indices = indices.to(device=poses.device, dtype=torch.long)
    offsets = torch.arange(-pad, pad + 1, device=poses.device)
    lo = seq_start[indices].unsqueeze(1)
    hi = seq_end[indices].unsqueeze(1) - 1
    frame_idx = torch.clamp(indices.unsqueeze(1) + offsets, min=lo, max=hi)
    # index_select on flattened rows is a few times faster on CPU than advanced indexing.
    rows = poses.reshape(poses.shape[0], -1).index_select(0, frame_idx.reshape(-1))
    return rows.view(*frame_idx.shape, *poses.shape[1:])


class PaddedWindows:
    """All windows of one ``pad`` as a strided view of an edge-padded copy of the sequences.

    Each sequence is stored with ``pad`` copies of its first and last frame around it, so the
    window of sample ``i`` is the contiguous block starting at ``i + 2 * pad * k`` (``k``: the rank
    of its sequence in storage order), and a batch is one ``index_select`` of such blocks on the
    strided (N + 2 * pad * S - T + 1, T, ...) view. Costs one extra copy of the data (plus
    ``2 * pad`` rows per sequence) and gathers several times faster than per-frame indexing.
    Gives exactly what :func:`gather_windows` gives.
    """

    def __init__(
        self, poses: torch.Tensor, seq_start: torch.Tensor, seq_end: torch.Tensor, pad: int
    ) -> None:
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        device = poses.device
        self.pad = pad
        starts = torch.unique(seq_start)  # sorted; sequences partition [0, N)
        ends = seq_end[starts]  # sample ``start`` belongs to the sequence starting there
        lengths = ends - starts
        block_len = lengths + 2 * pad
        rank = torch.arange(len(starts), device=device)
        block_start = starts + 2 * pad * rank
        block = torch.repeat_interleave(rank, block_len)
        row = torch.arange(len(block), device=device)
        src = torch.clamp(
            row - block_start[block] - pad + starts[block], min=starts[block], max=ends[block] - 1
        )
        padded = poses.index_select(0, src).contiguous()
        frames = 2 * pad + 1
        flat = padded.reshape(len(padded), -1)
        width = flat.shape[1]
        self._view = flat.as_strided(
            (max(len(padded) - frames + 1, 0), frames, width), (width, width, 1)
        )
        self._sample_shape = poses.shape[1:]
        self._offset = 2 * pad * torch.searchsorted(starts, seq_start)
        self._padded = padded

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) windows centred on ``indices``."""
        indices = indices.to(device=self._offset.device, dtype=torch.long)
        blocks = self._view.index_select(0, indices + self._offset[indices])
        return blocks.view(len(indices), blocks.shape[1], *self._sample_shape)


def flip_poses(poses: torch.Tensor, flip_permutation: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Horizontal flip of 2D or 3D poses (..., J, C): negate x and swap left and right joints.

    ``flip_permutation`` is the layout's ``SkeletonLayout.flip_permutation``. An involution:
    flipping twice gives the input back.
    """
    perm = torch.as_tensor(flip_permutation, dtype=torch.long, device=poses.device)
    sign = torch.ones(poses.shape[-1], dtype=poses.dtype, device=poses.device)
    sign[0] = -1
    return poses.index_select(-2, perm) * sign


def sequence_bounds(sequences: np.ndarray, sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (start, end) sample indices of each sample's sequence, checked for contiguity.

    ``sequences`` is the (S, 2) (start, length) table, ``sequence`` the (N,) row per sample.
    Raises :class:`UserInputError` when a sample lies outside its sequence's index range, which
    would let windows cross sequences.
    """
    sequences = np.asarray(sequences, dtype=np.int64).reshape(-1, 2)
    sequence = np.asarray(sequence, dtype=np.int64)
    n = len(sequence)
    if n and (sequence.min() < 0 or sequence.max() >= len(sequences)):
        raise UserInputError("sequence ids out of range of the sequences table")
    start = sequences[sequence, 0]
    end = start + sequences[sequence, 1]
    position = np.arange(n, dtype=np.int64)
    if int(sequences[:, 1].sum()) != n or np.any(position < start) or np.any(position >= end):
        raise UserInputError(
            "samples are not in sequence order: "
            "a sample lies outside its sequence's (start, length)"
        )
    return start, end


@dataclass
class PoseArrays:
    """One split's samples held in memory (or on a device), with batch construction by index.

    Per-sample tensors are in sequence order; ``seq_start`` / ``seq_end`` give each sample's
    sequence as a half-open index range into these tensors. ``sequence`` indexes ``sequences``
    (this object's own, renumbered after subject selection).
    """

    poses_2d: torch.Tensor
    poses_3d: torch.Tensor
    seq_start: torch.Tensor
    seq_end: torch.Tensor
    sequences: torch.Tensor
    sequence: torch.Tensor
    layout: str = "h36m16"
    meta: dict[str, torch.Tensor] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    _windows: dict[int, PaddedWindows] = field(default_factory=dict, init=False, repr=False)

    @property
    def num_samples(self) -> int:
        return int(self.poses_2d.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.poses_2d.shape[1])

    @property
    def device(self) -> torch.device:
        return self.poses_2d.device

    @property
    def flip_permutation(self) -> np.ndarray:
        return get_layout(self.layout).flip_permutation

    @classmethod
    def from_numpy(
        cls,
        poses_2d: np.ndarray,
        poses_3d: np.ndarray,
        sequences: np.ndarray,
        sequence: np.ndarray | None = None,
        layout: str = "h36m16",
        device: str | torch.device = "cpu",
        meta: dict[str, np.ndarray] | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> PoseArrays:
        """Build from in-memory arrays; ``sequence`` defaults to each sample's ``sequences`` row."""
        sequences = np.asarray(sequences, dtype=np.int64).reshape(-1, 2)
        if sequence is None:
            sequence = np.repeat(np.arange(len(sequences)), sequences[:, 1])
        if len(poses_2d) != len(poses_3d) or len(poses_2d) != len(sequence):
            raise UserInputError(
                f"per-sample arrays disagree in length: poses_2d {len(poses_2d)}, "
                f"poses_3d {len(poses_3d)}, sequence {len(sequence)}"
            )
        if poses_2d.shape[1] != get_layout(layout).num_joints:
            raise UserInputError(
                f"layout {layout} has {get_layout(layout).num_joints} joints, "
                f"the poses have {poses_2d.shape[1]}"
            )
        start, end = sequence_bounds(sequences, sequence)

        def to_dev(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)

        return cls(
            poses_2d=to_dev(poses_2d, torch.float32),
            poses_3d=to_dev(poses_3d, torch.float32),
            seq_start=to_dev(start, torch.long),
            seq_end=to_dev(end, torch.long),
            sequences=to_dev(sequences, torch.long),
            sequence=to_dev(sequence, torch.long),
            layout=layout,
            meta={key: to_dev(value, _torch_dtype(value)) for key, value in (meta or {}).items()},
            attrs=dict(attrs or {}),
        )

    @classmethod
    def from_processed(
        cls,
        path: str | os.PathLike[str],
        subjects: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> PoseArrays:
        """Load a processed HDF5 file (:mod:`mlpgraph.data.schema`), keeping ``subjects`` only.

        Reading and subject selection are :func:`mlpgraph.data.preprocess.load_processed`'s:
        each dataset read whole, once; whole sequences kept and renumbered. ``meta`` holds
        ``root_3d``, ``subject``, ``action``, ``family``, ``camera``, ``frame`` for the kept
        samples and ``intrinsics`` per kept sequence; ``attrs`` the file's attributes.
        """
        from mlpgraph.data.preprocess import load_processed

        data = load_processed(path, subjects)
        attrs = data.pop("attrs")
        if subjects is not None:
            attrs["selected_subjects"] = list(subjects)
        try:
            sequence_bounds(data[schema.SEQUENCES], data[schema.SEQUENCE])
        except UserInputError as exc:
            raise UserInputError(f"{path}: {exc}") from None
        meta_names = (schema.ROOT_3D, schema.SUBJECT, schema.ACTION, schema.FAMILY, schema.CAMERA, schema.FRAME)
        meta = {name: data[name] for name in meta_names}
        meta[schema.INTRINSICS] = data[schema.INTRINSICS]
        return cls.from_numpy(
            data[schema.POSES_2D],
            data[schema.POSES_3D],
            data[schema.SEQUENCES],
            data[schema.SEQUENCE],
            layout=str(attrs["layout"]),
            device=device,
            meta=meta,
            attrs=attrs,
        )

    def to(self, device: str | torch.device) -> PoseArrays:
        """A copy with every tensor on ``device``."""
        return PoseArrays(
            poses_2d=self.poses_2d.to(device),
            poses_3d=self.poses_3d.to(device),
            seq_start=self.seq_start.to(device),
            seq_end=self.seq_end.to(device),
            sequences=self.sequences.to(device),
            sequence=self.sequence.to(device),
            layout=self.layout,
            meta={key: value.to(device) for key, value in self.meta.items()},
            attrs=dict(self.attrs),
        )

    def windows(self, indices: torch.Tensor, pad: int) -> torch.Tensor:
        """(B, 2 * pad + 1, J, 2) input windows centred on ``indices``.

        Uses a :class:`PaddedWindows` cached per ``pad`` (one padded copy of ``poses_2d``).
        """
        if pad not in self._windows:
            self._windows[pad] = PaddedWindows(self.poses_2d, self.seq_start, self.seq_end, pad)
        return self._windows[pad](indices)

    def batch(
        self, indices: torch.Tensor, pad: int, flip: bool | torch.Tensor = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(windows (B, T, J, 2), targets (B, J, 3)) for ``indices``.

        ``flip`` True flips every sample horizontally (test-time augmentation); a (B,) bool tensor
        flips the samples where it is True (random flip augmentation in training).
        """
        indices = indices.to(device=self.device, dtype=torch.long)
        windows = self.windows(indices, pad)
        targets = self.poses_3d[indices]
        if isinstance(flip, torch.Tensor):
            mask = flip.to(device=self.device, dtype=torch.bool)
            perm = self.flip_permutation
            windows = torch.where(mask[:, None, None, None], flip_poses(windows, perm), windows)
            targets = torch.where(mask[:, None, None], flip_poses(targets, perm), targets)
        elif flip:
            windows = flip_poses(windows, self.flip_permutation)
            targets = flip_poses(targets, self.flip_permutation)
        return windows, targets

    def index_batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        stride: int = 1,
    ) -> Iterator[torch.Tensor]:
        """Index tensors (on this object's device) covering every sample once, last one partial.

        ``stride`` k > 1 covers only every k-th frame of each sequence (frames 0, k, 2k, ... from
        its start) as targets; their windows still read every frame. Shuffled order is
        ``torch.randperm`` drawn from ``generator`` (seed it for reproducible epochs); unshuffled
        order is sequence order.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        targets = self.target_indices(stride)
        if shuffle:
            gen_device = generator.device if generator is not None else torch.device("cpu")
            order = targets[torch.randperm(len(targets), generator=generator, device=gen_device).to(self.device)]
        else:
            order = targets
        yield from order.split(batch_size)

    def target_indices(self, stride: int = 1) -> torch.Tensor:
        """Sample indices of every ``stride``-th frame of each sequence, counted from its first frame."""
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        everything = torch.arange(self.num_samples, device=self.device)
        if stride == 1:
            return everything
        return everything[(everything - self.seq_start) % stride == 0]

    def num_targets(self, stride: int = 1) -> int:
        """How many samples :meth:`index_batches` covers at ``stride``."""
        return self.num_samples if stride == 1 else len(self.target_indices(stride))


def _torch_dtype(array: np.ndarray) -> torch.dtype:
    """float32 for floating arrays, int64 for integer ones (indexing-friendly)."""
    return torch.float32 if np.issubdtype(np.asarray(array).dtype, np.floating) else torch.long
