"""The report's real-data table: every trained model on real people's motion capture, beside its synthetic P1.

Every other table is measured on the synthetic test split. This one reads ``real/EXP.json``
(:class:`~mlpgraph.results.RealMocapEvaluation`): real motion capture seen through the Human3.6M
cameras, P1 / P2 overall and per clip, and the clip-mean-pose oracle baseline as its own row. For
experiments in ``refinement`` it also reads ``real/EXP_refine.json``
(:class:`~mlpgraph.results.RealRefineEvaluation`): the refinement run's networks get a row each for
the lifting network alone and refined with each root depth, so every trained model is in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpgraph.report.formatting import DASH, finite, fmt_1, fmt_count, fmt_pair, markdown_table
from mlpgraph.report.loading import ExperimentMetrics
from mlpgraph.results import RealFigures, RealMocapEvaluation, RealRefineEvaluation

BASELINE_METHOD = "clip mean pose (oracle baseline)"
# The refinement run's rows: (field of its records' selections, what follows the method's name).
REFINED_ROWS = (
    ("without_refinement", "(refinement run, without refinement)"),
    ("refined_gt_root", "+ refinement (gt root depth, oracle)"),
    ("refined_estimated_root", "+ refinement (estimated root depth)"),
)


def _clips(records: Sequence[RealMocapEvaluation]) -> dict[str, int]:
    """Every clip of the records, in file order, with its number of frames."""
    clips: dict[str, int] = {}
    for record in records:
        clips.update({name: figures.frames for name, figures in record.last_epoch.per_clip.items()})
    return clips


def _model_row(
    run: ExperimentMetrics,
    record: RealMocapEvaluation | RealRefineEvaluation,
    figures: tuple[RealFigures, RealFigures],
    synthetic_p1: float,
    baseline_p1: float,
    variant: str | None = None,
) -> dict[str, Any]:
    """One model's row: ``figures`` (last epoch, best on test) on the real clips; ``variant`` a refinement row's."""
    last, best = figures
    return {
        "method": run.method if variant is None else f"{run.method} {variant}",
        "experiment": run.name,
        "variant": variant,
        "keypoints": run.keypoints,
        "frames": run.frames,
        "p1": float(last.P1),
        "p2": float(last.P2),
        "p1_best": float(best.P1),
        "p2_best": float(best.P2),
        "per_clip": {name: float(c.P1) for name, c in last.per_clip.items()},
        "synthetic_p1": float(synthetic_p1),
        "baseline_p1": baseline_p1,
        "input_2d": record.input_2d,
        "cameras": record.cameras,
        "num_samples": last.num_samples,
    }


def _refined_rows(run: ExperimentMetrics, baseline_p1: float) -> list[dict[str, Any]]:
    """The refinement run's rows (:data:`REFINED_ROWS`), beside its synthetic P1 (``evaluate_refine``'s)."""
    record, synthetic = run.real_refine, run.refine
    if record is None or synthetic is None:
        return []
    return [
        _model_row(
            run,
            record,
            (getattr(record.last_epoch, key), getattr(record.best_on_test, key)),
            getattr(synthetic.last_epoch, key).P1,
            baseline_p1,
            variant,
        )
        for key, variant in REFINED_ROWS
    ]


def _baseline(r: RealMocapEvaluation) -> dict[str, Any]:
    """The clip-mean-pose row of one record's mocap file and layout."""
    return {
        "method": BASELINE_METHOD,
        "file": r.file,
        "layout": r.layout,
        "definition": r.clip_mean_pose.definition,
        "p1": float(r.clip_mean_pose.P1),
        "p2": float(r.clip_mean_pose.P2),
        "per_clip": {name: float(c.P1) for name, c in r.clip_mean_pose.per_clip.items()},
        "experiments": [],
    }


def real_rows(runs: Sequence[ExperimentMetrics]) -> dict[str, Any]:
    """The table's content: ``{"models": [...], "baselines": [...], "clips": {name: frames}}``.

    A model row has the last-epoch and best-on-test P1 / P2 on the real clips, the last-epoch P1
    per clip and the synthetic test P1 (last epoch); an experiment in ``refinement`` has three more
    rows after its own (``variant``: :data:`REFINED_ROWS`). Experiments sharing a mocap file and
    layout share the baseline: one baseline row for each distinct (file, layout).
    """
    models, baselines = [], {}
    for run in runs:
        r = run.real
        baseline = baselines.setdefault((r.sha256, r.layout), _baseline(r))
        baseline["experiments"].append(run.name)
        models.append(_model_row(run, r, (r.last_epoch, r.best_on_test), run.h36m.last_epoch.P1, baseline["p1"]))
        models += _refined_rows(run, baseline["p1"])
    return {"models": models, "baselines": list(baselines.values()), "clips": _clips([run.real for run in runs])}


