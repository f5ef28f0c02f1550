"""The embedded default data set: a deterministic synthetic Human3.6M (and a 3DHP-like test set).

No licensed data may be shipped, so :func:`generate` writes the community's files from the
motion model in :mod:`mlpgraph.data.motion`:

- ``data_3d_h36m.npz``: world 3D (metres, Z up, 50 fps) of S1 S5 S6 S7 S8 S9 S11, each doing
  the 15 action families in two takes named like the real files (``Walking``, ``Walking 1``).
- ``data_2d_h36m_gt.npz``: exact projections through the real Human3.6M cameras (distorted).
- ``data_2d_h36m_hr.npz``: detector-like 2D, gt plus the noise described by :data:`HR_NOISE`.
- ``data_test_3dhp.npz``: P-STMO's MPI-INF-3DHP test format (TS1..TS6, unseen subjects/cameras).
- ``cameras.json``: a copy of the packaged Human3.6M cameras.

Every random draw comes from a generator keyed by (seed, purpose, subject, action, camera), so
the output is byte-identical for a seed and does not depend on iteration order.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from mlpgraph.cameras import h36m_cameras_path, load_cameras, project_to_pixels, world_to_camera
from mlpgraph.data import schema
from mlpgraph.data.actions import ACTION_FAMILIES
from mlpgraph.data.motion import (
    blend_takes,
    family_take,
    make_rng,
    pose_sequence,
    segment_weights,
    subject_bone_lengths,
)
from mlpgraph.data.projection import metadata_2d, project_dataset
from mlpgraph.errors import UserInputError
from mlpgraph.io import save_community_npz
from mlpgraph.layouts import H36M17, H36M32, MPI3DHP17, SkeletonLayout, get_layout, select_joints
from mlpgraph.outputs import atomic_path

logger = logging.getLogger(__name__)

TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
SUBJECTS: tuple[str, ...] = TRAIN_SUBJECTS + TEST_SUBJECTS
NUM_CAMERAS = 4
# Centre (x, y) in metres of the floor area the four Human3.6M cameras all see best.
H36M_CAPTURE_CENTRE = (0.1, 0.55)
SEQUENCES_3DHP: tuple[str, ...] = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")

# Take names as in the community's files: two takes per family and subject.
_TAKE_NAMES = {
    "Eating": ("Eating", "Eating 2"),
    "Sitting": ("Sitting 1", "Sitting 2"),
    "SittingDown": ("SittingDown", "SittingDown 2"),
}


def take_names(family: str) -> tuple[str, str]:
    """The two action names of ``family``: ``('Walking', 'Walking 1')``, ``('Eating', 'Eating 2')``."""
    return _TAKE_NAMES.get(family, (family, f"{family} 1"))


ACTIONS: tuple[str, ...] = tuple(name for fam in ACTION_FAMILIES for name in take_names(fam))


@dataclass(frozen=True)
class Scale:
    """Frames per take (train and test subjects) and frames per 3DHP sequence (TS1..TS6)."""

    train_frames_per_take: int
    test_frames_per_take: int
    frames_3dhp: tuple[int, int, int, int, int, int]

    @property
    def train_poses_2d(self) -> int:
        """2D training poses (all train subjects, takes and cameras)."""
        return len(TRAIN_SUBJECTS) * len(ACTIONS) * NUM_CAMERAS * self.train_frames_per_take

    @property
    def test_poses_2d(self) -> int:
        """2D test poses (S9, S11; all takes and cameras)."""
        return len(TEST_SUBJECTS) * len(ACTIONS) * NUM_CAMERAS * self.test_frames_per_take


# full: Human3.6M's size, 1.56 M training and 0.54 M test 2D poses; small is a 24th of it
# (sized so that `make reproduce` fits in 30 minutes on 2 CPU cores); the full 3DHP lengths are
# the real test sequences'.
SCALES: dict[str, Scale] = {
    "tiny": Scale(100, 80, (60, 60, 60, 60, 40, 40)),
    "small": Scale(110, 96, (500, 500, 500, 500, 200, 250)),
    "full": Scale(2600, 2250, (6151, 6080, 5838, 6007, 320, 492)),
}


@dataclass(frozen=True)
class DetectorNoise:
    """How the ``hr`` 2D set departs from the ground truth (pixels, per camera and take).

    Per-axis Gaussian noise of std ``*_sigma_px`` (torso: pelvis, hips, spine, thorax,
    shoulders; limbs: knees, elbows, neck; extremities: ankles, wrists, head), AR(1) in time
    with lag-1 correlation ``ar_coefficient``; outliers: a fraction ``outlier_rate`` of
    joint-frames displaced by ``outlier_min_px``..``outlier_max_px`` in a random direction;
    left/right confusions: each left/right joint pair starts a swap with probability
    ``swap_start_rate`` per frame, lasting ``swap_min_frames``..``swap_max_frames`` frames.
    """

    torso_sigma_px: float = 2.5
    limb_sigma_px: float = 3.5
    extremity_sigma_px: float = 5.0
    ar_coefficient: float = 0.7
    outlier_rate: float = 0.005
    outlier_min_px: float = 25.0
    outlier_max_px: float = 60.0
    swap_start_rate: float = 0.002
    swap_min_frames: int = 3
    swap_max_frames: int = 8

    def sigma_px(self, layout: SkeletonLayout) -> np.ndarray:
        """(J,) per-axis noise std of each joint of ``layout``."""
        sigmas = []
        for name in layout.joint_names:
            if name == "head" or name.endswith(("ankle", "wrist")):
                sigmas.append(self.extremity_sigma_px)
            elif name == "neck" or name.endswith(("knee", "elbow")):
                sigmas.append(self.limb_sigma_px)
            else:
                sigmas.append(self.torso_sigma_px)
        return np.array(sigmas)


HR_NOISE = DetectorNoise()


def add_detector_noise(
    pixels: np.ndarray,
    layout: SkeletonLayout,
    rng: np.random.Generator,
    noise: DetectorNoise = HR_NOISE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector-like 2D from exact 2D (T, J, 2): swaps, then correlated noise, then outliers.

    Returns (noisy float32 (T, J, 2), outlier mask (T, J), swap mask (T, J)).
    """
    num_frames, num_joints = pixels.shape[:2]
    out = pixels.astype(np.float64)
    swapped = np.zeros((num_frames, num_joints), dtype=bool)
    for left, right in zip(layout.left_joints, layout.right_joints, strict=True):
        starts = np.flatnonzero(rng.random(num_frames) < noise.swap_start_rate)
        lengths = rng.integers(noise.swap_min_frames, noise.swap_max_frames + 1, len(starts))
        edges = np.zeros(num_frames + 1, dtype=np.int64)
        np.add.at(edges, starts, 1)
        np.add.at(edges, np.minimum(starts + lengths, num_frames), -1)
        mask = np.cumsum(edges[:-1]) > 0
        out[mask, left], out[mask, right] = pixels[mask, right], pixels[mask, left]
        swapped[:, left] |= mask
        swapped[:, right] |= mask
    # AR(1) noise, stationary from the first frame: e_t = a e_{t-1} + sqrt(1 - a^2) sigma w_t.
    a = noise.ar_coefficient
    white = rng.standard_normal((num_frames, num_joints, 2)) * noise.sigma_px(layout)[:, None]
    white[0] /= np.sqrt(1.0 - a * a)
    out += lfilter([np.sqrt(1.0 - a * a)], [1.0, -a], white, axis=0)
    outliers = rng.random((num_frames, num_joints)) < noise.outlier_rate
    count = int(outliers.sum())
    radius = rng.uniform(noise.outlier_min_px, noise.outlier_max_px, count)
    angle = rng.uniform(0.0, 2 * np.pi, count)
    out[outliers] += np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1)
    return out.astype(np.float32), outliers, swapped


