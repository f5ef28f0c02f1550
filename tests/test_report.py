"""The report stage: results.md and plots from fabricated metrics files with known numbers."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from mlpgraph.data.actions import ACTION_FAMILIES
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout
from mlpgraph.report import PAPER_FIGURES, build_report
from mlpgraph.results import (
    ActionFigures,
    BatchTiming,
    ClipFigures,
    DataDescription,
    DhpEvaluation,
    DhpFigures,
    DhpUnavailable,
    EpochRecord,
    ErrorPair,
    H36mEvaluation,
    H36mFigures,
    HardEvaluation,
    HardFigures,
    InferenceTime,
    PckFigures,
    RealBaseline,
    RealFigures,
    RealMocapEvaluation,
    RealRefinedSelection,
    RealRefineEvaluation,
    RefinedSelection,
    RefineEvaluation,
    Skipped,
    TrainingCurve,
    TrainSummary,
    write_record,
)
from tests.conftest import ROOT, set_params, tool_env

BEST_SELECTION = "best on test (release rule)"
FINAL_SELECTION = "last epoch"

EXPERIMENTS: dict[str, dict[str, Any]] = {
    "mlpgraph_gt_f1": {"model": "mlpgraph", "keypoints": "gt", "model_args": {}},
    "mlpgraph_gt_f1_graphagg": {"model": "mlpgraph", "keypoints": "gt", "model_args": {"aggregation": "graph"}},
    "mlpgraph_gt_f243_refine": {"model": "mlpgraph", "keypoints": "gt", "model_args": {"frames": 9}},
    "mlpgraph_hr_f243_refine": {"model": "mlpgraph", "keypoints": "hr", "model_args": {"frames": 9}},
    "semgcn_gt_f1": {"model": "semgcn_nonlocal", "keypoints": "gt", "model_args": {}},
    "hgcn_gt_f1": {"model": "hgcn", "keypoints": "gt", "model_args": {}},
    "wugcn_gt_f1": {"model": "wugcn", "keypoints": "gt", "model_args": {}},
    "modgcn_gt_f1": {"model": "modgcn", "keypoints": "gt", "model_args": {}},
}
REFINEMENT = {
    "mlpgraph_gt_f243_refine": {"mode": "joint", "root_depth": "gt"},
    "mlpgraph_hr_f243_refine": {"mode": "joint", "root_depth": "gt"},
}
PAPER_ROWS = {"mlpgraph_gt_f1", "semgcn_gt_f1", "hgcn_gt_f1", "wugcn_gt_f1", "modgcn_gt_f1"}


def make_params(names: Sequence[str] | None = None, layout: str = "h36m16") -> dict[str, Any]:
    """Preset-merged parameters with the named experiments (default: all) and their refinement entries."""
    names = list(EXPERIMENTS) if names is None else list(names)
    return {
        "preset": "tiny",
        "data": {
            "source": "synthetic",
            "name": "synthetic",
            "layout": layout,
            "scale": "tiny",
            "keypoints": ["gt", "hr"],
        },
        "experiments": {n: copy.deepcopy(EXPERIMENTS[n]) for n in names},
        "refinement": {n: dict(v) for n, v in REFINEMENT.items() if n in names},
    }


def _h36m_figures(base: float, selection: str, note: str | None = None) -> H36mFigures:
    """Per-action errors from ``base``, their mean as the protocol figure (as ``mlpgraph.evaluation`` gives it)."""
    per_action = {
        family: ActionFigures(P1=base + 0.37 * k + 0.013, P2=0.8 * base + 0.21 * k + 0.026, num_samples=100 + k)
        for k, family in enumerate(ACTION_FAMILIES)
    }
    p1 = sum(v.P1 for v in per_action.values()) / len(per_action)
    p2 = sum(v.P2 for v in per_action.values()) / len(per_action)
    return H36mFigures(
        selection=selection,
        P1=p1,
        P2=p2,
        P1_sample_mean=p1 + 0.5,
        P2_sample_mean=p2 + 0.5,
        num_samples=sum(v.num_samples for v in per_action.values()),
        per_joint={name: base * (0.5 + 0.1 * j) for j, name in enumerate(get_layout("h36m16").joint_names)},
        per_action=per_action,
        note=note,
    )


def _pck(base: float) -> PckFigures:
    return PckFigures(PCK=base, AUC=base / 2 + 0.04, num_samples=600)


def _dhp_figures(base: float, selection: str) -> DhpFigures:
    overall = _pck(base)
    return DhpFigures(
        selection=selection,
        PCK=overall.PCK,
        AUC=overall.AUC,
        num_samples=overall.num_samples,
        source_format="pstmo",
        flip_test=True,
        per_scene={"GS": _pck(base + 1.26), "noGS": _pck(base - 2.14), "outdoor": _pck(base - 5.33)},
        per_sequence={f"TS{i}": _pck(base + i) for i in range(1, 7)},
    )


def _inference_time(i: int) -> InferenceTime:
    median = 0.00123 * (i + 1)
    return InferenceTime(
        device="cpu",
        device_name="test CPU",
        torch_threads=2,
        batch={
            "1": BatchTiming(median_s=median, poses_per_s=1 / median, runs=20),
            "64": BatchTiming(median_s=0.01, poses_per_s=6400.0, runs=20),
        },
        path="plain",
    )


def _training(name: str, model: str, config: dict[str, Any], i: int, data: DataDescription) -> dict[str, Any]:
    """The training summary and curve of experiment number ``i`` (three epochs, the second best on test)."""
    base = 30.0 + 4.0 * i + 0.123
    summary = TrainSummary(
        experiment=name,
        model=model,
        model_config=config,
        parameters=12345 + 1000 * i,
        recipe={},
        data=data,
        epochs=3,
        seconds=12.5,
        last_epoch=EpochRecord(selection=FINAL_SELECTION, epoch=3, figures={"lr": 0.001, "loss": 0.05, "P1": base}),
        best_on_test=EpochRecord(
            selection=BEST_SELECTION, epoch=2, figures={"lr": 0.001, "loss": 0.06, "P1": base - 1.5}
        ),
        mlflow_run_id=f"{i:02d}" + "a" * 30,
    )
    history = tuple(
        EpochRecord(
            epoch=e, figures={"lr": 0.001, "loss": 0.2 / e, "loss_main": 0.2 / e, "P1": base + 10.0 / e, "P2": base}
        )
        for e in (1, 2, 3)
    )
    return {"train": summary, "curve": TrainingCurve(history=history)}


def _refinement(h36m: H36mEvaluation, train: TrainSummary, setting: dict[str, Any], base: float) -> dict[str, Any]:
    """The refinement evaluation and training summary of an experiment in ``refinement``."""
    selections = {
        key: RefinedSelection(
            selection=selection,
            without_refinement=_h36m_figures(base + 1.0 + shift, selection),
            refined_gt_root=_h36m_figures(base - 2.0 + shift, selection, note="oracle"),
            refined_estimated_root=_h36m_figures(base + 3.0 + shift, selection, note="estimated"),
        )
        for key, selection, shift in (("last_epoch", FINAL_SELECTION, 0.0), ("best_on_test", BEST_SELECTION, -1.0))
    }
    refine = RefineEvaluation(
        experiment=h36m.experiment,
        model=h36m.model,
        keypoints=h36m.keypoints,
        frames=h36m.frames,
        flip_test=h36m.flip_test,
        data=h36m.data,
        refinement=setting,
        **selections,
        mlflow_run_id="r" * 32,
    )
    train_refine = dataclasses.replace(
        train,
        refinement=setting,
        selection_metric="refined P1 on the test split, root depth from the ground truth",
        mlflow_run_id="t" * 32,
    )
    return {"refine": refine, "train_refine": train_refine}


def _dhp(name: str, model: str, i: int, data: DataDescription, available: bool) -> DhpEvaluation | DhpUnavailable:
    if not available:
        return DhpUnavailable(
            experiment=name, model=model, flip_test=True, reason="no MPI-INF-3DHP test file in data/raw"
        )
    return DhpEvaluation(
        experiment=name,
        model=model,
        flip_test=True,
        file="data_test_3dhp.npz",
        data=dataclasses.replace(data, fingerprint="e" * 64),  # the 3DHP file's SHA-256
        last_epoch=_dhp_figures(60.0 + i + 0.234, FINAL_SELECTION),
        best_on_test=_dhp_figures(61.0 + i, BEST_SELECTION),
        mlflow_run_id=f"{i:02d}" + "a" * 30,
    )


REAL_CLIPS = {
    "CMU_S01 / PlaygroundJumps 01_01": 1146,
    "CMU_S11 / SoccerKick 11_01": 249,
    "EyesJapan_S1 / Sample 1": 1237,
}
REAL_BASELINE = (110.456, 80.321)


def _real_clips(p1: float, p2: float) -> dict[str, ClipFigures]:
    return {
        name: ClipFigures(P1=p1 + 5.0 * k, P2=p2 + 2.0 * k, frames=frames, num_samples=4 * frames)
        for k, (name, frames) in enumerate(REAL_CLIPS.items())
    }


def _real(name: str, spec: Mapping[str, Any], i: int, data: DataDescription) -> RealMocapEvaluation:
    """The real-mocap record of experiment number ``i``: P1 100.234 + 3 i mm (the baseline's: 110.456)."""
    samples = 4 * sum(REAL_CLIPS.values())

    def figures(p1: float, p2: float, selection: str) -> RealFigures:
        return RealFigures(selection=selection, P1=p1, P2=p2, num_samples=samples, per_clip=_real_clips(p1, p2))

    return RealMocapEvaluation(
        experiment=name,
        model=spec["model"],
        keypoints=spec["keypoints"],
        frames=int(spec["model_args"].get("frames", 1)),
        flip_test=True,
        file="tests/data/real_mocap/real_mocap_A.npz",
        sha256="d" * 64,
        layout=data.layout,
        cameras="Human3.6M cameras 54138969, 55011271, 58860488, 60457274 as calibrated for S9",
        input_2d=f"2D of {spec['keypoints']}",
        trained_on=data,
        clip_mean_pose=RealBaseline(
            definition="the clip's own mean pose",
            P1=REAL_BASELINE[0],
            P2=REAL_BASELINE[1],
            num_samples=samples,
            per_clip=_real_clips(*REAL_BASELINE),
        ),
        last_epoch=figures(100.234 + 3.0 * i, 70.123 + 2.0 * i, FINAL_SELECTION),
        best_on_test=figures(99.0 + 3.0 * i, 69.0 + 2.0 * i, BEST_SELECTION),
        mlflow_run_id=f"{i:02d}" + "c" * 30,
    )


# The refinement run's real P1 beside the experiment's own: without refinement, refined (gt / estimated root depth).
REAL_REFINED_SHIFTS = {"without_refinement": 0.5, "refined_gt_root": -20.0, "refined_estimated_root": 40.0}


def _real_refinement(real: RealMocapEvaluation, setting: dict[str, Any]) -> RealRefineEvaluation:
    """The refinement run's real-mocap record: each variant's P1 the experiment's shifted by REAL_REFINED_SHIFTS."""

    def figures(base: RealFigures, shift: float, note: str | None) -> RealFigures:
        per_clip = _real_clips(base.P1 + shift, base.P2 + shift / 2)
        return dataclasses.replace(base, P1=base.P1 + shift, P2=base.P2 + shift / 2, per_clip=per_clip, note=note)

    def selection(base: RealFigures) -> RealRefinedSelection:
        variants = {key: figures(base, shift, None if key == "without_refinement" else key)
                    for key, shift in REAL_REFINED_SHIFTS.items()}  # fmt: skip
        return RealRefinedSelection(selection=base.selection, **variants)

    header = {f.name: getattr(real, f.name) for f in dataclasses.fields(real)}
    header.update(last_epoch=selection(real.last_epoch), best_on_test=selection(real.best_on_test))
    return RealRefineEvaluation(**header, refinement=setting)


def _experiment_files(
    name: str, spec: Mapping[str, Any], i: int, data: DataDescription, dhp_available: bool
) -> dict[str, Any]:
    """Every metrics record of experiment number ``i`` but the refinement's, with known numbers."""
    frames = int(spec["model_args"].get("frames", 1))
    config = {"layout": data.layout, "frames": frames, **spec["model_args"]}
    if spec["model"] == "mlpgraph":
        config.setdefault("aggregation", "diagonal")
    base = 30.0 + 4.0 * i + 0.123
    run_id = f"{i:02d}" + "a" * 30
    h36m = H36mEvaluation(
        experiment=name,
        model=spec["model"],
        keypoints=spec["keypoints"],
        frames=frames,
        flip_test=True,
        data=data,
        mean_pose_baseline=ErrorPair(P1=171.234, P2=120.456),
        last_epoch=_h36m_figures(base, FINAL_SELECTION),
        best_on_test=_h36m_figures(base - 1.5, BEST_SELECTION),
        parameters=12345 + 1000 * i,
        model_config=config,
        inference_time=_inference_time(i),
        mlflow_run_id=run_id,
    )
    hard = HardEvaluation(
        experiment=name,
        model=spec["model"],
        flip_test=True,
        source="derived",
        data=data,
        last_epoch=HardFigures(selection=FINAL_SELECTION, P1=base + 20.456, P2=base + 10.321, num_samples=48),
        best_on_test=HardFigures(selection=BEST_SELECTION, P1=base + 19.0, P2=base + 9.0, num_samples=48),
        mlflow_run_id=run_id,
    )
    return {
        "h36m": h36m,
        "hard": hard,
        **_training(name, spec["model"], config, i, data),
        "3dhp": _dhp(name, spec["model"], i, data, dhp_available),
        "real": _real(name, spec, i, data),
    }


FILES = {
    "h36m": "h36m/{}.json",
    "hard": "hard/{}.json",
    "train": "train/{}.json",
    "curve": "train/{}_curve.json",
    "3dhp": "3dhp/{}.json",
    "real": "real/{}.json",
    "refine": "h36m/{}_refine.json",
    "train_refine": "train/{}_refine.json",
    "real_refine": "real/{}_refine.json",
}


def write_metrics(
    root: Path, params: Mapping[str, Any], unavailable_3dhp: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """Metrics files written through ``mlpgraph.results``' records, with known numbers.

    Returns ``{experiment: {"h36m", "3dhp", "hard", "real", "train", "curve", ["refine", "train_refine",
    "real_refine"]}}``, the records.
    """
    data = DataDescription(
        source="synthetic",
        name="synthetic",
        layout=params["data"]["layout"],
        preset=params["preset"],
        fingerprint="f" * 64,
        scale="tiny",
        label="synthetic Human3.6M (tiny)",
    )
    written: dict[str, dict[str, Any]] = {}
    for i, (name, spec) in enumerate(params["experiments"].items()):
        files = _experiment_files(name, spec, i, data, name not in unavailable_3dhp)
        if name in params["refinement"]:
            base = 30.0 + 4.0 * i + 0.123
            files.update(_refinement(files["h36m"], files["train"], params["refinement"][name], base))
            files["real_refine"] = _real_refinement(files["real"], params["refinement"][name])
        for key, content in files.items():
            path = root / FILES[key].format(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_record(path, content)
        written[name] = files
    return written


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` (any level) up to the next heading of the same or a higher level."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading and line.startswith("#"))
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= level
        ),
        len(lines),
    )
    return "\n".join(lines[start + 1 : end])


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``text`` as a list of {header: cell} rows."""
    found: list[list[dict[str, str]]] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            header = [c.strip() for c in block[0].strip("|").split("|")]
            rows = [[c.strip() for c in row.strip("|").split("|")] for row in block[2:]]
            found.append([dict(zip(header, row, strict=True)) for row in rows])
            block = []
    return found


def by(rows: list[dict[str, str]], column: str) -> dict[str, dict[str, str]]:
    return {row[column].strip("`*"): row for row in rows}


def one(value: float) -> str:
    return f"{value:.1f}"


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """The report of all eight experiments (3DHP unavailable for one of them)."""
    root = tmp_path_factory.mktemp("report")
    params = make_params()
    written = write_metrics(root / "metrics", params, unavailable_3dhp=("wugcn_gt_f1",))
    summary = build_report(params, root / "metrics", root / "metrics" / "results.md", root / "metrics" / "plots")
    return root, written, summary, (root / "metrics" / "results.md").read_text()


def test_main_table_numbers_are_the_files_and_paper_only_on_matching_rows(full_report):
    _, written, summary, markdown = full_report
    assert "synthetic Human3.6M (tiny)" in markdown.split("##")[0]
    assert "preset `tiny`" in markdown
    (rows,) = tables(section(markdown, "Human3.6M: the paper's comparison"))
    rows_by = by(rows, "experiment")
    assert list(rows_by) == list(EXPERIMENTS)
    for name, files in written.items():
        h = files["h36m"]
        row = rows_by[name]
        assert row["2D"] == h.keypoints and row["frames"] == str(h.frames)
        assert row["parameters"] == f"{h.parameters:,}" and "," in row["parameters"]
        assert row["P1 (mm), last epoch"] == one(h.last_epoch.P1)
        assert row["P2 (mm), last epoch"] == one(h.last_epoch.P2)
        assert row["P1 / P2 (mm), best on test"] == f"{one(h.best_on_test.P1)} / {one(h.best_on_test.P2)}"
        assert row["inference time, batch 1 (ms)"] == f"{h.inference_time.batch['1'].median_s * 1000:.2f}"
        p1 = [e.figures["P1"] for e in files["curve"].history]  # epochs 1, 2, 3: base + 10 / epoch
        assert row["test P1 change, last 2 epochs"] == f"{(p1[0] - p1[2]) / p1[2] * 100:.1f} % (still changing)"
        paper = PAPER_FIGURES.get(h.model)
        if name in PAPER_ROWS:
            assert row["paper P1 (mm)"] == f"{paper.p1:g}" and row["paper P2 (mm)"] == f"{paper.p2:g}"
            assert row["paper infer. time"] == f"{paper.inference_s:g} s"
        else:
            assert row["paper P1 (mm)"] == row["paper P2 (mm)"] == row["paper infer. time"] == "—"
        assert h.mlflow_run_id in markdown
    assert rows_by["mlpgraph_gt_f1"]["paper P1 (mm)"] == "36.34"
    assert rows_by["semgcn_gt_f1"]["Method"] == "SemGCN (non-local)"
    assert [r["experiment"] for r in summary["tables"]["main"]] == list(EXPERIMENTS)


def test_paper_columns_need_the_16_joint_layout_and_the_papers_model(tmp_path):
    params = make_params(["mlpgraph_gt_f1", "semgcn_gt_f1"], layout="h36m17")
    write_metrics(tmp_path / "m", params)
    summary = build_report(params, tmp_path / "m", tmp_path / "r.md", tmp_path / "p")
    assert all(r["paper_p1"] is None for r in summary["tables"]["main"])
    params = make_params(["semgcn_gt_f1"])
    params["experiments"]["semgcn_gt_f1"]["model"] = "semgcn"  # plain SemGCN is not the table's non-local one
    write_metrics(tmp_path / "m2", params)
    summary = build_report(params, tmp_path / "m2", tmp_path / "r2.md", tmp_path / "p2")
    assert summary["tables"]["main"][0]["paper_p1"] is None


def test_per_action_tables(full_report):
    _, written, _, markdown = full_report
    p1_table, p2_table = tables(section(markdown, "Human3.6M per action"))
    for pick, table in ((lambda f: f.P1, p1_table), (lambda f: f.P2, p2_table)):
        rows = by(table, "Action")
        assert list(rows) == [*ACTION_FAMILIES, "Mean"]
        for name, files in written.items():
            figures = files["h36m"].last_epoch
            for family in ACTION_FAMILIES:
                assert rows[family][f"`{name}`"] == one(pick(figures.per_action[family]))
            assert rows["Mean"][f"`{name}`"] == f"**{one(pick(figures))}**"


def test_3dhp_overall_per_scene_and_unavailable(full_report):
    _, written, summary, markdown = full_report
    text = section(markdown, "MPI-INF-3DHP")
    overall, per_sequence = tables(text)
    rows = by(overall, "experiment")
    assert "wugcn_gt_f1" not in rows
    assert "`wugcn_gt_f1`: not available (no MPI-INF-3DHP test file in data/raw)" in text
    for name, files in written.items():
        if name == "wugcn_gt_f1":
            continue
        figures = files["3dhp"].last_epoch
        assert rows[name]["PCK (%)"] == one(figures.PCK) and rows[name]["AUC (%)"] == one(figures.AUC)
        for scene, label in (("GS", "GS (TS1-2)"), ("noGS", "noGS (TS3-4)"), ("outdoor", "outdoor (TS5-6)")):
            assert rows[name][f"{label} PCK"] == one(figures.per_scene[scene].PCK)
            assert rows[name][f"{label} AUC"] == one(figures.per_scene[scene].AUC)
        assert by(per_sequence, "experiment")[name]["TS3 PCK"] == one(figures.per_sequence["TS3"].PCK)
    assert [r["available"] for r in summary["tables"]["3dhp"]].count(False) == 1


def test_hard_poses_and_mean_pose(full_report):
    _, written, _, markdown = full_report
    (hard,) = tables(section(markdown, "Hard poses"))
    rows = by(hard, "experiment")
    for name, files in written.items():
        assert rows[name]["P1 (mm), last epoch"] == one(files["hard"].last_epoch.P1)
        assert rows[name]["P2 (mm), last epoch"] == one(files["hard"].last_epoch.P2)
        assert rows[name]["poses"] == "48"
    (mean,) = tables(section(markdown, "Mean-pose baseline"))
    assert mean[0]["P1 (mm)"] == "171.2" and mean[0]["P2 (mm)"] == "120.5"
    assert all(f"`{name}`" in mean[0]["experiments"] for name in written)
    assert "not better than the mean pose" not in markdown


REAL_HEADING = "Real people: real motion capture through the Human3.6M cameras"


def test_real_people_table_has_every_model_the_baseline_and_the_synthetic_p1(full_report):
    _, written, summary, markdown = full_report
    text = section(markdown, REAL_HEADING)
    assert "**Real people, not synthetic:**" in text and "`tests/data/real_mocap/real_mocap_A.npz`" in text
    assert "as calibrated for S9" in text and "CMU_S11 / SoccerKick 11_01 (249 frames)" in text
    (table,) = tables(text)
    assert len(table) == len(EXPERIMENTS) + 3 * len(REFINEMENT) + 1
    rows = {row["experiment"].strip("`"): row for row in table if "refinement" not in row["Method"]}
    for name, files in written.items():
        real, row = files["real"], rows[name]
        assert row["real P1 (mm), last epoch"] == one(real.last_epoch.P1)
        assert row["real P2 (mm), last epoch"] == one(real.last_epoch.P2)
        assert row["real P1 / P2 (mm), best on test"] == f"{one(real.best_on_test.P1)} / {one(real.best_on_test.P2)}"
        assert row["CMU_S11 / SoccerKick 11_01 P1"] == one(real.last_epoch.per_clip["CMU_S11 / SoccerKick 11_01"].P1)
        assert row["synthetic test P1 (mm), last epoch"] == one(files["h36m"].last_epoch.P1)
        assert row["real / synthetic P1"] == f"{real.last_epoch.P1 / files['h36m'].last_epoch.P1:.1f}x"
        assert f"- 2D `{real.keypoints}`: 2D of {real.keypoints}." in text
    baseline = table[-1]
    assert baseline["Method"] == "**clip mean pose (oracle baseline)**" and baseline["experiment"] == "—"
    assert baseline["real P1 (mm), last epoch"] == "110.5" and baseline["real P2 (mm), last epoch"] == "80.3"
    assert baseline["EyesJapan_S1 / Sample 1 P1"] == one(REAL_BASELINE[0] + 10.0)
    # P1 100.234 + 3 i: experiments 4..7 are at or above the baseline's 110.456, and so are the refined
    # rows with the estimated root depth (+40 mm); with the oracle root depth (-20 mm) they are not.
    estimated = [f"`{name}` + refinement (estimated root depth)" for name in REFINEMENT]
    worse = ", ".join([*estimated, *(f"`{name}`" for i, name in enumerate(EXPERIMENTS) if i >= 4)])
    assert f"not better than the clip's own mean pose on real motion capture: {worse}." in text
    models = summary["tables"]["real"]["models"]
    assert [r["experiment"] for r in models if r["variant"] is None] == list(EXPERIMENTS)
    assert summary["tables"]["real"]["baselines"][0]["experiments"] == list(EXPERIMENTS)
    assert markdown.index(REAL_HEADING) < markdown.index("## Human3.6M per action")
    (provenance,) = tables(section(markdown, "Provenance"))
    assert by(provenance, "experiment")["semgcn_gt_f1"]["evaluate_real"] == f"`04{'c' * 30}`"


def test_real_people_table_has_the_refinement_runs_rows(full_report):
    _, written, _, markdown = full_report
    text = section(markdown, REAL_HEADING)
    (table,) = tables(text)
    assert "Rows naming the refinement" in text and "an oracle" in text
    for name in REFINEMENT:
        real, refine = written[name]["real_refine"], written[name]["refine"]
        rows = [row for row in table if row["experiment"] == f"`{name}`"]
        methods = [row["Method"] for row in rows]
        assert methods == [
            "MLP-Graph",
            "MLP-Graph (refinement run, without refinement)",
            "MLP-Graph + refinement (gt root depth, oracle)",
            "MLP-Graph + refinement (estimated root depth)",
        ]
        for row, (key, shift) in zip(rows[1:], REAL_REFINED_SHIFTS.items(), strict=True):
            last, best = getattr(real.last_epoch, key), getattr(real.best_on_test, key)
            assert row["real P1 (mm), last epoch"] == one(last.P1) == one(written[name]["real"].last_epoch.P1 + shift)
            assert row["real P2 (mm), last epoch"] == one(last.P2)
            assert row["real P1 / P2 (mm), best on test"] == f"{one(best.P1)} / {one(best.P2)}"
            assert row["EyesJapan_S1 / Sample 1 P1"] == one(last.per_clip["EyesJapan_S1 / Sample 1"].P1)
            synthetic = getattr(refine.last_epoch, key).P1
            assert row["synthetic test P1 (mm), last epoch"] == one(synthetic)
            assert row["real / synthetic P1"] == f"{last.P1 / synthetic:.1f}x"


def test_a_missing_real_mocap_file_is_one_line_error_naming_it(tmp_path):
    params = make_params(["mlpgraph_gt_f1"])
    write_metrics(tmp_path / "metrics", params)
    missing = tmp_path / "metrics" / "real" / "mlpgraph_gt_f1.json"
    missing.unlink()
    with pytest.raises(UserInputError) as info:
        build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_ablations_with_all_experiments(full_report):
    _, written, summary, markdown = full_report
    ablations = summary["tables"]["ablations"]
    assert set(ablations) == {"aggregation", "refinement", "selection", "temporal"}
    (aggregation,) = tables(section(markdown, "Aggregation: diagonal (as released) vs graph"))
    rows = by(aggregation, "experiment")
    assert set(rows) == {"mlpgraph_gt_f1", "mlpgraph_gt_f1_graphagg"}
    assert rows["mlpgraph_gt_f1_graphagg"]["aggregation"] == "graph"
    assert rows["mlpgraph_gt_f1"]["aggregation"] == "diagonal"
    assert rows["mlpgraph_gt_f1"]["P1 (mm)"] == one(written["mlpgraph_gt_f1"]["h36m"].last_epoch.P1)

    refinement = section(markdown, "Refinement: without, with ground-truth (oracle) and with estimated root depth")
    gt_table, hr_table = tables(refinement)
    doc = written["mlpgraph_gt_f243_refine"]["refine"]
    rows = by(gt_table, "variant")
    assert rows["refined, ground-truth root depth (oracle)"]["P1 (mm), last epoch"] == one(
        doc.last_epoch.refined_gt_root.P1
    )
    assert rows["refined, estimated root depth"]["P2 (mm), last epoch"] == one(
        doc.last_epoch.refined_estimated_root.P2
    )
    plain = doc.best_on_test.without_refinement
    assert rows["refinement run, without refinement"]["P1 / P2 (mm), best on test"] == (
        f"{one(plain.P1)} / {one(plain.P2)}"
    )
    assert rows["lifting network trained alone (`train_spatial`)"]["P1 (mm), last epoch"] == one(
        written["mlpgraph_gt_f243_refine"]["h36m"].last_epoch.P1
    )
    assert len(hr_table) == 4

    (selection,) = tables(section(markdown, "Last epoch vs best on test"))
    assert len(selection) == len(EXPERIMENTS) + 2
    row = by(selection, "experiment")["modgcn_gt_f1"]
    h = written["modgcn_gt_f1"]["h36m"]
    assert row["last epoch"] == "3" and row["best epoch"] == "2"
    assert row["P1 gain (mm)"] == one(h.last_epoch.P1 - h.best_on_test.P1)

    temporal_text = section(markdown, "1 frame vs temporal (MLP-Graph)")
    (temporal,) = tables(temporal_text)
    assert [(r["experiment"], r["frames"]) for r in temporal] == [
        ("`mlpgraph_gt_f1`", "1"),
        ("`mlpgraph_gt_f243_refine`", "9"),
    ]
    assert "`gt` = ground-truth 2D" in temporal_text
    assert "Not shown" not in section(markdown, "Ablations")


def test_ablations_absent_without_their_experiments(tmp_path):
    params = make_params(["mlpgraph_gt_f1", "semgcn_gt_f1"])
    write_metrics(tmp_path / "metrics", params)
    summary = build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")
    markdown = (tmp_path / "results.md").read_text()
    assert set(summary["tables"]["ablations"]) == {"selection"}
    for heading in ("Aggregation", "Refinement", "1 frame vs temporal"):
        assert f"### {heading}" not in markdown
    assert "### Last epoch vs best on test" in markdown
    assert "Not shown, for want of experiments: aggregation" in markdown


def test_a_failing_plot_leaves_the_earlier_report_and_plots(tmp_path, monkeypatch):
    """The report and its plots folder are published together: a failure midway keeps the earlier ones."""
    from mlpgraph.outputs import MARKER
    from mlpgraph.report import plots

    params = make_params(["mlpgraph_gt_f1"])
    write_metrics(tmp_path / "metrics", params)
    build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")
    earlier = {p.name: p.read_bytes() for p in (tmp_path / "plots").iterdir()} | {
        "results.md": (tmp_path / "results.md").read_bytes()
    }
    assert MARKER in earlier and "h36m_p1_per_action.png" in earlier

    def broken(*args):
        raise RuntimeError("matplotlib crashed")

    monkeypatch.setattr(plots, "plot_curves", broken)  # drawn after the per-action plot was written
    with pytest.raises(RuntimeError, match="matplotlib crashed"):
        build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")
    after = {p.name: p.read_bytes() for p in (tmp_path / "plots").iterdir()} | {
        "results.md": (tmp_path / "results.md").read_bytes()
    }
    assert after == earlier and sorted(p.name for p in tmp_path.iterdir()) == ["metrics", "plots", "results.md"]


def test_missing_file_is_one_line_error_naming_it(tmp_path):
    params = make_params(["mlpgraph_gt_f243_refine"])
    write_metrics(tmp_path / "metrics", params)
    missing = tmp_path / "metrics" / "h36m" / "mlpgraph_gt_f243_refine_refine.json"
    missing.unlink()
    with pytest.raises(UserInputError) as info:
        build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")
    assert str(missing) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "results.md").exists()
    missing.write_text("{not json")
    with pytest.raises(UserInputError, match="invalid JSON"):
        build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")


def test_plots_are_valid_pngs(full_report):
    root, _, summary, markdown = full_report
    names = {Path(p).name for p in summary["plots"]}
    assert names == {
        "h36m_p1_per_action.png",
        "training_curves.png",
        "mlpgraph_p1_vs_frames.png",
        "3dhp_pck_per_scene.png",
        "h36m_p1_per_joint.png",
    }
    assert not summary["missing_plots"]
    for path in map(Path, summary["plots"]):
        assert path.parent == root / "metrics" / "plots"
        assert path.stat().st_size > 20_000
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            width, height = image.size
            assert 900 <= width <= 4000 and 500 <= height <= 2000
        assert f"](plots/{path.name})" in markdown
    assert not list((root / "metrics" / "plots").glob(".tmp-*"))


def _report_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    outputs = ("--metrics", "metrics", "--out", "metrics/results.md", "--plots", "metrics/plots")
    outputs += ("--html", "metrics/results.html")
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "report.py"), *args, *outputs],
        cwd=cwd,
        env=tool_env(),
        capture_output=True,
        text=True,
    )


