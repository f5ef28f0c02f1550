"""The real-data check: real mocap read, put in the Human3.6M world, projected as the synthetic set, scored.

The fixture is ``tests/data/real_mocap/real_mocap_A.npz`` (its README.md: three clips of CMU and
mocapdata.com motion, H36M-17 joints, metres, Y up, 50 fps).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from mlpgraph.cameras import load_cameras, normalise_screen
from mlpgraph.data.batches import flip_poses
from mlpgraph.data.synthetic import H36M_CAPTURE_CENTRE
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation.real_mocap import (
    CAMERA_SUBJECT,
    GT_2D,
    MocapClip,
    build_real_set,
    clip_mean_pose,
    evaluate_real_mocap,
    read_real_mocap,
    real_figures,
)
from mlpgraph.io import load_community_npz
from mlpgraph.layouts import H36M16, H36M17, get_layout
from mlpgraph.paths import MetricsFiles
from mlpgraph.results import RealMocapEvaluation, Skipped, read_record
from mlpgraph.workflow import load_stage_table
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "data" / "real_mocap" / "real_mocap_A.npz"
CLIPS = {"CMU_S01 / PlaygroundJumps 01_01": 1146, "CMU_S11 / SoccerKick 11_01": 249, "EyesJapan_S1 / Sample 1": 1237}
CAMERAS = load_cameras()


@pytest.fixture(scope="module")
def clips17() -> list[MocapClip]:
    return read_real_mocap(FIXTURE, "h36m17")


@pytest.fixture(scope="module")
def clips16() -> list[MocapClip]:
    return read_real_mocap(FIXTURE, "h36m16")


# ------------------------------------------------------------------------------- the loader


def test_the_fixture_loads_as_three_clips_in_either_layout(clips17, clips16):
    assert {c.name: c.world.shape for c in clips17} == {name: (t, 17, 3) for name, t in CLIPS.items()}
    assert [c.world.shape for c in clips16] == [(t, 16, 3) for t in CLIPS.values()]
    for c16, c17 in zip(clips16, clips17, strict=True):
        for name in H36M16.joint_names:  # the same joint by name; h36m16 has no neck
            np.testing.assert_array_equal(c16.world[:, H36M16.index(name)], c17.world[:, H36M17.index(name)])
    assert "neck" not in H36M16.joint_names


def test_world_frame_is_z_up_centred_in_the_capture_area_with_feet_near_the_floor(clips17):
    raw = load_community_npz(FIXTURE)["positions_3d"]
    for clip in clips17:
        source = raw[clip.subject][clip.action].astype(np.float64)  # Y up
        world = clip.world
        np.testing.assert_allclose(world[..., 2], source[..., 1], atol=1e-6)  # height unchanged: y -> z
        shift_x, shift_y = world[..., 0] - source[..., 0], world[..., 1] + source[..., 2]  # (x, -z) + a shift
        assert np.ptp(shift_x) < 1e-6 and np.ptp(shift_y) < 1e-6
        pelvis = world[:, H36M17.index("pelvis")]
        np.testing.assert_allclose(pelvis[:, :2].mean(axis=0), H36M_CAPTURE_CENTRE, atol=1e-9)
        height = {name: np.median(world[:, H36M17.index(name), 2]) for name in ("head", "pelvis", "left_ankle")}
        assert height["head"] > height["pelvis"] + 0.4 > height["left_ankle"] + 0.8  # up is +z
        ankles = world[:, [H36M17.index("left_ankle"), H36M17.index("right_ankle")], 2]
        assert 0.0 < ankles.min() < 0.15  # the floor is at z = 0


def test_a_file_that_is_not_mocap_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(UserInputError, match=r"bad\.npz: missing key 'positions_3d'"):
        read_real_mocap(bad, "h36m16")
    with pytest.raises(UserInputError, match="file not found"):
        read_real_mocap(tmp_path / "absent.npz", "h36m16")


# ------------------------------------------------------------------------------- projection


def _clip_on_axis(camera: Any, depth: float, frames: int = 2) -> MocapClip:
    """An h36m17 clip whose pelvis sits on ``camera``'s optical axis at ``depth``; other joints at fixed offsets."""
    offsets = np.random.default_rng(0).normal(scale=0.2, size=(17, 3))
    offsets[H36M17.root] = 0.0
    pelvis = camera.translation + camera.rotation[:, 2] * depth  # camera-to-world: column 2 is the view axis
    world = np.repeat((pelvis + offsets)[None], frames, axis=0)
    return MocapClip("T", "axis", world)


