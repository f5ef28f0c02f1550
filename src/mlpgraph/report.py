"""The ``report`` stage: ``metrics/results.md`` and ``metrics/plots/*.png`` from the metrics files alone.

:func:`build_report` reads, for every experiment of ``params.yaml``, the files the evaluation and
training stages wrote (:mod:`mlpgraph.stage_runs`):

- ``h36m/EXP.json`` (P1 / P2 per action, last epoch and best on test, the mean-pose baseline,
  parameters, inference time), and ``h36m/EXP_refine.json`` for experiments in ``refinement``,
- ``3dhp/EXP.json`` (PCK / AUC overall, per scene and per sequence, or ``available: false``),
- ``hard/EXP.json`` (P1 / P2 on the hard poses),
- ``train/EXP.json`` (the epochs of the two selections) and ``train/EXP_curve.json`` (the
  per-epoch history), and ``train/EXP_refine.json`` for experiments in ``refinement``.

Every measured number in the report comes from those files; the only figures typed here are
the paper's (:data:`PAPER_FIGURES`), shown in their own columns. Parameters decide only which
experiments exist and how they relate (which differ only in aggregation, in window length).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpgraph.data.actions import ACTION_FAMILIES
from mlpgraph.errors import UserInputError
from mlpgraph.io import atomic_path
from mlpgraph.params import get

log = logging.getLogger(__name__)

DASH = "—"
LAST = "last_epoch"
BEST = "best_on_test"
DPI = 150

# Scene kinds of MPI-INF-3DHP in report order (mlpgraph.evaluation.SCENES, kept here so that the
# report does not import torch).
SCENES = ("GS", "noGS", "outdoor")
SCENE_NAMES = {"GS": "GS (TS1-2)", "noGS": "noGS (TS3-4)", "outdoor": "outdoor (TS5-6)"}

# How the report names the registry's models.
METHOD_NAMES = {
    "mlpgraph": "MLP-Graph",
    "semgcn": "SemGCN",
    "semgcn_nonlocal": "SemGCN (non-local)",
    "hgcn": "High-order GCN",
    "wugcn": "Weight Unsharing",
    "modgcn": "ModulatedGCN",
}

KEYPOINT_NAMES = {
    "gt": "ground-truth 2D",
    "hr": "detector-like 2D (HRNet-style; on synthetic data the gt 2D plus detector-like noise)",
    "cpn_ft_h36m_dbb": "CPN detections fine-tuned on Human3.6M",
}


@dataclass(frozen=True)
class PaperFigures:
    """One row of the paper's comparison: Human3.6M, 2D ground truth, 1 frame, 16 joints."""

    method: str
    p1: float
    p2: float
    inference_s: float
    # model_config values a measured row must have to stand beside these figures.
    config: Mapping[str, Any] = field(default_factory=dict)


PAPER_SOURCE = (
    "the MLP-Graph paper's comparison table (Human3.6M, 2D ground truth, 1 frame, 16 joints: "
    "Neck/Nose removed), as quoted in the design notes (model.md, 'Baselines'; baselines.md, "
    "section 0 for the joint count); the paper gives inference time in seconds without "
    "stating the batch size or the device"
)
PAPER_FIGURES: dict[str, PaperFigures] = {
    "semgcn_nonlocal": PaperFigures("SemGCN (non-local)", 40.78, 31.46, 0.012),
    "hgcn": PaperFigures("High-order GCN", 39.52, 31.07, 0.013),
    "wugcn": PaperFigures("Weight Unsharing", 37.83, 30.09, 0.32),
    "modgcn": PaperFigures("ModulatedGCN", 37.43, 29.73, 0.08),
    "mlpgraph": PaperFigures("MLP-Graph", 36.34, 28.97, 0.05, {"aggregation": "diagonal"}),
}
PAPER_KEYPOINTS = "gt"
PAPER_FRAMES = 1
PAPER_LAYOUT = "h36m16"

MISSING_PLOTS: dict[str, str] = {}
# ``source`` of a pretrained experiment's training summary (mlpgraph.stage_runs._import_pretrained).
RELEASE_SOURCE = "MLP-Graph release"


# --------------------------------------------------------------------------------------------
# Reading the metrics files


