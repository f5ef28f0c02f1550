"""Evaluation: prediction (batching, flip averaging, root, refinement) against plain loops, the
Human3.6M / 3DHP / hard-pose protocols on synthetic data with known errors, inference timing."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mlpgraph import evaluation
from mlpgraph.data import formats
from mlpgraph.data.batches import PoseArrays, flip_poses
from mlpgraph.evaluation import mpi3dhp
from mlpgraph.layouts import get_layout
from mlpgraph.models import PoseRefinement, build_model
from mlpgraph.models.refine import mean_bone_lengths, refinement_input
from mlpgraph.training_stage import h36m_evaluator

LAYOUT = get_layout("h36m16")
J = LAYOUT.num_joints
PERM = LAYOUT.flip_permutation
FAMILIES = ["Directions", "Eating", "Walking", "Unused"]


def make_data(seed: int = 0, lengths: tuple[int, ...] = (5, 1, 8, 3)) -> PoseArrays:
    """Random sequences with meta (root_3d, family, intrinsics) like a processed file's."""
    rng = np.random.default_rng(seed)
    lengths_arr = np.array(lengths)
    sequences = np.stack([np.concatenate([[0], np.cumsum(lengths_arr)[:-1]]), lengths_arr], axis=1)
    n = int(lengths_arr.sum())
    poses_2d = (rng.normal(size=(n, J, 2)) * 0.3).astype(np.float32)
    poses_3d = (rng.normal(size=(n, J, 3)) * 0.3).astype(np.float32)
    poses_3d -= poses_3d[:, :1]
    root_3d = np.concatenate([rng.normal(size=(n, 2)) * 0.2, rng.uniform(4.0, 6.0, size=(n, 1))], axis=1)
    intrinsics = np.concatenate(
        [rng.uniform(2.2, 2.4, size=(len(lengths), 2)), rng.normal(size=(len(lengths), 2)) * 0.01,
         np.tile([1000.0, 1000.0], (len(lengths), 1))],
        axis=1,
    )  # fmt: skip
    family = np.arange(n) % 3
    meta = {"root_3d": root_3d.astype(np.float32), "family": family, "intrinsics": intrinsics.astype(np.float32)}
    return PoseArrays.from_numpy(poses_2d, poses_3d, sequences, meta=meta, attrs={"families": FAMILIES})


def tiny_mlpgraph(frames: int = 1) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("mlpgraph", frames=frames, hid_dim=32, spatial_hid_dim=32, channel_hid_dim=48, num_layers=1)
    # non-trivial BatchNorm statistics, so eval mode matters
    model.train()
    with torch.no_grad():
        model(torch.randn(64, frames, J, 2))
    return model


class WindowMean(nn.Module):
    """A stub lifter: (u, v, 0) of the window's mean 2D (flip-equivariant, exact, known output)."""

    def __init__(self, frames: int = 1) -> None:
        super().__init__()
        self.frames = frames
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = x.mean(dim=1)
        return torch.cat([uv, torch.zeros_like(uv[..., :1])], dim=-1) + self.dummy


def loop_predict(model: nn.Module, data: PoseArrays, pad: int, flip: bool = True) -> torch.Tensor:
    """The reference: one sample at a time through data.batch."""
    model.eval()
    rows = []
    with torch.no_grad():
        for i in range(data.num_samples):
            idx = torch.tensor([i])
            out = model(data.batch(idx, pad)[0])
            if flip:
                out = (out + flip_poses(model(data.batch(idx, pad, flip=True)[0]), PERM)) / 2
            rows.append(out - out[:, :1])
    return torch.cat(rows)


@pytest.mark.parametrize("frames", [1, 5])
def test_predict_equals_per_sample_loop(frames: int):
    data = make_data()
    model = tiny_mlpgraph(frames)
    pad = (frames - 1) // 2
    expected = loop_predict(model, data, pad)
    model.train()
    got = evaluation.predict(model, data, pad, batch_size=4)
    assert model.training  # mode restored
    assert got.shape == (data.num_samples, J, 3)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    subset = np.array([7, 0, 15])
    torch.testing.assert_close(evaluation.predict(model, data, pad, indices=subset), expected[subset])


