"""Names shared by the writer (preprocess) and the readers (training, evaluation) of processed data.

Also the raw directory's canonical file names and contents (fetch writes them, the readers of
:mod:`mlpgraph.data.formats` read them) and the frame rate of both.

One HDF5 file per (data set, keypoint source, layout), ``data/processed/<name>_<keypoints>_<layout>.h5``.
Samples are (subject, action, camera, frame) in sequence order: the samples of one sequence
(one subject, action and camera) are contiguous, so a temporal window is an index range.

Datasets (contiguous, uncompressed; N samples, S sequences, J joints):

- ``poses_3d``  float32 (N, J, 3): camera-space 3D, root-relative (root row exactly 0), metres.
- ``poses_2d``  float32 (N, J, 2): 2D keypoints in normalised screen coordinates.
- ``root_3d``   float32 (N, 3): absolute camera-space root position, metres (refinement's oracle depth).
- ``subject``   int16 (N,): index into the ``subjects`` attribute.
- ``action``    int16 (N,): index into the ``actions`` attribute (full names such as ``Walking 1``).
- ``family``    int16 (N,): index into the ``families`` attribute (the 15 action families).
- ``camera``    int16 (N,): camera index within the subject's cameras.
- ``frame``     int32 (N,): frame index within the sequence.
- ``sequence``  int32 (N,): row of ``sequences`` the sample belongs to.
- ``sequences`` int64 (S, 2): (start, length) of each sequence's samples.
- ``intrinsics`` float32 (S, 6): per sequence, normalised (f_x, f_y, c_x, c_y) and the image (width, height) in pixels.

Attributes: ``format_version``, ``dataset``, ``keypoints``, ``layout``, ``subjects``, ``actions``,
``families`` (JSON lists), ``train_subjects``, ``test_subjects`` (JSON lists), ``fps``,
``fingerprint`` (SHA-256 over the raw inputs' SHA-256s), ``raw_files`` (JSON name -> SHA-256),
``params`` (JSON of the parameters used), ``complete`` (True, written last).
"""

from __future__ import annotations

import numpy as np

FORMAT_VERSION = 1
# Frames per second of the Human3.6M files, of the synthetic motion and so of every processed file.
FPS = 50

POSES_3D = "poses_3d"
POSES_2D = "poses_2d"
ROOT_3D = "root_3d"
SUBJECT = "subject"
ACTION = "action"
FAMILY = "family"
CAMERA = "camera"
FRAME = "frame"
SEQUENCE = "sequence"
SEQUENCES = "sequences"
INTRINSICS = "intrinsics"

PER_SAMPLE_DATASETS = (
    POSES_3D,
    POSES_2D,
    ROOT_3D,
    SUBJECT,
    ACTION,
    FAMILY,
    CAMERA,
    FRAME,
    SEQUENCE,
)

# The raw files' contents: world 3D {subject: {action: (T, J, 3)}} and per-camera 2D
# {subject: {action: [(T, J, 2) per camera]}}.
Positions3D = dict[str, dict[str, np.ndarray]]
Positions2D = dict[str, dict[str, list[np.ndarray]]]

# Raw directory (fetch's output): canonical file names, whatever the user's files were called.
RAW_3D = "data_3d_h36m.npz"
RAW_CAMERAS = "cameras.json"
RAW_MANIFEST = "manifest.json"
RAW_3DHP_PSTMO = "data_test_3dhp.npz"
RAW_3DHP_POSEAUG = "test_3dhp.npz"
RAW_HARD_POSES = "hard_poses_gt.npz"


def raw_2d_name(keypoints: str) -> str:
    """Canonical raw file name of a 2D keypoint source (``gt``, ``hr``, ``cpn_ft_h36m_dbb``, ...)."""
    return f"data_2d_h36m_{keypoints}.npz"

