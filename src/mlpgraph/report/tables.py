"""The report's result tables: each as rows of plain values (the summary) and as Markdown lines.

The main comparison, Human3.6M per action, MPI-INF-3DHP, the hard poses and the mean-pose
baseline; the ablations are in :mod:`mlpgraph.report.ablations`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mlpgraph.data.actions import ACTION_FAMILIES
from mlpgraph.report.formatting import DASH, finite, fmt_1, fmt_count, fmt_ms, fmt_pair, markdown_table
from mlpgraph.report.loading import ExperimentMetrics
from mlpgraph.results import ActionFigures, DhpEvaluation, PckFigures
from mlpgraph.results.training import CONVERGENCE_EPOCHS

# Scene kinds of MPI-INF-3DHP in report order (mlpgraph.evaluation.SCENES, kept here so that the
# report does not import torch).
SCENES = ("GS", "noGS", "outdoor")
SCENE_NAMES = {"GS": "GS (TS1-2)", "noGS": "noGS (TS3-4)", "outdoor": "outdoor (TS5-6)"}

HARD_SOURCES = {
    "derived": "derived from the test split: the test poses farthest from their nearest training pose",
    "user": "the user's hard-pose file",
}

MAIN_HEADER = (
    "Method",
    "experiment",
    "2D",
    "frames",
    "parameters",
    "P1 (mm), last epoch",
    "P2 (mm), last epoch",
    "P1 / P2 (mm), best on test",
    f"test P1 change, last {CONVERGENCE_EPOCHS} epochs",
    "inference time, batch 1 (ms)",
    "paper P1 (mm)",
    "paper P2 (mm)",
    "paper infer. time",
    "MLflow run",
)


def main_rows(runs: Sequence[ExperimentMetrics]) -> list[dict[str, Any]]:
    """The paper's comparison: each experiment's lifting network beside the paper's figures where they apply."""
    rows = []
    for run in runs:
        h = run.h36m
        paper = run.paper()
        batch1 = h.inference_time.batch.get("1")
        rows.append(
            {
                "method": run.method,
                "experiment": run.name,
                "keypoints": run.keypoints,
                "frames": run.frames,
                "parameters": h.parameters,
                "p1": float(h.last_epoch.P1),
                "p2": float(h.last_epoch.P2),
                "p1_best": float(h.best_on_test.P1),
                "p2_best": float(h.best_on_test.P2),
                "p1_change": run.curve.recent_change("P1"),
                "converged": run.curve.converged("P1"),
                "inference_batch1_s": float(batch1.median_s) if batch1 else math.nan,
                "paper_p1": paper.p1 if paper else None,
                "paper_p2": paper.p2 if paper else None,
                "paper_inference_s": paper.inference_s if paper else None,
                "mlflow_run_id": h.mlflow_run_id,
            }
        )
    return rows


def main_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """:func:`main_rows` as Markdown; the last column points into the provenance table."""

    def paper(value: float | None, unit: str = "") -> str:
        return DASH if value is None else f"{value:g}{unit}"

    cells = [
        (
            r["method"],
            f"`{r['experiment']}`",
            r["keypoints"],
            str(r["frames"]),
            fmt_count(r["parameters"]),
            fmt_1(r["p1"]),
            fmt_1(r["p2"]),
            fmt_pair(r["p1_best"], r["p2_best"]),
            fmt_convergence(r["p1_change"], r["converged"]),
            fmt_ms(r["inference_batch1_s"]),
            paper(r["paper_p1"]),
            paper(r["paper_p2"]),
            paper(r["paper_inference_s"], " s"),
            f"[{i}]",
        )
        for i, r in enumerate(rows, start=1)
    ]
    return markdown_table(MAIN_HEADER, cells, "llllrrrrrrrrrl")


def fmt_convergence(change: float, converged: bool | None) -> str:
    """A run's recent relative change of test P1 in %, and whether that meets the convergence criterion."""
    if converged is None:
        return DASH
    return f"{change * 100:.1f} % ({'converged' if converged else 'still changing'})"


def _families(per_action: Iterable[Mapping[str, Any]]) -> list[str]:
    present: dict[str, None] = {}
    for actions in per_action:
        present.update(dict.fromkeys(actions))
    return [f for f in ACTION_FAMILIES if f in present] + [f for f in present if f not in ACTION_FAMILIES]