@dataclass(frozen=True)
class MetricsFile:
    """One metrics JSON file: its path (for error messages) and its content."""

    path: Path
    data: Mapping[str, Any]

    @classmethod
    def read(cls, path: Path) -> MetricsFile:
        """Read ``path``; a missing or malformed file is a one-line :class:`UserInputError`."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise UserInputError(f"{path}: metrics file not found (run the stage that writes it first)") from None
        except OSError as exc:
            raise UserInputError(f"{path}: cannot read the metrics file ({exc.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise UserInputError(f"{path}: expected a JSON object at the top level")
        return cls(path, data)

    def get(self, dotted: str, default: Any = ...) -> Any:
        """``data['a']['b']`` for ``'a.b'``; a missing field without default names the file and the field."""
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is not ...:
                    return default
                raise UserInputError(f"{self.path}: missing field {dotted!r}")
            node = node[part]
        return node

    def number(self, dotted: str) -> float:
        """A numeric field (NaN for JSON null)."""
        value = self.get(dotted)
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserInputError(f"{self.path}: field {dotted!r} is not a number ({value!r})")
        return float(value)


@dataclass(frozen=True)
class ExperimentMetrics:
    """Everything the report reads about one experiment."""

    name: str
    model: str
    keypoints: str
    model_args: Mapping[str, Any]
    h36m: MetricsFile
    dhp: MetricsFile
    hard: MetricsFile
    train: MetricsFile
    curve: MetricsFile
    refine: MetricsFile | None = None
    train_refine: MetricsFile | None = None

    @property
    def frames(self) -> int:
        """Window length, as the evaluation recorded it."""
        return int(self.h36m.number("frames"))

    @property
    def layout(self) -> str:
        """Joint layout of the evaluated data."""
        return str(self.h36m.get("data.layout", self.h36m.get("model_config.layout", "")))

    @property
    def aggregation(self) -> str | None:
        """MLP-Graph's WJC aggregation (``diagonal`` / ``graph``), None for other models."""
        value = self.h36m.get("model_config.aggregation", self.model_args.get("aggregation"))
        return None if value is None else str(value)

    @property
    def method(self) -> str:
        """The row's method name: the model's, with MLP-Graph's variant when it is not the release's."""
        name = METHOD_NAMES.get(self.model, self.model)
        if self.model == "mlpgraph" and self.aggregation not in (None, "diagonal"):
            name += f" ({self.aggregation} aggregation)"
        if self.train.get("source", None) == RELEASE_SOURCE:
            name += " (released weights)"
        return name

    def paper(self) -> PaperFigures | None:
        """The paper's figures for this row, or None when the row is not the paper's setting."""
        figures = PAPER_FIGURES.get(self.model)
        if figures is None:
            return None
        if self.keypoints != PAPER_KEYPOINTS or self.frames != PAPER_FRAMES or self.layout != PAPER_LAYOUT:
            return None
        config = self.h36m.get("model_config", {}) or {}
        if any(config.get(key, self.model_args.get(key)) != value for key, value in figures.config.items()):
            return None
        return figures


def load_metrics(
    params: Mapping[str, Any], metrics_dir: Path, skipped: dict[str, str] | None = None
) -> list[ExperimentMetrics]:
    """The metrics of every experiment in ``params`` (in its order); a missing file is a one-line error.

    An experiment is an entry of ``experiments`` with a ``model`` and ``keypoints``. A preset may
    carry overrides (``model_args`` only) for experiments that ``params.yaml`` does not define; the
    pipeline runs no stage for those, so they are skipped here. An experiment whose evaluation
    says ``available: false`` (a pretrained experiment without its release folder) is left out
    and its reason recorded in ``skipped``.
    """
    skipped = {} if skipped is None else skipped
    experiments = get(params, "experiments")
    if not isinstance(experiments, Mapping):
        raise UserInputError("params: 'experiments' must be a mapping")
    refinement = get(params, "refinement", {}) or {}
    loaded = []
    for name, entry in experiments.items():
        if not isinstance(entry, Mapping) or "model" not in entry or "keypoints" not in entry:
            log.debug("report: experiments.%s has no model and keypoints (a preset's override only), skipped", name)
            continue
        h36m = MetricsFile.read(metrics_dir / "h36m" / f"{name}.json")
        if h36m.get("available", True) is False:
            skipped[str(name)] = str(h36m.get("reason", "not available"))
            continue
        refined = name in refinement
        loaded.append(
            ExperimentMetrics(
                name=str(name),
                model=str(entry["model"]),
                keypoints=str(entry["keypoints"]),
                model_args=dict(entry.get("model_args") or {}),
                h36m=h36m,
                dhp=MetricsFile.read(metrics_dir / "3dhp" / f"{name}.json"),
                hard=MetricsFile.read(metrics_dir / "hard" / f"{name}.json"),
                train=MetricsFile.read(metrics_dir / "train" / f"{name}.json"),
                curve=MetricsFile.read(metrics_dir / "train" / f"{name}_curve.json"),
                refine=MetricsFile.read(metrics_dir / "h36m" / f"{name}_refine.json") if refined else None,
                train_refine=MetricsFile.read(metrics_dir / "train" / f"{name}_refine.json") if refined else None,
            )
        )
    if not loaded and not skipped:
        raise UserInputError("params: 'experiments' defines no experiment (an entry needs 'model' and 'keypoints')")
    return loaded


# --------------------------------------------------------------------------------------------
# Formatting