def test_predict_refuses_non_finite_output_naming_the_samples_and_the_cause():
    data = make_data()  # sequences of 5, 1, 8, 3 frames: samples 6..13 are sequence 2
    data.poses_2d[7, 3] = float("inf")
    model = tiny_mlpgraph(3)  # windows of 3 frames: samples 6, 7 and 8 see the infinity
    with pytest.raises(evaluation.NonFinitePrediction) as info:
        evaluation.predict(model, data, pad=1, batch_size=4)
    assert str(info.value) == (
        "the network's output is NaN or infinite for 3 of 17 samples (first: sample 6, frame 0 of sequence 2); "
        "their 2D input is not finite"
    )
    assert info.value.samples.tolist() == [6, 7, 8] and not info.value.input_finite
    data = make_data()
    with torch.no_grad():
        model.head.weight.fill_(1e38)  # finite weights that overflow on any input
    with pytest.raises(evaluation.NonFinitePrediction, match=r"for 2 of 2 samples .*: the weights overflow") as info:
        evaluation.predict(model, data, pad=1, indices=np.array([9, 2]))
    assert info.value.samples.tolist() == [2, 9] and info.value.input_finite


def test_stages_name_the_checkpoint_and_data_of_a_non_finite_prediction(tmp_path):
    from mlpgraph.checkpoints import network_entry, save_checkpoint
    from mlpgraph.errors import UserInputError
    from mlpgraph.evaluation_stage import measure_selections
    from mlpgraph.tracking import NoRun
    from mlpgraph.training import BEST, FINAL

    model = tiny_mlpgraph(1)
    for name, epoch in ((FINAL, 2), (BEST, 1)):
        save_checkpoint(tmp_path / name, {"model": network_entry("mlpgraph", model)}, meta={"epoch": epoch})
    data = make_data()
    data.poses_2d[4] = float("nan")

    def measure(chosen):
        return evaluation.predict(model, data, pad=0)

    with pytest.raises(UserInputError) as info:
        measure_selections(tmp_path, measure, NoRun(), lambda f: {}, data="data/processed/x.h5")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / FINAL} on data/processed/x.h5: the network's output is NaN or infinite")
    assert "(first: sample 4, frame 4 of sequence 0); their 2D input is not finite" in message


