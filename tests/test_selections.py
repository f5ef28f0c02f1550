"""Which checkpoints an evaluation stage measures: the last epoch, and best-on-test unless it is the same weights."""

from __future__ import annotations

import shutil

from mlpgraph.checkpoints import network_entry, save_checkpoint
from mlpgraph.models import build_model
from mlpgraph.stage_runs import _relabelled, _selections
from mlpgraph.training import BEST, BEST_SELECTION, FINAL, FINAL_SELECTION


def _save(path, epoch):
    model = build_model("mlpgraph", hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8, num_layers=1)
    meta = {"selection": "x"} if epoch is None else {"selection": "x", "epoch": epoch}
    save_checkpoint(path, {"model": network_entry("mlpgraph", model)}, meta=meta)


def test_best_is_measured_only_when_it_is_another_epoch(tmp_path):
    _save(tmp_path / FINAL, 3)
    _save(tmp_path / BEST, 2)
    assert [(k, twin) for k, _, _, twin in _selections(tmp_path)] == [("last_epoch", None), ("best_on_test", None)]
    _save(tmp_path / BEST, 3)
    rows = list(_selections(tmp_path))
    assert [(k, s, twin) for k, s, _, twin in rows] == [
        ("last_epoch", FINAL_SELECTION, None),
        ("best_on_test", BEST_SELECTION, "last_epoch"),
    ]


def test_imported_checkpoints_compare_by_content(tmp_path):
    _save(tmp_path / FINAL, None)
    shutil.copyfile(tmp_path / FINAL, tmp_path / BEST)
    assert [twin for *_, twin in _selections(tmp_path)] == [None, "last_epoch"]
    _save(tmp_path / BEST, None)  # other random weights
    assert [twin for *_, twin in _selections(tmp_path)] == [None, None]


def test_relabelled_copies_figures_with_the_new_selection():
    figures = {"selection": "a", "P1": 1.0, "inner": {"selection": "a", "per_action": {"Walking": {"P1": 2.0}}}}
    copy = _relabelled(figures, "b")
    assert copy == {"selection": "b", "P1": 1.0, "inner": {"selection": "b", "per_action": {"Walking": {"P1": 2.0}}}}
    copy["inner"]["per_action"]["Walking"]["P1"] = 5.0
    assert figures["inner"]["per_action"]["Walking"]["P1"] == 2.0
