"""Cameras: the Human3.6M camera file, rigid transforms, distorted projection, screen normalisation.

Conventions (docs/data.md, "Cameras"): orientation is the camera-to-world rotation as a (w, x, y, z)
quaternion, translation the camera centre in world millimetres (stored here in metres).
``X_cam = R^T (X_world - t)``. Everything is vectorised over leading axes (frames, joints).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.safe_read import load_json

H36M_CAMERAS_RESOURCE = "h36m_cameras.json"
# 2D points may lie outside the image by at most this many image sizes (width, height) per side.
IMAGE_MARGIN = 1.0
# The largest image side (pixels) a camera or a keypoint file may state.
MAX_IMAGE_SIDE = 100_000


@dataclass(frozen=True)
class Camera:
    """One camera of one subject: shared intrinsics plus that subject's extrinsics."""

    id: str
    center: np.ndarray  # (2,) pixels
    focal_length: np.ndarray  # (2,) pixels
    radial_distortion: np.ndarray  # (3,) k1, k2, k3
    tangential_distortion: np.ndarray  # (2,) p1, p2
    res_w: int
    res_h: int
    rotation: np.ndarray  # (3, 3) camera-to-world
    translation: np.ndarray  # (3,) camera centre, world metres

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in metres to this camera's frame."""
        return world_to_camera(points, self.rotation, self.translation)

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) back to world metres."""
        return camera_to_world(points, self.rotation, self.translation)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) to distorted pixel coordinates (..., 2)."""
        return project_to_pixels(
            points_cam,
            self.focal_length,
            self.center,
            self.radial_distortion,
            self.tangential_distortion,
        )

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) to normalised screen coordinates."""
        return normalise_screen(pixels, self.res_w, self.res_h)

    def normalised_intrinsics(self) -> tuple[np.ndarray, np.ndarray]:
        """(focal, centre) in normalised screen units: ``f / w * 2`` and the normalised centre."""
        return self.focal_length / self.res_w * 2.0, normalise_screen(self.center, self.res_w, self.res_h)


def quaternion_to_matrix(quaternion: np.ndarray) -> np.ndarray:
    """Unit quaternion(s) (..., 4) as (w, x, y, z) to rotation matrices (..., 3, 3)."""
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def world_to_camera(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``R^T (X - t)`` for points (..., 3); row-vector form ``(X - t) @ R``."""
    return ((points - translation) @ rotation).astype(points.dtype, copy=False)