# The two Human3.6M protocols and how each is read from a record's figures.
PROTOCOLS: tuple[tuple[str, Callable[[Any], float]], ...] = (("P1", lambda f: f.P1), ("P2", lambda f: f.P2))


def per_action(runs: Sequence[ExperimentMetrics]) -> dict[str, Any]:
    """P1 and P2 of the last-epoch models per action family (and their mean): ``{"families", "P1", "P2"}``."""
    actions: dict[str, dict[str, ActionFigures]] = {run.name: run.h36m.last_epoch.per_action for run in runs}
    families = _families(actions.values())
    table: dict[str, Any] = {"families": families}
    for metric, pick in PROTOCOLS:
        table[metric] = {
            family: {
                run.name: float(pick(actions[run.name][family])) if family in actions[run.name] else math.nan
                for run in runs
            }
            for family in families
        }
        table[metric]["Mean"] = {run.name: float(pick(run.h36m.last_epoch)) for run in runs}
    return table


def per_action_tables(runs: Sequence[ExperimentMetrics], table: Mapping[str, Any]) -> list[str]:
    """:func:`per_action` as two Markdown tables, the mean in bold."""
    lines: list[str] = []
    for metric, title in (("P1", "P1 (MPJPE, mm)"), ("P2", "P2 (PA-MPJPE, mm)")):
        header = ["Action", *(f"`{run.name}`" for run in runs)]
        rows = [
            [f"**{family}**" if family == "Mean" else family, *(fmt_1(values[run.name]) for run in runs)]
            for family, values in table[metric].items()
        ]
        rows[-1] = [rows[-1][0], *(f"**{cell}**" for cell in rows[-1][1:])]
        lines += [f"**{title}**, last-epoch model:", "", *markdown_table(header, rows, "l" + "r" * len(runs)), ""]
    return lines


def _pck_auc(figures: Mapping[str, PckFigures] | None) -> dict[str, dict[str, float]]:
    return {k: {"pck": float(v.PCK), "auc": float(v.AUC)} for k, v in (figures or {}).items()}