def _finite(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def fmt_1(value: float | None) -> str:
    """mm or %, one decimal; a dash for a missing value."""
    return f"{value:.1f}" if _finite(value) else DASH


def fmt_pair(first: float | None, second: float | None) -> str:
    """``P1 / P2`` with one decimal each."""
    return f"{fmt_1(first)} / {fmt_1(second)}"


def fmt_count(value: float | None) -> str:
    """An integer with thousands separators."""
    return f"{int(value):,}" if _finite(value) else DASH


def fmt_ms(seconds: float | None) -> str:
    """Seconds shown as milliseconds with two decimals."""
    return f"{seconds * 1000:.2f}" if _finite(seconds) else DASH


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column (``l`` or ``r``, default ``l``)."""
    marks = [("---:" if align[i : i + 1] == "r" else "---") for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _run_id(doc: MetricsFile | None) -> str:
    if doc is None:
        return DASH
    run_id = doc.get("mlflow_run_id", None)
    return f"`{run_id}`" if run_id else "not tracked"


# --------------------------------------------------------------------------------------------
# Tables (each returns its rows as plain values, and its Markdown lines)


def _main_rows(runs: Sequence[ExperimentMetrics]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        h = run.h36m
        paper = run.paper()
        batch1 = h.get("inference_time.batch", {}).get("1")
        rows.append(
            {
                "method": run.method,
                "experiment": run.name,
                "keypoints": run.keypoints,
                "frames": run.frames,
                "parameters": int(h.number("parameters")),
                "p1": h.number(f"{LAST}.P1"),
                "p2": h.number(f"{LAST}.P2"),
                "p1_best": h.number(f"{BEST}.P1"),
                "p2_best": h.number(f"{BEST}.P2"),
                "inference_batch1_s": float(batch1["median_s"]) if batch1 else math.nan,
                "paper_p1": paper.p1 if paper else None,
                "paper_p2": paper.p2 if paper else None,
                "paper_inference_s": paper.inference_s if paper else None,
                "mlflow_run_id": h.get("mlflow_run_id", None),
            }
        )
    return rows


MAIN_HEADER = (
    "Method",
    "experiment",
    "2D",
    "frames",
    "parameters",
    "P1 (mm), last epoch",
    "P2 (mm), last epoch",
    "P1 / P2 (mm), best on test",
    "inference time, batch 1 (ms)",
    "paper P1 (mm)",
    "paper P2 (mm)",
    "paper infer. time",
    "MLflow run",
)


def _main_table(rows: Sequence[dict[str, Any]]) -> list[str]:
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
            fmt_ms(r["inference_batch1_s"]),
            paper(r["paper_p1"]),
            paper(r["paper_p2"]),
            paper(r["paper_inference_s"], " s"),
            f"[{i}]",
        )
        for i, r in enumerate(rows, start=1)
    ]
    return _table(MAIN_HEADER, cells, "llllrrrrrrrrl")


def _families(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    present: dict[str, None] = {}
    for per_action in docs:
        present.update(dict.fromkeys(per_action))
    return [f for f in ACTION_FAMILIES if f in present] + [f for f in present if f not in ACTION_FAMILIES]


def _per_action(runs: Sequence[ExperimentMetrics]) -> dict[str, Any]:
    per_action = {run.name: run.h36m.get(f"{LAST}.per_action") for run in runs}
    families = _families(per_action.values())
    table: dict[str, dict[str, dict[str, float]]] = {}
    for metric in ("P1", "P2"):
        table[metric] = {
            family: {
                run.name: float(per_action[run.name][family][metric]) if family in per_action[run.name] else math.nan
                for run in runs
            }
            for family in families
        }
        table[metric]["Mean"] = {run.name: run.h36m.number(f"{LAST}.{metric}") for run in runs}
    return {"families": families, "P1": table["P1"], "P2": table["P2"]}


def _per_action_tables(runs: Sequence[ExperimentMetrics], per_action: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for metric, title in (("P1", "P1 (MPJPE, mm)"), ("P2", "P2 (PA-MPJPE, mm)")):
        header = ["Action", *(f"`{run.name}`" for run in runs)]
        rows = [
            [f"**{family}**" if family == "Mean" else family, *(fmt_1(values[run.name]) for run in runs)]
            for family, values in per_action[metric].items()
        ]
        rows[-1] = [rows[-1][0], *(f"**{cell}**" for cell in rows[-1][1:])]
        lines += [f"**{title}**, last-epoch model:", "", *_table(header, rows, "l" + "r" * len(runs)), ""]
    return lines


def _dhp_rows(runs: Sequence[ExperimentMetrics]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    rows = []
    scenes_present: dict[str, None] = {}
    sequences_present: dict[str, None] = {}
    for run in runs:
        d = run.dhp
        available = bool(d.get("available", False))
        row: dict[str, Any] = {"experiment": run.name, "available": available}
        if not available:
            row["reason"] = str(d.get("reason", "not evaluated"))
        else:
            row.update(
                pck=d.number(f"{LAST}.pck"),
                auc=d.number(f"{LAST}.auc"),
                pck_best=d.number(f"{BEST}.pck"),
                auc_best=d.number(f"{BEST}.auc"),
                num_samples=int(d.number(f"{LAST}.num_samples")),
                file=d.get("file", None),
                per_scene={
                    k: {"pck": float(v["pck"]), "auc": float(v["auc"])}
                    for k, v in d.get(f"{LAST}.per_scene", {}).items()
                },
                per_sequence={
                    k: {"pck": float(v["pck"]), "auc": float(v["auc"])}
                    for k, v in d.get(f"{LAST}.per_sequence", {}).items()
                },
            )
            scenes_present.update(dict.fromkeys(row["per_scene"]))
            sequences_present.update(dict.fromkeys(row["per_sequence"]))
        rows.append(row)
    scenes = [s for s in SCENES if s in scenes_present] + [s for s in scenes_present if s not in SCENES]
    return rows, scenes, sorted(sequences_present)


def _dhp_section(rows: Sequence[dict[str, Any]], scenes: Sequence[str], sequences: Sequence[str]) -> list[str]:
    lines = [
        "Cross data set (trained on Human3.6M only), root-relative, test-time flip as the metrics record it. "
        "PCK: % of joints within 150 mm; AUC: mean PCK over thresholds 0-150 mm.",
        "",
    ]
    available = [r for r in rows if r["available"]]
    if available:
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
        lines += ["Last-epoch model (best on test in the last column):", ""]
        lines += [*_table(header, cells, "l" + "r" * (len(header) - 1)), ""]
        if not scenes:
            lines += ["The 3DHP file has no scene labels (PoseAug's format), so there is no per-scene split.", ""]
        if sequences:
            header = ["experiment", *(f"{s} PCK" for s in sequences)]
            cells = [
                [f"`{r['experiment']}`", *(fmt_1(r["per_sequence"].get(s, {}).get("pck")) for s in sequences)]
                for r in available
            ]
            lines += ["PCK (%) per test sequence, last-epoch model:", ""]
            lines += [*_table(header, cells, "l" + "r" * len(sequences)), ""]
    for r in rows:
        if not r["available"]:
            lines.append(f"- `{r['experiment']}`: not available ({r['reason']}).")
    if any(not r["available"] for r in rows):
        lines.append("")
    return lines


def _hard_rows(runs: Sequence[ExperimentMetrics]) -> list[dict[str, Any]]:
    return [
        {
            "experiment": run.name,
            "p1": run.hard.number(f"{LAST}.P1"),
            "p2": run.hard.number(f"{LAST}.P2"),
            "p1_best": run.hard.number(f"{BEST}.P1"),
            "p2_best": run.hard.number(f"{BEST}.P2"),
            "num_samples": int(run.hard.number(f"{LAST}.num_samples")),
            "source": str(run.hard.get("source", "")),
        }
        for run in runs
    ]


HARD_SOURCES = {
    "derived": "derived from the test split: the test poses farthest from their nearest training pose",
    "user": "the user's hard-pose file",
}


def _hard_section(rows: Sequence[dict[str, Any]]) -> list[str]:
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
    lines = [
        "Hard-pose set: " + "; ".join(HARD_SOURCES.get(s, s) for s in sources) + ". With test-time flip.",
        "",
        *_table(
            ("experiment", "P1 (mm), last epoch", "P2 (mm), last epoch", "P1 / P2 (mm), best on test", "poses"),
            cells,
            "lrrrr",
        ),
        "",
    ]
    return lines


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
    return run.dhp.number(f"{LAST}.pck") if run.dhp.get("available", False) else math.nan


def _ablations(runs: Sequence[ExperimentMetrics]) -> tuple[dict[str, Any], list[str]]:
    """The ablation tables that the experiments allow, and their Markdown."""
    summary: dict[str, Any] = {}
    lines: list[str] = []
    absent: list[str] = []

    groups = _aggregation_groups(runs)
    if groups:
        rows = [
            {
                "experiment": r.name,
                "aggregation": r.aggregation,
                "parameters": int(r.h36m.number("parameters")),
                "p1": r.h36m.number(f"{LAST}.P1"),
                "p2": r.h36m.number(f"{LAST}.P2"),
                "hard_p1": r.hard.number(f"{LAST}.P1"),
                "dhp_pck": _dhp_pck(r),
            }
            for g in groups
            for r in g
        ]
        summary["aggregation"] = rows
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
        lines += [
            "### Aggregation: diagonal (as released) vs graph",
            "",
            "Experiments that differ only in `model_args.aggregation`. `diagonal` is the released WJC "
            "(each joint multiplied by the adjacency's diagonal, no messages between joints); `graph` is "
            "the graph convolution the name promises. Last-epoch models.",
            "",
            *_table(
                ("experiment", "aggregation", "parameters", "P1 (mm)", "P2 (mm)", "hard P1 (mm)", "3DHP PCK (%)"),
                cells,
                "llrrrrr",
            ),
            "",
        ]
    else:
        absent.append("aggregation (no two experiments differ only in `model_args.aggregation`)")

    refined = [r for r in runs if r.refine is not None]
    if refined:
        summary["refinement"] = {}
        lines += [
            "### Refinement: without, with ground-truth (oracle) and with estimated root depth",
            "",
            "The refinement module needs the absolute root depth. The release uses the ground truth "
            "(an oracle, unavailable at test time); `estimated` uses a depth estimated from the 2D and "
            "the training set's mean bone lengths. `train_spatial` is the lifting network trained alone "
            "(the row of the main table); the other rows are the refinement run's networks.",
            "",
        ]
        for r in refined:
            doc = r.refine
            assert doc is not None
            variants = [
                ("lifting network trained alone (`train_spatial`)", r.h36m, ""),
                ("refinement run, without refinement", doc, ".without_refinement"),
                ("refined, ground-truth root depth (oracle)", doc, ".refined_gt_root"),
                ("refined, estimated root depth", doc, ".refined_estimated_root"),
            ]
            rows = [
                {
                    "variant": label,
                    "p1": source.number(f"{LAST}{suffix}.P1"),
                    "p2": source.number(f"{LAST}{suffix}.P2"),
                    "p1_best": source.number(f"{BEST}{suffix}.P1"),
                    "p2_best": source.number(f"{BEST}{suffix}.P2"),
                }
                for label, source, suffix in variants
            ]
            summary["refinement"][r.name] = rows
            setting = doc.get("refinement", {}) or {}
            described = ", ".join(f"{k} {v}" for k, v in setting.items())
            selection = r.train_refine.get("selection_metric", None) if r.train_refine is not None else None
            cells = [
                (row["variant"], fmt_1(row["p1"]), fmt_1(row["p2"]), fmt_pair(row["p1_best"], row["p2_best"]))
                for row in rows
            ]
            lines += [
                f"`{r.name}` ({r.keypoints}, {r.frames} frames; refinement training: {described or DASH}):",
                "",
                *_table(
                    ("variant", "P1 (mm), last epoch", "P2 (mm), last epoch", "P1 / P2 (mm), best on test"),
                    cells,
                    "lrrr",
                ),
                "",
            ]
            if selection:
                lines += [f"Best on test of the refinement run selects on: {selection}.", ""]
    else:
        absent.append("refinement (no experiment in `refinement`)")

    rows = []
    for r in runs:
        rows.append(
            {
                "experiment": r.name,
                "variant": "",
                "last_epoch": int(r.train.number(f"{LAST}.epoch")),
                "best_epoch": int(r.train.number(f"{BEST}.epoch")),
                "p1": r.h36m.number(f"{LAST}.P1"),
                "p2": r.h36m.number(f"{LAST}.P2"),
                "p1_best": r.h36m.number(f"{BEST}.P1"),
                "p2_best": r.h36m.number(f"{BEST}.P2"),
            }
        )
        if r.refine is not None and r.train_refine is not None:
            rows.append(
                {
                    "experiment": r.name,
                    "variant": "refined, oracle root",
                    "last_epoch": int(r.train_refine.number(f"{LAST}.epoch")),
                    "best_epoch": int(r.train_refine.number(f"{BEST}.epoch")),
                    "p1": r.refine.number(f"{LAST}.refined_gt_root.P1"),
                    "p2": r.refine.number(f"{LAST}.refined_gt_root.P2"),
                    "p1_best": r.refine.number(f"{BEST}.refined_gt_root.P1"),
                    "p2_best": r.refine.number(f"{BEST}.refined_gt_root.P2"),
                }
            )
    summary["selection"] = rows
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
    lines += [
        "### Last epoch vs best on test",
        "",
        "How much the release's rule (keep the epoch with the lowest test P1) flatters each experiment.",
        "",
        *_table(
            ("experiment", "last epoch", "P1 / P2 (mm)", "best epoch", "P1 / P2 (mm), best on test", "P1 gain (mm)"),
            cells,
            "lrrrrr",
        ),
        "",
    ]

    groups = _temporal_groups(runs)
    if groups:
        rows = [
            {
                "experiment": r.name,
                "keypoints": r.keypoints,
                "frames": r.frames,
                "parameters": int(r.h36m.number("parameters")),
                "p1": r.h36m.number(f"{LAST}.P1"),
                "p2": r.h36m.number(f"{LAST}.P2"),
                "hard_p1": r.hard.number(f"{LAST}.P1"),
            }
            for g in groups
            for r in g
        ]
        summary["temporal"] = rows
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
        lines += [
            "### 1 frame vs temporal (MLP-Graph)",
            "",
            "MLP-Graph experiments with the same 2D source and aggregation and different window lengths "
            "(lifting network alone, last epoch; the widths may differ too, see the parameters). 2D source: "
            + "; ".join(f"`{k}` = {KEYPOINT_NAMES.get(k, k)}" for k in sources)
            + ".",
            "",
            *_table(
                ("experiment", "2D", "frames", "parameters", "P1 (mm)", "P2 (mm)", "hard P1 (mm)"), cells, "llrrrrr"
            ),
            "",
        ]
    else:
        absent.append("1 frame vs temporal (no MLP-Graph experiments with the same 2D source and different frames)")

    if absent:
        lines += ["Not shown, for want of experiments: " + "; ".join(absent) + ".", ""]
    return summary, lines


def _mean_pose(runs: Sequence[ExperimentMetrics]) -> tuple[list[dict[str, Any]], list[str]]:
    rows = [
        {
            "experiment": r.name,
            "p1": r.h36m.number("mean_pose_baseline.P1"),
            "p2": r.h36m.number("mean_pose_baseline.P2"),
            "model_p1": r.h36m.number(f"{LAST}.P1"),
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
        *_table(("P1 (mm)", "P2 (mm)", "experiments"), cells, "rrl"),
        "",
    ]
    worse = [row["experiment"] for row in rows if _finite(row["model_p1"]) and row["model_p1"] >= row["p1"]]
    if worse:
        lines += [
            "**Warning:** not better than the mean pose (last-epoch P1): " + ", ".join(f"`{w}`" for w in worse) + ".",
            "",
        ]
    return rows, lines


# --------------------------------------------------------------------------------------------
# Plots


def _series_label(run: ExperimentMetrics) -> str:
    """A legend entry: the experiment with its 2D source and its actual window (a preset may shrink it)."""
    return f"{run.name} ({run.keypoints} 2D, T={run.frames})"


def _colours(runs: Sequence[ExperimentMetrics]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(runs) <= 10 else "tab20"]
    return {run.name: cmap(i % cmap.N) for i, run in enumerate(runs)}


def _save(figure: Any, path: Path) -> None:
    """Write ``figure`` as a PNG at ``path``, atomically."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    log.info("report: wrote %s", path)


def _new_figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return figure, figure.subplots()


def _legend_below(figure: Any, ax: Any, title: str | None = None, columns: int = 4) -> None:
    """The axes' legend under the plot, outside it: it can cover neither data nor titles."""
    handles, labels = ax.get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=max(1, min(columns, len(labels))),
        title=title,
        fontsize="small",
        frameon=False,
    )


