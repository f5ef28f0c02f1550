"""Choreography of the 15 Human3.6M action families: one generator of DOF courses and root path each.

Each family is a distinct kind of motion: gait cycles for the walks, hip and knee flexion for
sitting, hand-to-face motions for eating, phoning and smoking, gestures, bends, turns and idle
sway for the others.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlpgraph.data.actions import ACTION_FAMILIES
from mlpgraph.data.motion.kinematics import DOFS
from mlpgraph.data.motion.signals import bumps, keyframes, num_keys
from mlpgraph.data.motion.take import Take, gait, hand_to_face, idle_path, loop_path, seated, stance
from mlpgraph.data.schema import FPS


def _directions(tk: Take) -> None:
    idle_path(tk, drift=0.45, turn=60.0)
    stance(tk)
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
    idle_path(tk, drift=0.3, turn=40.0)
    stance(tk)
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
    idle_path(tk, drift=0.05, turn=10.0)
    seated(tk)
    rng, t = tk.rng, tk.t
    tk.add("spine_flex", 15.0 + tk.wob(6.0, 0.2))
    for s, gap in (("r", 3.5), ("l", 7.0)):
        tk.add(f"{s}_shoulder_flex", 25.0)
        tk.add(f"{s}_elbow_flex", 70.0 + tk.wob(10.0, 0.5))
        tk.add(f"{s}_shoulder_rot", 25.0)
        b = bumps(rng, t, gap, 0.7, 0.4)
        hand_to_face(tk, s, b, elbow=140.0 - 70.0, flex=25.0)
        tk.add("head_flex", -8.0 * b)
    tk.add("head_flex", 15.0 + tk.wob(6.0))


def _greeting(tk: Take) -> None:
    idle_path(tk, drift=0.5, turn=50.0)
    stance(tk)
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
    idle_path(tk, drift=0.6, turn=70.0)
    stance(tk)
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
    idle_path(tk, drift=0.4, turn=70.0)
    stance(tk)
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
    idle_path(tk, drift=0.2, turn=30.0)
    stance(tk)
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
    idle_path(tk, drift=0.6, turn=80.0)
    stance(tk)
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
    idle_path(tk, drift=0.04, turn=10.0)
    seated(tk)
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
    idle_path(tk, drift=0.15, turn=20.0)
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
    idle_path(tk, drift=0.25, turn=40.0)
    stance(tk)
    rng = tk.rng
    s, o = ("r", "l") if rng.uniform() < 0.7 else ("l", "r")
    puff = bumps(rng, tk.t, 5.0, 0.6, 0.8)
    tk.add(f"{s}_elbow_flex", 25.0 + tk.wob(10.0))
    hand_to_face(tk, s, puff, elbow=140.0, flex=40.0)
    tk.add(f"{o}_shoulder_flex", 25.0)
    tk.add(f"{o}_elbow_flex", 95.0 + tk.wob(8.0))
    tk.add(f"{o}_shoulder_rot", 50.0)
    tk.add("head_flex", -8.0 * puff + tk.wob(6.0))
    tk.add("head_yaw", tk.wob(15.0, 0.2))


def _waiting(tk: Take) -> None:
    idle_path(tk, drift=0.35, turn=60.0)
    stance(tk)
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
    speed = loop_path(tk, tk.rng.uniform(0.8, 1.0))
    speed = speed * (1.0 - 0.9 * bumps(tk.rng, tk.t, 6.0, 0.6, 1.0))
    gait(tk, speed, arm_swing=0.6)
    s = "r" if tk.rng.uniform() < 0.6 else "l"
    tk.add(f"{s}_shoulder_flex", 35.0 + tk.wob(12.0, 0.6))
    tk.add(f"{s}_elbow_flex", 20.0 + tk.wob(10.0, 0.6))
    tk.add("root_pitch", 6.0)
    tk.both("hip_flex", 6.0)
    tk.add("head_flex", 20.0 + tk.wob(10.0))
    tk.add("head_yaw", tk.wob(20.0, 0.3))


def _walking(tk: Take) -> None:
    speed = loop_path(tk, tk.rng.uniform(1.1, 1.4))
    gait(tk, speed)
    tk.add("head_flex", 5.0 + tk.wob(4.0))


def _walk_together(tk: Take) -> None:
    speed = loop_path(tk, tk.rng.uniform(0.85, 1.05))
    gait(tk, speed, arm_swing=0.7)
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

