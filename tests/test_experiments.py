"""Experiments and recipes resolved from params.yaml."""

from __future__ import annotations

import pytest

from mlpgraph.errors import UserInputError
from mlpgraph.experiments import load_experiment
from mlpgraph.params import deep_merge, load_params
from mlpgraph.stage_runs import recipe_for
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


def test_paper_experiments_are_all_there(params):
    names = set(params["experiments"])
    assert {
        "mlpgraph_gt_f1",
        "mlpgraph_gt_f243_refine",
        "mlpgraph_hr_f243_refine",
        "semgcn_gt_f1",
        "hgcn_gt_f1",
        "wugcn_gt_f1",
        "modgcn_gt_f1",
        "mlpgraph_gt_f1_graphagg",
    } <= names
    for name in names:
        load_experiment(params, name)
    assert set(params["refinement"]) <= names


def test_recipes_follow_the_keypoint_kind(params):
    gt = recipe_for(params, load_experiment(params, "mlpgraph_gt_f1"))
    assert (gt.lr, gt.lr_decay, gt.large_decay_epoch, gt.detected) == (1e-3, 0.95, 5, False)
    hr = recipe_for(params, load_experiment(params, "mlpgraph_hr_f243_refine"), refine=True)
    assert (hr.lr, hr.lr_decay, hr.large_decay_epoch, hr.detected) == (5e-3, 0.90, 4, True)
    assert hr.refine and hr.refine_mode == "joint" and hr.root_depth == "gt"
    assert gt.batch_size == 256 and gt.seed == 1 and gt.l1_weight == 0.01


@pytest.mark.parametrize(("preset", "frames", "epochs"), [("full", 243, 50), ("small", 27, 2), ("tiny", 9, 2)])
def test_presets_scale_the_temporal_experiment(tmp_path, preset, frames, epochs):
    import shutil

    import yaml

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["preset"] = preset
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    merged = load_params(tmp_path / "params.yaml")
    assert load_experiment(merged, "mlpgraph_gt_f243_refine").frames == frames
    assert merged["train"]["epochs"] == epochs
    assert merged["data"]["scale"] == preset


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"experiments": {"x": {"model": "mlpgraph"}}}, "needs 'model' and 'keypoints'"),
        ({"experiments": {"x": {"model": "gcn", "keypoints": "gt"}}}, "is not one of"),
        ({"experiments": {"x": {"model": "mlpgraph", "keypoints": "cpn"}}}, "is not in data.keypoints"),
        ({"experiments": {"x": {"model": "mlpgraph", "keypoints": "gt", "model_args": {"frames": 4}}}}, "odd"),
    ],
)
def test_bad_experiments(params, change, message):
    with pytest.raises(UserInputError, match=message):
        load_experiment(deep_merge(params, change), "x")
    with pytest.raises(UserInputError, match="no experiment 'nothing'"):
        load_experiment(params, "nothing")
