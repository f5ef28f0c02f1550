"""Synthetic human motion: a 32-joint bone tree driven by joint angles (forward kinematics).

Body frame: x to the subject's right, y forward, z up; metres; angles in degrees; 50 fps.
Each of the 15 Human3.6M action families is a generator of smooth joint-angle time courses
(gait cycles, sitting, hand-to-face motions, gestures, bends, idle sway) plus a root path
(heading and floor position). The angles are clipped to anatomical limits
(:data:`JOINT_LIMITS`), turned into joint positions by :func:`forward_kinematics` over the raw
Human3.6M tree (:data:`~mlpgraph.layouts.H36M32`), and each frame is lifted so the lowest foot
joint touches the floor (z = 0). Bone lengths are fixed per subject
(:func:`subject_bone_lengths`), so they are exactly constant over time.

Everything is vectorised over frames: the only Python loops run over joints, DOFs and the few
motion "events" (gestures, bends) of a take.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mlpgraph.data.actions import ACTION_FAMILIES
from mlpgraph.layouts import H36M32

FPS = 50
FLOOR_CLEARANCE = 0.02  # metres between the floor and the lowest foot joint (marker offset)
# Semi-axes (x, y) in metres of the elliptic floor area that takes move in at volume 1, centred
# on the origin (the Human3.6M cameras see a region longer along y than along x).
VOLUME_SEMI_AXES = (0.85, 1.45)

# Mean bone lengths (metres), close to the Human3.6M skeleton's.
BONE_MEANS: dict[str, float] = {
    "pelvis_hip": 0.133, "thigh": 0.454, "shin": 0.451, "ankle_height": 0.085, "foot": 0.14,
    "toe": 0.05, "spine_lower": 0.233, "spine_upper": 0.257, "neck": 0.121, "head": 0.115,
    "shoulder": 0.151, "upper_arm": 0.278, "forearm": 0.252, "hand": 0.085, "hand_end": 0.07,
    "thumb": 0.05, "thumb_end": 0.03,
}  # fmt: skip

# Anatomical limits (degrees) of each joint-angle DOF; sided DOFs exist as "r_<dof>"/"l_<dof>".
# Flexion is positive forward for hip and shoulder, backward for the knee (its usual sense),
# forward bending for spine and head; rotations are internal-positive.
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "root_pitch": (-15.0, 70.0), "root_roll": (-15.0, 15.0),
    "hip_flex": (-20.0, 120.0), "hip_abd": (-30.0, 45.0), "hip_rot": (-40.0, 40.0),
    "knee_flex": (0.0, 150.0), "ankle_flex": (-40.0, 30.0),
    "spine_flex": (-30.0, 80.0), "spine_lat": (-30.0, 30.0), "spine_twist": (-45.0, 45.0),
    "head_flex": (-60.0, 60.0), "head_yaw": (-60.0, 60.0), "head_lat": (-40.0, 40.0),
    "shoulder_flex": (-50.0, 180.0), "shoulder_abd": (0.0, 180.0), "shoulder_rot": (-90.0, 90.0),
    "shrug": (0.0, 20.0), "elbow_flex": (0.0, 150.0), "wrist_flex": (-70.0, 70.0),
}  # fmt: skip
SIDED_DOFS = ("hip_flex", "hip_abd", "hip_rot", "knee_flex", "ankle_flex", "shoulder_flex",
              "shoulder_abd", "shoulder_rot", "shrug", "elbow_flex", "wrist_flex")  # fmt: skip
DOFS: tuple[str, ...] = tuple(
    name for dof in JOINT_LIMITS for name in ((f"r_{dof}", f"l_{dof}") if dof in SIDED_DOFS else (dof,))
)
FOOT_JOINTS: tuple[int, ...] = tuple(
    i for i, n in enumerate(H36M32.joint_names) if n.endswith(("ankle", "toe", "toe_end"))
)


def dof_limits(name: str) -> tuple[float, float]:
    """Limits (degrees) of a DOF name such as ``r_knee_flex`` or ``spine_twist``."""
    return JOINT_LIMITS[name[2:] if name[:2] in ("r_", "l_") else name]


def _key(*parts: object) -> tuple[int, ...]:
    """Stable integer spawn key from names (``hash`` is salted per process, crc32 is not)."""
    return tuple(zlib.crc32(str(p).encode()) for p in parts)


def make_rng(seed: int, *parts: object) -> np.random.Generator:
    """An independent generator for (seed, parts...), independent of iteration order."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_key(*parts)))