def _ratio(real: float, synthetic: float) -> str:
    return f"{real / synthetic:.1f}x" if finite(real) and finite(synthetic) and synthetic > 0 else DASH


def _cells(table: dict[str, Any]) -> list[list[str]]:
    """One row per model, then one per baseline."""
    clips = list(table["clips"])
    cells = [
        [
            r["method"],
            f"`{r['experiment']}`",
            r["keypoints"],
            str(r["frames"]),
            fmt_1(r["p1"]),
            fmt_1(r["p2"]),
            fmt_pair(r["p1_best"], r["p2_best"]),
            *(fmt_1(r["per_clip"].get(clip)) for clip in clips),
            fmt_1(r["synthetic_p1"]),
            _ratio(r["p1"], r["synthetic_p1"]),
        ]
        for r in table["models"]
    ]
    several = len(table["baselines"]) > 1
    for b in table["baselines"]:
        label = f"**{b['method']}**" + (f" ({b['layout']}, `{b['file']}`)" if several else "")
        per_clip = (fmt_1(b["per_clip"].get(clip)) for clip in clips)
        cells.append([label, DASH, DASH, DASH, fmt_1(b["p1"]), fmt_1(b["p2"]), DASH, *per_clip, DASH, DASH])
    return cells


_REFINED_NOTE = [
    "- Rows naming the refinement: the experiment's refinement run (`models/EXP/refine`), its lifting network "
    "alone, then refined with the clips' ground-truth camera-space root depth (an oracle) and with the depth "
    "estimated from the 2D and the training split's mean bone lengths; their synthetic test P1 is the "
    "refinement evaluation's (same variant)."
]


def real_section(table: dict[str, Any]) -> list[str]:
    """The section's Markdown: what the clips are and how they were seen, the table, and a warning where it applies."""
    models, baselines, clips = table["models"], table["baselines"], table["clips"]
    if not models:
        return []
    files = ", ".join(dict.fromkeys(f"`{b['file']}`" for b in baselines))
    cameras = "; ".join(dict.fromkeys(r["cameras"] for r in models))
    inputs = dict.fromkeys(f"`{r['keypoints']}`: {r['input_2d']}" for r in models)
    clip_list = ", ".join(f"{name} ({fmt_count(frames)} frames)" for name, frames in clips.items())
    header = [
        "Method",
        "experiment",
        "2D",
        "frames",
        "real P1 (mm), last epoch",
        "real P2 (mm), last epoch",
        "real P1 / P2 (mm), best on test",
        *(f"{clip} P1" for clip in clips),
        "synthetic test P1 (mm), last epoch",
        "real / synthetic P1",
    ]
    lines = [
        "**Real people, not synthetic:** real motion capture of real subjects (never seen in training) from "
        f"{files}: {clip_list}, at 50 fps. Each clip is put in the Human3.6M capture volume and projected "
        f"through {cameras}, exactly as the synthetic set's 2D is made; the targets are its root-relative "
        "camera-space 3D. P1 = MPJPE, P2 = PA-MPJPE (mm), every frame of every camera weighted alike; "
        "test-time flip as the metrics record it. The synthetic test P1 (the main table's) is beside it: a "
        "model that generalises to real motion has a real P1 close to it.",
        "",
        *(f"- 2D {text}." for text in inputs),
        *(_REFINED_NOTE if any(r["variant"] for r in models) else []),
        f"- {BASELINE_METHOD}: {baselines[0]['definition']}.",
        "",
        *markdown_table(header, _cells(table), "llll" + "r" * (len(header) - 4)),
        "",
    ]
    worse = [r for r in models if finite(r["p1"]) and r["p1"] >= r["baseline_p1"]]
    if worse:
        names = ", ".join(f"`{r['experiment']}`" + (f" {r['variant']}" if r["variant"] else "") for r in worse)
        lines += [f"**Warning:** not better than the clip's own mean pose on real motion capture: {names}.", ""]
    return lines