def generate_positions_3d(scale: str = "tiny", seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """World 3D (T, 32, 3) float32 metres of every subject and take: ``{subject: {action: ...}}``."""
    sc = get_scale(scale)
    positions: dict[str, dict[str, np.ndarray]] = {}
    for subject in SUBJECTS:
        bones = subject_bone_lengths(subject, seed)
        frames = sc.train_frames_per_take if subject in TRAIN_SUBJECTS else sc.test_frames_per_take
        positions[subject] = {}
        for family in ACTION_FAMILIES:
            for action in take_names(family):
                tk = family_take(family, frames, make_rng(seed, "h36m", subject, action), bones)
                xy = tk.xy + np.array(H36M_CAPTURE_CENTRE)
                positions[subject][action] = pose_sequence(tk.angles, xy, bones).astype(np.float32)
    return positions


def get_scale(scale: str) -> Scale:
    """The :class:`Scale` called ``scale`` (tiny, small, full)."""
    try:
        return SCALES[scale]
    except KeyError:
        raise UserInputError(f"unknown synthetic scale {scale!r}; expected one of {list(SCALES)}") from None


# 3DHP-like scenes: which families each sequence mixes, how wide it moves, and its camera.
_SCENES = {
    "green_screen": (("Walking", "Directions", "Greeting", "Posing", "Discussion", "Waiting"), 0.7),
    "studio": (("Sitting", "Purchases", "SittingDown", "Phoning", "Photo", "Posing"), 0.7),
    "outdoor": (("Walking", "WalkTogether", "Posing", "Greeting", "Purchases", "Directions"), 1.3),
}
_SCENE_OF = {"TS1": "green_screen", "TS2": "green_screen", "TS3": "studio", "TS4": "studio",
             "TS5": "outdoor", "TS6": "outdoor"}  # fmt: skip


def _look_at_camera(
    rng: np.random.Generator, target: np.ndarray, distance: float, height: float
) -> tuple[np.ndarray, np.ndarray]:
    """(camera-to-world rotation, centre in metres) of a camera ``distance`` away looking at ``target``."""
    azimuth = rng.uniform(0.0, 2 * np.pi)
    centre = np.array([target[0] + distance * np.cos(azimuth), target[1] + distance * np.sin(azimuth), height])
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1), centre


