"""fetch's refusals of the user's files name the user's file in ``data.dir`` and the key, never the temporary folder.

fetch validates the files it has linked into its temporary ``.tmp-raw-*`` folder, which is gone
once the refusal is raised; every message must point at the file in ``data.dir`` it came from.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpgraph.data import schema
from mlpgraph.data.fetch import fetch
from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz, save_community_npz
from tests.test_fetch import params

GT, HR, D3 = schema.raw_2d_name("gt"), schema.raw_2d_name("hr"), schema.RAW_3D
WHERE = "subject S1, action 'Directions'"


@pytest.fixture(scope="module")
def synthetic_raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fetch_messages") / "raw"
    fetch(params(), out)
    return out


def edit(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """A mutation of the user's file ``name``: ``change`` applied to its loaded content."""

    def mutate(user: Path) -> None:
        content = load_community_npz(user / name)
        change(content)
        save_community_npz(user / name, **content)

    return mutate


def first_2d(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict[str, Any]], None]:
    """Replace camera 0 of S1 'Directions' in a 2D file by ``fn`` of it."""

    def change(content: dict[str, Any]) -> None:
        cams = content["positions_2d"]["S1"]["Directions"]
        cams[0] = fn(cams[0])

    return change


def with_nan(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[3, 2] = np.nan
    return x


CASES = {  # name -> (mutation, the user's file the message must start with, what else it must say)
    "2d wrong joints": (edit(HR, first_2d(lambda x: x[:, :5])), HR, f"{WHERE}, camera 0: 2D sequence has 5 joints"),
    "2d not finite": (edit(HR, first_2d(with_nan)), HR, f"{WHERE}, camera 0: 2D sequence contains 2 NaN"),
    "2d out of image": (edit(GT, first_2d(lambda x: x * 50)), GT, f"{WHERE}, camera 0: 2D sequence (camera"),
    "2d too short": (edit(HR, first_2d(lambda x: x[:3])), HR, "2D sequence has 3 frames"),
    "2d integer": (edit(GT, first_2d(lambda x: x.astype(np.int64))), GT, "dtype int64"),
    "2d camera missing": (
        edit(HR, lambda c: c["positions_2d"]["S1"]["Directions"].pop()),
        HR,
        f"{WHERE}: 3 cameras, h36m_cameras.json has 4",
    ),
    "2d subject missing": (edit(HR, lambda c: c["positions_2d"].pop("S1")), D3, "['S1'] have 3D but no 2D in " + HR),
    "2d action missing": (
        edit(GT, lambda c: c["positions_2d"]["S1"].pop("Directions")),
        D3,
        "subject S1: actions ['Directions'] have 3D but no 2D",
    ),
    "2d metadata": (edit(HR, lambda c: c.__setitem__("metadata", {"num_joints": 3})), HR, "key 'metadata'"),
    "3d subject missing": (edit(D3, lambda c: c["positions_3d"].pop("S1")), GT, "['S1'] have 2D but no 3D in " + D3),
}


def refusal(user: Path, raw: Path, **data: Any) -> str:
    """fetch's one-line message for ``user``'s folder; the failed fetch leaves no temporary behind."""
    with pytest.raises(UserInputError) as caught:
        fetch(params(source="files", dir=str(user), keypoints=["gt", "hr"], **data), raw)
    message = str(caught.value)
    assert "\n" not in message and ".tmp-" not in message, message
    assert not [p for p in raw.parent.iterdir() if p.name.startswith(".tmp-")] and not raw.exists()
    return message


def user_folder(synthetic_raw: Path, where: Path, file_3d: str = D3) -> Path:
    """A copy of the synthetic 3D, gt and hr files as a user's ``data.dir``."""
    user = where / "user"
    user.mkdir()
    for name in (GT, HR):
        shutil.copy2(synthetic_raw / name, user / name)
    shutil.copy2(synthetic_raw / D3, user / file_3d)
    return user


@pytest.mark.parametrize("case", CASES)
def test_a_refusal_names_the_users_file_and_key(synthetic_raw, tmp_path, case):
    mutate, culprit, detail = CASES[case]
    user = user_folder(synthetic_raw, tmp_path)
    mutate(user)
    message = refusal(user, tmp_path / "raw")
    assert message.startswith(f"{user / culprit}: "), message
    assert detail in message, message


def test_the_users_own_3d_and_cameras_file_names_are_used(synthetic_raw, tmp_path):
    user = user_folder(synthetic_raw, tmp_path, file_3d="mocap.npz")
    shutil.copy2(synthetic_raw / schema.RAW_CAMERAS, user / "my_cameras.json")
    edit(HR, lambda c: c["positions_2d"].pop("S1"))(user)
    message = refusal(user, tmp_path / "raw", file_3d="mocap.npz", cameras=str(user / "my_cameras.json"))
    assert message == f"{user / 'mocap.npz'}: subjects ['S1'] have 3D but no 2D in {HR}"
    edit(HR, lambda c: c["positions_2d"]["S5"]["Directions"].pop())(user)
    edit(HR, lambda c: c["positions_2d"].__setitem__("S1", load_community_npz(user / GT)["positions_2d"]["S1"]))(user)
    message = refusal(user, tmp_path / "raw", file_3d="mocap.npz", cameras=str(user / "my_cameras.json"))
    assert message == f"{user / HR}: subject S5, action 'Directions': 3 cameras, my_cameras.json has 4"