def _grouped_bars(
    ax: Any, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float], Any]], width: float = 0.8
) -> None:
    """Bars of each series side by side within each group; NaN bars are left out."""
    n = max(len(series), 1)
    bar = width / n
    for i, (label, values, colour) in enumerate(series):
        xs = [g - width / 2 + bar * (i + 0.5) for g in range(len(groups))]
        pairs = [(x, v) for x, v in zip(xs, values, strict=True) if _finite(v)]
        ax.bar([x for x, _ in pairs], [v for _, v in pairs], bar, label=label, color=colour)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _plot_per_action(runs: Sequence[ExperimentMetrics], per_action: Mapping[str, Any], label: str, path: Path) -> None:
    table = per_action["P1"]
    groups = [*per_action["families"], "Mean"]
    colours = _colours(runs)
    figure, ax = _new_figure(min(20.0, max(10.0, 0.1 * len(groups) * max(len(runs), 4) + 2.0)), 6.0)
    series = [(_series_label(run), [table[g][run.name] for g in groups], colours[run.name]) for run in runs]
    _grouped_bars(ax, groups, series)
    ax.axvline(len(groups) - 1.5, color="0.4", linestyle=":", linewidth=1)
    ax.tick_params(axis="x", labelrotation=35)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
        tick.set_rotation_mode("anchor")
    ax.set_xlabel("action (Mean: the mean over actions)")
    ax.set_ylabel("P1, MPJPE (mm)")
    figure.suptitle(f"Human3.6M P1 per action, last-epoch models — {label}")
    _legend_below(figure, ax, "experiment")
    _save(figure, path)


