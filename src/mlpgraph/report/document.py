"""``metrics/results.md`` assembled: the header, the tables and ablations, the plots, the demos, the provenance."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpgraph.errors import UserInputError
from mlpgraph.outputs import PLOTS, Output, Staged, atomic_outputs
from mlpgraph.params import get
from mlpgraph.report import ablations, plots, real, tables
from mlpgraph.report.formatting import DASH, fmt_1, fmt_run_id, markdown_table
from mlpgraph.report.loading import ExperimentMetrics, load_metrics
from mlpgraph.report.paper import PAPER_FRAMES, PAPER_KEYPOINTS, PAPER_LAYOUT, PAPER_SOURCE
from mlpgraph.results import DhpEvaluation
from mlpgraph.results.training import CONVERGENCE_EPOCHS, CONVERGENCE_TOLERANCE

log = logging.getLogger(__name__)

# Why a plot that can have nothing to show was not drawn.
NOT_PLOTTED = {
    "mlpgraph_p1_vs_frames.png": "not plotted: no MLP-Graph experiment",
    "3dhp_pck_per_scene.png": "not plotted: no experiment has MPI-INF-3DHP figures",
    "h36m_p1_per_joint.png": "not plotted: the metrics files carry no per-joint errors",
}


def _data_lines(runs: Sequence[ExperimentMetrics]) -> tuple[list[str], str]:
    """The header's data sentence (label, source, layout, preset, fingerprints) and the data label.

    Each 2D source has its own processed file and so its own fingerprint; a warning is added only
    when experiments disagree on the data set itself or when one 2D source has two fingerprints.
    """
    labels: dict[str, None] = {}
    described: dict[str, None] = {}
    fingerprints: dict[str, dict[str, None]] = {}
    for run in runs:
        data = run.h36m.data
        labels[data.label] = None
        parts = [
            f"source `{data.source}`",
            f"name `{data.name}`",
            f"layout `{data.layout}`",
            f"preset `{data.preset or DASH}`",
        ]
        if data.dir:
            parts.append(f"folder `{data.dir}`")
        described[", ".join(parts)] = None
        if data.fingerprint:
            fingerprints.setdefault(run.keypoints, {})[data.fingerprint[:12]] = None
    label = " + ".join(labels)
    prints = "; ".join(f"{kp} `{'`, `'.join(values)}`" for kp, values in fingerprints.items())
    sentence = f"Figures measured on **{label}** ({'; '.join(described)}"
    sentence += f"; data fingerprint per 2D source: {prints})." if prints else ")."
    lines = [sentence]
    if len(labels) > 1 or len(described) > 1 or any(len(v) > 1 for v in fingerprints.values()):
        lines.append("**Warning:** the metrics files were measured on different data; see the list above.")
    return lines, label


def _inference_lines(runs: Sequence[ExperimentMetrics]) -> list[str]:
    """Where the inference times were measured: one device for all, or each device with its experiments."""
    devices: dict[str, list[str]] = {}
    for run in runs:
        timing = run.h36m.inference_time
        text = (
            f"{timing.device_name or timing.device} (`{timing.device}`, "
            f"{timing.torch_threads} threads, {timing.path} path)"
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
    """The MLflow run of every stage behind each experiment's figures."""
    cells = [
        (
            f"[{i}]",
            f"`{r.name}`",
            fmt_run_id(r.h36m.mlflow_run_id),
            fmt_run_id(r.refine.mlflow_run_id) if r.refine is not None else DASH,
            fmt_run_id(r.dhp.mlflow_run_id) if isinstance(r.dhp, DhpEvaluation) else DASH,
            fmt_run_id(r.hard.mlflow_run_id),
            fmt_run_id(r.real.mlflow_run_id),
            fmt_run_id(r.train.mlflow_run_id),
            fmt_run_id(r.train_refine.mlflow_run_id) if r.train_refine is not None else DASH,
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
        "evaluate_real",
        "train_spatial",
        "train_refine",
    )
    return [
        "MLflow run ids (`mlflow ui`, experiment `mlpgraph`); [n] is the main table's last column.",
        "",
        *markdown_table(header, cells),
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


@dataclass(frozen=True)
class _Tables:
    """Every table of the report, as rows (the summary) and as Markdown where it is built with them."""

    main: list[dict[str, Any]]
    per_action: dict[str, Any]
    dhp: list[dict[str, Any]]
    scenes: list[str]
    sequences: list[str]
    hard: list[dict[str, Any]]
    ablations: dict[str, Any]
    ablation_lines: list[str]
    mean_pose: list[dict[str, Any]]
    mean_pose_lines: list[str]
    real: dict[str, Any]

    @classmethod
    def of(cls, runs: Sequence[ExperimentMetrics]) -> _Tables:
        """The tables of ``runs``."""
        dhp, scenes, sequences = tables.dhp_rows(runs)
        ablation_rows, ablation_lines = ablations.all_ablations(runs)
        mean_rows, mean_lines = tables.mean_pose(runs)
        return cls(
            main=tables.main_rows(runs),
            per_action=tables.per_action(runs),
            dhp=dhp,
            scenes=scenes,
            sequences=sequences,
            hard=tables.hard_rows(runs),
            ablations=ablation_rows,
            ablation_lines=ablation_lines,
            mean_pose=mean_rows,
            mean_pose_lines=mean_lines,
            real=real.real_rows(runs),
        )

    def rows(self) -> dict[str, Any]:
        """The tables' rows as :func:`build_report` returns them."""
        return {
            "main": self.main,
            "per_action": self.per_action,
            "3dhp": self.dhp,
            "hard": self.hard,
            "ablations": self.ablations,
            "mean_pose": self.mean_pose,
            "real": self.real,
        }


def _draw_plots(
    runs: Sequence[ExperimentMetrics], drawn: _Tables, label: str, plots_dir: Path, staged: Staged
) -> tuple[list[Path], dict[str, str]]:
    """Every plot under ``plots_dir`` (written where ``staged`` puts it): the files, and why each other was not."""
    jobs: list[tuple[str, Callable[[Path], bool | None]]] = [
        ("h36m_p1_per_action.png", lambda p: plots.plot_per_action(runs, drawn.per_action, label, p)),
        ("training_curves.png", lambda p: plots.plot_curves(runs, label, p)),
        ("mlpgraph_p1_vs_frames.png", lambda p: plots.plot_frames(runs, label, p)),
        ("3dhp_pck_per_scene.png", lambda p: plots.plot_3dhp(runs, drawn.dhp, drawn.scenes, p)),
        ("h36m_p1_per_joint.png", lambda p: plots.plot_per_joint(runs, label, p)),
    ]
    written: list[Path] = []
    missing: dict[str, str] = {}
    for name, job in jobs:
        path = plots_dir / name
        if job(staged.path(path)) is False:
            missing[name] = NOT_PLOTTED[name]
        else:
            written.append(path)
    return written, missing


def _introduction(metrics_dir: Path, data_lines: Sequence[str], label: str, curve_stride: int) -> list[str]:
    """The title, what the figures were measured on, where they come from and what the two selections mean.

    ``curve_stride``: the training curves' test frame stride (``evaluate.curve_frame_stride``).
    """
    curve = "" if curve_stride == 1 else f" (every {curve_stride}th test frame)"
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
        f"- **best on test**: the epoch with the lowest test P1 on the training curve{curve}, the release's "
        "selection rule. It selects on the test split, so it is optimistic; it is given only to compare with "
        "numbers obtained that way.",
        f"- **test P1 change, last {CONVERGENCE_EPOCHS} epochs**: how much the last epoch's test P1 differs from "
        f"the one {CONVERGENCE_EPOCHS} epochs before, relative to it (training curve{curve}); below "
        f"{CONVERGENCE_TOLERANCE:.0%} the run counts as converged, above it the figure is still moving "
        "and ranks how fast a network learns as much as what it reaches.",
        "",
    ]
    if not label.startswith("user data") and "synthetic" in label:
        lines += [
            "The data are synthetic, so the paper's figures (real Human3.6M) are a reference for the "
            "method's ranking and scale, not numbers these should match. How the same models do on real "
            "people's motion: see the section on real motion capture below.",
            "",
        ]
    return lines


def _results_sections(runs: Sequence[ExperimentMetrics], drawn: _Tables, skipped: Mapping[str, str]) -> list[str]:
    """The sections of figures: the paper's comparison, real people, per action, 3DHP, hard poses, ablations."""
    not_evaluated = [f"- `{name}`: {reason}." for name, reason in skipped.items()]
    return [
        "## Human3.6M: the paper's comparison",
        "",
        "P1 = MPJPE, P2 = PA-MPJPE (mm), test subjects, every frame, mean over the action families. "
        "Rows are the lifting networks as trained by `train_spatial` (refined figures: ablations below). "
        f"Paper figures only on rows in the paper's setting ({PAPER_KEYPOINTS} 2D, {PAPER_FRAMES} frame, "
        f"layout {PAPER_LAYOUT}, the paper's model; for MLP-Graph the released diagonal aggregation); "
        "the models' widths follow the preset, see the parameters.",
        "",
        *tables.main_table(drawn.main),
        "",
        *_inference_lines(runs),
        "",
        "## Real people: real motion capture through the Human3.6M cameras",
        "",
        *real.real_section(drawn.real),
        "## Human3.6M per action",
        "",
        *tables.per_action_tables(runs, drawn.per_action),
        "## MPI-INF-3DHP",
        "",
        *tables.dhp_section(drawn.dhp, drawn.scenes, drawn.sequences),
        "## Hard poses",
        "",
        *tables.hard_section(drawn.hard),
        "## Ablations",
        "",
        *drawn.ablation_lines,
        *(["## Not evaluated", "", *not_evaluated, ""] if not_evaluated else []),
        "## Mean-pose baseline",
        "",
        *drawn.mean_pose_lines,
    ]


def build_report(
    params: Mapping[str, Any],
    metrics_dir: Path,
    out_md: Path,
    plots_dir: Path,
    demos: Sequence[Mapping[str, Any]] = (),
    staged: Staged | None = None,
) -> dict[str, Any]:
    """Write the results report and its plots from the metrics files of ``params``' experiments.

    ``params`` is the preset-merged mapping of :func:`mlpgraph.params.load_params`. Reads only
    ``metrics_dir/{h36m,3dhp,hard,real,train}/EXP*.json`` for the experiments listed there (a missing
    or malformed file is a one-line :class:`UserInputError` naming it), embeds the ``demos``
    already rendered (:func:`mlpgraph.viz.render_demos`), writes ``out_md`` and
    ``plots_dir/*.png`` (a folder output of kind ``plots``, :mod:`mlpgraph.outputs`), renamed into
    place together when all are written (or, with ``staged``, where that
    :func:`~mlpgraph.outputs.atomic_outputs` block stages them), and returns a summary:
    ``{"markdown", "data", "tables": {"main", "per_action", "3dhp", "hard", "ablations",
    "mean_pose", "real"}, "plots", "missing_plots", "skipped", "fingerprints"}``.
    """
    metrics_dir, out_md, plots_dir = Path(metrics_dir), Path(out_md), Path(plots_dir)
    if staged is not None:
        return _write_report(params, metrics_dir, out_md, plots_dir, demos, staged)
    with atomic_outputs(out_md, Output(plots_dir, PLOTS)) as own:
        return _write_report(params, metrics_dir, out_md, plots_dir, demos, own)


def _write_report(
    params: Mapping[str, Any],
    metrics_dir: Path,
    out_md: Path,
    plots_dir: Path,
    demos: Sequence[Mapping[str, Any]],
    staged: Staged,
) -> dict[str, Any]:
    """:func:`build_report`'s work, writing where ``staged`` puts ``out_md`` and ``plots_dir``."""
    skipped: dict[str, str] = {}
    runs = load_metrics(params, metrics_dir, skipped)
    if not runs:
        raise UserInputError(f"{metrics_dir}: no experiment has figures ({'; '.join(skipped.values())})")
    data_lines, label = _data_lines(runs)
    drawn = _Tables.of(runs)
    written, missing = _draw_plots(runs, drawn, label, plots_dir, staged)

    def link(path: Path) -> str:
        return Path(os.path.relpath(path, out_md.parent)).as_posix()

    lines = [
        *_introduction(metrics_dir, data_lines, label, get(params, "evaluate.curve_frame_stride", 1)),
        *_results_sections(runs, drawn, skipped),
        "## Plots",
        "",
        *(f"- ![{p.stem}]({link(p)})" for p in written),
        *(f"- `{name}`: {reason}." for name, reason in missing.items()),
        "",
        *_demo_lines(demos, link),
        "## Provenance",
        "",
        *_provenance(runs),
    ]
    staged.path(out_md).write_text("\n".join(lines).rstrip("\n") + "\n")
    log.info("report: wrote %s and %d plots in %s", out_md, len(written), plots_dir)
    return {
        "markdown": str(out_md),
        "data": label,
        "tables": drawn.rows(),
        "plots": [str(p) for p in written],
        "missing_plots": missing,
        "skipped": skipped,
        "fingerprints": sorted({fp for r in runs if (fp := r.h36m.data.fingerprint)}),
    }
