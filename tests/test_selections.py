"""Which checkpoints an evaluation stage measures: the last epoch, and best-on-test unless it is the same weights."""

from __future__ import annotations

import shutil

from mlpgraph.checkpoints import network_entry, save_checkpoint
from mlpgraph.evaluation_stage import relabelled, selections
from mlpgraph.models import build_model
from mlpgraph.results import RefinedSelection
from mlpgraph.training import BEST, BEST_SELECTION, FINAL, FINAL_SELECTION


def _save(path, epoch):
    model = build_model("mlpgraph", hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8, num_layers=1)
    meta = {"selection": "x"} if epoch is None else {"selection": "x", "epoch": epoch}
    save_checkpoint(path, {"model": network_entry("mlpgraph", model)}, meta=meta)


def test_best_is_measured_only_when_it_is_another_epoch(tmp_path):
    _save(tmp_path / FINAL, 3)
    _save(tmp_path / BEST, 2)
    assert [(s.key, s.twin) for s in selections(tmp_path)] == [("last_epoch", None), ("best_on_test", None)]
    _save(tmp_path / BEST, 3)
    rows = list(selections(tmp_path))
    assert [(s.key, s.label, s.twin) for s in rows] == [
        ("last_epoch", FINAL_SELECTION, None),
        ("best_on_test", BEST_SELECTION, "last_epoch"),
    ]


def test_imported_checkpoints_compare_by_content(tmp_path):
    _save(tmp_path / FINAL, None)
    shutil.copyfile(tmp_path / FINAL, tmp_path / BEST)
    assert [s.twin for s in selections(tmp_path)] == [None, "last_epoch"]
    _save(tmp_path / BEST, None)  # other random weights
    assert [s.twin for s in selections(tmp_path)] == [None, None]


def test_relabelled_copies_figures_with_the_new_selection():
    figures = {"selection": "a", "P1": 1.0, "P2": 2.0, "P1_sample_mean": 1.0, "P2_sample_mean": 2.0}
    walking = {"P1": 2.0, "P2": 1.0, "num_samples": 3}
    figures |= {"num_samples": 3, "per_joint": {"Hip": 0.5}, "per_action": {"Walking": walking}}
    refined = RefinedSelection.from_dict(
        {"selection": "a", "without_refinement": figures}
        | {f"refined_{d}_root": {**figures, "note": d} for d in ("gt", "estimated")}
    )
    copy = relabelled(refined, "b")
    assert copy.selection == "b" and copy.refined_gt_root.selection == "b" and copy.without_refinement.selection == "b"
    assert copy.refined_gt_root.note == "gt" and copy.without_refinement.per_action["Walking"].P1 == 2.0
    assert refined.selection == "a" and refined.refined_estimated_root.selection == "a"
