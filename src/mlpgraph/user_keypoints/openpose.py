"""OpenPose ``--write_json`` folders (BODY_25): reading one person's track.

OpenPose writes one JSON file per frame into the folder, named ``<video or image>_<frame as 12
digits>_keypoints.json`` (doc/02_output.md): ``{"version": 1.3, "people": [{"person_id": [-1],
"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...], "face_keypoints_2d": [...], ...}]}``, the
pose in BODY_25's 25 joints. A joint not detected is written (0, 0, 0). Frame numbers are the
last number in the file names (before ``_keypoints``) when the names differ only in it; else
the files are taken in natural order, one frame apart. ``person_id`` is -1 unless OpenPose
tracked people; without ids (or with ids shared in a frame) people are linked over time
(:mod:`.association`). The person score is the mean joint confidence. The files give no image
size and no frame rate; coordinates must be pixels (OpenPose's default ``--keypoint_scale 0``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.safe_read import DEFAULT_MAX_JSON_MB, JSON_ENV, MB, cap_bytes, load_json
from mlpgraph.user_keypoints.joint_maps import BODY25
from mlpgraph.user_keypoints.people import (
    Detections,
    choose_person,
    drop_shared_tracks,
    is_number,
    string_frame_numbers,
    to_sequence,
)
from mlpgraph.user_keypoints.sequence import Keypoints2D, check_frame_number

OPENPOSE_EXPECTED = "a folder of OpenPose --write_json files (one {'people': [...]} per frame)"
_SUFFIX = "_keypoints"


def read_openpose_folder(
    folder: str | os.PathLike[str],
    width: float | None = None,
    height: float | None = None,
    track_id: int | None = None,
) -> Keypoints2D:
    """One person's BODY_25 keypoints from an OpenPose ``--write_json`` folder, in frame order.

    Every ``.json`` file in ``folder`` (not its subfolders) is one frame. The image size is
    ``width`` / ``height``. Who is kept: :func:`~.people.select_person` (``track_id``: a
    ``person_id``, or a linked track's number).
    """
    where = str(folder)
    files = _frame_files(Path(folder))
    ids = _frame_ids(files, where)
    rows: list[list[Any]] = []
    frame_ids: list[Any] = []
    tracks: list[float] = []
    for path, frame_id in zip(files, ids, strict=True):
        for kp, person_id in _people(path):
            rows.append(kp)
            tracks.append(person_id)
            frame_ids.append(frame_id)
    if not rows:
        raise UserInputError(f"{where}: no person detected in any of the {len(files)} frames")
    keypoints = np.array(rows, dtype=np.float64).reshape(len(rows), len(BODY25.joints), 3)
    seen = keypoints[..., 2] > 0
    if seen.any() and np.abs(keypoints[..., :2][seen]).max() <= 1.0:
        raise UserInputError(
            f"{where}: every keypoint lies within [-1, 1]: normalised by OpenPose's --keypoint_scale; "
            "write pixels (--keypoint_scale 0, the default)"
        )
    dets = Detections(keypoints, keypoints[..., 2].mean(axis=1), np.array(tracks), frame_ids, BODY25, "person_id")
    dets = drop_shared_tracks(dets, where)
    return to_sequence(dets, choose_person(dets, track_id, where), where, None, width, height)


def _frame_files(folder: Path) -> list[Path]:
    """The folder's ``.json`` files; refused when there is none or together they are over the JSON size cap."""
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    except OSError as exc:
        raise UserInputError(f"{folder}: cannot list the folder ({exc.strerror})") from None
    if not files:
        raise UserInputError(f"{folder}: no .json file: expected {OPENPOSE_EXPECTED}")
    total, cap = sum(p.stat().st_size for p in files), cap_bytes(JSON_ENV, DEFAULT_MAX_JSON_MB)
    if total > cap:
        raise UserInputError(
            f"{folder}: its {len(files)} .json files hold {total / MB:.1f} MB, over the {round(cap / MB, 3):g} MB "
            f"limit (set the environment variable {JSON_ENV} to a larger number of MB to raise it)"
        )
    return files


def _frame_ids(files: list[Path], where: str) -> list[Any]:
    """Each file's frame: the number in its name when the names differ only in it, else the name itself."""
    stems = [p.name[: -len(".json")] for p in files]
    stems = [s[: -len(_SUFFIX)] if s.endswith(_SUFFIX) else s for s in stems]
    parsed = string_frame_numbers(stems, where)
    return [int(n) for n in parsed[0]] if parsed is not None else stems


def _people(path: Path) -> list[tuple[list[Any], float]]:
    """The (flat BODY_25 keypoints, person id or NaN) of each person in one frame file."""
    where = str(path)
    content = load_json(path)
    if not isinstance(content, dict) or not isinstance(content.get("people"), list):
        raise UserInputError(f"{where}: not an OpenPose --write_json frame: expected an object with a 'people' list")
    size = 3 * len(BODY25.joints)
    people = []
    for n, person in enumerate(content["people"]):
        kp = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not isinstance(kp, list) or len(kp) != size or not all(is_number(v) and math.isfinite(v) for v in kp):
            got = f"{len(kp)} values" if isinstance(kp, list) else type(kp).__name__
            raise UserInputError(
                f"{where}: person {n}: 'pose_keypoints_2d' must be {size} finite numbers ([x, y, c] x 25 BODY_25 "
                f"joints; the COCO-18 and MPI models are not read), got {got}"
            )
        people.append((kp, _person_id(person.get("person_id"), where, n)))
    return people


def _person_id(value: Any, where: str, n: int) -> float:
    """``person_id`` ([id] or id) as a float; NaN for -1 (not tracked) or none."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or (is_number(value) and value == -1):
        return math.nan
    if not (is_number(value) and float(value).is_integer() and value >= 0):
        raise UserInputError(f"{where}: person {n}: 'person_id' must be -1 or an id >= 0, got {value!r:.60}")
    check_frame_number(value, where, f"person {n}: person_id")
    return float(value)
