"""The metrics records: every committed metrics file round-trips byte for byte, malformed files are one line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mlpgraph.errors import UserInputError
from mlpgraph.results import (
    RELEASE_SOURCE,
    DhpEvaluation,
    DhpUnavailable,
    EpochRecord,
    ExperimentSummary,
    H36mEvaluation,
    HardEvaluation,
    Record,
    RefineEvaluation,
    ReleaseSummary,
    Skipped,
    TrainingCurve,
    TrainSummary,
    read_json,
    read_record,
    summarise,
    write_record,
)
from tests.conftest import ROOT

METRICS = ROOT / "metrics"
COMMITTED = sorted(p for folder in ("h36m", "3dhp", "hard", "train") for p in (METRICS / folder).glob("*.json"))


def upper_case_3dhp(data: Any) -> Any:
    """``data`` with the 3DHP figures' keys ``pck`` / ``auc`` as ``PCK`` / ``AUC`` (the records' casing)."""
    if isinstance(data, dict):
        return {{"pck": "PCK", "auc": "AUC"}.get(key, key): upper_case_3dhp(value) for key, value in data.items()}
    return data


def committed_content(path: Path) -> dict[str, Any]:
    """A committed metrics file's content, 3DHP keys in the records' casing."""
    data = read_json(path)
    return upper_case_3dhp(data) if path.parent.name == "3dhp" else data


def kinds_of(path: Path, data: dict[str, Any]) -> tuple[type[Record], ...]:
    """The records a file at ``path`` may hold, as the report reads it."""
    folder = path.parent.name
    if folder == "h36m":
        refine = path.stem == f"{data['experiment']}_refine"
        return (RefineEvaluation if refine else H36mEvaluation, Skipped)
    if folder == "3dhp":
        return (DhpEvaluation, DhpUnavailable, Skipped)
    if folder == "hard":
        return (HardEvaluation, Skipped)
    if path.stem.endswith("_curve") and "history" in data:
        return (TrainingCurve,)
    return (TrainSummary, ReleaseSummary, Skipped)


def stage_bytes(data: dict[str, Any]) -> str:
    """What ``mlpgraph.stage_runs.write_json`` writes for ``data``."""
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def test_the_committed_metrics_hold_every_kind_of_file():
    assert COMMITTED, "no committed metrics files"
    found = set()
    for path in COMMITTED:
        data = committed_content(path)
        found.add(next(kind for kind in kinds_of(path, data) if kind.matches(data)))
    assert found >= {H36mEvaluation, RefineEvaluation, DhpEvaluation, HardEvaluation, TrainSummary, TrainingCurve}
    assert Skipped in found


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_file_round_trips(path, tmp_path):
    """from_dict then to_dict is the identity, and write_record writes the bytes the stages write."""
    data = committed_content(path)
    copy = tmp_path / path.name
    copy.write_text(stage_bytes(data))
    record = read_record(copy, *kinds_of(path, data))
    assert record.to_dict() == data
    assert type(record).from_dict(record.to_dict()) == record
    out = tmp_path / "out.json"
    write_record(out, record)
    assert out.read_text() == stage_bytes(data)
    if path.parent.name != "3dhp":
        assert out.read_bytes() == path.read_bytes()


def _stage_shaped(kind: str) -> dict[str, Any]:
    """Files the committed metrics lack, shaped as ``mlpgraph.stage_runs`` writes them."""
    data = read_json(METRICS / "train" / "mlpgraph_gt_f1.json")["data"]
    if kind == "release":
        return {
            "experiment": "pretrained_gt_f1",
            "model": "mlpgraph",
            "source": RELEASE_SOURCE,
            "data": {**data, "fingerprint": None},
            "available": True,
            "model_config": {"layout": "h36m16", "frames": 1, "aggregation": "diagonal"},
            "parameters": 123,
            "source_files": {"gt_f1.pth": "0" * 64},
            "epochs": 0,
            "last_epoch": {"selection": "released checkpoint", "epoch": 0},
            "best_on_test": {"selection": "released checkpoint", "epoch": 0},
            "mlflow_run_id": None,
        }
    return {
        "experiment": "mlpgraph_gt_f1",
        "model": "mlpgraph",
        "flip_test": True,
        "available": False,
        "reason": "no MPI-INF-3DHP test file in data/raw",
    }


@pytest.mark.parametrize(("kind", "record_type"), [("release", ReleaseSummary), ("no 3dhp", DhpUnavailable)])
def test_stage_shaped_files_round_trip(kind, record_type, tmp_path):
    data = _stage_shaped(kind)
    path = tmp_path / "file.json"
    path.write_text(stage_bytes(data))
    record = read_record(path, TrainSummary, ReleaseSummary, DhpEvaluation, DhpUnavailable, Skipped)
    assert type(record) is record_type
    assert record.to_dict() == data
    write_record(tmp_path / "out.json", record)
    assert (tmp_path / "out.json").read_bytes() == path.read_bytes()


def test_summary_of_each_evaluated_experiment():
    names = [p.stem for p in (METRICS / "hard").glob("*.json")]
    summarised = 0
    for name in names:
        h36m = read_record(METRICS / "h36m" / f"{name}.json", H36mEvaluation, Skipped)
        if isinstance(h36m, Skipped):
            continue
        dhp = DhpEvaluation.from_dict(committed_content(METRICS / "3dhp" / f"{name}.json"))
        hard = read_record(METRICS / "hard" / f"{name}.json", HardEvaluation)
        refine_path = METRICS / "h36m" / f"{name}_refine.json"
        refine = read_record(refine_path, RefineEvaluation) if refine_path.is_file() else None
        summary = summarise(h36m, dhp, hard, refine)
        assert (summary.P1_last, summary.P2_best) == (h36m.last_epoch.P1, h36m.best_on_test.P2)
        assert (summary.PCK_last, summary.P1_hard_last) == (dhp.last_epoch.PCK, hard.last_epoch.P1)
        content = summary.to_dict()
        assert content["available"] is True
        assert all(isinstance(v, float) for k, v in content.items() if k not in ("experiment", "available"))
        assert ("P1_refined_last" in content) == (refine is not None)
        assert ExperimentSummary.from_dict(content) == summary
        unavailable = DhpUnavailable.from_dict(_stage_shaped("no 3dhp"))
        assert not {"PCK_last", "AUC_last", "P1_refined_last"} & set(summarise(h36m, unavailable, hard).to_dict())
        summarised += 1
    assert summarised >= 1


def _broken(tmp_path: Path, change) -> Path:
    data = read_json(METRICS / "h36m" / "mlpgraph_gt_f1.json")
    change(data)
    path = tmp_path / "h36m.json"
    path.write_text(stage_bytes(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["last_epoch"]["per_action"]["Eating"].pop("P1"), "missing field 'last_epoch.per_action.Eating.P1"),
        (lambda d: d["best_on_test"].update(P2="12.5"), "field 'best_on_test.P2' must be a number, got '12.5'"),
        (lambda d: d.update(frames=1.5), "field 'frames' must be an integer, got 1.5"),
        (lambda d: d.update(data=[]), "field 'data' must be a JSON object"),
        (lambda d: d.pop("mlflow_run_id"), "missing field 'mlflow_run_id'"),
        (lambda d: d.update(available=False), "not a H36mEvaluation file"),
    ],
)
def test_malformed_file_is_one_line_naming_file_and_key(tmp_path, change, message):
    path = _broken(tmp_path, change)
    with pytest.raises(UserInputError) as info:
        read_record(path, H36mEvaluation)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_unreadable_files_are_one_line(tmp_path):
    with pytest.raises(UserInputError, match="metrics file not found"):
        read_record(tmp_path / "absent.json", HardEvaluation)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserInputError, match="invalid JSON"):
        read_record(tmp_path / "bad.json", HardEvaluation)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(UserInputError, match="expected a JSON object"):
        read_record(tmp_path / "list.json", HardEvaluation)


def test_skipped_needs_available_false():
    data = read_json(METRICS / "h36m" / "pretrained_gt_f1.json")
    assert Skipped.from_dict(data).to_dict() == data
    with pytest.raises(UserInputError, match="field 'available' must be false, got 0"):
        Skipped.from_dict({**data, "available": 0}, "skipped.json")


def curve(p1: list[float | None]) -> TrainingCurve:
    return TrainingCurve(history=tuple(EpochRecord(epoch=e, figures={"P1": v}) for e, v in enumerate(p1, start=1)))


@pytest.mark.parametrize(
    ("p1", "change", "converged"),
    [
        ([100.0, 50.0, 49.5, 49.0], 1.0 / 49.0, False),  # 2.04 %: still changing
        ([100.0, 50.0, 49.5, 49.2], 0.8 / 49.2, True),  # 1.63 %
        ([60.0, 61.0, 60.5], 0.5 / 60.5, True),  # a rise counts as change too
        ([100.0, 50.0, 10.0], 90.0 / 10.0, False),
    ],
)
def test_recent_change_spans_the_last_two_epochs(p1, change, converged):
    assert curve(p1).recent_change() == pytest.approx(change)
    assert curve(p1).converged() is converged


@pytest.mark.parametrize("p1", [[], [50.0], [50.0, 49.0], [None, 50.0, 49.0]])
def test_recent_change_is_unknown_without_enough_epochs(p1):
    assert math.isnan(curve(p1).recent_change())
    assert curve(p1).converged() is None
