"""Which keypoint format a file is, told from its content (never its name); refusing a forced one that does not fit.

:data:`KEYPOINT_FORMATS` are the names ``read_keypoints`` accepts (``auto`` detects): an ``.npz``
in the model's layout, COCO keypoint JSON, MMPose prediction JSON, AlphaPose results JSON and
an OpenPose ``--write_json`` folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlpgraph.errors import UserInputError

KEYPOINT_FORMATS: tuple[str, ...] = ("auto", "npz", "coco", "mmpose", "alphapose", "openpose")

# What each format is, for messages.
EXPECTED: dict[str, str] = {
    "npz": "an .npz archive (keypoints, width, height in the model's layout)",
    "coco": "COCO keypoint JSON (a list of person entries with 'image_id' and 'keypoints', or an object with "
    "'annotations')",
    "mmpose": "MMPose prediction JSON ({'meta_info', 'instance_info'}, a list of {'frame_id', 'instances'} or a list "
    "of instances with 'keypoints' and 'keypoint_scores')",
    "alphapose": "AlphaPose results JSON (a list of person entries with 'image_id', 'keypoints', 'box', 'idx')",
    "openpose": "a folder of OpenPose --write_json files (one {'people': [...]} per frame)",
}
ONE_OPENPOSE_FRAME = "one OpenPose --write_json frame ({'people': [...]}), not a folder of them"
# Keypoints per entry that only AlphaPose's Halpe-26, COCO-WholeBody and Halpe-136 models write.
_ALPHAPOSE_SIZES = {3 * 26, 3 * 133, 3 * 136}


def check_format(fmt: str) -> None:
    """Refuse a format name that is not one of :data:`KEYPOINT_FORMATS`."""
    if fmt not in KEYPOINT_FORMATS:
        raise UserInputError(f"unknown keypoint format {fmt!r} (choose from {', '.join(KEYPOINT_FORMATS)})")


def detect_json_format(content: Any) -> str:
    """The format of parsed JSON ``content``: ``mmpose``, ``alphapose``, ``openpose`` (one frame file) or ``coco``.

    ``coco`` is also the answer for what is none of them: the COCO reader's messages then say what
    was expected.
    """
    if isinstance(content, Mapping):
        if "instance_info" in content or "meta_info" in content:
            return "mmpose"
        return "openpose" if "people" in content and "annotations" not in content else "coco"
    if not isinstance(content, list) or not content:
        return "coco"
    first = content[0]
    if isinstance(first, Mapping) and ("instances" in first or "keypoint_scores" in first):
        return "mmpose"
    for entry in content:
        if not isinstance(entry, Mapping):
            break
        kp = entry.get("keypoints")
        if "box" in entry or "idx" in entry or (isinstance(kp, list) and len(kp) in _ALPHAPOSE_SIZES):
            return "alphapose"
    return "coco"


def _family(fmt: str) -> str:
    """Formats a reader can take for one another: COCO and AlphaPose entry lists are alike."""
    return "entries" if fmt in ("coco", "alphapose") else fmt


def check_forced_json(detected: str, forced: str, where: str) -> None:
    """Refuse JSON detected as ``detected`` when the format was forced to ``forced`` and they do not fit."""
    if _family(detected) != _family(forced):
        looks = ONE_OPENPOSE_FRAME if detected == "openpose" else EXPECTED[detected]
        raise UserInputError(f"{where}: format {forced!r} expects {EXPECTED[forced]}, but the file looks like {looks}")
