"""The body: a 32-joint bone tree posed by joint angles (forward kinematics) within anatomical limits.

Body frame: x to the subject's right, y forward, z up; metres; angles in degrees. Bone lengths
are fixed per subject (:func:`subject_bone_lengths`), so they are exactly constant over time.
"""

from __future__ import annotations

import numpy as np

from mlpgraph.data.motion.signals import make_rng
from mlpgraph.layouts import H36M32

FLOOR_CLEARANCE = 0.02  # metres between the floor and the lowest foot joint (marker offset)

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


def subject_bone_lengths(subject: str, seed: int = 0, spread: float = 1.0) -> dict[str, float]:
    """Bone lengths (metres) of ``subject``: a global size factor times small per-bone factors.

    Left and right are symmetric. ``spread`` widens the variation (unseen 3DHP-like subjects).
    """
    rng = make_rng(seed, "bones", subject)
    size = float(np.clip(rng.normal(1.0, 0.045 * spread), 1 - 0.1 * spread, 1 + 0.1 * spread))
    factors = np.clip(rng.normal(1.0, 0.035 * spread, len(BONE_MEANS)), 0.92, 1.08)
    return {name: float(mean * size * f) for (name, mean), f in zip(BONE_MEANS.items(), factors, strict=True)}


def _unit(x: float, y: float, z: float) -> np.ndarray:
    """The unit vector along (x, y, z)."""
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