def camera_to_world(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``R X + t`` for points (..., 3), the inverse of :func:`world_to_camera`."""
    return (points @ rotation.T + translation).astype(points.dtype, copy=False)


def project_to_pixels(
    points_cam: np.ndarray,
    focal_length: np.ndarray,
    center: np.ndarray,
    radial: np.ndarray,
    tangential: np.ndarray,
) -> np.ndarray:
    """Pinhole projection with radial (k1, k2, k3) and tangential (p1, p2) distortion.

    With u = X/Z, v = Y/Z, r2 = u^2 + v^2, radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3 and
    tan = p1 u + p2 v: u' = u (radial + tan) + p1 r2, v' = v (radial + tan) + p2 r2,
    pixel = f * (u', v') + c (the community's form).
    """
    uv = points_cam[..., :2] / points_cam[..., 2:3]
    r2 = np.sum(uv * uv, axis=-1, keepdims=True)
    k1, k2, k3 = radial
    p = np.asarray(tangential, dtype=uv.dtype)
    radial_term = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan_term = np.sum(uv * p, axis=-1, keepdims=True)
    distorted = uv * (radial_term + tan_term) + p * r2
    return (distorted * focal_length + center).astype(points_cam.dtype, copy=False)


def normalise_screen(pixels: np.ndarray, width: float, height: float) -> np.ndarray:
    """``x / w * 2 - [1, h / w]``: both coordinates divided by the width, x in [-1, 1]."""
    return (np.asarray(pixels) / width * 2.0 - np.array([1.0, height / width])).astype(
        np.result_type(pixels, np.float32), copy=False
    )


def check_in_image(points: np.ndarray, width: float, height: float, where: str, what: str) -> None:
    """Refuse pixel points (..., 2) more than :data:`IMAGE_MARGIN` image sizes outside a ``width`` x ``height`` image.

    A limb out of frame lies a little outside the image; points far beyond are in another unit
    or another image's coordinates.
    """
    size = np.array([width, height], dtype=np.float64)
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    outside = np.any((flat < -IMAGE_MARGIN * size) | (flat > (1 + IMAGE_MARGIN) * size), axis=1)
    if outside.any():
        first = int(np.argmax(outside))
        frame = f" at frame {first // points.shape[1]}" if points.ndim == 3 else ""
        raise UserInputError(
            f"{where}: {what} has {int(outside.sum())} points more than {IMAGE_MARGIN:g} image size outside "
            f"the {width:g} x {height:g} image (first{frame}: ({flat[first, 0]:.4g}, {flat[first, 1]:.4g}))"
        )


def denormalise_screen(normalised: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalise_screen`."""
    return ((np.asarray(normalised) + np.array([1.0, height / width])) * width / 2.0).astype(
        np.result_type(normalised, np.float32), copy=False
    )


class CameraSet:
    """Cameras from a JSON file shaped like ``h36m_cameras.json``: shared intrinsics, per-subject extrinsics."""

    def __init__(self, content: dict[str, Any], source: str) -> None:
        self.source = source
        self.raw = content
        for key in ("intrinsics", "extrinsics"):
            if key not in content:
                raise UserInputError(f"{source}: missing key {key!r} in cameras file")
        intrinsics, extrinsics = content["intrinsics"], content["extrinsics"]
        if not isinstance(intrinsics, list) or not intrinsics:
            raise UserInputError(f"{source}: key 'intrinsics' must be a non-empty list of cameras")
        self._intrinsics = [self._parse_intrinsics(i, c) for i, c in enumerate(intrinsics)]
        if not isinstance(extrinsics, dict):
            raise UserInputError(f"{source}: key 'extrinsics' must map subject -> list of cameras")
        self._extrinsics: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for subject, cams in extrinsics.items():
            if not isinstance(cams, list) or not all(isinstance(c, dict) for c in cams):
                raise UserInputError(f"{source}: extrinsics[{subject}] must be a list of camera objects")
            if not cams or not all(cams):
                continue  # subjects without calibration (S2-S4 in Human3.6M) are skipped
            if len(cams) != len(self._intrinsics):
                raise UserInputError(
                    f"{source}: subject {subject} has {len(cams)} extrinsics for {len(self._intrinsics)} cameras"
                )
            self._extrinsics[subject] = [self._parse_extrinsics(subject, i, c) for i, c in enumerate(cams)]

    @staticmethod
    def _vector(cam: dict[str, Any], key: str, size: int, where: str, default: list[float] | None = None) -> np.ndarray:
        """``cam[key]`` as ``size`` finite float64 numbers."""
        if key not in cam and default is None:
            raise UserInputError(f"{where}: missing key {key!r}")
        value = cam.get(key, default)
        try:
            array = np.asarray(value, dtype=np.float64).reshape(size)
        except (TypeError, ValueError, OverflowError):
            raise UserInputError(f"{where}: {key!r} must be {size} numbers, got {value!r:.60}") from None
        if not np.isfinite(array).all():
            raise UserInputError(f"{where}: {key!r} must be finite numbers, got {value!r:.60}")
        return array

    @staticmethod
    def _pixels(cam: dict[str, Any], key: str, where: str) -> int:
        """``cam[key]`` (an image side) as an integer number of pixels in 1..MAX_IMAGE_SIDE."""
        if key not in cam:
            raise UserInputError(f"{where}: missing key {key!r}")
        value = cam[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_IMAGE_SIDE:
            raise UserInputError(
                f"{where}: {key!r} must be a number of pixels in 1..{MAX_IMAGE_SIDE}, got {value!r:.60}"
            )
        return int(value)

    def _parse_intrinsics(self, index: int, cam: Any) -> dict[str, Any]:
        where = f"{self.source}: intrinsics[{index}]"
        if not isinstance(cam, dict):
            raise UserInputError(f"{where}: must be an object, got {type(cam).__name__}")
        parsed = {
            "id": str(cam.get("id", index)),
            "center": self._vector(cam, "center", 2, where),
            "focal_length": self._vector(cam, "focal_length", 2, where),
            "radial_distortion": self._vector(cam, "radial_distortion", 3, where, [0, 0, 0]),
            "tangential_distortion": self._vector(cam, "tangential_distortion", 2, where, [0, 0]),
            "res_w": self._pixels(cam, "res_w", where),
            "res_h": self._pixels(cam, "res_h", where),
        }
        if np.any(parsed["focal_length"] <= 0):
            raise UserInputError(f"{where}: image size and focal length must be positive")
        return parsed

    def _parse_extrinsics(self, subject: str, index: int, cam: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        where = f"{self.source}: extrinsics[{subject}][{index}]"
        quat = self._vector(cam, "orientation", 4, where)
        translation_mm = self._vector(cam, "translation", 3, where)
        if not np.isclose(np.linalg.norm(quat), 1.0, atol=1e-3):
            raise UserInputError(f"{where}: orientation is not a unit quaternion")
        return quaternion_to_matrix(quat), translation_mm / 1000.0

    @property
    def num_cameras(self) -> int:
        return len(self._intrinsics)

    @property
    def subjects(self) -> list[str]:
        return list(self._extrinsics)

    def camera(self, subject: str, index: int) -> Camera:
        """Camera ``index`` as calibrated for ``subject``."""
        if subject not in self._extrinsics:
            raise UserInputError(f"{self.source}: no camera extrinsics for subject {subject}")
        rotation, translation = self._extrinsics[subject][index]
        return Camera(rotation=rotation, translation=translation, **self._intrinsics[index])

    def cameras(self, subject: str) -> list[Camera]:
        """All cameras of ``subject``, in file order."""
        return [self.camera(subject, i) for i in range(self.num_cameras)]


def load_cameras(path: str | os.PathLike[str] | None = None) -> CameraSet:
    """Read a cameras JSON (``None``: the Human3.6M cameras shipped with the package)."""
    if path is None:
        text = resources.files("mlpgraph.resources").joinpath(H36M_CAMERAS_RESOURCE).read_text()
        return CameraSet(json.loads(text), source=f"<package>/{H36M_CAMERAS_RESOURCE}")
    path = Path(path)
    content = load_json(path, "cameras file")
    if not isinstance(content, dict):
        raise UserInputError(f"{path}: cameras file must hold a JSON object")
    return CameraSet(content, source=str(path))


def h36m_cameras_path() -> Path:
    """Filesystem path of the packaged Human3.6M cameras JSON."""
    return Path(str(resources.files("mlpgraph.resources").joinpath(H36M_CAMERAS_RESOURCE)))
