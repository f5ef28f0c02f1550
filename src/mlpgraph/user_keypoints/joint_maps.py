"""The skeletons 2D detectors write (COCO-17, Halpe-26, OpenPose BODY_25) and their mapping onto the model's layout.

Each source skeleton is its joint names in the detector's order, one declarative table of
:class:`JointRule` saying how every Human3.6M joint is made from those joints *by name*, and the
per-joint OKS sigmas the person association (:mod:`.association`) weighs distances with.
:func:`to_layout` applies any such table; nothing here lists joint indices.

Human3.6M's pelvis lies between the hips, its thorax between the shoulders (at the base of the
neck), its spine in the middle of the trunk, its "neck" (h36m17 only, "neck/nose") at the nose
and its head at the top of the head. A detector's own joint is used where it has one with that
meaning (Halpe's ``hip``, ``neck`` and ``head`` top, OpenPose's ``MidHip`` and ``Neck``);
otherwise the joint is made from its neighbours (COCO-17 has no head top: the mean of the
confident face points stands in for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout


@dataclass(frozen=True)
class JointRule:
    """How one layout joint is made from a source skeleton's keypoints.

    ``kind``:

    - ``copy``: the source keypoint ``sources[0]``; confident where it is;
    - ``mean``: the mean of the source keypoints ``sources``; confident where all of them are;
    - ``mean_confident``: the mean of those of ``sources`` that are confident in the frame;
      confident where at least one is;
    - ``midpoint``: the midpoint of the two *layout* joints ``sources``, computed after those
      were filled in time (so it is never filled on its own).
    """

    kind: Literal["copy", "mean", "mean_confident", "midpoint"]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class SourceSkeleton:
    """A detector's keypoint set: ``joints`` in file order, the ``rules`` onto Human3.6M, OKS ``sigmas`` per joint.

    ``name`` is shown in messages ("COCO-17"); ``label`` prefixes joint names in them ("COCO left_ankle").
    """

    name: str
    label: str
    joints: tuple[str, ...]
    rules: Mapping[str, JointRule]
    sigmas: tuple[float, ...]


# The COCO-17 keypoint order every COCO-style 2D detector writes.
COCO17_JOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO17_FACE: tuple[str, ...] = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
# Halpe-26 (AlphaPose, MMPose ``halpe26``): COCO-17, then head top, neck, mid-hip and the feet.
HALPE26_JOINTS: tuple[str, ...] = (
    *COCO17_JOINTS, "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
    "left_heel", "right_heel",
)  # fmt: skip
# OpenPose BODY_25, in its own names (doc/02_output.md, POSE_BODY_25_BODY_PARTS; "Background" is not written).
BODY25_JOINTS: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip

# COCO keypoint evaluation's per-joint sigmas (cocoeval), by COCO-17 name; Halpe-26's extra joints take
# the HalpeCOCOAPI values (head and neck 0.026, hip 0.066, feet 0.079).
_SIGMA: dict[str, float] = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
    "head": 0.026, "neck": 0.026, "hip": 0.066, "left_big_toe": 0.079, "right_big_toe": 0.079,
    "left_small_toe": 0.079, "right_small_toe": 0.079, "left_heel": 0.079, "right_heel": 0.079,
}  # fmt: skip
# BODY_25's names for the same body points (its sigmas are those of the Halpe-26 joint of that meaning).
_BODY25_AS_HALPE: dict[str, str] = {
    "Nose": "nose", "Neck": "neck", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
    "RWrist": "right_wrist", "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist",
    "MidHip": "hip", "RHip": "right_hip", "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip",
    "LKnee": "left_knee", "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear",
    "LEar": "left_ear", "LBigToe": "left_big_toe", "LSmallToe": "left_small_toe", "LHeel": "left_heel",
    "RBigToe": "right_big_toe", "RSmallToe": "right_small_toe", "RHeel": "right_heel",
}  # fmt: skip

_LIMBS = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")

# COCO-17 -> Human3.6M joints (h36m16 and h36m17, by name). COCO has no mid-hip, neck base or head
# top: the pelvis and thorax are the means of the hips and shoulders, the "neck" the nose, and the
# head the mean of the confident face points, which stays defined in profile and from behind.
COCO17_TO_LAYOUT: dict[str, JointRule] = {
    "pelvis": JointRule("mean", ("left_hip", "right_hip")),
    **{f"{side}_{limb}": JointRule("copy", (f"{side}_{limb}",)) for side in ("right", "left") for limb in _LIMBS},
    "spine": JointRule("midpoint", ("pelvis", "thorax")),
    "thorax": JointRule("mean", ("left_shoulder", "right_shoulder")),
    "neck": JointRule("copy", ("nose",)),
    "head": JointRule("mean_confident", COCO17_FACE),
}

# Halpe-26 -> Human3.6M: COCO-17's rules, but the detector's own mid-hip, neck base and head top.
HALPE26_TO_LAYOUT: dict[str, JointRule] = {
    **COCO17_TO_LAYOUT,
    "pelvis": JointRule("copy", ("hip",)),
    "thorax": JointRule("copy", ("neck",)),
    "head": JointRule("copy", ("head",)),
}

# OpenPose BODY_25 -> Human3.6M: MidHip is the pelvis and Neck (between the shoulders) the thorax;
# BODY_25 has no head top, so the head is the mean of its confident face points, as for COCO-17.
_BODY25_SIDE = {"right": "R", "left": "L"}
BODY25_TO_LAYOUT: dict[str, JointRule] = {
    "pelvis": JointRule("copy", ("MidHip",)),
    **{
        f"{side}_{limb}": JointRule("copy", (f"{letter}{limb.capitalize()}",))
        for side, letter in _BODY25_SIDE.items()
        for limb in _LIMBS
    },
    "spine": JointRule("midpoint", ("pelvis", "thorax")),
    "thorax": JointRule("copy", ("Neck",)),
    "neck": JointRule("copy", ("Nose",)),
    "head": JointRule("mean_confident", ("Nose", "REye", "LEye", "REar", "LEar")),
}

COCO17 = SourceSkeleton("COCO-17", "COCO", COCO17_JOINTS, COCO17_TO_LAYOUT, tuple(_SIGMA[n] for n in COCO17_JOINTS))
HALPE26 = SourceSkeleton(
    "Halpe-26", "Halpe-26", HALPE26_JOINTS, HALPE26_TO_LAYOUT, tuple(_SIGMA[n] for n in HALPE26_JOINTS)
)
BODY25 = SourceSkeleton(
    "BODY_25",
    "OpenPose BODY_25",
    BODY25_JOINTS,
    BODY25_TO_LAYOUT,
    tuple(_SIGMA[_BODY25_AS_HALPE[n]] for n in BODY25_JOINTS),
)
SOURCE_SKELETONS: tuple[SourceSkeleton, ...] = (COCO17, HALPE26, BODY25)


def source_skeleton(joint_names: tuple[str, ...]) -> SourceSkeleton | None:
    """The detector skeleton whose joints are exactly ``joint_names``, or None (a model layout, say)."""
    return next((s for s in SOURCE_SKELETONS if s.joints == tuple(joint_names)), None)


def to_layout(
    keypoints: np.ndarray,
    scores: np.ndarray,
    joint_names: tuple[str, ...],
    rules: Mapping[str, JointRule],
    layout: SkeletonLayout,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, int]]]:
    """(T, K, 2) pixels and (T, K) scores of the source joints ``joint_names`` to ``layout`` by ``rules``.

    Returns (T, J, 2) pixels (NaN where not confident), the (T, J) confident mask, and the
    ``midpoint`` joints as {joint: (joint a, joint b)} layout indices, left NaN and not confident
    here: :func:`mlpgraph.user_keypoints.filling.prepare_keypoints` computes them after filling.
    A keypoint is confident when its score is >= ``min_score``.
    """
    confident = scores >= min_score
    out = np.full((keypoints.shape[0], layout.num_joints, 2), np.nan)
    valid = np.zeros((keypoints.shape[0], layout.num_joints), dtype=bool)
    derived: dict[int, tuple[int, int]] = {}
    for j, name in enumerate(layout.joint_names):
        rule = rules.get(name)
        if rule is None:
            raise UserInputError(f"layout {layout.name}: joint {name!r} has no rule for this detector's keypoints")
        if rule.kind == "midpoint":
            a, b = rule.sources
            derived[j] = (layout.index(a), layout.index(b))
            continue
        idx = [joint_names.index(s) for s in rule.sources]
        src, ok = keypoints[:, idx], confident[:, idx]
        if rule.kind == "copy":
            value, good = src[:, 0], ok[:, 0]
        elif rule.kind == "mean":
            value, good = src.mean(axis=1), ok.all(axis=1)
        else:  # mean_confident
            count = ok.sum(axis=1)
            value = (src * ok[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
            good = count > 0
        out[good, j] = value[good]
        valid[:, j] = good
    return out, valid, derived


def coco_to_layout(
    keypoints: np.ndarray, scores: np.ndarray, layout: SkeletonLayout, min_score: float
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, int]]]:
    """COCO-17 (T, 17, 2) pixels and (T, 17) scores to ``layout``: :func:`to_layout` with :data:`COCO17_TO_LAYOUT`."""
    return to_layout(keypoints, scores, COCO17_JOINTS, COCO17_TO_LAYOUT, layout, min_score)