def test_flip_averaging():
    data = make_data(1)
    model = tiny_mlpgraph(3)
    plain = evaluation.predict(model, data, 1, flip_test=False)
    flipped_data = PoseArrays.from_numpy(
        flip_poses(data.poses_2d, PERM).numpy(), data.poses_3d.numpy(), data.sequences.numpy()
    )
    on_flipped = evaluation.predict(model, flipped_data, 1, flip_test=False)
    both = evaluation.predict(model, data, 1, flip_test=True)
    torch.testing.assert_close(both, (plain + flip_poses(on_flipped, PERM)) / 2, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(both, plain)


def test_root_row_is_zero_for_graph_baseline():
    data = make_data(2)
    torch.manual_seed(0)
    model = build_model("semgcn", hid_dim=16, num_blocks=1)
    with torch.no_grad():
        raw = model.eval()(data.batch(torch.arange(4), 0)[0])
    assert raw[:, 0].abs().max() > 0  # the network itself does not zero the root
    pred = evaluation.predict(model, data, 0)
    assert torch.equal(pred[:, 0], torch.zeros_like(pred[:, 0]))


def test_refinement_with_ground_truth_root_depth():
    data = make_data(3)
    model = tiny_mlpgraph(3)
    torch.manual_seed(1)
    refine = PoseRefinement("h36m16")
    base = evaluation.predict(model, data, 1)
    refined = evaluation.predict(model, data, 1, refine=refine, batch_size=6)
    assert refine.training  # its mode is restored too (dropout is off inside predict)
    # reference: X~ from each sample's own 2D (the centre frame), its sequence's intrinsics and root_3d z
    lifted = refinement_input(
        data.poses_2d,
        base,
        data.meta["intrinsics"][data.sequence],
        LAYOUT,
        root_depth=data.meta["root_3d"][:, 2],
    )
    with torch.no_grad():
        expected = refine.eval()(base, lifted)
    torch.testing.assert_close(refined, expected - expected[:, :1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(refined[..., 2], base[..., 2])  # refinement keeps z
    # the oracle depth is really used: another root depth gives another result
    data.meta["root_3d"][:, 2] += 3.0
    moved = evaluation.predict(model, data, 1, refine=refine)
    assert not torch.allclose(moved, refined, atol=1e-4)
    # estimated depth runs with bone lengths, and needs them
    bones = mean_bone_lengths(data.poses_3d, LAYOUT)
    estimated = evaluation.predict(model, data, 1, refine=refine, root_depth="estimated", bone_lengths=bones)
    assert torch.isfinite(estimated).all()
    with pytest.raises(ValueError, match="bone_lengths"):
        evaluation.predict(model, data, 1, refine=refine, root_depth="estimated")


def test_evaluate_h36m_per_family():
    data = make_data(4, lengths=(10, 7, 6))  # 23 samples; family = index % 3 -> counts 8, 8, 7
    target = data.poses_3d.clone()
    family = data.meta["family"]
    pred = target.clone()
    pred[family == 0] += torch.tensor([0.003, 0.004, 0.0])  # 5 mm everywhere, a translation: P2 = 0
    pred[family == 1] += torch.tensor([0.0, 0.0, 0.012])  # 12 mm, P2 = 0
    pred[family == 2] *= 1.1  # P1 = 0.1 x mean joint norm, a scaling: P2 = 0
    scaled_p1 = float((target[family == 2].double().norm(dim=-1) * 100.0).mean())
    result = evaluation.evaluate_h36m(pred, data)
    json.dumps(result)
    assert list(result["per_family"]) == ["Directions", "Eating", "Walking"]  # "Unused" has no samples
    fam = result["per_family"]
    assert fam["Directions"]["P1"] == pytest.approx(5.0, abs=1e-3)
    assert fam["Eating"]["P1"] == pytest.approx(12.0, abs=1e-3)
    assert fam["Walking"]["P1"] == pytest.approx(scaled_p1, rel=1e-4)
    assert [fam[k]["num_samples"] for k in fam] == [8, 8, 7]
    for v in fam.values():
        assert v["P2"] == pytest.approx(0.0, abs=1e-3)
    assert result["P1"] == pytest.approx((5.0 + 12.0 + scaled_p1) / 3, rel=1e-4)
    assert result["P1_sample_mean"] == pytest.approx((8 * 5.0 + 8 * 12.0 + 7 * scaled_p1) / 23, rel=1e-4)
    assert result["P2"] == pytest.approx(0.0, abs=1e-3) and result["P2_sample_mean"] == pytest.approx(0.0, abs=1e-3)
    assert result["num_samples"] == 23 and result["num_families"] == 3
    # per joint, over all samples: the translations give 5 / 12 mm at every joint, the scaling
    # 0.1 x each joint's distance from the root (0 at the root itself)
    names = get_layout(data.layout).joint_names
    joints = result["per_joint"]
    assert list(joints) == list(names)
    assert joints[names[0]] == pytest.approx((8 * 5.0 + 8 * 12.0) / 23, rel=1e-4)
    scaled_joint5 = float((target[family == 2][:, 5].double().norm(dim=-1) * 100.0).sum())
    assert joints[names[5]] == pytest.approx((8 * 5.0 + 8 * 12.0 + scaled_joint5) / 23, rel=1e-4)
    # on a subset of indices
    sub = evaluation.evaluate_h36m(pred[family == 1], data, indices=torch.nonzero(family == 1)[:, 0])
    assert list(sub["per_family"]) == ["Eating"] and sub["P1"] == pytest.approx(12.0, abs=1e-3)


def make_3dhp(errors_m: dict[str, float], lengths: dict[str, int], seed: int = 5) -> formats.Test3DHP:
    """Test3DHP whose 3D targets are (u, v, 0) plus ``errors_m`` in z on every non-root joint."""
    rng = np.random.default_rng(seed)
    scene_of = {"TS1": "GS", "TS3": "noGS", "TS5": "outdoor"}
    p2, p3, scene, seq = [], [], [], []
    for name, n in lengths.items():
        uv = (rng.normal(size=(n, J, 2)) * 0.3).astype(np.float32)
        uv -= uv[:, :1]
        xyz = np.concatenate([uv, np.zeros((n, J, 1), np.float32)], axis=-1)
        xyz[:, 1:, 2] += errors_m[name]
        p2.append(uv)
        p3.append(xyz)
        scene += [scene_of[name]] * n
        seq += [name] * n
    return formats.Test3DHP(
        poses_2d=np.concatenate(p2),
        poses_3d=np.concatenate(p3),
        scene=np.array(scene),
        sequence=np.array(seq),
        source_format="pstmo",
        layout=LAYOUT,
    )


def test_evaluate_3dhp_known_errors_per_scene():
    test = make_3dhp({"TS1": 0.102, "TS3": 0.203, "TS5": 0.052}, {"TS1": 6, "TS3": 5, "TS5": 4})
    result = evaluation.evaluate_3dhp(WindowMean(), test, pad=0)
    json.dumps(result)
    scenes = result["per_scene"]
    # 16 joints: the root's error is 0 (PCK at every threshold > 0: 30 of 31), the 15 others
    # 102 mm (below t = 105..150: 10 of 31), 203 mm (never) or 52 mm (t = 55..150: 20 of 31).
    assert scenes["GS"]["PCK"] == pytest.approx(100.0)
    assert scenes["GS"]["AUC"] == pytest.approx(100.0 * (30 + 15 * 10) / (16 * 31))
    assert scenes["noGS"]["PCK"] == pytest.approx(100.0 / 16)
    assert scenes["noGS"]["AUC"] == pytest.approx(100.0 * 30 / (16 * 31))
    assert scenes["outdoor"]["PCK"] == pytest.approx(100.0)
    assert scenes["outdoor"]["AUC"] == pytest.approx(100.0 * (30 + 15 * 20) / (16 * 31))
    assert [scenes[k]["num_samples"] for k in ("GS", "noGS", "outdoor")] == [6, 5, 4]
    assert result["PCK"] == pytest.approx((6 * 100.0 + 5 * 100.0 / 16 + 4 * 100.0) / 15)
    assert result["num_samples"] == 15
    assert result["per_sequence"]["TS3"] == scenes["noGS"]
    # PoseAug's file has no scene labels: overall only
    unlabelled = formats.Test3DHP(test.poses_2d, test.poses_3d, None, np.full(15, "all"), "poseaug", LAYOUT)
    plain = evaluation.evaluate_3dhp(WindowMean(), unlabelled, pad=0)
    assert "per_scene" not in plain and plain["PCK"] == pytest.approx(result["PCK"])


def test_evaluate_3dhp_temporal_windows_stay_in_sequence():
    # Targets = the window mean of edge-padded windows within each TSx run; sequences have very
    # different 2D, so any window crossing a boundary would be off by far more than 5 mm.
    pad = 2
    rng = np.random.default_rng(6)
    names = ["TS1"] * 4 + ["TS3"] * 7 + ["TS5"] * 3
    offsets = {"TS1": 0.5, "TS3": -0.5, "TS5": 0.2}
    uv = (rng.normal(size=(len(names), J, 2)) * 0.05).astype(np.float32)
    uv += np.array([offsets[n] for n in names], np.float32)[:, None, None]
    uv[:, 0] = 0.0
    expected = np.zeros((len(names), J, 3), np.float32)
    bounds = {n: (names.index(n), len(names) - names[::-1].index(n)) for n in offsets}
    for i, n in enumerate(names):
        lo, hi = bounds[n]
        frames = [uv[min(max(i + k, lo), hi - 1)] for k in range(-pad, pad + 1)]
        expected[i, :, :2] = np.mean(frames, axis=0)
    scene = np.array([{"TS1": "GS", "TS3": "noGS", "TS5": "outdoor"}[n] for n in names])
    test = formats.Test3DHP(uv, expected, scene, np.array(names), "pstmo", LAYOUT)
    result = evaluation.evaluate_3dhp(WindowMean(2 * pad + 1), test, pad=pad)
    assert result["AUC"] == pytest.approx(100.0 * 30 / 31)  # every error ~0: below every t >= 5


def test_run_sequences():
    runs = mpi3dhp._run_sequences(np.array(["TS1", "TS1", "TS3", "TS1"]))
    np.testing.assert_array_equal(runs, [[0, 2], [2, 1], [3, 1]])


def brute_force_hardness(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    train = (train - train[:, :1]) * 1000.0
    test = (test - test[:, :1]) * 1000.0
    dist = np.linalg.norm(test[:, None] - train[None], axis=-1).mean(axis=-1)  # (N, M)
    return dist.min(axis=1)


def test_derive_hard_poses_matches_brute_force():
    rng = np.random.default_rng(7)
    train = rng.normal(size=(50, J, 3)) * 0.3
    test = rng.normal(size=(103, J, 3)) * 0.3
    candidates = np.arange(0, 103, 5)  # 21 candidates
    hardness = brute_force_hardness(train, test[candidates])
    order = np.argsort(-hardness, kind="stable")[: math.ceil(0.2 * 21)]  # 5
    idx, hard = evaluation.derive_hard_poses(train, test, every=5, fraction=0.2)
    np.testing.assert_array_equal(idx, candidates[order])
    np.testing.assert_allclose(hard, hardness[order], rtol=1e-5)
    assert np.all(np.diff(hard) <= 0)
    # the brute force, in any blocks (training chunk 7, one test pose per block), gives the same, bit for bit
    blocks = {"chunk": 7, "memory_mb": 0, "brute_force": True}
    idx2, hard2 = evaluation.derive_hard_poses(train, test, every=5, fraction=0.2, **blocks)
    np.testing.assert_array_equal(idx2, idx)
    np.testing.assert_array_equal(hard2, hard)
    # deterministic, and torch input gives the same
    idx3, hard3 = evaluation.derive_hard_poses(torch.tensor(train), torch.tensor(test), every=5, fraction=0.2)
    np.testing.assert_array_equal(idx3, idx)
    np.testing.assert_array_equal(hard3, hard)
    # default 5 %: ceil(0.05 * 21) = 2
    assert len(evaluation.derive_hard_poses(train, test)[0]) == 2


def test_derive_hard_poses_ties_go_to_lower_index():
    rng = np.random.default_rng(8)
    train = rng.normal(size=(10, J, 3))
    test = np.repeat(rng.normal(size=(1, J, 3)), 40, axis=0)  # all candidates exactly equally hard
    idx, hard = evaluation.derive_hard_poses(train, test, every=2, fraction=0.25)
    np.testing.assert_array_equal(idx, [0, 2, 4, 6, 8])
    assert np.all(hard == hard[0])


def test_derive_hard_poses_is_root_relative():
    rng = np.random.default_rng(10)
    train = rng.normal(size=(30, J, 3))
    test = rng.normal(size=(20, J, 3))
    moved_train = train + rng.normal(size=(30, 1, 3)) * 5.0
    moved_test = test + rng.normal(size=(20, 1, 3)) * 5.0
    idx, hard = evaluation.derive_hard_poses(train, test, every=1, fraction=0.5)
    idx2, hard2 = evaluation.derive_hard_poses(moved_train, moved_test, every=1, fraction=0.5)
    np.testing.assert_array_equal(idx2, idx)
    np.testing.assert_allclose(hard2, hard, rtol=1e-5)


def test_evaluate_poses_known_errors_and_temporal_padding():
    rng = np.random.default_rng(9)
    uv = (rng.normal(size=(12, J, 2)) * 0.3).astype(np.float32)
    xyz = np.concatenate([uv - uv[:, :1], np.zeros((12, J, 1), np.float32)], axis=-1)
    result = evaluation.evaluate_poses(WindowMean(), uv, 1.1 * xyz + 2.0, layout="h36m16")
    # targets made root-relative: 1.1 x the prediction -> P1 = 0.1 x mean joint norm, P2 = 0
    assert result["P1"] == pytest.approx(float(np.linalg.norm(xyz, axis=-1).mean() * 100.0), rel=1e-4)
    assert result["P2"] == pytest.approx(0.0, abs=1e-3)
    assert result["num_samples"] == 12
    # a temporal model sees its frame repeated over the window
    model = tiny_mlpgraph(5)
    result = evaluation.evaluate_poses(model, uv, xyz, flip_test=False)
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(uv)[:, None].expand(-1, 5, -1, -1))
    out = (out - out[:, :1]).double() * 1000.0
    expected = (out - torch.from_numpy(xyz).double() * 1000.0).norm(dim=-1).mean()
    assert result["P1"] == pytest.approx(float(expected), rel=1e-5)


def test_inference_time():
    model = tiny_mlpgraph(1)
    result = evaluation.inference_time(model, (1, J, 2), "cpu", batch_sizes=(1, 8), warmup=1, min_runs=3)
    json.dumps(result)
    assert set(result["batch"]) == {"1", "8"}
    for size, entry in result["batch"].items():
        assert entry["median_s"] > 0 and entry["runs"] >= 3
        assert entry["poses_per_s"] == pytest.approx(int(size) / entry["median_s"])
    assert model.training


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_training_curve_takes_every_kth_frame_of_each_test_sequence(stride):
    data, model = make_data(lengths=(5, 1, 8, 3)), WindowMean(frames=3)
    params = {"evaluate": {"flip_test": True, "batch_size": 4, "curve_frame_stride": stride}}
    record = h36m_evaluator(params, SimpleNamespace(pad=1), data)(model, None)
    frames = [start + f for start, length in ((0, 5), (5, 1), (6, 8), (14, 3)) for f in range(0, length, stride)]
    expected = evaluation.evaluate_h36m(loop_predict(model, data, pad=1)[frames], data, torch.tensor(frames))
    assert (record["P1"], record["P2"]) == pytest.approx((expected["P1"], expected["P2"]), rel=1e-6)
    if stride == 1:
        whole = evaluation.evaluate_h36m(loop_predict(model, data, pad=1), data)
        assert record["P1"] == pytest.approx(whole["P1"], rel=1e-6)