def generate_3dhp(scale: str = "tiny", seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """P-STMO-format 3DHP-like test data: ``{TS: {data_2d, data_3d (camera mm), valid}}``, 17 joints."""
    sc = get_scale(scale)
    out: dict[str, dict[str, np.ndarray]] = {}
    for seq, num_frames in zip(SEQUENCES_3DHP, sc.frames_3dhp, strict=True):
        rng = make_rng(seed, "3dhp", seq)
        scene = _SCENE_OF[seq]
        families, volume = _SCENES[scene]
        bones = subject_bone_lengths(f"3DHP-{seq}", seed, spread=1.3)
        count = int(np.clip(num_frames // 150, 2, len(families)))
        chosen = rng.permutation(len(families))[:count]
        takes = [
            family_take(families[k], num_frames, make_rng(seed, "3dhp", seq, k), bones, volume) for k in chosen
        ]
        angles, xy = blend_takes(takes, segment_weights(num_frames, count))
        world = select_joints(pose_sequence(angles, xy, bones), H36M32, H36M17)
        if scene == "outdoor":
            width, height = 1920, 1080
            focal, distance, cam_height = rng.uniform(1550, 1750), rng.uniform(6.5, 8.0), rng.uniform(1.3, 2.0)
        else:
            width, height = 2048, 2048
            focal, distance, cam_height = rng.uniform(1400, 1600), rng.uniform(3.6, 4.6), rng.uniform(0.9, 1.3)
        target = np.array([*xy.mean(axis=0), 0.9]) + rng.uniform(-0.15, 0.15, 3)
        rotation, centre = _look_at_camera(rng, target, distance, cam_height)
        cam = world_to_camera(world, rotation, centre)
        principal = np.array([width / 2, height / 2]) + rng.uniform(-12, 12, 2)
        f = np.array([focal, focal * rng.uniform(0.998, 1.002)])
        pixels = project_to_pixels(cam, f, principal, np.zeros(3), np.zeros(2))
        inside = (pixels >= 0).all(-1) & (pixels[..., 0] < width) & (pixels[..., 1] < height)
        valid = inside.all(axis=1) & (cam[..., 2] > 0.1).all(axis=1)
        for _ in range(max(1, num_frames // 300)):  # annotation dropouts
            length = int(rng.integers(max(2, num_frames // 40), max(3, num_frames // 15)))
            start = int(rng.integers(0, num_frames - length))
            valid[start : start + length] = False
        out[seq] = {
            "data_2d": select_joints(pixels, H36M17, MPI3DHP17).astype(np.float32),
            "data_3d": (select_joints(cam, H36M17, MPI3DHP17) * 1000.0).astype(np.float32),
            "valid": valid.astype(np.float32),
        }
    return out


def generate(
    out_dir: str | Path,
    scale: str = "tiny",
    seed: int = 0,
    layout: str = "h36m16",
    layout_3d: str = "h36m32",
) -> dict[str, Path]:
    """Write the synthetic Human3.6M files, the 3DHP-like test set and the cameras into ``out_dir``.

    ``layout``: joints of the 2D files (h36m16 or h36m17); ``layout_3d``: joints of the 3D file
    (h36m32, the raw skeleton, or h36m17/h36m16). Returns file role -> path of what was written.
    """
    lay_2d, lay_3d = get_layout(layout), get_layout(layout_3d)
    if lay_2d.name not in ("h36m16", "h36m17"):
        raise UserInputError(f"2D layout must be h36m16 or h36m17, not {layout!r}")
    if lay_3d.name not in ("h36m16", "h36m17", "h36m32"):
        raise UserInputError(f"3D layout must be h36m32, h36m17 or h36m16, not {layout_3d!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    positions = generate_positions_3d(scale, seed)
    logger.info("synthetic %s: 3D motion in %.1f s", scale, time.perf_counter() - started)

    cameras = load_cameras()
    gt = project_dataset(
        {s: {a: select_joints(x, H36M32, lay_2d) for a, x in acts.items()} for s, acts in positions.items()},
        cameras,
    )
    hr = {
        s: {
            a: [add_detector_noise(p, lay_2d, make_rng(seed, "hr", s, a, c))[0] for c, p in enumerate(views)]
            for a, views in acts.items()
        }
        for s, acts in gt.items()
    }
    logger.info("synthetic %s: 2D in %.1f s", scale, time.perf_counter() - started)
    metadata = metadata_2d(lay_2d)
    paths = {
        "data_3d_h36m": out / schema.RAW_3D,
        "data_2d_h36m_gt": out / schema.raw_2d_name("gt"),
        "data_2d_h36m_hr": out / schema.raw_2d_name("hr"),
        "data_test_3dhp": out / schema.RAW_3DHP_PSTMO,
        "cameras": out / schema.RAW_CAMERAS,
    }
    positions_3d = {
        s: {a: select_joints(x, H36M32, lay_3d) for a, x in acts.items()} for s, acts in positions.items()
    }
    save_community_npz(paths["data_3d_h36m"], positions_3d=positions_3d)
    save_community_npz(paths["data_2d_h36m_gt"], positions_2d=gt, metadata=metadata)
    save_community_npz(paths["data_2d_h36m_hr"], positions_2d=hr, metadata=metadata)
    save_community_npz(paths["data_test_3dhp"], data=generate_3dhp(scale, seed))
    with atomic_path(paths["cameras"]) as tmp:
        shutil.copyfile(h36m_cameras_path(), tmp)
    logger.info("synthetic %s: wrote %s in %.1f s", scale, out, time.perf_counter() - started)
    return paths