def test_projection_is_the_camera_model():
    camera = CAMERAS.camera(CAMERA_SUBJECT, 0)
    clip = _clip_on_axis(camera, depth=5.0)
    real = build_real_set([clip], "h36m17", CAMERAS)
    assert real.poses_2d.shape == (4 * 2, 17, 2) and real.camera_ids[0] == camera.id
    # On the optical axis: undistorted and distorted alike, the principal point.
    w, h = camera.res_w, camera.res_h
    np.testing.assert_allclose(real.poses_2d[0, H36M17.root], normalise_screen(camera.center, w, h), atol=1e-6)
    np.testing.assert_allclose(real.root_3d[0], [0.0, 0.0, 5.0], atol=1e-5)
    # Root-relative camera-space targets: the world offsets rotated into the camera (X_cam = R^T X).
    offsets = clip.world[0] - clip.world[0, H36M17.root]
    np.testing.assert_allclose(real.poses_3d[0], offsets @ camera.rotation, atol=1e-6)
    # A joint off the axis by hand: u = X/Z, v = Y/Z, then the distortion polynomial and f, c.
    x, y, z = (clip.world[0, 5] - camera.translation) @ camera.rotation
    u, v = x / z, y / z
    r2 = u * u + v * v
    (k1, k2, k3), (p1, p2) = camera.radial_distortion, camera.tangential_distortion
    scale = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3 + p1 * u + p2 * v
    pixel = np.array([u * scale + p1 * r2, v * scale + p2 * r2]) * camera.focal_length + camera.center
    np.testing.assert_allclose(real.poses_2d[0, 5], pixel / w * 2 - [1, h / w], atol=1e-5)


def test_every_camera_sees_every_clip_as_its_own_sequence(clips17):
    real = build_real_set(clips17, "h36m17", CAMERAS)
    lengths = [t for t in CLIPS.values() for _ in range(4)]
    assert real.sequences[:, 1].tolist() == lengths
    assert real.sequences[:, 0].tolist() == np.cumsum([0, *lengths[:-1]]).tolist()
    assert len(set(real.camera_ids)) == 4 == CAMERAS.num_cameras
    assert np.abs(real.poses_2d).max() < 1.0  # the fixture's subjects stay inside every image
    np.testing.assert_allclose(real.poses_3d[:, H36M17.root], 0.0)
    assert real.input_2d == GT_2D
    arrays = real.arrays()
    assert arrays.num_samples == len(real.poses_2d) and arrays.layout == "h36m17"


def test_detected_2d_is_the_generators_noise_with_a_fixed_seed(clips16):
    gt = build_real_set(clips16[1:2], "h36m16", CAMERAS, "gt")
    hr = build_real_set(clips16[1:2], "h36m16", CAMERAS, "hr", "synthetic", seed=0)
    again = build_real_set(clips16[1:2], "h36m16", CAMERAS, "hr", "synthetic", seed=0)
    other = build_real_set(clips16[1:2], "h36m16", CAMERAS, "hr", "synthetic", seed=1)
    np.testing.assert_array_equal(hr.poses_2d, again.poses_2d)
    assert not np.array_equal(hr.poses_2d, other.poses_2d)
    pixels = np.linalg.norm(hr.poses_2d - gt.poses_2d, axis=-1) * 1000 / 2  # normalised units to pixels
    assert 2.0 < np.median(pixels) < 8.0 and "detector noise" in hr.input_2d
    np.testing.assert_array_equal(hr.poses_3d, gt.poses_3d)
    for keypoints, source in (("cpn_ft_h36m_dbb", "synthetic"), ("hr", "files")):
        plain = build_real_set(clips16[1:2], "h36m16", CAMERAS, keypoints, source)
        np.testing.assert_array_equal(plain.poses_2d, gt.poses_2d)
        assert plain.input_2d.startswith(GT_2D) and "no noise model" in plain.input_2d


