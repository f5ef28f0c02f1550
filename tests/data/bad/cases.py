"""The bad-input corpus: every case's file, entry point, what is wrong and the expected message fragment.

README.md is written from this table (``make_corpus.py``); tests/test_bad_inputs.py runs every row.
"""

from __future__ import annotations

from typing import NamedTuple


class Case(NamedTuple):
    """One corpus file (or output path) and what its entry point must say about it."""

    file: str
    entry: str
    problem: str
    fragment: str


CKPT = "mlpgraph predict --checkpoint"
INPUT = "mlpgraph predict --input"
OUT = "mlpgraph predict --out"
RELEASE = "mlpgraph import-release --weights"
RAW3D = "stages/preprocess.py --raw (as data_3d_h36m.npz)"
RAW2D = "stages/preprocess.py --raw (as data_2d_h36m_gt.npz)"
CAMS = "stages/preprocess.py --raw (as cameras.json)"
PARAMS = "stages/fetch.py --params"
PROCESSED = "mlpgraph.data.preprocess.load_processed"

CASES: list[Case] = [
    Case(
        "raw3d_pickle_os_system.npz",
        RAW3D,
        "pickle calling os.system",
        "[key positions_3d]: refused to unpickle os.system",
    ),
    Case(
        "raw3d_huge_declared_shape.npz",
        RAW3D,
        "300-byte member whose header declares a 10^7 x 10^7 float64 array",
        "[key positions_3d]: .npy header declares a (10000000, 10000000) float64 array (762939453.1 MB)",
    ),
    Case(
        "raw3d_negative_dimension.npz",
        RAW3D,
        "header declares a negative dimension",
        "[key positions_3d]: .npy header declares a negative dimension (-1, 3)",
    ),
    Case(
        "raw3d_impossible_shape.npz",
        RAW3D,
        "header declares (0, 34635, 5768582, 5770527): 0 bytes, but numpy cannot build it (found by fuzzing)",
        "[key positions_3d]: .npy header declares an impossible shape",
    ),
    Case(
        "raw3d_npy_version_9.npz",
        RAW3D,
        ".npy format version 9.0",
        "[key positions_3d]: unsupported .npy format version (9, 0)",
    ),
    Case(
        "raw3d_decoded_size_lie.npz",
        RAW3D,
        "zip directory claims a 2 GB member",
        "its members decode to 2048.0 MB, over the 1024 MB limit (set the environment variable MLPGRAPH_MAX_DECODED_MB",
    ),
    Case(
        "raw3d_zip_version_84.npz",
        RAW3D,
        "zip directory asks for zip version 8.4 (found by fuzzing: NotImplementedError)",
        "not a readable .npz archive (zip file version 8.4)",
    ),
    Case(
        "raw3d_truncated.npz",
        RAW3D,
        "the first half of a valid archive",
        "not a readable .npz archive (File is not a zip file)",
    ),
    Case("raw3d_not_a_zip.npz", RAW3D, "a text file", "not a readable .npz archive (File is not a zip file)"),
    Case(
        "raw3d_empty_archive.npz", RAW3D, "an archive with no member", "missing key 'positions_3d' (keys present: [])"
    ),
    Case(
        "raw3d_wrong_key.npz",
        RAW3D,
        "'poses' instead of 'positions_3d'",
        "missing key 'positions_3d' (keys present: ['poses'])",
    ),
    Case(
        "raw3d_list_not_dict.npz",
        RAW3D,
        "positions_3d holds a list, not subject -> action -> array",
        "key 'positions_3d': positions_3d must be a dict, got list",
    ),
    Case(
        "raw3d_wrong_shape.npz",
        RAW3D,
        "one sequence of shape (T, 32, 2)",
        "subject S9, action 'Walking 1': 3D sequence must have shape (T, J, 3), got (5, 32, 2)",
    ),
    Case(
        "raw3d_string_dtype.npz",
        RAW3D,
        "one sequence of strings",
        "subject S9, action 'Walking 1': 3D sequence has dtype <U8; expected floating point",
    ),
    Case(
        "raw3d_nan.npz",
        RAW3D,
        "a NaN coordinate",
        "subject S9, action 'Walking 1': 3D sequence contains 1 NaN or infinite values",
    ),
    Case(
        "raw3d_float32_overflow.npz",
        RAW3D,
        "3.5e38 in a float64 sequence (inf in float32)",
        "subject S9, action 'Walking 1': 3D sequence contains 1 values beyond float32's range (|x| > 3.4e38)",
    ),
    Case(
        "raw3d_all_zero.npz", RAW3D, "a sequence of zeros", "3D sequence has 5 of 5 frames with all joints at one point"
    ),
    Case(
        "raw2d_pickle_os_system_metadata.npz",
        RAW2D,
        "metadata is a pickle calling os.system",
        "[key metadata]: refused to unpickle os.system",
    ),
    Case(
        "raw2d_nan.npz",
        RAW2D,
        "a NaN pixel coordinate",
        "subject S9, action 'Walking 1', camera 0: 2D sequence contains 1 NaN or infinite values",
    ),
    Case(
        "raw2d_inf.npz",
        RAW2D,
        "an infinite pixel coordinate",
        "subject S9, action 'Walking 1', camera 0: 2D sequence contains 1 NaN or infinite values",
    ),
    Case(
        "raw2d_out_of_image.npz",
        RAW2D,
        "one camera's keypoints 5000 px off the image",
        "2D sequence (camera 54138969) has 85 points more than 1 image size outside the 1000 x 1002 image",
    ),
    Case(
        "raw2d_float32_overflow.npz",
        RAW2D,
        "1e39 in a float64 sequence",
        "subject S9, action 'Walking 1', camera 0: 2D sequence contains 1 values beyond float32's range (|x| > 3.4e38)",
    ),
    Case(
        "raw2d_three_cameras.npz",
        RAW2D,
        "a sequence with 3 cameras, the 3D has 4",
        "subject S9, action 'Walking 1': 3 cameras, cameras.json has 4",
    ),
    Case(
        "raw2d_wrong_joints.npz",
        RAW2D,
        "5 joints",
        "subject S9, action 'Walking 1', camera 0: 2D sequence has 5 joints; expected one of 16, 17",
    ),
    Case(
        "raw2d_missing_positions.npz",
        RAW2D,
        "no positions_2d",
        "missing key 'positions_2d' (keys present: ['metadata'])",
    ),
    Case("raw2d_metadata_not_dict.npz", RAW2D, "metadata is a list", "key 'metadata': must be a dict, got list"),
    Case("cameras_nan_literal.json", CAMS, "a NaN literal", "JSON holds the literal NaN (numbers must be finite)"),
    Case(
        "cameras_huge_number.json",
        CAMS,
        "1e400",
        "number at intrinsics[0].focal_length[0] overflows a float (JSON numbers must be finite)",
    ),
    Case(
        "cameras_zero_focal.json", CAMS, "focal length 0", "intrinsics[0]: image size and focal length must be positive"
    ),
    Case(
        "cameras_focal_string.json",
        CAMS,
        "focal_length is a string",
        "intrinsics[0]: 'focal_length' must be 2 numbers, got 'big'",
    ),
    Case("cameras_missing_intrinsics.json", CAMS, "no intrinsics", "missing key 'intrinsics' in cameras file"),
    Case("cameras_not_object.json", CAMS, "a list at the top level", "cameras file must hold a JSON object"),
    Case("cameras_deep_nesting.json", CAMS, "5,000 nested lists", "JSON nested deeper than 64 levels"),
    Case("cameras_not_json.json", CAMS, "binary bytes", "not valid JSON (not UTF-8 text)"),
    Case(
        "kp_pickled_keypoints.npz",
        INPUT,
        "keypoints is a pickle calling os.system",
        "refused to read the .npz (Object arrays cannot be loaded when allow_pickle=False)",
    ),
    Case(
        "kp_huge_declared_shape.npz",
        INPUT,
        "header declares 10^6 frames in 16 bytes",
        "[key keypoints]: .npy header declares a (1000000, 16, 2) float64 array (244.1 MB)",
    ),
    Case(
        "kp_zip_name_not_utf8.npz",
        INPUT,
        "member name flagged UTF-8 but not (UnicodeDecodeError before the fix)",
        "not a readable .npz archive (UnicodeDecodeError",
    ),
    Case(
        "kp_missing_keypoints.npz",
        INPUT,
        "no keypoints key",
        "missing key 'keypoints' (the file has ['height', 'width'])",
    ),
    Case(
        "kp_missing_size.npz",
        INPUT,
        "no width/height and no --width/--height",
        "missing key 'width' (the file has ['keypoints'])",
    ),
    Case(
        "kp_wrong_joints.npz",
        INPUT,
        "5 joints, the checkpoint has 16",
        "'keypoints' has 5 joints, the checkpoint's layout h36m16 has 16",
    ),
    Case("kp_three_dims.npz", INPUT, "(T, J, 3)", "'keypoints' must have shape (T, J, 2), got (4, 16, 3)"),
    Case("kp_no_frames.npz", INPUT, "zero frames", "empty sequence ('keypoints' has no frame)"),
    Case("kp_string_dtype.npz", INPUT, "strings", "'keypoints' must hold numbers, not <U6"),
    Case(
        "kp_nan.npz",
        INPUT,
        "a NaN coordinate",
        "'keypoints' has NaN or infinite values (first at frame 1, joint right_knee)",
    ),
    Case(
        "kp_out_of_image.npz",
        INPUT,
        "1e300 px",
        "'keypoints' has 1 points more than 1 image size outside the 1000 x 1002 image",
    ),
    Case("kp_all_zero_size.npz", INPUT, "width and height 0", "'width' must be a positive number, got 0.0"),
    Case(
        "kp_scores_wrong_shape.npz",
        INPUT,
        "scores of shape (4, 3)",
        "'scores' must be numbers of shape (4, 16), got (4, 3)",
    ),
    Case(
        "kp_width_array.npz", INPUT, "width is an array", "'width' must be one number, got float32 of shape (4, 16, 2)"
    ),
    Case("coco_deep_nesting.json", INPUT, "200 nested lists", "JSON nested deeper than 64 levels"),
    Case("coco_nan_literal.json", INPUT, "a NaN literal", "JSON holds the literal NaN (numbers must be finite)"),
    Case(
        "coco_infinity_literal.json",
        INPUT,
        "a -Infinity literal",
        "JSON holds the literal -Infinity (numbers must be finite)",
    ),
    Case(
        "coco_huge_float.json",
        INPUT,
        "1e999",
        "number at [0].keypoints[7] overflows a float (JSON numbers must be finite)",
    ),
    Case(
        "coco_huge_integer.json",
        INPUT,
        "image_id 10^30",
        "integer at [1].image_id is out of range (about 31 digits; at most 19 are accepted)",
    ),
    Case(
        "coco_not_json.json",
        INPUT,
        "binary bytes",
        "unknown format: neither an .npz archive nor JSON (COCO-17 keypoint results)",
    ),
    Case(
        "coco_top_level_number.json",
        INPUT,
        "the number 42",
        "unknown format: JSON that is neither a list of COCO keypoint entries nor an object with 'annotations'",
    ),
    Case("coco_empty_list.json", INPUT, "no person entry", "empty sequence (no person entries)"),
    Case(
        "coco_annotations_not_list.json",
        INPUT,
        "annotations is an object",
        "'annotations' must be a list of person entries",
    ),
    Case(
        "coco_keypoints_string.json",
        INPUT,
        "keypoints is a string",
        "entry 1 (image_id 1): 'keypoints' must be 51 numbers ([x, y, score] x 17 COCO-17 joints), got str",
    ),
    Case(
        "coco_keypoints_short.json",
        INPUT,
        "3 numbers instead of 51",
        "entry 1 (image_id 1): 'keypoints' must be 51 numbers ([x, y, score] x 17 COCO-17 joints), got 3 values",
    ),
    Case(
        "coco_keypoints_bool.json",
        INPUT,
        "51 booleans",
        "entry 1 (image_id 1): 'keypoints' must be 51 numbers ([x, y, score] x 17 COCO-17 joints), got 51 values",
    ),
    Case("coco_missing_image_id.json", INPUT, "an entry without image_id", "entry 1 has no 'image_id'"),
    Case("coco_image_id_float.json", INPUT, "image_id 1.5", "numeric image_id values must be integers"),
    Case("coco_entry_not_object.json", INPUT, "an entry that is a string", "entry 1 is a str, not a person object"),
    Case(
        "coco_out_of_image.json",
        INPUT,
        "one frame 50,000 px off the image",
        "'keypoints' has 17 points more than 1 image size outside the 1000 x 1002 image",
    ),
    Case("coco_images_bad_size.json", INPUT, "images with width -5", "image width must be a positive number, got -5"),
    Case("params_unknown_key.yaml", PARAMS, "data.scael", "data.scael: unknown key (did you mean 'scale'?)"),
    Case("params_unknown_top_key.yaml", PARAMS, "trainning", "trainning: unknown key (did you mean 'train'?)"),
    Case("params_wrong_type.yaml", PARAMS, "data.seed: zero", "data.seed: input should be a valid integer, got 'zero'"),
    Case(
        "params_out_of_range.yaml",
        PARAMS,
        "train.epochs: -3",
        "train.epochs: input should be greater than or equal to 1, got -3",
    ),
    Case(
        "params_string_for_list.yaml",
        PARAMS,
        "data.keypoints: gt",
        "data.keypoints: input should be a valid list, got 'gt'",
    ),
    Case("params_not_mapping.yaml", PARAMS, "a list at the top level", "expected a mapping at the top level"),
    Case("params_scalar.yaml", PARAMS, "a string at the top level", "expected a mapping at the top level"),
    Case(
        "params_unknown_preset.yaml",
        PARAMS,
        "preset: huge",
        "preset: 'huge' has no file in configs (available: ['full', 'small', 'tiny'])",
    ),
    Case("params_invalid_yaml.yaml", PARAMS, "unclosed flow sequence", "invalid YAML (while parsing a flow sequence"),
    Case(
        "params_python_tag.yaml",
        PARAMS,
        "!!python/object/apply:os.system",
        "invalid YAML (could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    Case("params_not_utf8.yaml", PARAMS, "bytes 0xff 0xfe", "invalid YAML (not UTF-8 text)"),
    Case("params_deep_nesting.yaml", PARAMS, "5,000 nested lists", "invalid YAML (nested too deeply)"),
    Case(
        "params_alias_bomb.yaml",
        PARAMS,
        "billion laughs: 9^9 aliased list as data.seed",
        "data.seed: input should be a valid integer, got [[[...], [...],",
    ),
    Case("params_alias_bomb_key.yaml", PARAMS, "billion laughs under unknown keys", "l0: unknown key"),
    Case("params_nan_seed.yaml", PARAMS, "data.seed: .nan", "data.seed: input should be a valid integer, got nan"),
    Case("ckpt_list_not_dict.pt", CKPT, "a list", "not an mlpgraph checkpoint (no 'networks' entry)"),
    Case("ckpt_no_networks.pt", CKPT, "no networks", "not an mlpgraph checkpoint (no 'networks' entry)"),
    Case("ckpt_wrong_version.pt", CKPT, "format_version 99", "checkpoint format_version 99, this mlpgraph reads 1"),
    Case(
        "ckpt_networks_empty.pt",
        CKPT,
        "networks {}",
        "networks is empty; expected at least the lifting network under 'model'",
    ),
    Case(
        "ckpt_network_entry_string.pt",
        CKPT,
        "networks.model is a string",
        "networks.model is a str, expected a mapping",
    ),
    Case(
        "ckpt_unknown_model_name.pt",
        CKPT,
        "model name resnet",
        "networks.model: its name and config do not build a network (unknown model 'resnet'",
    ),
    Case(
        "ckpt_config_list.pt",
        CKPT,
        "config hid_dim is a list",
        "networks.model.config.hid_dim is a list, expected a number, string or bool",
    ),
    Case(
        "ckpt_huge_config.pt",
        CKPT,
        "config hid_dim 10^9 (would allocate terabytes)",
        "networks.model.config.hid_dim is 1000000000, expected 0 to 65536",
    ),
    Case(
        "ckpt_nan_weight.pt",
        CKPT,
        "a NaN weight",
        "tensor networks.model.state_dict.embed.weight holds NaN or infinite values; refusing to use these weights",
    ),
    Case(
        "ckpt_state_entry_int.pt",
        CKPT,
        "a state_dict entry is an int",
        "networks.model.state_dict: entry 'embed.weight' is an int, not a tensor",
    ),
    Case(
        "ckpt_weight_wrong_shape.pt",
        CKPT,
        "a weight of shape (3, 3)",
        "networks.model: tensor 'embed.weight' has shape (3, 3) in the checkpoint, the model expects (8, 2)",
    ),
    Case(
        "ckpt_fingerprint_number.pt",
        CKPT,
        "data_fingerprint 5",
        "data_fingerprint is an int, expected a string or null",
    ),
    Case(
        "ckpt_meta_numpy_array.pt",
        CKPT,
        "a numpy array in meta (refused by weights_only)",
        "refused to load (only tensors and plain values are allowed): Unsupported global: GLOBAL numpy",
    ),
    Case(
        "ckpt_pickled_os_system.pt",
        CKPT,
        "a pickled os.system call in meta",
        "refused to load (only tensors and plain values are allowed): unsupported GLOBAL posix.system",
    ),
    Case(
        "ckpt_truncated.pt",
        CKPT,
        "the first half of a valid checkpoint",
        "not a readable PyTorch file (OSError: [Errno 22] Invalid argument)",
    ),
    Case(
        "ckpt_legacy_pickle_4gb_string.pt",
        CKPT,
        "5 bytes: a bare pickle declaring a 4 GB string (read from memory, not allocated; found by fuzzing)",
        "not a readable PyTorch file (EOFError",
    ),
    Case(
        "ckpt_random_bytes.pt",
        CKPT,
        "4 kB of random bytes",
        "refused to load (only tensors and plain values are allowed): Unsupported operand",
    ),
    Case(
        "release_inf_weight.pth",
        RELEASE,
        "an infinite weight",
        "tensor 'to_patch_embedding.weight' holds NaN or infinite values; refusing to use these weights",
    ),
    Case(
        "release_tensor_not_dict.pth",
        RELEASE,
        "a tensor, not a state dict",
        "expected a plain state dict (name -> tensor), got Tensor",
    ),
    Case(
        "release_missing_keys.pth",
        RELEASE,
        "a state dict without the MLP-Graph keys",
        "not an MLP-Graph release state dict (no 'to_patch_embedding.weight')",
    ),
    Case(
        "release_entry_int.pth",
        RELEASE,
        "an int among the tensors",
        "entry 'extra' is a int, not a tensor; not a state dict",
    ),
    Case(
        "release_pickled_os_system.pth",
        RELEASE,
        "a pickled os.system call",
        "refused to load (only tensors and plain values are allowed): unsupported GLOBAL posix.system",
    ),
    Case("release_empty.pth", RELEASE, "an empty dict", "expected a plain state dict (name -> tensor), got dict"),
    Case("h5_not_hdf5.h5", PROCESSED, "not HDF5", "not a readable HDF5 file"),
    Case(
        "h5_truncated.h5",
        PROCESSED,
        "the first 3000 bytes of a valid file",
        "not a readable HDF5 file (Unable to synchronously open file (truncated file",
    ),
    Case("h5_wrong_version.h5", PROCESSED, "format_version 99", "format_version 99, expected 1"),
    Case("h5_incomplete.h5", PROCESSED, "complete = False", "incomplete file (interrupted build?); rebuild it"),
    Case("h5_missing_dataset.h5", PROCESSED, "no poses_3d", "missing datasets ['poses_3d']"),
    Case("h5_group_not_dataset.h5", PROCESSED, "camera is a group", "'camera' is not a dataset"),
    Case("h5_nan.h5", PROCESSED, "a NaN in poses_3d", "dataset 'poses_3d': 1 NaN or infinite values (first in row 3)"),
    Case("h5_wrong_dtype.h5", PROCESSED, "poses_2d of byte strings", "dataset 'poses_2d': dtype |S4; expected floats"),
    Case(
        "h5_wrong_shape.h5",
        PROCESSED,
        "poses_3d (N, J, 2)",
        "dataset 'poses_3d': shape (80, 16, 2); expected (N, 16, 3)",
    ),
    Case(
        "h5_compressed.h5",
        PROCESSED,
        "poses_3d gzip-compressed",
        "dataset 'poses_3d': stored chunked or compressed; processed files are contiguous",
    ),
    Case(
        "h5_broken_index.h5",
        PROCESSED,
        "sequences points past the samples",
        "dataset 'sequences': (start, length) rows do not cover the samples back to back",
    ),
    Case(
        "h5_fewer_labels.h5",
        PROCESSED,
        "camera has 3 fewer rows",
        "per-sample datasets differ in length {'poses_3d': 80",
    ),
    Case(
        "user_folder",
        OUT,
        "an existing folder of the user's",
        "--out user_folder: is a folder; give the path of a file to write",
    ),
    Case(".", OUT, "the working directory", "--out .: is the working directory or a folder above it"),
    Case(
        "plain_file.txt/out.npz",
        OUT,
        "a path under a plain file",
        "--out plain_file.txt/out.npz: is under plain_file.txt, which is not a folder",
    ),
]


def readme_text() -> str:
    """README.md: what the corpus is, how it is made and tested, and the table of cases."""
    lines = [
        "# Bad-input corpus",
        "",
        "Small crafted files that every reader and command must refuse with **one line on stderr, exit",
        "status 2, no traceback and nothing written** (`tests/test_bad_inputs.py` runs each through its",
        "entry point). `make_corpus.py` writes them deterministically (`python tests/data/bad/make_corpus.py`);",
        "a test checks it regenerates exactly the committed bytes. Generated from `cases.py`: edit that",
        "table, not this file.",
        "",
        "Entry points: `mlpgraph predict` / `import-release` run in-process through `mlpgraph.cli.main`;",
        "the stage scripts through `run_command` with their own parser and `main` (MLflow tracking",
        "stubbed out); raw files are copied into an otherwise valid raw folder under the name shown;",
        "params files beside a copy of `configs/`; processed files through `load_processed` (what",
        "every training and evaluation stage calls first).",
        "",
        f"{len(CASES)} cases.",
        "",
        "| file | entry point | what is wrong | expected message fragment |",
        "|---|---|---|---|",
    ]
    for case in CASES:
        fragment = case.fragment.replace("|", "\\|")
        lines.append(f"| `{case.file}` | {case.entry} | {case.problem} | `{fragment}` |")
    return "\n".join(lines) + "\n"