def subject_bone_lengths(subject: str, seed: int = 0, spread: float = 1.0) -> dict[str, float]:
    """Bone lengths (metres) of ``subject``: a global size factor times small per-bone factors.

    Left and right are symmetric. ``spread`` widens the variation (unseen 3DHP-like subjects).
    """
    rng = make_rng(seed, "bones", subject)
    size = float(np.clip(rng.normal(1.0, 0.045 * spread), 1 - 0.1 * spread, 1 + 0.1 * spread))
    factors = np.clip(rng.normal(1.0, 0.035 * spread, len(BONE_MEANS)), 0.92, 1.08)
    return {name: float(mean * size * f) for (name, mean), f in zip(BONE_MEANS.items(), factors, strict=True)}


def _unit(x: float, y: float, z: float) -> np.ndarray:
    v = np.array([x, y, z], dtype=np.float64)
    return v / np.linalg.norm(v)


def rest_offsets(bones: dict[str, float]) -> np.ndarray:
    """(32, 3) offset of each H36M32 joint from its parent in the rest pose (arms hanging)."""
    b = bones
    half: dict[str, np.ndarray] = {
        "hip": _unit(1, 0, 0) * b["pelvis_hip"],
        "knee": _unit(0, 0, -1) * b["thigh"],
        "ankle": _unit(0, 0, -1) * b["shin"],
        "toe": np.array([0.0, b["foot"], -b["ankle_height"]]),
        "toe_end": _unit(0, 1, 0) * b["toe"],
        "clavicle": _unit(0, 0.05, 1) * b["spine_upper"],  # at the thorax (parent: spine)
        "shoulder": _unit(1, 0, -0.2) * b["shoulder"],
        "elbow": _unit(0, 0, -1) * b["upper_arm"],
        "wrist": _unit(0, 0, -1) * b["forearm"],
        "hand": _unit(0, 0, -1) * b["hand"],
        "hand_end": _unit(0, 0, -1) * b["hand_end"],
        "thumb": _unit(0.6, 0, -0.8) * b["thumb"],
        "thumb_end": _unit(0.6, 0, -0.8) * b["thumb_end"],
    }
    centre = {
        "pelvis": np.zeros(3),
        "raw_spine_base": np.zeros(3),
        "spine": _unit(0, -0.05, 1) * b["spine_lower"],
        "thorax": _unit(0, 0.05, 1) * b["spine_upper"],
        "neck": _unit(0, 0.35, 0.94) * b["neck"],
        "head": _unit(0, -0.25, 0.97) * b["head"],
    }
    mirror = np.array([-1.0, 1.0, 1.0])
    offsets = np.zeros((H36M32.num_joints, 3))
    for j, name in enumerate(H36M32.joint_names):
        if name in centre:
            offsets[j] = centre[name]
            continue
        side, part = name.removeprefix("raw_").split("_", 1)
        offsets[j] = half[part] if side == "right" else half[part] * mirror
    return offsets


