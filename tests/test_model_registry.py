"""The training stages' MLflow model: logged in pt2 format, registered per experiment, loaded back; never fatal."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from mlpgraph.checkpoints import network_entry, save_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.experiments import Experiment
from mlpgraph.export import EXAMPLE_ROWS, loggable_lifting_model
from mlpgraph.layouts import get_layout, root_relative
from mlpgraph.models import build_model
from mlpgraph.tracking import LOGGED_MODEL_NAME, StageRun, registered_model_name
from mlpgraph.training import FINAL
from mlpgraph.training_stage import TrainingOutputs, _log_final_model


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds); each test registers its own names."""
    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        from mlflow.tracking import MlflowClient

        MlflowClient().search_experiments()  # creates the tables
        yield folder


def _network(name: str, **args) -> torch.nn.Module:
    torch.manual_seed(3)
    model = build_model(name, **args)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _library_output(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The network's own eval forward, root-relative (what evaluation.predict returns without the flip test)."""
    with torch.inference_mode():
        return root_relative(model(x), get_layout("h36m16").root).numpy()


def _register(run: StageRun, model: torch.nn.Module, name: str, example: np.ndarray | None = None) -> str | None:
    module, example, metadata = loggable_lifting_model(model, example)
    return run.log_model(module, example, name, metadata)


@pytest.mark.parametrize(
    ("registry_name", "args"),
    [
        ("mlpgraph", {"frames": 9, "hid_dim": 16, "spatial_hid_dim": 16, "channel_hid_dim": 32, "num_layers": 2}),
        ("semgcn_nonlocal", {"hid_dim": 16, "num_blocks": 1}),
    ],
)
def test_final_model_is_registered_per_experiment_and_loads_back(store, registry_name, args):
    import mlflow
    from mlflow.tracking import MlflowClient

    model = _network(registry_name, **args)
    frames = args.get("frames", 1)
    example = np.random.default_rng(0).uniform(-1, 1, (5, frames, 16, 2)).astype(np.float32)
    experiment = f"{registry_name}_gt_tiny"
    name = registered_model_name("train_spatial", experiment)
    assert name == experiment
    with StageRun("train_spatial", experiment) as run:
        assert _register(run, model, name, example) is not None

    (version,) = MlflowClient().search_model_versions(f"name='{name}'")
    assert (int(version.version), version.run_id) == (1, run.run_id)
    info = mlflow.models.get_model_info(f"models:/{name}/1")
    assert info.name == LOGGED_MODEL_NAME
    assert tuple(info.signature.inputs.inputs[0].shape) == (-1, frames, 16, 2)
    assert tuple(info.signature.outputs.inputs[0].shape) == (-1, 16, 3)
    assert info.metadata["mlpgraph.layout"] == "h36m16" and info.metadata["mlpgraph.frames"] == str(frames)

    loaded = mlflow.pytorch.load_model(f"models:/{name}/1")
    for batch in (1, 7):  # the example had 2 rows: the batch dimension stays free
        x = torch.from_numpy(np.random.default_rng(batch).uniform(-1, 1, (batch, frames, 16, 2)).astype(np.float32))
        np.testing.assert_allclose(loaded(x).detach().numpy(), _library_output(model, x), atol=1e-5, rtol=0)


def test_a_second_run_adds_a_version(store):
    from mlflow.tracking import MlflowClient

    model = _network("mlpgraph", hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8, num_layers=1)
    run_ids = []
    for _ in range(2):
        with StageRun("train_spatial", "mlpgraph_gt_f1") as run:
            assert _register(run, model, "mlpgraph_gt_f1") is not None  # the default example
        run_ids.append(run.run_id)
    versions = sorted(MlflowClient().search_model_versions("name='mlpgraph_gt_f1'"), key=lambda v: int(v.version))
    assert [(int(v.version), v.run_id) for v in versions] == [(1, run_ids[0]), (2, run_ids[1])]


def _training_stage_case(store, name: str) -> tuple[Experiment, TrainingOutputs, torch.nn.Module, PoseArrays]:
    """A temporal experiment, its checkpoint folder (final.pt: a lifting network beside a refinement) and data."""
    args = {"frames": 3, "hid_dim": 8, "spatial_hid_dim": 8, "channel_hid_dim": 8, "num_layers": 1}
    experiment = Experiment(name, "mlpgraph", "gt", args)
    outputs = TrainingOutputs(store / name, store / f"{name}.json", store / f"{name}_curve.json")
    model = _network("mlpgraph", **args)
    networks = {"model": network_entry("mlpgraph", model), "refine": network_entry("refine", build_model("refine"))}
    save_checkpoint(outputs.models / FINAL, networks)
    poses_2d = np.random.default_rng(1).uniform(-1, 1, (6, 16, 2)).astype(np.float32)
    data = PoseArrays.from_numpy(poses_2d, np.zeros((6, 16, 3), np.float32), np.array([[0, 6]]))
    return experiment, outputs, model, data


def test_the_training_stage_registers_final_pt_with_training_windows_as_example(store):
    """train_refine's hook: final.pt's lifting network under ``EXP.train_refine``, two training windows as example."""
    import mlflow
    from mlflow.tracking import MlflowClient

    experiment, outputs, model, data = _training_stage_case(store, "mlpgraph_gt_f3_refine")
    with StageRun("train_refine", experiment.name) as run:
        _log_final_model(run, "train_refine", experiment, outputs, data)
    (version,) = MlflowClient().search_model_versions("name='mlpgraph_gt_f3_refine.train_refine'")
    assert version.run_id == run.run_id
    uri = f"models:/mlpgraph_gt_f3_refine.train_refine/{version.version}"
    assert tuple(mlflow.models.get_model_info(uri).signature.inputs.inputs[0].shape) == (-1, 3, 16, 2)
    windows = data.windows(torch.arange(6), experiment.pad)
    loaded = mlflow.pytorch.load_model(uri)
    np.testing.assert_allclose(loaded(windows).detach().numpy(), _library_output(model, windows), atol=1e-5, rtol=0)


def test_broken_store_does_not_raise(store, monkeypatch, caplog):
    (store / "not-a-dir").write_text("a file where a folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'not-a-dir' / 'mlflow.db'}")
    experiment, outputs, model, data = _training_stage_case(store, "broken")
    with (
        caplog.at_level(logging.WARNING, logger="mlpgraph.tracking"),
        StageRun("train_spatial", "broken", retries=2, backoff_s=0.01) as run,
    ):
        assert _register(run, model, "broken") is None
        _log_final_model(run, "train_spatial", experiment, outputs, data)
    assert run.run_id is None
    assert sum("tracking is off" in r.getMessage() for r in caplog.records) == 1


def test_a_model_that_cannot_be_logged_warns_and_the_run_goes_on(store, caplog):
    from mlflow.tracking import MlflowClient

    experiment, outputs, model, data = _training_stage_case(store, "unloggable")
    with pytest.raises(ValueError, match="the network takes"):
        loggable_lifting_model(model, np.zeros((2, 1, 16, 2), np.float32))  # a 1-frame window for a 3-frame network
    (outputs.models / FINAL).unlink()
    with caplog.at_level(logging.WARNING), StageRun("train_spatial", "unloggable", backoff_s=0.01) as run:
        _log_final_model(run, "train_spatial", experiment, outputs, data)  # final.pt is missing
        module, example, metadata = loggable_lifting_model(model, data.windows(torch.arange(2), 1).numpy())
        assert run.log_model(module, example[:, :1], "unloggable", metadata) is None  # the forward fails
        run.log_metrics({"P1": 50.0})
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("MLflow model not logged" in m for m in messages) == 1
    assert sum("MLflow log_model failed" in m and "the run goes on" in m for m in messages) == 1
    found = MlflowClient().get_run(run.run_id)
    assert found.info.status == "FINISHED" and found.data.metrics["P1"] == 50.0
    assert MlflowClient().search_model_versions("name='unloggable'") == []
    assert len(example) == EXAMPLE_ROWS
