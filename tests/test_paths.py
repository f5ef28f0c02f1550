"""The artifact layout of mlpgraph.paths is the one dvc.yaml spells out, stage by stage."""

from __future__ import annotations

import yaml

from mlpgraph.paths import ArtifactLayout
from mlpgraph.workflow import load_stage_table
from tests.conftest import ROOT


def test_dvc_yaml_writes_where_the_layout_says():
    layout = ArtifactLayout()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    data = params["data"]
    specs = {spec.name: spec for spec in load_stage_table(ROOT)}
    metrics = layout.metrics()

    def outs(name: str) -> set[str]:
        return set(specs[name].outs)

    assert outs("fetch") == {str(layout.raw())}
    for kp in data["keypoints"]:
        assert outs(f"preprocess@{kp}") == {str(layout.processed(data["name"], kp, data["layout"]))}
    assert outs("hard_pose_set") == {str(layout.hard_poses())}
    for name, entry in params["experiments"].items():
        processed = str(layout.processed(data["name"], entry["keypoints"], data["layout"]))
        trained = {str(layout.models(name)), str(metrics.train_summary(name)), str(metrics.train_curve(name))}
        assert outs(f"train_spatial@{name}") == trained
        assert outs(f"evaluate_h36m@{name}") == {str(metrics.h36m(name))}
        assert outs(f"evaluate_3dhp@{name}") == {str(metrics.dhp(name))}
        assert outs(f"hard_poses@{name}") == {str(metrics.hard(name))}
        assert outs(f"evaluate_real@{name}") == {str(metrics.real(name))}
        assert outs(f"summarise@{name}") == {str(metrics.summary(name))}
        for family in ("train_spatial", "evaluate_h36m", "hard_poses"):
            stage = specs[f"{family}@{name}"]
            assert processed in stage.deps and f"--processed {processed}" in stage.cmd
        assert layout.checkpoint(name).parent == layout.models(name)
    for name in params["refinement"]:
        refine = {str(layout.models(name, "refine")), str(metrics.train_summary(name, True))}
        assert outs(f"train_refine@{name}") == refine | {str(metrics.train_curve(name, True))}
        assert outs(f"evaluate_refine@{name}") == {str(metrics.h36m(name, refine=True))}
        assert outs(f"evaluate_real_refine@{name}") == {str(metrics.real(name, refine=True))}
    assert outs("report") == {
        str(metrics.results()),
        str(metrics.results_html()),
        str(metrics.plots()),
        str(metrics.demos()),
    }