# ------------------------------------------------------------------------------- the figures


def test_exact_prediction_scores_zero_and_overall_is_frame_weighted(clips16):
    real = build_real_set(clips16, "h36m16", CAMERAS)
    exact = real_figures(real.poses_3d, real)
    assert exact["P1"] == pytest.approx(0.0, abs=1e-9) and exact["P2"] == pytest.approx(0.0, abs=1e-3)
    assert exact["num_samples"] == 4 * sum(CLIPS.values())
    shifted = real.poses_3d.copy()
    shifted[real.clip == 1, 3] += [0.0, 0.0, 0.16]  # clip 1 only: one joint of 16 off by 160 mm
    result = real_figures(shifted, real)
    assert result["per_clip"]["CMU_S11 / SoccerKick 11_01"]["P1"] == pytest.approx(10.0)
    assert result["per_clip"]["CMU_S01 / PlaygroundJumps 01_01"]["P1"] == pytest.approx(0.0)
    assert result["P1"] == pytest.approx(10.0 * 249 / sum(CLIPS.values()))
    assert result["per_clip"]["CMU_S11 / SoccerKick 11_01"]["num_samples"] == 4 * 249


def test_clip_mean_pose_matches_a_hand_computation():
    camera = CAMERAS.camera(CAMERA_SUBJECT, 0)
    clip = _clip_on_axis(camera, depth=5.0)
    wrist = H36M17.index("left_wrist")
    clip.world[1, wrist] += [0.2, 0.0, 0.0]  # frame 1: the wrist 200 mm away; the mean is halfway
    real = build_real_set([clip], "h36m17", CAMERAS)
    mean = clip_mean_pose(real)
    np.testing.assert_allclose(mean[0], mean[1])  # one pose per (clip, camera)
    np.testing.assert_allclose(mean[0], real.poses_3d[:2].mean(axis=0), atol=1e-7)
    result = real_figures(mean, real)
    assert result["P1"] == pytest.approx(100.0 / 17, rel=1e-5)  # 100 mm at one joint of 17, in every frame


class Lookup(nn.Module):
    """A lifter that knows the answers: the 3D of the stored 2D input nearest the window's centre frame."""

    def __init__(self, poses_2d: np.ndarray, poses_3d: np.ndarray, permutation: np.ndarray) -> None:
        super().__init__()
        keys = torch.as_tensor(poses_2d)
        values = torch.as_tensor(poses_3d)
        self.register_buffer("keys", torch.cat([keys, flip_poses(keys, permutation)]).flatten(1))
        self.register_buffer("values", torch.cat([values, flip_poses(values, permutation)]))
        self.frames = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, x.shape[1] // 2].flatten(1)
        return self.values[torch.cdist(centre, self.keys).argmin(dim=1)]


def test_a_network_that_knows_the_answers_scores_zero_through_the_flip_test(clips16):
    real = build_real_set([clips16[1]], "h36m16", CAMERAS)
    model = Lookup(real.poses_2d, real.poses_3d, get_layout("h36m16").flip_permutation)
    result = evaluate_real_mocap(model, real, pad=1, flip_test=True, batch_size=300)
    assert result["P1"] == pytest.approx(0.0, abs=1e-6) and result["num_samples"] == 4 * 249


# ------------------------------------------------------------------------------- the stage


