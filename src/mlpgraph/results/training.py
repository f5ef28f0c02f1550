"""The training stages' files: ``train/EXP.json`` and ``train/EXP_refine.json``, ``train/EXP_curve.json``.

A network trained here has a :class:`TrainSummary`, released weights imported instead a
:class:`ReleaseSummary` (``source`` is :data:`RELEASE_SOURCE`), a skipped pretrained experiment a
:class:`~mlpgraph.results.evaluation.Skipped`; every one has a :class:`TrainingCurve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlpgraph.results.evaluation import DataDescription
from mlpgraph.results.records import FLATTEN, OPTIONAL_KEY, Record

# ``source`` of a training summary whose network is the MLP-Graph authors' release, not trained here.
RELEASE_SOURCE = "MLP-Graph release"
# A run counts as converged when its test P1 changed by less than this fraction over its last
# CONVERGENCE_EPOCHS epochs (the criterion the `small` preset's epochs are chosen by).
CONVERGENCE_TOLERANCE = 0.02
CONVERGENCE_EPOCHS = 2


@dataclass(frozen=True, kw_only=True)
class EpochRecord(Record):
    """One epoch of the training history: its number and what was measured after it, in recorded order.

    ``figures`` holds the learning rate, the losses and the test figures (``lr``, ``loss``,
    ``loss_main``, ``P1``, ``P2``, ...; ``loss_refine``, ``P1_spatial``, ... when refining), null
    when not measured. ``selection`` names the rule that chose the epoch in a training summary.
    """

    selection: str | None = field(default=None, metadata=OPTIONAL_KEY)
    epoch: int
    figures: dict[str, float | None] = field(default_factory=dict, metadata=FLATTEN)

    def value(self, name: str) -> float:
        """The figure ``name``; NaN when missing or null."""
        found = self.figures.get(name)
        return float("nan") if found is None else float(found)


@dataclass(frozen=True, kw_only=True)
class TrainingCurve(Record):
    """``train/EXP_curve.json``: every epoch's record (one epoch-0 point for released weights, with a note)."""

    history: tuple[EpochRecord, ...]
    note: str | None = field(default=None, metadata=OPTIONAL_KEY)

    def recent_change(self, metric: str = "P1", epochs: int = CONVERGENCE_EPOCHS) -> float:
        """How much ``metric`` moved over the last ``epochs`` epochs, relative to its last value.

        ``|m(E) - m(E - epochs)| / m(E)`` for the last epoch E; NaN when the history holds fewer
        than ``epochs + 1`` epochs or either value is missing.
        """
        if len(self.history) <= epochs:
            return float("nan")
        last, before = self.history[-1].value(metric), self.history[-1 - epochs].value(metric)
        return abs(last - before) / last

    def converged(self, metric: str = "P1") -> bool | None:
        """Whether ``metric`` changed by less than ``CONVERGENCE_TOLERANCE`` over the last epochs; None: unknown."""
        change = self.recent_change(metric)
        return None if change != change else change < CONVERGENCE_TOLERANCE


@dataclass(frozen=True, kw_only=True)
class TrainSummary(Record):
    """``train/EXP.json`` (and ``EXP_refine.json``): a network trained here and its two selected epochs.

    A refinement run adds ``refinement`` and ``selection_metric``; a multi-process run ``processes``.
    """

    experiment: str
    model: str
    model_config: dict[str, Any]
    parameters: int
    recipe: dict[str, Any]
    data: DataDescription
    epochs: int
    seconds: float
    last_epoch: EpochRecord
    best_on_test: EpochRecord
    mlflow_run_id: str | None
    refinement: dict[str, Any] | None = field(default=None, metadata=OPTIONAL_KEY)
    selection_metric: str | None = field(default=None, metadata=OPTIONAL_KEY)
    processes: int | None = field(default=None, metadata=OPTIONAL_KEY)

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        """A trained network: neither skipped nor the release's."""
        return data.get("available") is not False and data.get("source") != RELEASE_SOURCE


@dataclass(frozen=True, kw_only=True)
class ReleaseSummary(Record):
    """``train/EXP.json`` of a pretrained experiment: the released weights imported (epoch 0, nothing trained)."""

    experiment: str
    model: str
    source: str
    data: DataDescription
    available: Literal[True] = True
    model_config: dict[str, Any]
    parameters: int
    source_files: dict[str, str]
    epochs: int
    last_epoch: EpochRecord
    best_on_test: EpochRecord
    mlflow_run_id: str | None

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        """Imported released weights."""
        return data.get("available") is not False and data.get("source") == RELEASE_SOURCE
