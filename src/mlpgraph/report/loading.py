"""The metrics folder read into records (:mod:`mlpgraph.results`), one :class:`ExperimentMetrics` per experiment."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpgraph.errors import UserInputError
from mlpgraph.params import get
from mlpgraph.paths import MetricsFiles
from mlpgraph.report.paper import PAPER_FIGURES, PAPER_FRAMES, PAPER_KEYPOINTS, PAPER_LAYOUT, PaperFigures
from mlpgraph.results import (
    DhpEvaluation,
    DhpUnavailable,
    H36mEvaluation,
    HardEvaluation,
    RealMocapEvaluation,
    RealRefineEvaluation,
    RefineEvaluation,
    ReleaseSummary,
    Skipped,
    TrainingCurve,
    TrainSummary,
    read_record,
)

log = logging.getLogger(__name__)

# evaluate_real's folder in the metrics folder: ``real/EXP.json`` (stage evaluate_real in dvc.yaml) and, for
# experiments in ``refinement``, ``real/EXP_refine.json`` (stage evaluate_real_refine).

# How the report names the registry's models.
METHOD_NAMES = {
    "mlpgraph": "MLP-Graph",
    "semgcn": "SemGCN",
    "semgcn_nonlocal": "SemGCN (non-local)",
    "hgcn": "High-order GCN",
    "wugcn": "Weight Unsharing",
    "modgcn": "ModulatedGCN",
}


@dataclass(frozen=True)
class ExperimentMetrics:
    """Everything the report reads about one experiment: its entry in the parameters and its metrics files."""

    name: str
    model: str
    keypoints: str
    model_args: Mapping[str, Any]
    h36m: H36mEvaluation
    dhp: DhpEvaluation | DhpUnavailable | Skipped
    hard: HardEvaluation
    real: RealMocapEvaluation
    train: TrainSummary | ReleaseSummary
    curve: TrainingCurve
    refine: RefineEvaluation | None = None
    train_refine: TrainSummary | ReleaseSummary | None = None
    real_refine: RealRefineEvaluation | None = None

    @property
    def frames(self) -> int:
        """Window length, as the evaluation recorded it."""
        return self.h36m.frames

    @property
    def layout(self) -> str:
        """Joint layout of the evaluated data."""
        return self.h36m.data.layout

    @property
    def aggregation(self) -> str | None:
        """MLP-Graph's WJC aggregation (``diagonal`` / ``graph``), None for other models."""
        value = self.h36m.model_config.get("aggregation", self.model_args.get("aggregation"))
        return None if value is None else str(value)

    @property
    def method(self) -> str:
        """The row's method name: the model's, with MLP-Graph's variant when it is not the release's."""
        name = METHOD_NAMES.get(self.model, self.model)
        if self.model == "mlpgraph" and self.aggregation not in (None, "diagonal"):
            name += f" ({self.aggregation} aggregation)"
        if isinstance(self.train, ReleaseSummary):
            name += " (released weights)"
        return name

    def paper(self) -> PaperFigures | None:
        """The paper's figures for this row, or None when the row is not the paper's setting."""
        figures = PAPER_FIGURES.get(self.model)
        if figures is None:
            return None
        if self.keypoints != PAPER_KEYPOINTS or self.frames != PAPER_FRAMES or self.layout != PAPER_LAYOUT:
            return None
        config = self.h36m.model_config
        if any(config.get(key, self.model_args.get(key)) != value for key, value in figures.config.items()):
            return None
        return figures


def _experiment_metrics(
    name: str, entry: Mapping[str, Any], h36m: H36mEvaluation, files: MetricsFiles, refined: bool
) -> ExperimentMetrics:
    """The remaining files of experiment ``name`` (evaluated: ``h36m``), read in a fixed order."""
    return ExperimentMetrics(
        name=name,
        model=str(entry["model"]),
        keypoints=str(entry["keypoints"]),
        model_args=dict(entry.get("model_args") or {}),
        h36m=h36m,
        dhp=read_record(files.dhp(name), DhpEvaluation, DhpUnavailable, Skipped),
        hard=read_record(files.hard(name), HardEvaluation),
        real=read_record(files.real(name), RealMocapEvaluation),
        train=read_record(files.train_summary(name), TrainSummary, ReleaseSummary),
        curve=read_record(files.train_curve(name), TrainingCurve),
        refine=read_record(files.h36m(name, refine=True), RefineEvaluation) if refined else None,
        train_refine=(
            read_record(files.train_summary(name, refine=True), TrainSummary, ReleaseSummary) if refined else None
        ),
        real_refine=read_record(files.real(name, refine=True), RealRefineEvaluation) if refined else None,
    )


def load_metrics(
    params: Mapping[str, Any], metrics_dir: Path, skipped: dict[str, str] | None = None
) -> list[ExperimentMetrics]:
    """The metrics of every experiment in ``params`` (in its order); a missing file is a one-line error.

    An experiment is an entry of ``experiments`` with a ``model`` and ``keypoints``. A preset may
    carry overrides (``model_args`` only) for experiments that ``params.yaml`` does not define; the
    pipeline runs no stage for those, so they are skipped here. An experiment whose evaluation
    says ``available: false`` (a pretrained experiment without its release folder) is left out
    and its reason recorded in ``skipped``.
    """
    skipped = {} if skipped is None else skipped
    experiments = get(params, "experiments")
    if not isinstance(experiments, Mapping):
        raise UserInputError("params: 'experiments' must be a mapping")
    refinement = get(params, "refinement", {}) or {}
    loaded = []
    for name, entry in experiments.items():
        if not isinstance(entry, Mapping) or "model" not in entry or "keypoints" not in entry:
            log.debug("report: experiments.%s has no model and keypoints (a preset's override only), skipped", name)
            continue
        h36m = read_record(MetricsFiles(metrics_dir).h36m(name), H36mEvaluation, Skipped)
        if isinstance(h36m, Skipped):
            skipped[str(name)] = h36m.reason
            continue
        loaded.append(_experiment_metrics(str(name), entry, h36m, MetricsFiles(metrics_dir), name in refinement))
    if not loaded and not skipped:
        raise UserInputError("params: 'experiments' defines no experiment (an entry needs 'model' and 'keypoints')")
    return loaded
