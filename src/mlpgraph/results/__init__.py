"""Every metrics file the pipeline writes, as typed records: one definition of each file's layout.

Each record is a frozen dataclass whose fields are the file's keys, in the order the stages write
them. :meth:`~mlpgraph.results.records.Record.to_dict` gives the JSON-ready content and
:meth:`~mlpgraph.results.records.Record.from_dict` checks a file's content and rebuilds the record
(a malformed file is a one-line :class:`~mlpgraph.errors.UserInputError` naming the file and the
key); :func:`write_record` writes one as the stages write their JSON (indented, a trailing newline,
atomically), :func:`read_record` reads one back. Nothing here imports torch.

The files, under ``metrics/``:

- ``h36m/EXP.json``: :class:`H36mEvaluation`; ``h36m/EXP_refine.json``: :class:`RefineEvaluation`,
- ``3dhp/EXP.json``: :class:`DhpEvaluation`, or :class:`DhpUnavailable` without a test file,
- ``hard/EXP.json``: :class:`HardEvaluation`,
- ``real/EXP.json``: :class:`RealMocapEvaluation` (real motion capture through the Human3.6M cameras),
  ``real/EXP_refine.json``: :class:`RealRefineEvaluation` (the refinement run's networks on it),
- ``train/EXP.json`` and ``train/EXP_refine.json``: :class:`TrainSummary`, or :class:`ReleaseSummary`
  for imported released weights; ``train/EXP_curve.json``: :class:`TrainingCurve`,
- any of them: :class:`Skipped` for a pretrained experiment without its release folder,
- :class:`ExperimentSummary` (built by :func:`summarise`): a few scalars per experiment for ``dvc exp show``.
"""

from mlpgraph.results.evaluation import (
    ActionFigures,
    BatchTiming,
    ClipFigures,
    DataDescription,
    DhpEvaluation,
    DhpFigures,
    DhpUnavailable,
    ErrorPair,
    H36mEvaluation,
    H36mFigures,
    HardEvaluation,
    HardFigures,
    InferenceTime,
    PckFigures,
    RealBaseline,
    RealFigures,
    RealMocapEvaluation,
    RealRefinedSelection,
    RealRefineEvaluation,
    RefinedSelection,
    RefineEvaluation,
    Skipped,
)
from mlpgraph.results.records import Record, read_json, read_record, write_record
from mlpgraph.results.summary import ExperimentSummary, summarise
from mlpgraph.results.training import RELEASE_SOURCE, EpochRecord, ReleaseSummary, TrainingCurve, TrainSummary

__all__ = [
    "RELEASE_SOURCE",
    "ActionFigures",
    "BatchTiming",
    "ClipFigures",
    "DataDescription",
    "DhpEvaluation",
    "DhpFigures",
    "DhpUnavailable",
    "EpochRecord",
    "ErrorPair",
    "ExperimentSummary",
    "H36mEvaluation",
    "H36mFigures",
    "HardEvaluation",
    "HardFigures",
    "InferenceTime",
    "PckFigures",
    "RealBaseline",
    "RealFigures",
    "RealMocapEvaluation",
    "RealRefineEvaluation",
    "RealRefinedSelection",
    "Record",
    "RefineEvaluation",
    "RefinedSelection",
    "ReleaseSummary",
    "Skipped",
    "TrainSummary",
    "TrainingCurve",
    "read_json",
    "read_record",
    "summarise",
    "write_record",
]
