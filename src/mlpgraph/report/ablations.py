"""The ablation tables the experiments allow: aggregation, refinement, model selection, window length.

Each ablation compares experiments that differ in one respect only (read from the parameters'
``model_args`` and the evaluations' window lengths); one whose experiments are missing is named
in a closing "Not shown" line instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from mlpgraph.report.formatting import DASH, fmt_1, fmt_count, fmt_pair, markdown_table
from mlpgraph.report.loading import ExperimentMetrics
from mlpgraph.results import DhpEvaluation, TrainSummary

KEYPOINT_NAMES = {
    "gt": "ground-truth 2D",
    "hr": "detector-like 2D (HRNet-style; on synthetic data the gt 2D plus detector-like noise)",
    "cpn_ft_h36m_dbb": "CPN detections fine-tuned on Human3.6M",
}


def _same_except(run: ExperimentMetrics, key: str) -> str:
    """A key grouping experiments that differ only in ``model_args[key]``."""
    rest = {k: v for k, v in run.model_args.items() if k != key}
    return json.dumps([run.model, run.keypoints, rest], sort_keys=True, default=str)


def _aggregation_groups(runs: Sequence[ExperimentMetrics]) -> list[list[ExperimentMetrics]]:
    groups: dict[str, list[ExperimentMetrics]] = {}
    for run in runs:
        if run.aggregation is not None:
            groups.setdefault(_same_except(run, "aggregation"), []).append(run)
    return [g for g in groups.values() if len({r.aggregation for r in g}) > 1]


def _temporal_groups(runs: Sequence[ExperimentMetrics]) -> list[list[ExperimentMetrics]]:
    groups: dict[tuple[str, str | None], list[ExperimentMetrics]] = {}
    for run in runs:
        if run.model == "mlpgraph":
            groups.setdefault((run.keypoints, run.aggregation), []).append(run)
    return [sorted(g, key=lambda r: r.frames) for g in groups.values() if len({r.frames for r in g}) > 1]


def _dhp_pck(run: ExperimentMetrics) -> float:
    return float(run.dhp.last_epoch.PCK) if isinstance(run.dhp, DhpEvaluation) else math.nan


def aggregation(runs: Sequence[ExperimentMetrics]) -> tuple[list[dict[str, Any]], list[str]] | None:
    """Diagonal against graph aggregation (rows and Markdown); None without two such experiments."""
    groups = _aggregation_groups(runs)
    if not groups:
        return None
    rows = [
        {
            "experiment": r.name,
            "aggregation": r.aggregation,
            "parameters": r.h36m.parameters,
            "p1": float(r.h36m.last_epoch.P1),
            "p2": float(r.h36m.last_epoch.P2),
            "hard_p1": float(r.hard.last_epoch.P1),
            "dhp_pck": _dhp_pck(r),
        }
        for g in groups
        for r in g
    ]
    cells = [
        (
            f"`{r['experiment']}`",
            r["aggregation"],
            fmt_count(r["parameters"]),
            fmt_1(r["p1"]),
            fmt_1(r["p2"]),
            fmt_1(r["hard_p1"]),
            fmt_1(r["dhp_pck"]),
        )
        for r in rows
    ]
    lines = [
        "### Aggregation: diagonal (as released) vs graph",
        "",
        "Experiments that differ only in `model_args.aggregation`. `diagonal` is the released WJC "
        "(each joint multiplied by the adjacency's diagonal, no messages between joints); `graph` is "
        "the graph convolution the name promises. Last-epoch models.",
        "",
        *markdown_table(
            ("experiment", "aggregation", "parameters", "P1 (mm)", "P2 (mm)", "hard P1 (mm)", "3DHP PCK (%)"),
            cells,
            "llrrrrr",
        ),
        "",
    ]
    return rows, lines


def _refinement_table(run: ExperimentMetrics) -> tuple[list[dict[str, Any]], list[str]]:
    """One refined experiment: the lifting network alone, and the refinement run without and with refinement."""
    doc = run.refine
    assert doc is not None
    last, best = doc.last_epoch, doc.best_on_test
    variants = [
        ("lifting network trained alone (`train_spatial`)", run.h36m.last_epoch, run.h36m.best_on_test),
        ("refinement run, without refinement", last.without_refinement, best.without_refinement),
        ("refined, ground-truth root depth (oracle)", last.refined_gt_root, best.refined_gt_root),
        ("refined, estimated root depth", last.refined_estimated_root, best.refined_estimated_root),
    ]
    rows = [
        {
            "variant": label,
            "p1": float(at_last.P1),
            "p2": float(at_last.P2),
            "p1_best": float(at_best.P1),
            "p2_best": float(at_best.P2),
        }
        for label, at_last, at_best in variants
    ]
    described = ", ".join(f"{k} {v}" for k, v in doc.refinement.items())
    selection = run.train_refine.selection_metric if isinstance(run.train_refine, TrainSummary) else None
    cells = [
        (row["variant"], fmt_1(row["p1"]), fmt_1(row["p2"]), fmt_pair(row["p1_best"], row["p2_best"]))
        for row in rows
    ]
    lines = [
        f"`{run.name}` ({run.keypoints}, {run.frames} frames; refinement training: {described or DASH}):",
        "",
        *markdown_table(
            ("variant", "P1 (mm), last epoch", "P2 (mm), last epoch", "P1 / P2 (mm), best on test"), cells, "lrrr"
        ),
        "",
    ]
    if selection:
        lines += [f"Best on test of the refinement run selects on: {selection}.", ""]
    return rows, lines


def refinement(runs: Sequence[ExperimentMetrics]) -> tuple[dict[str, Any], list[str]] | None:
    """Without refinement, with oracle and with estimated root depth, per refined experiment; None without one."""
    refined = [r for r in runs if r.refine is not None]
    if not refined:
        return None
    summary: dict[str, Any] = {}
    lines = [
        "### Refinement: without, with ground-truth (oracle) and with estimated root depth",
        "",
        "The refinement module needs the absolute root depth. The release uses the ground truth "
        "(an oracle, unavailable at test time); `estimated` uses a depth estimated from the 2D and "
        "the training set's mean bone lengths. `train_spatial` is the lifting network trained alone "
        "(the row of the main table); the other rows are the refinement run's networks.",
        "",
    ]
    for run in refined:
        summary[run.name], table = _refinement_table(run)
        lines += table
    return summary, lines


def _selection_rows(runs: Sequence[ExperimentMetrics]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        h = r.h36m
        rows.append(
            {
                "experiment": r.name,
                "variant": "",
                "last_epoch": r.train.last_epoch.epoch,
                "best_epoch": r.train.best_on_test.epoch,
                "p1": float(h.last_epoch.P1),
                "p2": float(h.last_epoch.P2),
                "p1_best": float(h.best_on_test.P1),
                "p2_best": float(h.best_on_test.P2),
            }
        )
        if r.refine is not None and r.train_refine is not None:
            last, best = r.refine.last_epoch.refined_gt_root, r.refine.best_on_test.refined_gt_root
            rows.append(
                {
                    "experiment": r.name,
                    "variant": "refined, oracle root",
                    "last_epoch": r.train_refine.last_epoch.epoch,
                    "best_epoch": r.train_refine.best_on_test.epoch,
                    "p1": float(last.P1),
                    "p2": float(last.P2),
                    "p1_best": float(best.P1),
                    "p2_best": float(best.P2),
                }
            )
    return rows


def selection(runs: Sequence[ExperimentMetrics]) -> tuple[list[dict[str, Any]], list[str]]:
    """Last epoch against best on test: how much selecting on the test split flatters each experiment."""
    rows = _selection_rows(runs)
    cells = [
        (
            f"`{row['experiment']}`" + (f" ({row['variant']})" if row["variant"] else ""),
            str(row["last_epoch"]),
            fmt_pair(row["p1"], row["p2"]),
            str(row["best_epoch"]),
            fmt_pair(row["p1_best"], row["p2_best"]),
            fmt_1(row["p1"] - row["p1_best"]),
        )
        for row in rows
    ]
    lines = [
        "### Last epoch vs best on test",
        "",
        "How much the release's rule (keep the epoch with the lowest test P1) flatters each experiment.",
        "",
        *markdown_table(
            ("experiment", "last epoch", "P1 / P2 (mm)", "best epoch", "P1 / P2 (mm), best on test", "P1 gain (mm)"),
            cells,
            "lrrrrr",
        ),
        "",
    ]
    return rows, lines


def temporal(runs: Sequence[ExperimentMetrics]) -> tuple[list[dict[str, Any]], list[str]] | None:
    """MLP-Graph at different window lengths, same 2D source and aggregation; None without such experiments."""
    groups = _temporal_groups(runs)
    if not groups:
        return None
    rows = [
        {
            "experiment": r.name,
            "keypoints": r.keypoints,
            "frames": r.frames,
            "parameters": r.h36m.parameters,
            "p1": float(r.h36m.last_epoch.P1),
            "p2": float(r.h36m.last_epoch.P2),
            "hard_p1": float(r.hard.last_epoch.P1),
        }
        for g in groups
        for r in g
    ]
    cells = [
        (
            f"`{row['experiment']}`",
            row["keypoints"],
            str(row["frames"]),
            fmt_count(row["parameters"]),
            fmt_1(row["p1"]),
            fmt_1(row["p2"]),
            fmt_1(row["hard_p1"]),
        )
        for row in rows
    ]
    sources = dict.fromkeys(row["keypoints"] for row in rows)
    lines = [
        "### 1 frame vs temporal (MLP-Graph)",
        "",
        "MLP-Graph experiments with the same 2D source and aggregation and different window lengths "
        "(lifting network alone, last epoch; the widths may differ too, see the parameters). 2D source: "
        + "; ".join(f"`{k}` = {KEYPOINT_NAMES.get(k, k)}" for k in sources)
        + ".",
        "",
        *markdown_table(
            ("experiment", "2D", "frames", "parameters", "P1 (mm)", "P2 (mm)", "hard P1 (mm)"), cells, "llrrrrr"
        ),
        "",
    ]
    return rows, lines


def all_ablations(runs: Sequence[ExperimentMetrics]) -> tuple[dict[str, Any], list[str]]:
    """The ablations the experiments allow: their rows, and their Markdown.

    The rows are keyed by ablation (``aggregation``, ``refinement``, ``selection``, ``temporal``);
    an ablation without its experiments is left out and named in a closing "Not shown" line.
    """
    summary: dict[str, Any] = {}
    lines: list[str] = []
    absent: list[str] = []
    found = aggregation(runs)
    if found is None:
        absent.append("aggregation (no two experiments differ only in `model_args.aggregation`)")
    else:
        summary["aggregation"], more = found
        lines += more
    found = refinement(runs)
    if found is None:
        absent.append("refinement (no experiment in `refinement`)")
    else:
        summary["refinement"], more = found
        lines += more
    summary["selection"], more = selection(runs)
    lines += more
    found = temporal(runs)
    if found is None:
        absent.append("1 frame vs temporal (no MLP-Graph experiments with the same 2D source and different frames)")
    else:
        summary["temporal"], more = found
        lines += more
    if absent:
        lines += ["Not shown, for want of experiments: " + "; ".join(absent) + ".", ""]
    return summary, lines