def dhp_rows(runs: Sequence[ExperimentMetrics]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """MPI-INF-3DHP per experiment (``available`` false with a reason when not measured), its scenes, sequences."""
    rows = []
    scenes_present: dict[str, None] = {}
    sequences_present: dict[str, None] = {}
    for run in runs:
        d = run.dhp
        row: dict[str, Any] = {"experiment": run.name, "available": isinstance(d, DhpEvaluation)}
        if not isinstance(d, DhpEvaluation):
            row["reason"] = d.reason
        else:
            row.update(
                pck=float(d.last_epoch.PCK),
                auc=float(d.last_epoch.AUC),
                pck_best=float(d.best_on_test.PCK),
                auc_best=float(d.best_on_test.AUC),
                num_samples=d.last_epoch.num_samples,
                file=d.file,
                per_scene=_pck_auc(d.last_epoch.per_scene),
                per_sequence=_pck_auc(d.last_epoch.per_sequence),
            )
            scenes_present.update(dict.fromkeys(row["per_scene"]))
            sequences_present.update(dict.fromkeys(row["per_sequence"]))
        rows.append(row)
    scenes = [s for s in SCENES if s in scenes_present] + [s for s in scenes_present if s not in SCENES]
    return rows, scenes, sorted(sequences_present)


def _dhp_tables(available: Sequence[dict[str, Any]], scenes: Sequence[str], sequences: Sequence[str]) -> list[str]:
    header = ["experiment", "PCK (%)", "AUC (%)"]
    for scene in scenes:
        header += [f"{SCENE_NAMES.get(scene, scene)} PCK", f"{SCENE_NAMES.get(scene, scene)} AUC"]
    header += ["PCK / AUC, best on test", "poses"]
    cells = []
    for r in available:
        cell = [f"`{r['experiment']}`", fmt_1(r["pck"]), fmt_1(r["auc"])]
        for scene in scenes:
            figures = r["per_scene"].get(scene, {})
            cell += [fmt_1(figures.get("pck")), fmt_1(figures.get("auc"))]
        cell += [fmt_pair(r["pck_best"], r["auc_best"]), fmt_count(r["num_samples"])]
        cells.append(cell)
    lines = ["Last-epoch model (best on test in the last column):", ""]
    lines += [*markdown_table(header, cells, "l" + "r" * (len(header) - 1)), ""]
    if not scenes:
        lines += ["The 3DHP file has no scene labels (PoseAug's format), so there is no per-scene split.", ""]
    if sequences:
        header = ["experiment", *(f"{s} PCK" for s in sequences)]
        cells = [
            [f"`{r['experiment']}`", *(fmt_1(r["per_sequence"].get(s, {}).get("pck")) for s in sequences)]
            for r in available
        ]
        lines += ["PCK (%) per test sequence, last-epoch model:", ""]
        lines += [*markdown_table(header, cells, "l" + "r" * len(sequences)), ""]
    return lines


def dhp_section(rows: Sequence[dict[str, Any]], scenes: Sequence[str], sequences: Sequence[str]) -> list[str]:
    """The MPI-INF-3DHP section: overall and per scene, per sequence, and the experiments without figures."""
    lines = [
        "Cross data set (trained on Human3.6M only), root-relative, test-time flip as the metrics record it. "
        "PCK: % of joints within 150 mm; AUC: mean PCK over thresholds 0-150 mm.",
        "",
    ]
    available = [r for r in rows if r["available"]]
    if available:
        lines += _dhp_tables(available, scenes, sequences)
    for r in rows:
        if not r["available"]:
            lines.append(f"- `{r['experiment']}`: not available ({r['reason']}).")
    if any(not r["available"] for r in rows):
        lines.append("")
    return lines


def hard_rows(runs: Sequence[ExperimentMetrics]) -> list[dict[str, Any]]:
    """P1 / P2 on the hard poses per experiment."""
    return [
        {
            "experiment": run.name,
            "p1": float(run.hard.last_epoch.P1),
            "p2": float(run.hard.last_epoch.P2),
            "p1_best": float(run.hard.best_on_test.P1),
            "p2_best": float(run.hard.best_on_test.P2),
            "num_samples": run.hard.last_epoch.num_samples,
            "source": run.hard.source,
        }
        for run in runs
    ]


def hard_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """:func:`hard_rows` as Markdown, after a line saying where the hard poses come from."""
    cells = [
        (
            f"`{r['experiment']}`",
            fmt_1(r["p1"]),
            fmt_1(r["p2"]),
            fmt_pair(r["p1_best"], r["p2_best"]),
            fmt_count(r["num_samples"]),
        )
        for r in rows
    ]
    sources = sorted({r["source"] for r in rows})
    return [
        "Hard-pose set: " + "; ".join(HARD_SOURCES.get(s, s) for s in sources) + ". With test-time flip.",
        "",
        *markdown_table(
            ("experiment", "P1 (mm), last epoch", "P2 (mm), last epoch", "P1 / P2 (mm), best on test", "poses"),
            cells,
            "lrrrr",
        ),
        "",
    ]


def mean_pose(runs: Sequence[ExperimentMetrics]) -> tuple[list[dict[str, Any]], list[str]]:
    """The mean-pose baseline per experiment, and its Markdown (one line per distinct pair of figures)."""
    rows = [
        {
            "experiment": r.name,
            "p1": float(r.h36m.mean_pose_baseline.P1),
            "p2": float(r.h36m.mean_pose_baseline.P2),
            "model_p1": float(r.h36m.last_epoch.P1),
        }
        for r in runs
    ]
    # Experiments evaluated on the same test 3D share the figures: one line per distinct pair.
    distinct: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        distinct.setdefault((fmt_1(row["p1"]), fmt_1(row["p2"])), []).append(f"`{row['experiment']}`")
    cells = [(p1, p2, ", ".join(names)) for (p1, p2), names in distinct.items()]
    lines = [
        "The training set's mean root-relative pose predicted for every test frame: a model that has "
        "learnt anything is far below these errors.",
        "",
        *markdown_table(("P1 (mm)", "P2 (mm)", "experiments"), cells, "rrl"),
        "",
    ]
    worse = [row["experiment"] for row in rows if finite(row["model_p1"]) and row["model_p1"] >= row["p1"]]
    if worse:
        lines += [
            "**Warning:** not better than the mean pose (last-epoch P1): " + ", ".join(f"`{w}`" for w in worse) + ".",
            "",
        ]
    return rows, lines
