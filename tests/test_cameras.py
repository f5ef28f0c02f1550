"""Cameras: transforms, distorted projection and screen normalisation against hand-computed values."""

import json

import numpy as np
import pytest

from mlpgraph.cameras import (
    camera_to_world,
    denormalise_screen,
    load_cameras,
    normalise_screen,
    project_to_pixels,
    quaternion_to_matrix,
    world_to_camera,
)
from mlpgraph.errors import UserInputError


def test_quaternion_90_degrees_about_z():
    half = np.sqrt(0.5)
    rot = quaternion_to_matrix(np.array([half, 0.0, 0.0, half]))
    assert np.allclose(rot, [[0, -1, 0], [1, 0, 0], [0, 0, 1]])


def test_world_to_camera_by_hand():
    # R = 90 deg about z, t = (1, 0, 0): X_cam = R^T (X - t) = R^T (0, 2, 3) = (2, 0, 3).
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    x_cam = world_to_camera(np.array([1.0, 2.0, 3.0]), rot, np.array([1.0, 0.0, 0.0]))
    assert np.allclose(x_cam, [2.0, 0.0, 3.0])
    assert np.allclose(camera_to_world(x_cam, rot, np.array([1.0, 0.0, 0.0])), [1.0, 2.0, 3.0])


def test_distorted_projection_by_hand():
    # u = 0.1, v = -0.05, r2 = 0.0125; radial = 1 + 0.1*r2 + 0.01*r2^2 + 0.001*r2^3 = 1.0012515644531;
    # tan = 0.001*0.1 + 0.002*(-0.05) = 0; u' = 0.1*radial + 0.001*r2 = 0.1001376564453,
    # v' = -0.05*radial + 0.002*r2 = -0.0500375782227; pixel = f*(u', v') + c.
    pixel = project_to_pixels(
        np.array([0.2, -0.1, 2.0]),
        focal_length=np.array([1000.0, 1100.0]),
        center=np.array([500.0, 400.0]),
        radial=np.array([0.1, 0.01, 0.001]),
        tangential=np.array([0.001, 0.002]),
    )
    assert pixel == pytest.approx([600.1376564453, 344.9586639550], abs=1e-7)


def test_undistorted_projection_is_pinhole():
    points = np.random.default_rng(0).uniform([-1, -1, 2], [1, 1, 6], size=(7, 17, 3))
    pixel = project_to_pixels(points, np.array([900.0, 950.0]), np.array([480.0, 520.0]), np.zeros(3), np.zeros(2))
    assert np.allclose(pixel, points[..., :2] / points[..., 2:] * [900.0, 950.0] + [480.0, 520.0])


def test_screen_normalisation():
    assert np.allclose(normalise_screen(np.array([500.0, 501.0]), 1000, 1002), [0.0, 0.0])
    assert np.allclose(normalise_screen(np.array([0.0, 0.0]), 1000, 1002), [-1.0, -1.002])
    assert np.allclose(normalise_screen(np.array([1000.0, 1002.0]), 1000, 1002), [1.0, 1.002])
    pixels = np.random.default_rng(1).uniform(0, 1000, size=(5, 16, 2))
    assert np.allclose(denormalise_screen(normalise_screen(pixels, 1000, 1002), 1000, 1002), pixels)


def test_h36m_cameras_round_trip_and_look_at_the_scene():
    cameras = load_cameras()
    assert cameras.subjects == ["S1", "S5", "S6", "S7", "S8", "S9", "S11"]
    points = np.random.default_rng(2).uniform([-1, -1, 0], [1, 1, 2], size=(100, 17, 3))
    for cam in cameras.cameras("S9"):
        assert np.allclose(cam.camera_to_world(cam.world_to_camera(points)), points)
        assert np.allclose(cam.rotation @ cam.rotation.T, np.eye(3))
        pixels = cam.project(cam.world_to_camera(points))
        assert pixels.shape == (100, 17, 2)
        assert np.all((pixels > 0) & (pixels < [cam.res_w, cam.res_h]))
        assert np.all(cam.world_to_camera(points)[..., 2] > 2.0)  # in front of the camera, metres away
        focal, centre = cam.normalised_intrinsics()
        assert np.allclose(focal, cam.focal_length / cam.res_w * 2)
        assert np.allclose(centre, normalise_screen(cam.center, cam.res_w, cam.res_h))


def test_custom_camera_file_and_its_errors(tmp_path):
    content = json.loads(json.dumps(load_cameras().raw))
    content["extrinsics"] = {"A": content["extrinsics"]["S1"]}
    (tmp_path / "cams.json").write_text(json.dumps(content))
    assert load_cameras(tmp_path / "cams.json").subjects == ["A"]
    with pytest.raises(UserInputError, match="no camera extrinsics for subject S1"):
        load_cameras(tmp_path / "cams.json").camera("S1", 0)
    del content["intrinsics"][0]["focal_length"]
    (tmp_path / "bad.json").write_text(json.dumps(content))
    with pytest.raises(UserInputError, match=r"bad.json: intrinsics\[0\]: missing key 'focal_length'"):
        load_cameras(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserInputError, match="broken.json: not valid JSON"):
        load_cameras(tmp_path / "broken.json")
