"""MLflow tracking against a real SQLite store, and its failure mode (warn, never fail)."""

from __future__ import annotations

import json
import logging

import pytest

from mlpgraph.tracking import MLFLOW_EXPERIMENT, StageRun, flatten, flatten_numbers


def test_stage_run_records_params_tags_and_metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    artifact = tmp_path / "metrics.json"
    artifact.write_text(json.dumps({"P1": 41.0}))
    params = {"train": {"epochs": 3, "lr": 0.001}, "experiment": {"model": "mlpgraph"}}
    with StageRun("train_spatial", "mlpgraph_gt_f1", params, data_fingerprint="f" * 64) as run:
        for epoch in (1, 2):
            run.log_metrics({"loss": 1.0 / epoch, "test": {"P1": 50.0 - epoch}}, step=epoch)
        run.log_metrics({"final": {"P1": 48.0, "label": "last epoch"}})
        run.log_artifact(artifact)
    assert run.run_id is not None

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    found = client.get_run(run.run_id)
    assert client.get_experiment(found.info.experiment_id).name == MLFLOW_EXPERIMENT
    assert found.info.status == "FINISHED"
    assert found.data.tags["stage"] == "train_spatial"
    assert found.data.tags["experiment"] == "mlpgraph_gt_f1"
    assert found.data.tags["data_fingerprint"] == "f" * 64
    assert found.data.tags["git_commit"]
    assert found.data.params["train.epochs"] == "3"
    assert found.data.metrics["final.P1"] == 48.0
    history = client.get_metric_history(run.run_id, "test.P1")
    assert [(m.step, m.value) for m in history] == [(1, 49.0), (2, 48.0)]
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["metrics.json"]


def test_broken_store_warns_and_the_stage_goes_on(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-dir").write_text("a file where a folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'not-a-dir' / 'mlflow.db'}")
    with caplog.at_level(logging.WARNING, logger="mlpgraph.tracking"), StageRun(
        "evaluate_h36m", "x", {"a": 1}, retries=2, backoff_s=0.01
    ) as run:
        run.log_metrics({"P1": 1.0})
        run.log_artifact(tmp_path / "not-a-dir")
    assert run.run_id is None
    assert sum("tracking is off" in r.getMessage() for r in caplog.records) == 1


def test_failure_inside_the_stage_marks_the_run_failed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(RuntimeError), StageRun("train_spatial", "x") as run:
        raise RuntimeError("stage crashed")
    from mlflow.tracking import MlflowClient

    assert MlflowClient().get_run(run.run_id).info.status == "FAILED"


def test_flattening():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": "1", "a.c": "[1, 2]", "d": "None"}
    assert flatten_numbers({"P1": 3, "per_action": {"Walking": {"P1": 2.5}}, "name": "x", "ok": True}) == {
        "P1": 3.0,
        "per_action.Walking.P1": 2.5,
    }