def _stage_module(name: str = "evaluate_real") -> Any:
    spec = importlib.util.spec_from_file_location(f"_stage_{name}", ROOT / "stages" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_checkpoints(folder: Path, frames: int, refine: bool = False) -> None:
    """``final.pt`` (epoch 2) and ``best.pt`` (epoch 1) of a tiny MLP-Graph, as the training stage names them.

    With ``refine``, each also holds a pose-refinement module, as ``train_refine``'s do.
    """
    from mlpgraph.checkpoints import network_entry, save_checkpoint
    from mlpgraph.models import build_model
    from mlpgraph.training import BEST, FINAL

    folder.mkdir(parents=True)
    for file, epoch in ((FINAL, 2), (BEST, 1)):
        torch.manual_seed(epoch)
        model = build_model("mlpgraph", layout="h36m16", frames=frames, hid_dim=8, spatial_hid_dim=8,
                            channel_hid_dim=8, num_layers=1)  # fmt: skip
        networks = {"model": network_entry("mlpgraph", model.eval())}
        if refine:
            networks["refine"] = network_entry("refine", build_model("refine", layout="h36m16").eval())
        save_checkpoint(folder / file, networks, meta={"epoch": epoch})


def test_the_stage_writes_a_valid_record_for_both_selections(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    experiment = {"model": "mlpgraph", "keypoints": "hr", "model_args": {"frames": 3}}
    released = {"model": "mlpgraph", "keypoints": "gt", "pretrained": {"dir": None, "weights": "gt_f1.pth"}}
    params.update(preset="tiny", experiments={"mlpgraph_hr_f3": experiment, "released": released}, refinement={})
    params["evaluate"]["real_mocap"] = str(FIXTURE)
    params["train"]["device"] = "cpu"
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _tiny_checkpoints(tmp_path / "models", frames=3)
    stage = _stage_module()
    args = ["--params", "params.yaml", "--experiment", "mlpgraph_hr_f3", "--models", "models", "--out", "real.json"]
    stage.main(stage.parser().parse_args(args))
    record = read_record(tmp_path / "real.json", RealMocapEvaluation)
    assert record.experiment == "mlpgraph_hr_f3" and record.frames == 3 and record.flip_test
    assert record.layout == "h36m16" and record.file == str(FIXTURE) and len(record.sha256) == 64
    assert "detector noise" in record.input_2d and CAMERA_SUBJECT in record.cameras
    assert record.trained_on.label == "synthetic Human3.6M (tiny)" and record.mlflow_run_id
    for figures in (record.last_epoch, record.best_on_test):
        assert set(figures.per_clip) == set(CLIPS) and figures.num_samples == 4 * sum(CLIPS.values())
        assert 0 < figures.P2 <= figures.P1 < 2000
    assert record.last_epoch.P1 != record.best_on_test.P1  # two networks, measured each
    baseline = record.clip_mean_pose
    assert baseline.definition.startswith("clip mean pose (oracle)") and 50 < baseline.P1 < 300
    assert baseline.per_clip["CMU_S11 / SoccerKick 11_01"].frames == 249
    # A pretrained experiment without its release folder: the skip record, nothing measured.
    stage.main(stage.parser().parse_args([*args[:3], "released", "--models", "absent", "--out", "skipped.json"]))
    skipped = read_record(tmp_path / "skipped.json", Skipped)
    assert skipped.experiment == "released" and "pretrained.dir is not set" in skipped.reason


def test_the_refinement_stage_scores_each_variant_as_the_library_does(tmp_path, monkeypatch):
    from mlpgraph.checkpoints import networks_from_checkpoint
    from mlpgraph.data.batches import PoseArrays
    from mlpgraph.models.refine import mean_bone_lengths
    from mlpgraph.results import RealRefineEvaluation
    from tests.test_batches import _write_processed

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    experiment = {"model": "mlpgraph", "keypoints": "gt", "model_args": {"frames": 1}}
    setting = {"keypoints": "gt", "mode": "joint", "root_depth": "gt"}
    params.update(preset="tiny", experiments={"refined": experiment}, refinement={"refined": setting})
    params["evaluate"].update(real_mocap=str(FIXTURE), flip_test=False)
    params["train"]["device"] = "cpu"
    params["data"]["train_subjects"] = ["S1", "S5"]  # the hand-written processed file's (S9: its test subject)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    processed = tmp_path / "processed.h5"
    _write_processed(processed)
    _tiny_checkpoints(tmp_path / "refine", frames=1, refine=True)
    stage = _stage_module("evaluate_real_refine")
    args = ["--params", "params.yaml", "--experiment", "refined", "--processed", str(processed)]
    stage.main(stage.parser().parse_args([*args, "--models", "refine", "--out", "out.json"]))
    record = read_record(tmp_path / "out.json", RealRefineEvaluation)
    assert record.experiment == "refined" and record.refinement == {"mode": "joint", "root_depth": "gt"}
    assert record.trained_on.fingerprint == "0" * 64 and record.mlflow_run_id and not record.flip_test
    assert record.clip_mean_pose.definition.startswith("clip mean pose (oracle)")
    # Each variant is the library's figure for the checkpoint, the refined ones with the training split's bones.
    real = build_real_set(read_real_mocap(FIXTURE, "h36m16"), "h36m16", CAMERAS)
    train = PoseArrays.from_processed(processed, subjects=["S1", "S5"])
    bones = mean_bone_lengths(train.poses_3d, "h36m16")
    nets = networks_from_checkpoint(tmp_path / "refine" / "final.pt")
    plain = evaluate_real_mocap(nets["model"], real, 0, flip_test=False)
    gt = evaluate_real_mocap(nets["model"], real, 0, False, refine=nets["refine"], root_depth="gt")
    estimated = evaluate_real_mocap(nets["model"], real, 0, False, 1024, "cpu", nets["refine"], "estimated", bones)
    last = record.last_epoch
    for figures, expected in ((last.without_refinement, plain), (last.refined_gt_root, gt),
                              (last.refined_estimated_root, estimated)):  # fmt: skip
        assert pytest.approx(expected["P1"], rel=1e-5) == figures.P1
        clip = "CMU_S11 / SoccerKick 11_01"
        assert pytest.approx(expected["per_clip"][clip]["P1"], rel=1e-5) == figures.per_clip[clip].P1
    assert len({plain["P1"], gt["P1"], estimated["P1"]}) == 3  # three different predictions
    assert last.without_refinement.note is None and "ground truth" in last.refined_gt_root.note
    assert "mean bone lengths" in last.refined_estimated_root.note
    assert record.best_on_test.refined_gt_root.P1 != last.refined_gt_root.P1  # two checkpoints, measured each


def test_dvc_yaml_runs_the_refinement_stage_for_every_refinement_run():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    specs = {spec.name: spec for spec in load_stage_table(ROOT)}
    mocap, data = params["evaluate"]["real_mocap"], params["data"]
    for name, entry in params["refinement"].items():
        stage = specs[f"evaluate_real_refine@{name}"]
        out = str(MetricsFiles(Path("metrics")).real(name, refine=True))
        processed = f"data/processed/{data['name']}_{entry['keypoints']}_{data['layout']}.h5"
        assert stage.outs == (out,) and f"--out {out}" in stage.cmd and f"--mocap {mocap}" in stage.cmd
        assert {mocap, processed, f"models/{name}/refine"} <= set(stage.deps)
        assert f"--processed {processed}" in stage.cmd
        assert {"evaluate.real_mocap", f"refinement.{name}", "data"} <= set(stage.params)


def test_dvc_yaml_runs_the_stage_for_every_experiment_with_its_file_and_params():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    specs = {spec.name: spec for spec in load_stage_table(ROOT)}
    mocap = params["evaluate"]["real_mocap"]
    assert (ROOT / mocap).is_file()
    for name in params["experiments"]:
        stage = specs[f"evaluate_real@{name}"]
        out = str(MetricsFiles(Path("metrics")).real(name))
        assert stage.outs == (out,) and f"--out {out}" in stage.cmd and f"--mocap {mocap}" in stage.cmd
        assert mocap in stage.deps and f"models/{name}/spatial" in stage.deps
        assert {"evaluate.real_mocap", "evaluate.flip_test", "data"} <= set(stage.params)
        assert out in specs[f"summarise@{name}"].deps and f"--real {out}" in specs[f"summarise@{name}"].cmd
    assert "metrics/real" in specs["report"].deps


def test_the_summary_carries_the_real_p1_when_given_its_record(tmp_path):
    from mlpgraph.results import DhpEvaluation, H36mEvaluation, HardEvaluation, summarise
    from tests.test_report import make_params, write_metrics

    written = write_metrics(tmp_path, make_params(["mlpgraph_gt_f1"]))["mlpgraph_gt_f1"]
    h36m, dhp, hard, real = (written[key] for key in ("h36m", "3dhp", "hard", "real"))
    assert isinstance(h36m, H36mEvaluation) and isinstance(dhp, DhpEvaluation) and isinstance(hard, HardEvaluation)
    assert summarise(h36m, dhp, hard, real=real).P1_real_last == real.last_epoch.P1
    assert "P1_real_last" not in summarise(h36m, dhp, hard).to_dict()