def rot_x(deg: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) about x by ``deg`` degrees."""
    a = np.radians(deg)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(deg: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) about y by ``deg`` degrees."""
    a = np.radians(deg)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(deg: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) about z by ``deg`` degrees."""
    a = np.radians(deg)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def forward_kinematics(
    parents: tuple[int, ...] | np.ndarray,
    offsets: np.ndarray,
    local_rotations: np.ndarray,
    root_positions: np.ndarray,
) -> np.ndarray:
    """Joint positions (T, J, 3) of a bone tree.

    ``local_rotations`` (T, J, 3, 3): joint j's rotation relative to its parent's frame (the
    root's is its world orientation); it turns the bones to j's children. ``offsets`` (J, 3):
    each joint's rest offset from its parent in the parent's frame. Parents must precede
    children. Rotations are rigid, so bone lengths equal the offsets' norms in every frame.
    """
    num_frames, num_joints = local_rotations.shape[:2]
    positions = np.empty((num_frames, num_joints, 3))
    frames = np.empty((num_frames, num_joints, 3, 3))
    for j, p in enumerate(parents):
        if p < 0:
            positions[:, j] = root_positions
            frames[:, j] = local_rotations[:, j]
            continue
        if p >= j:
            raise ValueError("forward_kinematics needs parents listed before their children")
        positions[:, j] = positions[:, p] + frames[:, p] @ offsets[j]
        frames[:, j] = frames[:, p] @ local_rotations[:, j]
    return positions


def clip_to_limits(angles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each DOF's course clipped to its anatomical range (root yaw is free)."""
    return {k: (v if k == "root_yaw" else np.clip(v, *dof_limits(k))) for k, v in angles.items()}


def local_rotations(angles: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 32, 3, 3) local joint rotations of H36M32 from a full set of DOF courses (degrees)."""
    a = angles
    num_frames = len(a["root_yaw"])
    rots = np.broadcast_to(np.eye(3), (num_frames, H36M32.num_joints, 3, 3)).copy()
    idx = H36M32.index
    rots[:, idx("pelvis")] = rot_z(a["root_yaw"]) @ rot_x(-a["root_pitch"]) @ rot_y(a["root_roll"])
    # Spine: flexion forward is a negative rotation about x for an upward bone.
    for joint, share in (("raw_spine_base", 0.55), ("spine", 0.45)):
        rots[:, idx(joint)] = (
            rot_z(share * a["spine_twist"]) @ rot_x(-share * a["spine_flex"]) @ rot_y(share * a["spine_lat"])
        )
    for joint in ("thorax", "neck"):  # the head's motion, shared by the neck and the head
        rots[:, idx(joint)] = rot_z(0.5 * a["head_yaw"]) @ rot_x(-0.5 * a["head_flex"]) @ rot_y(0.5 * a["head_lat"])
    for s, side, sign in (("r", "right", -1.0), ("l", "left", 1.0)):
        # sign: rotation about y that moves this side's limb outward (abduction).
        rots[:, idx(f"{side}_hip")] = (
            rot_x(a[f"{s}_hip_flex"]) @ rot_y(sign * a[f"{s}_hip_abd"]) @ rot_z(-sign * a[f"{s}_hip_rot"])
        )
        rots[:, idx(f"{side}_knee")] = rot_x(-a[f"{s}_knee_flex"])
        rots[:, idx(f"{side}_ankle")] = rot_x(a[f"{s}_ankle_flex"])
        # The clavicle hangs off the spine joint, beside the thorax: the head leaves it alone.
        rots[:, idx(f"raw_{side}_clavicle")] = rot_y(-sign * a[f"{s}_shrug"])
        rots[:, idx(f"{side}_shoulder")] = (
            rot_x(a[f"{s}_shoulder_flex"])
            @ rot_y(sign * a[f"{s}_shoulder_abd"])
            @ rot_z(-sign * a[f"{s}_shoulder_rot"])
        )
        rots[:, idx(f"{side}_elbow")] = rot_x(a[f"{s}_elbow_flex"])
        rots[:, idx(f"{side}_wrist")] = rot_x(a[f"{s}_wrist_flex"])
    return rots


# ---------------------------------------------------------------------------------------------
# Smooth time-course building blocks (all vectorised over frames).


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C1-smooth in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def wobble(rng: np.random.Generator, t: np.ndarray, amp: float, fmax: float = 0.4, n: int = 3) -> np.ndarray:
    """A smooth random signal (sum of ``n`` sinusoids below ``fmax`` Hz) with std about ``amp``."""
    freqs = rng.uniform(0.03, fmax, n)
    phases = rng.uniform(0.0, 2 * np.pi, n)
    weights = rng.normal(size=n)
    weights *= np.sqrt(2.0) / np.linalg.norm(weights)
    return amp * (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None])).sum(0)


def bumps(
    rng: np.random.Generator, t: np.ndarray, gap: float, rise: float, hold: float
) -> np.ndarray:
    """Repeated smooth on-hold-off events in [0, 1], about ``gap`` seconds apart (gestures, bends)."""
    duration = float(t[-1]) + 1.0 / FPS
    n = int(duration / gap * 1.6) + 2
    gaps = rng.uniform(0.6, 1.4, n) * gap
    starts = np.cumsum(gaps) - gaps[0] * rng.uniform(0.2, 1.2)
    holds = hold * rng.uniform(0.6, 1.4, n)
    x = t[None, :] - starts[:, None]
    up = smoothstep(x / rise)
    down = smoothstep((x - rise - holds[:, None]) / rise)
    return (up * (1.0 - down)).max(axis=0)


def keyframes(rng: np.random.Generator, t: np.ndarray, interval: float, values: np.ndarray) -> np.ndarray:
    """Hold-and-move interpolation between key values (K, ...) placed every ``interval`` seconds."""
    pos = t / interval
    k = np.minimum(pos.astype(np.int64), len(values) - 2)
    frac = smoothstep((pos - k - 0.45) / 0.55)
    shape = (-1,) + (1,) * (values.ndim - 1)
    return values[k] + (values[k + 1] - values[k]) * frac.reshape(shape)


def num_keys(t: np.ndarray, interval: float) -> int:
    return int(t[-1] / interval) + 3


# ---------------------------------------------------------------------------------------------
# Takes: per-family generators of DOF courses and root paths.


@dataclass
class Take:
    """The DOF courses (degrees), floor path (T, 2) metres and heading (degrees) of one take."""

    t: np.ndarray
    rng: np.random.Generator
    bones: dict[str, float]
    volume: float = 1.0
    angles: dict[str, np.ndarray] = field(default_factory=dict)
    xy: np.ndarray | None = None
    yaw: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in (*DOFS, "root_yaw"):
            self.angles.setdefault(name, np.zeros_like(self.t))

    def add(self, name: str, values: np.ndarray | float) -> None:
        self.angles[name] = self.angles[name] + values

    def both(self, dof: str, right: np.ndarray | float, left: np.ndarray | float | None = None) -> None:
        self.add(f"r_{dof}", right)
        self.add(f"l_{dof}", right if left is None else left)

    def wob(self, amp: float, fmax: float = 0.4) -> np.ndarray:
        return wobble(self.rng, self.t, amp, fmax)

    @property
    def leg_length(self) -> float:
        return self.bones["thigh"] + self.bones["shin"] + self.bones["ankle_height"]


def _idle_path(tk: Take, drift: float = 0.3, turn: float = 30.0) -> None:
    """Slow drift around a spot inside the volume, with turns of the heading."""
    rng = tk.rng
    centre = rng.uniform(-0.35, 0.35, 2) * np.array(VOLUME_SEMI_AXES) * tk.volume
    xy = centre + np.stack([tk.wob(0.5 * drift * tk.volume, 0.1), tk.wob(drift * tk.volume, 0.1)], -1)
    # Soft containment: scale positions outside the volume's ellipse back onto it.
    radius = np.linalg.norm(xy / (np.array(VOLUME_SEMI_AXES) * tk.volume), axis=-1)
    tk.xy = xy / np.maximum(radius, 1.0)[:, None]
    turns = keyframes(rng, tk.t, rng.uniform(3.0, 6.0), rng.uniform(-turn, turn, num_keys(tk.t, 3.0)))
    tk.yaw = rng.uniform(-180.0, 180.0) + turns + tk.wob(0.3 * turn, 0.2)


def _loop_path(tk: Take, speed: float) -> np.ndarray:
    """Walk around an ellipse inside the volume; returns the actual speed (T,) in m/s."""
    rng = tk.rng
    a, b = rng.uniform(0.55, 0.75) * tk.volume, rng.uniform(1.0, 1.35) * tk.volume
    tilt = rng.uniform(-0.2, 0.2)
    centre = rng.uniform(-0.12, 0.12, 2) * tk.volume
    v = speed * (1.0 + 0.12 * wobble(rng, tk.t, 1.0, 0.15))
    theta = rng.uniform(0, 2 * np.pi) + rng.choice([-1.0, 1.0]) * np.cumsum(v) / FPS / (0.5 * (a + b))
    local = np.stack([a * np.cos(theta), b * np.sin(theta)], -1)
    c, s = np.cos(tilt), np.sin(tilt)
    tk.xy = centre + local @ np.array([[c, s], [-s, c]])
    vel = np.gradient(tk.xy, axis=0) * FPS
    tk.yaw = np.degrees(np.arctan2(-vel[:, 0], vel[:, 1]))
    return np.linalg.norm(vel, axis=-1)


def _gait(tk: Take, speed: np.ndarray, arm_swing: float = 1.0) -> None:
    """Walking joint angles driven by a gait phase that advances with the walking speed."""
    stride = 1.45 * tk.leg_length * tk.rng.uniform(0.92, 1.08)
    phase = 2 * np.pi * np.cumsum(speed / stride) / FPS + tk.rng.uniform(0, 2 * np.pi)
    amp = np.clip(speed / 1.25, 0.0, 1.2) ** 0.7
    for s, ph in (("r", phase), ("l", phase + np.pi)):
        tk.add(f"{s}_hip_flex", amp * (8.0 + 24.0 * np.sin(ph)))
        swing = ((1.0 + np.cos(ph + 0.5)) / 2.0) ** 3
        loading = ((1.0 + np.cos(ph - 2.2)) / 2.0) ** 6
        tk.add(f"{s}_knee_flex", amp * (4.0 + 58.0 * swing + 14.0 * loading))
        tk.add(f"{s}_ankle_flex", amp * 10.0 * np.sin(ph + 1.0))
        tk.add(f"{s}_shoulder_flex", arm_swing * amp * (4.0 - 18.0 * np.sin(ph)))
        tk.add(f"{s}_elbow_flex", 12.0 + arm_swing * amp * 14.0 * np.clip(-np.sin(ph), 0.0, None))
        tk.add(f"{s}_shoulder_abd", 8.0)
    tk.add("root_yaw", amp * 5.0 * np.sin(phase))
    tk.add("spine_twist", -amp * 6.0 * np.sin(phase))
    tk.add("root_roll", amp * 3.0 * np.sin(phase + np.pi / 2))


def _stance(tk: Take) -> None:
    """Idle standing: weight shifts between the legs and relaxed arms."""
    shift = tk.wob(1.0, 0.15)
    tk.both("hip_abd", 3.0 + 4.0 * shift, 3.0 - 4.0 * shift)
    tk.both("knee_flex", 4.0 + 6.0 * np.clip(-shift, 0, None), 4.0 + 6.0 * np.clip(shift, 0, None))
    tk.add("root_roll", 3.0 * shift)
    tk.both("shoulder_abd", 8.0)
    tk.both("elbow_flex", 12.0)


def _seated(tk: Take, hip: float = 88.0, knee: float = 88.0) -> None:
    tk.both("hip_flex", hip + tk.wob(4.0, 0.1), hip + tk.wob(4.0, 0.1))
    tk.both("knee_flex", knee + tk.wob(8.0, 0.1), knee + tk.wob(8.0, 0.1))
    tk.both("hip_abd", 8.0 + tk.wob(4.0, 0.1), 8.0 + tk.wob(4.0, 0.1))


def _hand_to_face(tk: Take, s: str, b: np.ndarray, elbow: float = 135.0, flex: float = 45.0) -> None:
    tk.add(f"{s}_shoulder_flex", flex * b)
    tk.add(f"{s}_shoulder_abd", 10.0 * b)
    tk.add(f"{s}_elbow_flex", (elbow - 20.0) * b)
    tk.add(f"{s}_shoulder_rot", 25.0 * b)


def _directions(tk: Take) -> None:
    _idle_path(tk, drift=0.45, turn=60.0)
    _stance(tk)
    rng, t = tk.rng, tk.t
    for s, rate in (("r", 4.0), ("l", 8.0)):
        b = bumps(rng, t, rate, 0.6, 1.5)
        tk.add(f"{s}_shoulder_flex", b * rng.uniform(60, 95))
        tk.add(f"{s}_shoulder_abd", b * rng.uniform(10, 45))
        tk.add(f"{s}_elbow_flex", b * (tk.wob(10.0) - 5.0))
        tk.add("head_yaw", b * rng.uniform(15, 35) * (1 if s == "l" else -1))
        tk.add("spine_twist", b * 12.0 * (1 if s == "l" else -1))
    tk.add("head_flex", 5.0 + tk.wob(8.0))


def _discussion(tk: Take) -> None:
    _idle_path(tk, drift=0.3, turn=40.0)
    _stance(tk)
    for s in ("r", "l"):
        tk.add(f"{s}_shoulder_flex", 25.0 + tk.wob(14.0, 0.9))
        tk.add(f"{s}_shoulder_abd", 12.0 + tk.wob(8.0, 0.8))
        tk.add(f"{s}_elbow_flex", 75.0 + tk.wob(22.0, 1.2))
        tk.add(f"{s}_shoulder_rot", 20.0 + tk.wob(15.0, 0.6))
        tk.add(f"{s}_wrist_flex", tk.wob(20.0, 1.0))
    tk.add("spine_twist", tk.wob(10.0, 0.3))
    tk.add("head_yaw", tk.wob(25.0, 0.3))
    tk.add("head_flex", tk.wob(10.0, 0.5))


def _eating(tk: Take) -> None:
    _idle_path(tk, drift=0.05, turn=10.0)
    _seated(tk)
    rng, t = tk.rng, tk.t
    tk.add("spine_flex", 15.0 + tk.wob(6.0, 0.2))
    for s, gap in (("r", 3.5), ("l", 7.0)):
        tk.add(f"{s}_shoulder_flex", 25.0)
        tk.add(f"{s}_elbow_flex", 70.0 + tk.wob(10.0, 0.5))
        tk.add(f"{s}_shoulder_rot", 25.0)
        b = bumps(rng, t, gap, 0.7, 0.4)
        _hand_to_face(tk, s, b, elbow=140.0 - 70.0, flex=25.0)
        tk.add("head_flex", -8.0 * b)
    tk.add("head_flex", 15.0 + tk.wob(6.0))


def _greeting(tk: Take) -> None:
    _idle_path(tk, drift=0.5, turn=50.0)
    _stance(tk)
    rng, t = tk.rng, tk.t
    wave = bumps(rng, t, 5.0, 0.6, 2.0)
    tk.add("r_shoulder_abd", 110.0 * wave)
    tk.add("r_shoulder_flex", 30.0 * wave)
    tk.add("r_elbow_flex", wave * (50.0 + 25.0 * np.sin(2 * np.pi * rng.uniform(1.8, 2.6) * t)))
    tk.add("r_shoulder_rot", -30.0 * wave)
    bow = bumps(rng, t, 7.0, 0.8, 1.0)
    depth = rng.uniform(15, 35)
    tk.add("root_pitch", depth * bow)
    tk.both("hip_flex", depth * bow)
    tk.add("spine_flex", 20.0 * bow)
    shake = bumps(rng, t, 6.0, 0.5, 1.5) * (1.0 - wave)
    tk.add("l_shoulder_flex", 40.0 * shake)
    tk.add("l_elbow_flex", 35.0 * shake + shake * 8.0 * np.sin(2 * np.pi * 3.0 * t))


def _phoning(tk: Take) -> None:
    _idle_path(tk, drift=0.6, turn=70.0)
    _stance(tk)
    rng = tk.rng
    s, o = ("r", "l") if rng.uniform() < 0.7 else ("l", "r")
    on = 1.0 - 0.8 * bumps(rng, tk.t, 8.0, 0.8, 1.5)
    tk.add(f"{s}_shoulder_flex", on * (30.0 + tk.wob(5.0)))
    tk.add(f"{s}_shoulder_abd", on * (35.0 + tk.wob(5.0)))
    tk.add(f"{s}_elbow_flex", on * (125.0 + tk.wob(6.0)))
    tk.add(f"{s}_shoulder_rot", on * 20.0)
    tk.add("head_lat", (8.0 if s == "r" else -8.0) * on)
    tk.add(f"{o}_shoulder_flex", 15.0 + tk.wob(12.0, 0.7))
    tk.add(f"{o}_elbow_flex", 40.0 + tk.wob(25.0, 0.8))
    tk.add("head_yaw", tk.wob(20.0, 0.2))


def _photo(tk: Take) -> None:
    _idle_path(tk, drift=0.4, turn=70.0)
    _stance(tk)
    rng, t = tk.rng, tk.t
    crouch = bumps(rng, t, 6.0, 1.0, 2.5) * rng.uniform(0.5, 1.0)
    tk.both("knee_flex", 75.0 * crouch)
    tk.both("hip_flex", 60.0 * crouch)
    tk.both("ankle_flex", 22.0 * crouch)
    tk.add("root_pitch", 12.0 * crouch)
    aim = 1.0 - bumps(rng, t, 5.0, 0.7, 1.2)
    for s in ("r", "l"):
        tk.add(f"{s}_shoulder_flex", aim * (75.0 + tk.wob(8.0)))
        tk.add(f"{s}_shoulder_abd", aim * 18.0)
        tk.add(f"{s}_elbow_flex", 30.0 + aim * (90.0 + tk.wob(8.0)))
        tk.add(f"{s}_shoulder_rot", aim * 35.0)
    tk.add("head_flex", -5.0 * aim + 10.0 * (1.0 - aim))
    tk.add("spine_twist", tk.wob(10.0, 0.3))


def _posing(tk: Take) -> None:
    _idle_path(tk, drift=0.2, turn=30.0)
    _stance(tk)
    rng, t = tk.rng, tk.t
    interval = rng.uniform(2.0, 3.0)
    k = num_keys(t, interval)
    ranges = {
        "shoulder_flex": (-20, 170), "shoulder_abd": (0, 160), "elbow_flex": (0, 140),
        "shoulder_rot": (-40, 60), "hip_abd": (-5, 25), "knee_flex": (0, 30), "hip_flex": (-10, 30),
    }  # fmt: skip
    for dof, (lo, hi) in ranges.items():
        for s in ("r", "l"):
            tk.add(f"{s}_{dof}", keyframes(rng, t, interval, rng.uniform(lo, hi, k)))
    for dof, lim in (("spine_lat", 20), ("spine_flex", 25), ("spine_twist", 25), ("head_yaw", 30),
                     ("head_lat", 15)):  # fmt: skip
        tk.add(dof, keyframes(rng, t, interval, rng.uniform(-lim, lim, k)))


def _purchases(tk: Take) -> None:
    _idle_path(tk, drift=0.6, turn=80.0)
    _stance(tk)
    rng, t = tk.rng, tk.t
    bend = bumps(rng, t, 4.5, 0.8, 1.0)
    pitch = rng.uniform(30, 50)
    tk.add("root_pitch", pitch * bend)
    tk.both("hip_flex", (pitch + 5.0) * bend)
    tk.both("knee_flex", 25.0 * bend)
    tk.add("spine_flex", 30.0 * bend)
    tk.add("head_flex", 20.0 * bend)
    carry = 1.0 - bend
    for s in ("r", "l"):
        tk.add(f"{s}_shoulder_flex", 60.0 * bend + carry * (15.0 + tk.wob(8.0)))
        tk.add(f"{s}_elbow_flex", 15.0 * bend + carry * (60.0 + tk.wob(25.0, 0.3)))
    tk.add("spine_twist", tk.wob(12.0, 0.3))


def _sitting(tk: Take) -> None:
    _idle_path(tk, drift=0.04, turn=10.0)
    _seated(tk)
    rng, t = tk.rng, tk.t
    cross = bumps(rng, t, 9.0, 1.0, 3.0) * float(rng.uniform() < 0.7)
    tk.add("r_hip_abd", -20.0 * cross)
    tk.add("r_hip_flex", 15.0 * cross)
    tk.add("r_knee_flex", -15.0 * cross)
    tk.add("spine_flex", 10.0 + tk.wob(12.0, 0.15))
    tk.add("spine_twist", tk.wob(12.0, 0.2))
    for s in ("r", "l"):
        tk.add(f"{s}_shoulder_flex", 25.0 + tk.wob(10.0, 0.5))
        tk.add(f"{s}_elbow_flex", 70.0 + tk.wob(15.0, 0.5))
        tk.add(f"{s}_shoulder_rot", 25.0)
    tk.add("head_yaw", tk.wob(20.0, 0.2))
    tk.add("head_flex", tk.wob(10.0, 0.3))


def _sitting_down(tk: Take) -> None:
    _idle_path(tk, drift=0.15, turn=20.0)
    rng, t = tk.rng, tk.t
    level = bumps(rng, t, 7.0, 1.6, 3.0)
    transition = 4.0 * level * (1.0 - level)
    floor = rng.uniform() < 0.5  # sit on the floor (legs forward) or crouch onto a low seat
    knee = 25.0 if floor else 115.0
    tk.both("hip_flex", 95.0 * level + 25.0 * transition)
    tk.both("knee_flex", knee * level + 60.0 * transition)
    tk.both("hip_abd", 6.0 + 10.0 * level)
    tk.add("root_pitch", 20.0 * transition)
    tk.add("spine_flex", 25.0 * transition + 10.0 * level)
    for s in ("r", "l"):
        tk.add(f"{s}_shoulder_flex", 45.0 * transition + 20.0 * level + tk.wob(6.0))
        tk.add(f"{s}_shoulder_abd", 10.0 + 10.0 * level)
        tk.add(f"{s}_elbow_flex", 15.0 + 40.0 * level * (1.0 - transition))
    tk.add("head_flex", 10.0 * transition + tk.wob(8.0))
    tk.add("head_yaw", tk.wob(15.0, 0.2))


def _smoking(tk: Take) -> None:
    _idle_path(tk, drift=0.25, turn=40.0)
    _stance(tk)
    rng = tk.rng
    s, o = ("r", "l") if rng.uniform() < 0.7 else ("l", "r")
    puff = bumps(rng, tk.t, 5.0, 0.6, 0.8)
    tk.add(f"{s}_elbow_flex", 25.0 + tk.wob(10.0))
    _hand_to_face(tk, s, puff, elbow=140.0, flex=40.0)
    tk.add(f"{o}_shoulder_flex", 25.0)
    tk.add(f"{o}_elbow_flex", 95.0 + tk.wob(8.0))
    tk.add(f"{o}_shoulder_rot", 50.0)
    tk.add("head_flex", -8.0 * puff + tk.wob(6.0))
    tk.add("head_yaw", tk.wob(15.0, 0.2))


def _waiting(tk: Take) -> None:
    _idle_path(tk, drift=0.35, turn=60.0)
    _stance(tk)
    rng = tk.rng
    if rng.uniform() < 0.5:  # hands clasped in front
        tk.both("shoulder_flex", 15.0)
        tk.both("elbow_flex", 65.0 + tk.wob(6.0))
        tk.both("shoulder_rot", 45.0)
    else:  # hands on the hips
        tk.both("shoulder_abd", 40.0)
        tk.both("elbow_flex", 95.0 + tk.wob(6.0))
        tk.both("shoulder_rot", -25.0)
    tk.add("spine_lat", tk.wob(5.0, 0.1))
    tk.add("head_yaw", tk.wob(30.0, 0.25))
    tk.add("head_flex", tk.wob(12.0, 0.2))


def _walk_dog(tk: Take) -> None:
    speed = _loop_path(tk, tk.rng.uniform(0.8, 1.0))
    speed = speed * (1.0 - 0.9 * bumps(tk.rng, tk.t, 6.0, 0.6, 1.0))
    _gait(tk, speed, arm_swing=0.6)
    s = "r" if tk.rng.uniform() < 0.6 else "l"
    tk.add(f"{s}_shoulder_flex", 35.0 + tk.wob(12.0, 0.6))
    tk.add(f"{s}_elbow_flex", 20.0 + tk.wob(10.0, 0.6))
    tk.add("root_pitch", 6.0)
    tk.both("hip_flex", 6.0)
    tk.add("head_flex", 20.0 + tk.wob(10.0))
    tk.add("head_yaw", tk.wob(20.0, 0.3))


def _walking(tk: Take) -> None:
    speed = _loop_path(tk, tk.rng.uniform(1.1, 1.4))
    _gait(tk, speed)
    tk.add("head_flex", 5.0 + tk.wob(4.0))


def _walk_together(tk: Take) -> None:
    speed = _loop_path(tk, tk.rng.uniform(0.85, 1.05))
    _gait(tk, speed, arm_swing=0.7)
    side = tk.rng.choice([-1.0, 1.0])
    tk.add("head_yaw", side * 25.0 + tk.wob(12.0, 0.3))
    tk.add("spine_twist", side * 8.0)
    gesture = bumps(tk.rng, tk.t, 6.0, 0.6, 1.5)
    tk.add("r_shoulder_flex", 30.0 * gesture)
    tk.add("r_elbow_flex", 60.0 * gesture)


FAMILY_GENERATORS: dict[str, Callable[[Take], None]] = {
    "Directions": _directions, "Discussion": _discussion, "Eating": _eating,
    "Greeting": _greeting, "Phoning": _phoning, "Photo": _photo, "Posing": _posing,
    "Purchases": _purchases, "Sitting": _sitting, "SittingDown": _sitting_down,
    "Smoking": _smoking, "Waiting": _waiting, "WalkDog": _walk_dog, "Walking": _walking,
    "WalkTogether": _walk_together,
}  # fmt: skip
assert set(FAMILY_GENERATORS) == set(ACTION_FAMILIES)


def family_take(
    family: str, num_frames: int, rng: np.random.Generator, bones: dict[str, float], volume: float = 1.0
) -> Take:
    """The unclipped DOF courses and root path of one take of ``family``."""
    tk = Take(t=np.arange(num_frames) / FPS, rng=rng, bones=bones, volume=volume)
    # Every take gets a little individual variation on every DOF.
    for name in DOFS:
        tk.add(name, tk.wob(2.0, 0.5))
    FAMILY_GENERATORS[family](tk)
    for s in ("r", "l"):  # the shoulder girdle elevates when the arm is raised high
        tk.add(f"{s}_shrug", 0.12 * np.clip(tk.angles[f"{s}_shoulder_abd"] - 60.0, 0.0, None))
    tk.angles["root_yaw"] = tk.yaw + tk.angles["root_yaw"]
    return tk


def blend_takes(takes: list[Take], weights: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Frame-wise convex blend (weights (K, T), summing to one) of takes' DOF courses and paths.

    Blending clipped-range angles stays within the limits; headings blend on the circle.
    """
    angles = {
        name: sum(w * tk.angles[name] for w, tk in zip(weights, takes, strict=True))
        for name in DOFS
    }
    yaw = np.radians([tk.angles["root_yaw"] for tk in takes])
    angles["root_yaw"] = np.degrees(np.arctan2((weights * np.sin(yaw)).sum(0), (weights * np.cos(yaw)).sum(0)))
    xy = sum(w[:, None] * tk.xy for w, tk in zip(weights, takes, strict=True))
    return angles, np.asarray(xy)


def pose_sequence(angles: dict[str, np.ndarray], xy: np.ndarray, bones: dict[str, float]) -> np.ndarray:
    """World joint positions (T, 32, 3), metres, Z up, from DOF courses and a floor path.

    The angles are clipped to :data:`JOINT_LIMITS`; each frame is lifted so that its lowest
    foot joint is :data:`FLOOR_CLEARANCE` above the floor.
    """
    rotations = local_rotations(clip_to_limits(angles))
    root = np.concatenate([xy, np.zeros((len(xy), 1))], axis=-1)
    positions = forward_kinematics(H36M32.parents, rest_offsets(bones), rotations, root)
    lowest = positions[:, list(FOOT_JOINTS), 2].min(axis=1)
    positions[..., 2] += (FLOOR_CLEARANCE - lowest)[:, None]
    return positions


def animate(
    family: str, num_frames: int, rng: np.random.Generator, bones: dict[str, float], volume: float = 1.0
) -> np.ndarray:
    """World joint positions (T, 32, 3) of one take of ``family`` (see :func:`pose_sequence`)."""
    tk = family_take(family, num_frames, rng, bones, volume)
    return pose_sequence(tk.angles, tk.xy, bones)


def segment_weights(num_frames: int, num_segments: int, fade_frames: int = 50) -> np.ndarray:
    """(K, T) partition of unity: K consecutive segments with smooth cross-fades between them."""
    t = np.arange(num_frames, dtype=np.float64)
    bounds = np.linspace(0, num_frames, num_segments + 1)[1:-1]
    fade = max(1.0, min(float(fade_frames), num_frames / num_segments / 2))
    steps = [smoothstep((t - b) / fade + 0.5) for b in bounds]
    edges = [np.ones_like(t), *steps, np.zeros_like(t)]
    return np.stack([edges[k] - edges[k + 1] for k in range(num_segments)])