def _plot_curves(runs: Sequence[ExperimentMetrics], label: str, path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    colours = _colours(runs)
    figure = Figure(figsize=(13.0, 4.8), dpi=DPI, layout="constrained")
    loss_ax, p1_ax = figure.subplots(1, 2)
    positive = True
    for run in runs:
        history = run.curve.get("history")
        if not isinstance(history, list):
            raise UserInputError(f"{run.curve.path}: field 'history' must be a list")
        trained = [r for r in history if r.get("epoch")]  # epoch 0: released weights, nothing trained
        epochs = [int(r["epoch"]) for r in trained]
        losses = [float(r.get("loss", math.nan)) for r in trained]
        p1 = [float(r.get("P1", math.nan)) for r in trained]
        positive &= all(v > 0 for v in losses if _finite(v))
        style = {"color": colours[run.name], "marker": "o", "markersize": 4, "label": _series_label(run)}
        loss_ax.plot(epochs, losses, **style)
        p1_ax.plot(epochs, p1, **style)
    if positive:
        loss_ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        loss_ax.yaxis.set_major_formatter(plain)
        loss_ax.yaxis.set_minor_formatter(plain)
    for ax in (loss_ax, p1_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    loss_ax.set_ylabel("training loss (m)" + (", log scale" if positive else ""))
    loss_ax.set_title("Training loss (0.99 MPJPE + 0.01 L1)")
    p1_ax.set_ylabel("test P1, MPJPE (mm)")
    p1_ax.set_title("Test P1 after each epoch")
    figure.suptitle(f"Training curves of the lifting networks — {label}")
    _legend_below(figure, p1_ax, "experiment")
    _save(figure, path)


def _plot_frames(runs: Sequence[ExperimentMetrics], label: str, path: Path) -> bool:
    mlp = [r for r in runs if r.model == "mlpgraph"]
    if not mlp:
        return False
    groups: dict[tuple[str, str | None], list[ExperimentMetrics]] = {}
    for run in mlp:
        groups.setdefault((run.keypoints, run.aggregation), []).append(run)
    figure, ax = _new_figure(9.0, 4.8)
    frames = sorted({r.frames for r in mlp})
    markers = "osD^v<>"
    for i, ((keypoints, aggregation), group) in enumerate(groups.items()):
        group = sorted(group, key=lambda r: r.frames)
        xs = [r.frames for r in group]
        ys = [r.h36m.number(f"{LAST}.P1") for r in group]
        name = f"{keypoints} 2D" + (f", {aggregation} aggregation" if aggregation not in (None, "diagonal") else "")
        ax.plot(xs, ys, marker=markers[i % len(markers)], markersize=7, label=name)
        for k, (x, y, run) in enumerate(zip(xs, ys, group, strict=True)):
            if _finite(y):
                # Left of a line's first point, right of the others: never on the line itself.
                left = k == 0 and len(xs) > 1
                ax.annotate(
                    f"{y:.1f} mm\n{run.name}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(-9 if left else 9, 0),
                    ha="right" if left else "left",
                    va="center",
                    fontsize="small",
                )
    if len(frames) > 1 and frames[-1] / max(frames[0], 1) >= 9:
        ax.set_xscale("log")
    ax.set_xticks(frames, [str(f) for f in frames])
    ax.minorticks_off()
    if len(frames) == 1:
        ax.set_xlim(frames[0] - 1, frames[0] + 1)
    else:
        ax.margins(x=0.25)
    ax.margins(y=0.2)
    ax.set_xlabel("window length T (frames)" + (", log scale" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel("P1, MPJPE (mm), last epoch")
    figure.suptitle(f"MLP-Graph: Human3.6M P1 against window length — {label}")
    ax.grid(alpha=0.3)
    _legend_below(figure, ax, "2D source of the MLP-Graph runs")
    _save(figure, path)
    return True


def _plot_per_joint(runs: Sequence[ExperimentMetrics], label: str, path: Path) -> bool:
    """P1's per-joint term (mm) of every experiment, joints in the layout's order."""
    with_joints = [(run, run.h36m.get(f"{LAST}.per_joint", None)) for run in runs]
    with_joints = [(run, joints) for run, joints in with_joints if isinstance(joints, Mapping) and joints]
    if not with_joints:
        return False
    names = list(with_joints[0][1])
    colours = _colours(runs)
    figure, ax = _new_figure(min(18.0, max(10.0, 0.09 * len(names) * max(len(with_joints), 4) + 2.0)), 5.4)
    series = [
        (_series_label(run), [float(joints.get(n, math.nan)) for n in names], colours[run.name])
        for run, joints in with_joints
    ]
    _grouped_bars(ax, [n.replace("_", " ") for n in names], series)
    ax.tick_params(axis="x", labelrotation=35)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
        tick.set_rotation_mode("anchor")
    ax.set_xlabel("joint (the root is predicted at the origin: its error is the root's offset)")
    ax.set_ylabel("mean joint error (mm), last epoch")
    figure.suptitle(f"Human3.6M error per joint — {label}")
    _legend_below(figure, ax, "experiment")
    _save(figure, path)
    return True


def _plot_3dhp(
    runs: Sequence[ExperimentMetrics], dhp_rows: Sequence[dict[str, Any]], scenes: Sequence[str], path: Path
) -> bool:
    available = [r for r in dhp_rows if r["available"]]
    if not available:
        return False
    colours = _colours(runs)
    by_name = {run.name: run for run in runs}
    groups = ["all", *scenes]
    labels = ["all scenes", *(SCENE_NAMES.get(s, s) for s in scenes)]
    figure, ax = _new_figure(max(7.0, 1.1 * len(groups) * max(1.0, len(available) / 4)) + 3.0, 4.8)
    series = [
        (
            _series_label(by_name[r["experiment"]]),
            [r["pck"], *(r["per_scene"].get(s, {}).get("pck", math.nan) for s in scenes)],
            colours[r["experiment"]],
        )
        for r in available
    ]
    _grouped_bars(ax, labels, series)
    ax.set_ylim(0, 100)
    ax.set_xlabel("MPI-INF-3DHP scene")
    ax.set_ylabel("PCK@150 mm (%)")
    figure.suptitle("MPI-INF-3DHP PCK per scene, last-epoch models (trained on Human3.6M only)")
    _legend_below(figure, ax, "experiment")
    _save(figure, path)
    return True


# --------------------------------------------------------------------------------------------
# The report


def _data_lines(runs: Sequence[ExperimentMetrics]) -> tuple[list[str], str]:
    """The header's data sentence (label, source, layout, preset, fingerprints) and the data label.

    Each 2D source has its own processed file and so its own fingerprint; a warning is added only
    when experiments disagree on the data set itself or when one 2D source has two fingerprints.
    """
    labels: dict[str, None] = {}
    described: dict[str, None] = {}
    fingerprints: dict[str, dict[str, None]] = {}
    for run in runs:
        data = run.h36m.get("data", {}) or {}
        labels[str(data.get("label", "unknown data"))] = None
        parts = [
            f"source `{data.get('source', DASH)}`",
            f"name `{data.get('name', DASH)}`",
            f"layout `{data.get('layout', DASH)}`",
            f"preset `{data.get('preset') or DASH}`",
        ]
        if data.get("dir"):
            parts.append(f"folder `{data['dir']}`")
        described[", ".join(parts)] = None
        if data.get("fingerprint"):
            fingerprints.setdefault(run.keypoints, {})[str(data["fingerprint"])[:12]] = None
    label = " + ".join(labels)
    prints = "; ".join(f"{kp} `{'`, `'.join(values)}`" for kp, values in fingerprints.items())
    sentence = f"Figures measured on **{label}** ({'; '.join(described)}"
    sentence += f"; data fingerprint per 2D source: {prints})." if prints else ")."
    lines = [sentence]
    if len(labels) > 1 or len(described) > 1 or any(len(v) > 1 for v in fingerprints.values()):
        lines.append("**Warning:** the metrics files were measured on different data; see the list above.")
    return lines, label


def _inference_lines(runs: Sequence[ExperimentMetrics]) -> list[str]:
    devices: dict[str, list[str]] = {}
    for run in runs:
        timing = run.h36m.get("inference_time", {}) or {}
        text = (
            f"{timing.get('device_name') or timing.get('device', DASH)} (`{timing.get('device', DASH)}`, "
            f"{timing.get('torch_threads', DASH)} threads, {timing.get('path', DASH)} path)"
        )
        devices.setdefault(text, []).append(run.name)
    if len(devices) == 1:
        return [f"Inference time: median per forward pass at batch 1, on {next(iter(devices))}."]
    return [
        "Inference time: median per forward pass at batch 1, on "
        + "; ".join(f"{d} for {', '.join(f'`{n}`' for n in names)}" for d, names in devices.items())
        + "."
    ]


def _provenance(runs: Sequence[ExperimentMetrics]) -> list[str]:
    cells = [
        (
            f"[{i}]",
            f"`{r.name}`",
            _run_id(r.h36m),
            _run_id(r.refine),
            _run_id(r.dhp) if r.dhp.get("available", False) else DASH,
            _run_id(r.hard),
            _run_id(r.train),
            _run_id(r.train_refine),
        )
        for i, r in enumerate(runs, start=1)
    ]
    header = (
        "",
        "experiment",
        "evaluate_h36m",
        "evaluate_refine",
        "evaluate_3dhp",
        "hard_poses",
        "train_spatial",
        "train_refine",
    )
    return [
        "MLflow run ids (`mlflow ui`, experiment `mlpgraph`); [n] is the main table's last column.",
        "",
        *_table(header, cells),
        "",
    ]


def _demo_lines(demos: Sequence[Mapping[str, Any]], link: Callable[[Path], str]) -> list[str]:
    """The demos section: each GIF (``mlpgraph.viz.render_demos``' records) with what it shows."""
    if not demos:
        return []
    lines = ["## Demos", ""]
    for demo in demos:
        lines += [
            f"**`{demo['experiment']}`**: {demo['subject']} {demo['action']}, camera {demo['camera']}, "
            f"frames {demo['frame_range'][0]}-{demo['frame_range'][1]} "
            f"(one in {demo['stride']}, at {demo['fps']:g} fps); "
            f"2D input left, prediction (colour) and ground truth (grey) right; P1 over these frames "
            f"{fmt_1(demo['p1_mm'])} mm.",
            "",
            f"![{demo['experiment']} demo]({link(Path(demo['gif']))})",
            "",
        ]
    return lines


def build_report(
    params: Mapping[str, Any],
    metrics_dir: Path,
    out_md: Path,
    plots_dir: Path,
    demos: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Write the results report and its plots from the metrics files of ``params``' experiments.

    ``params`` is the preset-merged mapping of :func:`mlpgraph.params.load_params`. Reads only
    ``metrics_dir/{h36m,3dhp,hard,train}/EXP*.json`` for the experiments listed there (a missing
    or malformed file is a one-line :class:`UserInputError` naming it), embeds the ``demos``
    already rendered (:func:`mlpgraph.viz.render_demos`), writes ``out_md`` and
    ``plots_dir/*.png``, each atomically, and returns a summary: ``{"markdown", "data",
    "tables": {"main", "per_action", "3dhp", "hard", "ablations", "mean_pose"}, "plots",
    "missing_plots"}``.
    """
    metrics_dir, out_md, plots_dir = Path(metrics_dir), Path(out_md), Path(plots_dir)
    skipped: dict[str, str] = {}
    runs = load_metrics(params, metrics_dir, skipped)
    if not runs:
        raise UserInputError(f"{metrics_dir}: no experiment has figures ({'; '.join(skipped.values())})")
    data_lines, label = _data_lines(runs)

    main_rows = _main_rows(runs)
    per_action = _per_action(runs)
    dhp_rows, scenes, sequences = _dhp_rows(runs)
    hard_rows = _hard_rows(runs)
    ablations, ablation_lines = _ablations(runs)
    mean_rows, mean_lines = _mean_pose(runs)

    plots: list[Path] = []
    missing = dict(MISSING_PLOTS)
    plot_jobs: list[tuple[str, Callable[[Path], bool | None]]] = [
        ("h36m_p1_per_action.png", lambda p: _plot_per_action(runs, per_action, label, p)),
        ("training_curves.png", lambda p: _plot_curves(runs, label, p)),
        ("mlpgraph_p1_vs_frames.png", lambda p: _plot_frames(runs, label, p)),
        ("3dhp_pck_per_scene.png", lambda p: _plot_3dhp(runs, dhp_rows, scenes, p)),
        ("h36m_p1_per_joint.png", lambda p: _plot_per_joint(runs, label, p)),
    ]
    reasons = {
        "mlpgraph_p1_vs_frames.png": "not plotted: no MLP-Graph experiment",
        "3dhp_pck_per_scene.png": "not plotted: no experiment has MPI-INF-3DHP figures",
        "h36m_p1_per_joint.png": "not plotted: the metrics files carry no per-joint errors",
    }
    for name, job in plot_jobs:
        path = plots_dir / name
        if job(path) is False:
            missing[name] = reasons[name]
        else:
            plots.append(path)

    def link(path: Path) -> str:
        return Path(os.path.relpath(path, out_md.parent)).as_posix()

    lines = [
        "# Results",
        "",
        *data_lines,
        "",
        "Every measured number below is read from the metrics files in "
        f"`{metrics_dir.as_posix()}/` (written by the evaluation and training stages); the only figures "
        f"typed by hand are the paper's, in their own columns, from {PAPER_SOURCE}.",
        "",
        "- **last epoch**: the model after the final training epoch. Nothing about the test split chose it: "
        "this is the honest figure.",
        "- **best on test**: the epoch with the lowest test P1, the release's selection rule. It selects on "
        "the test split, so it is optimistic; it is given only to compare with numbers obtained that way.",
        "",
    ]
    if not label.startswith("user data") and "synthetic" in label:
        lines += [
            "The data are synthetic, so the paper's figures (real Human3.6M) are a reference for the "
            "method's ranking and scale, not numbers these should match.",
            "",
        ]
    lines += [
        "## Human3.6M: the paper's comparison",
        "",
        "P1 = MPJPE, P2 = PA-MPJPE (mm), test subjects, every frame, mean over the action families. "
        "Rows are the lifting networks as trained by `train_spatial` (refined figures: ablations below). "
        f"Paper figures only on rows in the paper's setting ({PAPER_KEYPOINTS} 2D, {PAPER_FRAMES} frame, "
        f"layout {PAPER_LAYOUT}, the paper's model; for MLP-Graph the released diagonal aggregation); "
        "the models' widths follow the preset, see the parameters.",
        "",
        *_main_table(main_rows),
        "",
        *_inference_lines(runs),
        "",
        "## Human3.6M per action",
        "",
        *_per_action_tables(runs, per_action),
        "## MPI-INF-3DHP",
        "",
        *_dhp_section(dhp_rows, scenes, sequences),
        "## Hard poses",
        "",
        *_hard_section(hard_rows),
        "## Ablations",
        "",
        *ablation_lines,
        *(
            ["## Not evaluated", "", *(f"- `{name}`: {reason}." for name, reason in skipped.items()), ""]
            if skipped
            else []
        ),
        "## Mean-pose baseline",
        "",
        *mean_lines,
        "## Plots",
        "",
        *(f"- ![{p.stem}]({link(p)})" for p in plots),
        *(f"- `{name}`: {reason}." for name, reason in missing.items()),
        "",
        *_demo_lines(demos, link),
        "## Provenance",
        "",
        *_provenance(runs),
    ]
    text = "\n".join(lines).rstrip("\n") + "\n"
    with atomic_path(out_md) as tmp:
        tmp.write_text(text)
    log.info("report: wrote %s and %d plots in %s", out_md, len(plots), plots_dir)
    return {
        "markdown": str(out_md),
        "data": label,
        "tables": {
            "main": main_rows,
            "per_action": per_action,
            "3dhp": dhp_rows,
            "hard": hard_rows,
            "ablations": ablations,
            "mean_pose": mean_rows,
        },
        "plots": [str(p) for p in plots],
        "missing_plots": missing,
        "skipped": skipped,
        "fingerprints": sorted({str(fp) for r in runs if (fp := r.h36m.get("data.fingerprint", None))}),
    }
