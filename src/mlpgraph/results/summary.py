"""A flat summary of one experiment's headline figures, built from its evaluation records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlpgraph.results.evaluation import (
    DhpEvaluation,
    DhpUnavailable,
    H36mEvaluation,
    HardEvaluation,
    RealMocapEvaluation,
    RefineEvaluation,
    Skipped,
)
from mlpgraph.results.records import OPTIONAL_KEY, Record


@dataclass(frozen=True, kw_only=True)
class ExperimentSummary(Record):
    """A flat file of one experiment's headline figures (mm, %), for ``dvc exp show``.

    ``_last``: the last-epoch model; ``_best``: the epoch best on test. 3DHP figures are left out
    when there is no 3DHP test file, the refined P1 (oracle root depth) when nothing was refined,
    the P1 on real motion capture (``P1_real_last``) when no real-mocap record was given; a
    skipped pretrained experiment has ``available: false`` and no figures.
    """

    experiment: str
    available: bool = True
    P1_last: float | None = field(default=None, metadata=OPTIONAL_KEY)
    P2_last: float | None = field(default=None, metadata=OPTIONAL_KEY)
    P1_best: float | None = field(default=None, metadata=OPTIONAL_KEY)
    P2_best: float | None = field(default=None, metadata=OPTIONAL_KEY)
    PCK_last: float | None = field(default=None, metadata=OPTIONAL_KEY)
    AUC_last: float | None = field(default=None, metadata=OPTIONAL_KEY)
    P1_hard_last: float | None = field(default=None, metadata=OPTIONAL_KEY)
    P1_refined_last: float | None = field(default=None, metadata=OPTIONAL_KEY)
    P1_real_last: float | None = field(default=None, metadata=OPTIONAL_KEY)

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        """Any summary, skipped or not."""
        return True


def summarise(
    h36m: H36mEvaluation | Skipped,
    dhp: DhpEvaluation | DhpUnavailable | Skipped,
    hard: HardEvaluation | Skipped,
    refine: RefineEvaluation | None = None,
    real: RealMocapEvaluation | Skipped | None = None,
) -> ExperimentSummary:
    """The :class:`ExperimentSummary` of one experiment's evaluation records."""
    if isinstance(h36m, Skipped) or isinstance(hard, Skipped):
        return ExperimentSummary(experiment=h36m.experiment, available=False)
    measured = isinstance(dhp, DhpEvaluation)
    return ExperimentSummary(
        experiment=h36m.experiment,
        P1_last=h36m.last_epoch.P1,
        P2_last=h36m.last_epoch.P2,
        P1_best=h36m.best_on_test.P1,
        P2_best=h36m.best_on_test.P2,
        PCK_last=dhp.last_epoch.PCK if measured else None,
        AUC_last=dhp.last_epoch.AUC if measured else None,
        P1_hard_last=hard.last_epoch.P1,
        P1_refined_last=refine.last_epoch.refined_gt_root.P1 if refine is not None else None,
        P1_real_last=real.last_epoch.P1 if isinstance(real, RealMocapEvaluation) else None,
    )