def _params_file(folder: Path, names: Sequence[str]) -> None:
    """The repository's ``params.yaml`` and presets in ``folder``: preset tiny, only the experiments ``names``."""
    shutil.copytree(ROOT / "configs", folder / "configs")
    shutil.copy2(ROOT / "params.yaml", folder / "params.yaml")
    experiments = yaml.safe_load((folder / "params.yaml").read_text())["experiments"]
    set_params(folder, preset="tiny", experiments={name: experiments[name] for name in names}, refinement={})


def test_cli_user_error_is_one_line_exit_2_and_success(tmp_path):
    params = make_params(["mlpgraph_gt_f1"])
    _params_file(tmp_path, ["mlpgraph_gt_f1"])
    proc = _report_cli("--params", "params.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    command, _, message = proc.stderr.partition(": error: ")
    assert command.endswith("report") and message.startswith("metrics/h36m/mlpgraph_gt_f1.json: metrics file not found")
    write_metrics(tmp_path / "metrics", params)
    proc = _report_cli("--params", "params.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "metrics" / "results.md").is_file()
    assert (tmp_path / "metrics" / "plots" / "h36m_p1_per_action.png").is_file()
    page = (tmp_path / "metrics" / "results.html").read_text()
    tables = (tmp_path / "metrics" / "results.md").read_text().count("\n| ---")
    assert tables >= 3 and page.count("<table>") == tables
    assert '<img alt="h36m_p1_per_action" src="data:image/png;base64,' in page


def test_preset_only_entries_are_not_experiments(tmp_path):
    params = make_params(["semgcn_gt_f1"])
    params["experiments"]["hgcn_gt_f1"] = {"model_args": {"hid_dim": 16}}  # a preset's override, no experiment
    write_metrics(tmp_path / "metrics", make_params(["semgcn_gt_f1"]))
    summary = build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")
    assert [r["experiment"] for r in summary["tables"]["main"]] == ["semgcn_gt_f1"]
    with pytest.raises(UserInputError, match="defines no experiment"):
        only_overrides = {"experiments": {"x": {"model_args": {}}}}
        build_report(only_overrides, tmp_path / "metrics", tmp_path / "r.md", tmp_path / "p")


def test_skipped_pretrained_experiment_is_listed_not_tabled(tmp_path):
    """A pretrained experiment without its release folder: ``available: false`` files, a "Not evaluated" line."""
    params = make_params(["mlpgraph_gt_f1"])
    write_metrics(tmp_path / "metrics", params)
    reason = "experiments.pretrained_gt_f1.pretrained.dir is not set"
    params["experiments"]["pretrained_gt_f1"] = {
        "model": "mlpgraph",
        "keypoints": "gt",
        "pretrained": {"dir": None, "weights": "gt_f1.pth"},
    }
    for kind in ("h36m", "3dhp", "hard"):
        skipped = Skipped(experiment="pretrained_gt_f1", model="mlpgraph", reason=reason, mlflow_run_id=None)
        write_record(tmp_path / "metrics" / kind / "pretrained_gt_f1.json", skipped)
    summary = build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")
    markdown = (tmp_path / "results.md").read_text()
    assert summary["skipped"] == {"pretrained_gt_f1": reason}
    assert f"- `pretrained_gt_f1`: {reason}." in section(markdown, "Not evaluated")
    assert "pretrained_gt_f1" not in section(markdown, "Human3.6M: the paper's comparison")
    params["experiments"] = {"pretrained_gt_f1": params["experiments"]["pretrained_gt_f1"]}
    with pytest.raises(UserInputError, match="no experiment has figures"):
        build_report(params, tmp_path / "metrics", tmp_path / "results.md", tmp_path / "plots")


def test_a_strided_training_curve_is_named_where_the_report_explains_the_selections(tmp_path):
    params = make_params(["mlpgraph_gt_f1"])
    write_metrics(tmp_path / "m", params)
    build_report(params, tmp_path / "m", tmp_path / "r.md", tmp_path / "p")
    assert "th test frame)" not in (tmp_path / "r.md").read_text()
    params["evaluate"] = {"curve_frame_stride": 4}
    build_report(params, tmp_path / "m", tmp_path / "r2.md", tmp_path / "p2")
    intro = (tmp_path / "r2.md").read_text().split("##")[0]
    assert "lowest test P1 on the training curve (every 4th test frame)," in intro
    assert "relative to it (training curve (every 4th test frame))" in intro
