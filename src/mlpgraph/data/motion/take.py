"""A take in the making: DOF courses and a floor path, and the movements the action families share.

The shared movements are the root paths (:func:`idle_path`, :func:`loop_path`), walking
(:func:`gait`), standing (:func:`stance`), sitting (:func:`seated`) and raising a hand to the
face (:func:`hand_to_face`); :func:`blend_takes` mixes several takes into one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlpgraph.data.motion.kinematics import DOFS
from mlpgraph.data.motion.signals import keyframes, num_keys, wobble
from mlpgraph.data.schema import FPS

# Semi-axes (x, y) in metres of the elliptic floor area that takes move in at volume 1, centred
# on the origin (the Human3.6M cameras see a region longer along y than along x).
VOLUME_SEMI_AXES = (0.85, 1.45)


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
        """Add ``values`` (degrees, a course or a constant) to the DOF ``name``."""
        self.angles[name] = self.angles[name] + values

    def both(self, dof: str, right: np.ndarray | float, left: np.ndarray | float | None = None) -> None:
        """Add to the right and left ``dof`` (``left`` defaults to ``right``: symmetric)."""
        self.add(f"r_{dof}", right)
        self.add(f"l_{dof}", right if left is None else left)

    def wob(self, amp: float, fmax: float = 0.4) -> np.ndarray:
        """A smooth random course of this take (:func:`~mlpgraph.data.motion.signals.wobble`)."""
        return wobble(self.rng, self.t, amp, fmax)

    @property
    def leg_length(self) -> float:
        """Hip to floor (metres) with the leg straight."""
        return self.bones["thigh"] + self.bones["shin"] + self.bones["ankle_height"]


def idle_path(tk: Take, drift: float = 0.3, turn: float = 30.0) -> None:
    """Slow drift around a spot inside the volume, with turns of the heading."""
    rng = tk.rng
    centre = rng.uniform(-0.35, 0.35, 2) * np.array(VOLUME_SEMI_AXES) * tk.volume
    xy = centre + np.stack([tk.wob(0.5 * drift * tk.volume, 0.1), tk.wob(drift * tk.volume, 0.1)], -1)
    # Soft containment: scale positions outside the volume's ellipse back onto it.
    radius = np.linalg.norm(xy / (np.array(VOLUME_SEMI_AXES) * tk.volume), axis=-1)
    tk.xy = xy / np.maximum(radius, 1.0)[:, None]
    turns = keyframes(rng, tk.t, rng.uniform(3.0, 6.0), rng.uniform(-turn, turn, num_keys(tk.t, 3.0)))
    tk.yaw = rng.uniform(-180.0, 180.0) + turns + tk.wob(0.3 * turn, 0.2)


def loop_path(tk: Take, speed: float) -> np.ndarray:
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


def gait(tk: Take, speed: np.ndarray, arm_swing: float = 1.0) -> None:
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


def stance(tk: Take) -> None:
    """Idle standing: weight shifts between the legs and relaxed arms."""
    shift = tk.wob(1.0, 0.15)
    tk.both("hip_abd", 3.0 + 4.0 * shift, 3.0 - 4.0 * shift)
    tk.both("knee_flex", 4.0 + 6.0 * np.clip(-shift, 0, None), 4.0 + 6.0 * np.clip(shift, 0, None))
    tk.add("root_roll", 3.0 * shift)
    tk.both("shoulder_abd", 8.0)
    tk.both("elbow_flex", 12.0)


def seated(tk: Take, hip: float = 88.0, knee: float = 88.0) -> None:
    """Sitting on a chair: hips and knees flexed about ``hip`` and ``knee`` degrees, thighs apart."""
    tk.both("hip_flex", hip + tk.wob(4.0, 0.1), hip + tk.wob(4.0, 0.1))
    tk.both("knee_flex", knee + tk.wob(8.0, 0.1), knee + tk.wob(8.0, 0.1))
    tk.both("hip_abd", 8.0 + tk.wob(4.0, 0.1), 8.0 + tk.wob(4.0, 0.1))


def hand_to_face(tk: Take, s: str, b: np.ndarray, elbow: float = 135.0, flex: float = 45.0) -> None:
    """Raise side ``s``'s hand towards the face by the amount ``b`` (0..1, a course of events)."""
    tk.add(f"{s}_shoulder_flex", flex * b)
    tk.add(f"{s}_shoulder_abd", 10.0 * b)
    tk.add(f"{s}_elbow_flex", (elbow - 20.0) * b)
    tk.add(f"{s}_shoulder_rot", 25.0 * b)


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

