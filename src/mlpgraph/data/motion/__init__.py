"""Synthetic human motion: a 32-joint bone tree driven by joint angles (forward kinematics).

Body frame: x to the subject's right, y forward, z up; metres; angles in degrees; 50 fps.
Each of the 15 Human3.6M action families is a generator of smooth joint-angle time courses
(gait cycles, sitting, hand-to-face motions, gestures, bends, idle sway) plus a root path
(heading and floor position). The angles are clipped to anatomical limits
(:data:`~mlpgraph.data.motion.kinematics.JOINT_LIMITS`), turned into joint positions by
:func:`~mlpgraph.data.motion.kinematics.forward_kinematics` over the raw Human3.6M tree
(:data:`~mlpgraph.layouts.H36M32`), and each frame is lifted so the lowest foot joint touches the
floor (z = 0). Bone lengths are fixed per subject (:func:`subject_bone_lengths`), so they are
exactly constant over time.

Everything is vectorised over frames: the only Python loops run over joints, DOFs and the few
motion "events" (gestures, bends) of a take.

Modules: :mod:`~mlpgraph.data.motion.signals` (smooth random time courses, keyed generators),
:mod:`~mlpgraph.data.motion.kinematics` (bones, joint limits, forward kinematics),
:mod:`~mlpgraph.data.motion.take` (a take and the movements families share),
:mod:`~mlpgraph.data.motion.families` (the 15 action families).
"""

from mlpgraph.data.motion.families import family_take
from mlpgraph.data.motion.kinematics import pose_sequence, subject_bone_lengths
from mlpgraph.data.motion.signals import make_rng, segment_weights
from mlpgraph.data.motion.take import blend_takes

__all__ = [
    "blend_takes",
    "family_take",
    "make_rng",
    "pose_sequence",
    "segment_weights",
    "subject_bone_lengths",
]
