"""Batch construction: vectorised windows and flips against plain loops, HDF5 loading, epochs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mlpgraph.data import schema
from mlpgraph.data.batches import (
    PaddedWindows,
    PoseArrays,
    flip_poses,
    gather_windows,
    sequence_bounds,
)
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available"),
    ),
]


def _random_sequences(rng: np.random.Generator, count: int = 12) -> np.ndarray:
    """(S, 2) (start, length) table with lengths from 1 (shorter than any window) to 300."""
    lengths = rng.integers(1, 300, size=count)
    lengths[:3] = [1, 2, 5]
    rng.shuffle(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.stack([starts, lengths], axis=1).astype(np.int64)


def _loop_windows(poses: np.ndarray, sequences: np.ndarray, indices: np.ndarray, pad: int):
    """The reference: one window per sample, frame by frame, clamped to the sample's sequence."""
    out = []
    for i in indices:
        row = next(r for r in sequences if r[0] <= i < r[0] + r[1])
        start, end = int(row[0]), int(row[0] + row[1])
        frames = [poses[min(max(i + k, start), end - 1)] for k in range(-pad, pad + 1)]
        out.append(np.stack(frames))
    return np.stack(out)


def _targets(sequences: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every sequence's first and last sample plus random ones."""
    edges = np.concatenate([sequences[:, 0], sequences[:, 0] + sequences[:, 1] - 1])
    n = int(sequences[:, 1].sum())
    return np.concatenate([edges, rng.integers(0, n, size=40)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pad", [0, 1, 4, 121])
def test_gather_matches_loop_and_stays_in_sequence(pad: int, device: str) -> None:
    rng = np.random.default_rng(pad)
    sequences = _random_sequences(rng)
    n = int(sequences[:, 1].sum())
    poses = rng.standard_normal((n, 16, 2)).astype(np.float32)
    sequence = np.repeat(np.arange(len(sequences)), sequences[:, 1])
    start, end = sequence_bounds(sequences, sequence)
    targets = _targets(sequences, rng)

    def gather(array: np.ndarray) -> np.ndarray:
        return (
            gather_windows(
                torch.from_numpy(array).to(device),
                torch.from_numpy(start).to(device),
                torch.from_numpy(end).to(device),
                torch.from_numpy(targets).to(device),
                pad,
            )
            .cpu()
            .numpy()
        )

    windows = gather(poses)
    assert windows.shape == (len(targets), 2 * pad + 1, 16, 2)
    np.testing.assert_array_equal(windows, _loop_windows(poses, sequences, targets, pad))
    labels = gather(sequence)
    assert labels.shape == (len(targets), 2 * pad + 1)
    assert np.all(labels == sequence[targets][:, None])
    np.testing.assert_array_equal(windows[:, pad], poses[targets])
    for array in (poses, sequence):
        padded = PaddedWindows(
            torch.from_numpy(array).to(device),
            torch.from_numpy(start).to(device),
            torch.from_numpy(end).to(device),
            pad,
        )
        np.testing.assert_array_equal(
            padded(torch.from_numpy(targets).to(device)).cpu().numpy(), gather(array)
        )


def test_sequence_bounds_rejects_out_of_order_samples() -> None:
    sequences = np.array([[0, 3], [3, 2]])
    with pytest.raises(UserInputError, match="sequence order"):
        sequence_bounds(sequences, np.array([0, 1, 0, 1, 1]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout_name", ["h36m16", "h36m17"])
def test_flip_matches_loop_and_is_an_involution(layout_name: str, device: str) -> None:
    layout = get_layout(layout_name)
    pairs = list(zip(layout.left_joints, layout.right_joints, strict=True))
    assert len(pairs) == 6
    rng = np.random.default_rng(0)
    for shape in [(5, 7, layout.num_joints, 2), (5, layout.num_joints, 3)]:
        poses = rng.standard_normal(shape).astype(np.float32)
        expected = poses.copy()
        for left, right in pairs:
            expected[..., left, :] = poses[..., right, :]
            expected[..., right, :] = poses[..., left, :]
        expected[..., 0] = -expected[..., 0]
        tensor = torch.from_numpy(poses).to(device)
        flipped = flip_poses(tensor, layout.flip_permutation)
        np.testing.assert_array_equal(flipped.cpu().numpy(), expected)
        np.testing.assert_array_equal(
            flip_poses(flipped, layout.flip_permutation).cpu().numpy(), poses
        )


# --- PoseArrays from a hand-written processed file -------------------------------------------

SUBJECTS = ["S1", "S5", "S9"]
# (subject index, length) per sequence; S5's sequences sit between S1's and S9's and are short.
SEQUENCE_SPEC = [(0, 40), (0, 3), (1, 7), (2, 25), (1, 60), (2, 1), (0, 12)]


def _write_processed(path: Path, layout_name: str = "h36m16") -> dict[str, np.ndarray]:
    """A small processed HDF5 following :mod:`mlpgraph.data.schema`; returns its arrays."""
    rng = np.random.default_rng(3)
    joints = get_layout(layout_name).num_joints
    lengths = np.array([length for _, length in SEQUENCE_SPEC])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = int(lengths.sum())
    seq_subject = np.array([s for s, _ in SEQUENCE_SPEC])
    sequence = np.repeat(np.arange(len(lengths)), lengths).astype(np.int32)
    poses_3d = rng.standard_normal((n, joints, 3)).astype(np.float32)
    poses_3d[:, 0] = 0
    arrays = {
        schema.POSES_3D: poses_3d,
        schema.POSES_2D: rng.standard_normal((n, joints, 2)).astype(np.float32),
        schema.ROOT_3D: rng.standard_normal((n, 3)).astype(np.float32),
        schema.SUBJECT: seq_subject[sequence].astype(np.int16),
        schema.ACTION: (sequence % 4).astype(np.int16),
        schema.FAMILY: (sequence % 2).astype(np.int16),
        schema.CAMERA: (sequence % 3).astype(np.int16),
        schema.FRAME: np.concatenate([np.arange(length) for length in lengths]).astype(np.int32),
        schema.SEQUENCE: sequence,
        schema.SEQUENCES: np.stack([starts, lengths], axis=1).astype(np.int64),
        schema.INTRINSICS: np.tile(np.arange(len(lengths), dtype=np.float32)[:, None], (1, 6)),
    }
    with h5py.File(path, "w") as h5:
        for name, value in arrays.items():
            h5.create_dataset(name, data=value)
        h5.attrs["format_version"] = schema.FORMAT_VERSION
        h5.attrs["dataset"] = "h36m"
        h5.attrs["keypoints"] = "gt"
        h5.attrs["layout"] = layout_name
        h5.attrs["subjects"] = json.dumps(SUBJECTS)
        h5.attrs["actions"] = json.dumps(["A", "B", "C", "D"])
        h5.attrs["families"] = json.dumps(["A", "B"])
        h5.attrs["train_subjects"] = json.dumps(["S1", "S5"])
        h5.attrs["test_subjects"] = json.dumps(["S9"])
        h5.attrs["fps"] = 50
        h5.attrs["fingerprint"] = "0" * 64
        h5.attrs["raw_files"] = json.dumps({})
        h5.attrs["params"] = json.dumps({})
        h5.attrs["complete"] = True
    return arrays


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("subjects", [None, ["S1", "S5"], ["S5"], ["S9", "S1"]])
def test_pose_arrays_subject_subset(tmp_path: Path, subjects: list[str] | None, device: str):
    arrays = _write_processed(tmp_path / "h36m_gt_h36m16.h5")
    data = PoseArrays.from_processed(tmp_path / "h36m_gt_h36m16.h5", subjects, device=device)
    wanted = [SUBJECTS.index(s) for s in subjects] if subjects else [0, 1, 2]
    keep = np.isin(arrays[schema.SUBJECT], wanted)
    assert data.num_samples == int(keep.sum())
    assert data.layout == "h36m16"
    assert data.attrs["subjects"] == SUBJECTS
    np.testing.assert_array_equal(data.poses_2d.cpu().numpy(), arrays[schema.POSES_2D][keep])
    np.testing.assert_array_equal(data.poses_3d.cpu().numpy(), arrays[schema.POSES_3D][keep])
    np.testing.assert_array_equal(data.meta[schema.FRAME].cpu().numpy(), arrays[schema.FRAME][keep])
    np.testing.assert_array_equal(
        data.meta[schema.SUBJECT].cpu().numpy(), arrays[schema.SUBJECT][keep]
    )
    kept_seqs = np.unique(arrays[schema.SEQUENCE][keep])
    assert len(data.sequences) == len(kept_seqs)
    np.testing.assert_array_equal(
        data.meta[schema.INTRINSICS][:, 0].cpu().numpy(), kept_seqs.astype(np.float32)
    )
    # Windows (pad larger than every sequence) only see their own sequence: the file's sequence
    # id of every frame in a window equals the target's.
    orig_seq = torch.as_tensor(arrays[schema.SEQUENCE][keep], device=device)
    everything = torch.arange(data.num_samples, device=device)
    labels = gather_windows(orig_seq, data.seq_start, data.seq_end, everything, pad=70)
    assert torch.equal(labels, orig_seq[:, None].expand_as(labels))
    expected = _loop_windows(
        data.poses_2d.cpu().numpy(), data.sequences.cpu().numpy(), np.arange(data.num_samples), 70
    )
    windows, targets = data.batch(everything, pad=70)
    np.testing.assert_array_equal(windows.cpu().numpy(), expected)
    assert torch.equal(targets, data.poses_3d)
    assert windows.device.type == targets.device.type == torch.device(device).type


def test_pose_arrays_rejects_unknown_subject_and_incomplete_file(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    _write_processed(path)
    with pytest.raises(UserInputError, match=r"subjects \[.S2.\] not in the file"):
        PoseArrays.from_processed(path, ["S2"])
    with h5py.File(path, "a") as h5:
        h5.attrs["complete"] = False
    with pytest.raises(UserInputError, match="incomplete"):
        PoseArrays.from_processed(path)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_flip(tmp_path: Path, device: str) -> None:
    _write_processed(tmp_path / "p.h5", "h36m17")
    data = PoseArrays.from_processed(tmp_path / "p.h5", device=device)
    perm = get_layout("h36m17").flip_permutation
    idx = torch.tensor([0, 5, 40, 100, data.num_samples - 1])
    windows, targets = data.batch(idx, pad=3)
    f_windows, f_targets = data.batch(idx, pad=3, flip=True)
    assert torch.equal(f_windows, flip_poses(windows, perm))
    assert torch.equal(f_targets, flip_poses(targets, perm))
    mask = torch.tensor([True, False, True, False, False])
    m_windows, m_targets = data.batch(idx, pad=3, flip=mask)
    assert torch.equal(m_windows[mask.to(device)], f_windows[mask.to(device)])
    assert torch.equal(m_windows[~mask.to(device)], windows[~mask.to(device)])
    assert torch.equal(m_targets[mask.to(device)], f_targets[mask.to(device)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_size", [1, 16, 147, 1000])
def test_index_batches_cover_each_sample_once(tmp_path: Path, batch_size: int, device: str):
    _write_processed(tmp_path / "p.h5")
    data = PoseArrays.from_processed(tmp_path / "p.h5", device=device)
    n = data.num_samples

    def epoch(shuffle: bool, seed: int = 0) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return list(data.index_batches(batch_size, shuffle=shuffle, generator=gen))

    for shuffle in (False, True):
        batches = epoch(shuffle)
        assert len(batches) == -(-n // batch_size)
        assert all(len(b) == batch_size for b in batches[:-1])
        assert all(b.device.type == torch.device(device).type for b in batches)
        together = torch.cat(batches).cpu()
        assert torch.equal(together.sort().values, torch.arange(n))
        if not shuffle:
            assert torch.equal(together, torch.arange(n))
    first, again = torch.cat(epoch(True, 7)), torch.cat(epoch(True, 7))
    assert torch.equal(first, again)
    if batch_size < n:
        assert not torch.equal(first, torch.cat(epoch(True, 8)))


@pytest.mark.parametrize("stride", [1, 2, 4, 7])
def test_frame_stride_takes_every_kth_frame_of_each_sequence(tmp_path: Path, stride: int):
    _write_processed(tmp_path / "p.h5")
    data = PoseArrays.from_processed(tmp_path / "p.h5")
    expected = [  # the plain loop: per sequence, frames 0, k, 2k, ... from its first sample
        i
        for start, end in sorted({(int(s), int(e)) for s, e in zip(data.seq_start, data.seq_end, strict=True)})
        for i in range(start, end, stride)
    ]
    assert data.num_targets(stride) == len(expected)
    assert data.target_indices(stride).tolist() == expected
    batches = list(data.index_batches(64, shuffle=True, generator=torch.Generator().manual_seed(0), stride=stride))
    assert len(batches) == -(-len(expected) // 64)
    assert torch.cat(batches).sort().values.tolist() == expected
    with pytest.raises(ValueError, match="stride"):
        data.target_indices(0)
