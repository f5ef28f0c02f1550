"""Experiments and recipes resolved from params.yaml."""

from __future__ import annotations

import pytest

from mlpgraph.errors import UserInputError
from mlpgraph.experiments import load_experiment
from mlpgraph.params import load_params
from mlpgraph.training_stage import recipe_for
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
    hr = recipe_for(params, load_experiment(params, "mlpgraph_hr_f243_refine"), refine=True)
    assert not gt.detected and hr.detected
    assert hr.refine and hr.refine_mode == "joint" and hr.root_depth == "gt"
    assert gt.batch_size == 256 and gt.seed == 1 and gt.l1_weight == 0.01


def test_unknown_experiment(params):
    with pytest.raises(UserInputError, match="no experiment 'nothing'"):
        load_experiment(params, "nothing")
