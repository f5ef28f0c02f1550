"""Readers and validation of the community's data files (docs/data.md, "Input files").

Every reader checks what it reads and raises :class:`UserInputError` with one line that names
the file and, where it applies, the key, subject, action and camera of the problem, e.g.
``data_2d_h36m_gt.npz: subject S9, action 'Walking 1', camera 2: 2D sequence has 95 frames, the
3D has 100 (shorter 2D is refused)``. Files are loaded through the restricted unpickler of
:mod:`mlpgraph.io`, never with plain ``allow_pickle=True``.

Modules: :mod:`~mlpgraph.data.formats.checks` (checks shared by the readers),
:mod:`~mlpgraph.data.formats.h36m` (the Human3.6M 3D, 2D and cameras files),
:mod:`~mlpgraph.data.formats.mpi3dhp` (the MPI-INF-3DHP test set),
:mod:`~mlpgraph.data.formats.hard_poses` (the release's hard-pose file).
"""

from mlpgraph.data.formats.checks import body_extent
from mlpgraph.data.formats.h36m import RawDataset, load_raw_dataset, read_positions_2d, read_positions_3d
from mlpgraph.data.formats.hard_poses import HardPoses, read_hard_poses
from mlpgraph.data.formats.mpi3dhp import Test3DHP, read_3dhp_test

__all__ = [
    "HardPoses",
    "RawDataset",
    "Test3DHP",
    "body_extent",
    "load_raw_dataset",
    "read_3dhp_test",
    "read_hard_poses",
    "read_positions_2d",
    "read_positions_3d",
]
