"""Bad user inputs of ``mlpgraph predict --input`` (keypoint ``.npz``, COCO JSON) and ``params.yaml``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from make_corpus import EXPLOIT, H, W, figure, npy, npy_header, npz, pickled, utf8_name_lie

# COCO-17 has 17 joints; the corpus checkpoint's layout (h36m16) has 16.
KP = figure(4, 16, 2, seed=2, low=100, high=900)


def keypoint_files() -> dict[str, bytes]:
    """Bad ``.npz`` keypoint files (``keypoints`` (T, 16, 2) pixels, ``width``, ``height``)."""

    def kp(keypoints: Any = KP, **extra: Any) -> bytes:
        members = {"keypoints": npy(keypoints), "width": npy(np.float64(W)), "height": npy(np.float64(H))}
        members.update({key: npy(value) for key, value in extra.items()})
        return npz(members)

    nan, inf = KP.copy(), KP.astype(np.float64)
    nan[1, 2, 0] = np.nan
    inf[0, 0, 1] = 1e300
    huge = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 16, 2)}
    return {
        "kp_pickled_keypoints.npz": npz({"keypoints": pickled(EXPLOIT), "width": npy(W), "height": npy(H)}),
        "kp_huge_declared_shape.npz": npz({"keypoints": npy_header(huge), "width": npy(W), "height": npy(H)}),
        "kp_zip_name_not_utf8.npz": utf8_name_lie(npz({"keypoints": npy(KP)})),
        "kp_missing_keypoints.npz": npz({"width": npy(W), "height": npy(H)}),
        "kp_missing_size.npz": npz({"keypoints": npy(KP)}),
        "kp_wrong_joints.npz": kp(KP[:, :5]),
        "kp_three_dims.npz": kp(np.zeros((4, 16, 3))),
        "kp_no_frames.npz": kp(np.zeros((0, 16, 2))),
        "kp_string_dtype.npz": kp(KP.astype("U6")),
        "kp_nan.npz": kp(nan),
        "kp_out_of_image.npz": kp(inf),
        "kp_all_zero_size.npz": npz({"keypoints": npy(KP), "width": npy(0.0), "height": npy(0.0)}),
        "kp_scores_wrong_shape.npz": kp(scores=np.ones((4, 3))),
        "kp_width_array.npz": npz({"keypoints": npy(KP), "width": npy(KP), "height": npy(H)}),
    }


def _entry(image_id: Any, shift: float = 0.0) -> dict[str, Any]:
    xy = figure(1, 17, 2, seed=3, low=200, high=800)[0].astype(np.float64) + shift
    flat = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1).ravel()
    return {"image_id": image_id, "category_id": 1, "keypoints": [round(float(v), 3) for v in flat], "score": 0.9}


def coco_files() -> dict[str, bytes]:
    """Bad COCO-17 keypoint JSON files (a list of person entries, or ``{"annotations", "images"}``)."""
    good = [_entry(i) for i in range(3)]

    def doc(content: Any) -> bytes:
        return json.dumps(content).encode()

    def changed(key: str, value: Any, which: int = 1) -> bytes:
        entries = json.loads(json.dumps(good))
        entries[which][key] = value
        return doc(entries)

    text = json.dumps(good)
    return {
        "coco_deep_nesting.json": b'{"annotations": ' + b"[" * 200 + b"]" * 200 + b"}",
        "coco_nan_literal.json": text.replace(str(good[1]["keypoints"][4]), "NaN", 1).encode(),
        "coco_infinity_literal.json": text.replace(str(good[0]["keypoints"][0]), "-Infinity", 1).encode(),
        "coco_huge_float.json": text.replace(str(good[2]["keypoints"][7]), "1e999", 1).encode(),
        "coco_huge_integer.json": changed("image_id", 10**30),
        "coco_not_json.json": b"\x00\x01\x02 binary garbage",
        "coco_top_level_number.json": b"42",
        "coco_empty_list.json": b"[]",
        "coco_annotations_not_list.json": doc({"annotations": {"0": good[0]}}),
        "coco_keypoints_string.json": changed("keypoints", "1,2,3"),
        "coco_keypoints_short.json": changed("keypoints", [1.0, 2.0, 0.9]),
        "coco_keypoints_bool.json": changed("keypoints", [True] * 51),
        "coco_missing_image_id.json": doc([good[0], {k: v for k, v in good[1].items() if k != "image_id"}]),
        "coco_image_id_float.json": changed("image_id", 1.5),
        "coco_entry_not_object.json": doc([good[0], "person", good[2]]),
        "coco_out_of_image.json": doc([good[0], _entry(1, shift=50_000.0), good[2]]),
        "coco_images_bad_size.json": doc(
            {"annotations": good, "images": [{"id": i, "width": -5, "height": "x"} for i in range(3)]}
        ),
    }


BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join('x' * 9)}]\n" for i in range(9))


def params_files() -> dict[str, bytes]:
    """Bad ``params.yaml`` files (read beside a copy of the repository's ``configs/`` presets)."""
    return {
        "params_unknown_key.yaml": b"preset: tiny\ndata:\n  scael: tiny\n",
        "params_unknown_top_key.yaml": b"preset: tiny\ntrainning: {epochs: 3}\n",
        "params_wrong_type.yaml": b"preset: tiny\ndata:\n  seed: zero\n",
        "params_out_of_range.yaml": b"preset: tiny\ntrain:\n  epochs: -3\n",
        "params_string_for_list.yaml": b"preset: tiny\ndata:\n  keypoints: gt\n",
        "params_not_mapping.yaml": b"- data\n- train\n",
        "params_scalar.yaml": b"just a string\n",
        "params_unknown_preset.yaml": b"preset: huge\n",
        "params_invalid_yaml.yaml": b"data: [unclosed\n",
        "params_python_tag.yaml": b"preset: tiny\ndata: !!python/object/apply:os.system ['touch PWNED']\n",
        "params_not_utf8.yaml": b"preset: tiny\ndata: {name: \xff\xfe}\n",
        "params_deep_nesting.yaml": b"data: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "params_alias_bomb.yaml": (BOMB + "preset: tiny\ndata:\n  seed: *l8\n").encode(),
        "params_alias_bomb_key.yaml": (BOMB + "preset: tiny\n").encode(),
        "params_nan_seed.yaml": b"preset: tiny\ndata:\n  seed: .nan\n",
    }
