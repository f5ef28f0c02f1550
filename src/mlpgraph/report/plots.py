"""The report's plots (PNG, atomically): per action, training curves, P1 against window length, 3DHP, per joint.

Each ``plot_*`` draws from the records (and the report's table rows) and writes one file;
those that can have nothing to show return False instead of writing an empty figure.
matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlpgraph.outputs import atomic_path
from mlpgraph.report.formatting import finite
from mlpgraph.report.loading import ExperimentMetrics
from mlpgraph.report.tables import SCENE_NAMES

log = logging.getLogger(__name__)

DPI = 150


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
        pairs = [(x, v) for x, v in zip(xs, values, strict=True) if finite(v)]
        ax.bar([x for x, _ in pairs], [v for _, v in pairs], bar, label=label, color=colour)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def plot_per_action(runs: Sequence[ExperimentMetrics], per_action: Mapping[str, Any], label: str, path: Path) -> None:
    """P1 per action family and its mean (the :func:`mlpgraph.report.tables.per_action` table), bars per experiment."""
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


def plot_curves(runs: Sequence[ExperimentMetrics], label: str, path: Path) -> None:
    """Training loss and test P1 after each epoch, one line per experiment (released weights have none)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    colours = _colours(runs)
    figure = Figure(figsize=(13.0, 4.8), dpi=DPI, layout="constrained")
    loss_ax, p1_ax = figure.subplots(1, 2)
    positive = True
    for run in runs:
        trained = [r for r in run.curve.history if r.epoch]  # epoch 0: released weights, nothing trained
        epochs = [r.epoch for r in trained]
        losses = [r.value("loss") for r in trained]
        p1 = [r.value("P1") for r in trained]
        positive &= all(v > 0 for v in losses if finite(v))
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


def plot_frames(runs: Sequence[ExperimentMetrics], label: str, path: Path) -> bool:
    """MLP-Graph's last-epoch P1 against window length, one line per 2D source; False without MLP-Graph."""
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
        ys = [float(r.h36m.last_epoch.P1) for r in group]
        name = f"{keypoints} 2D" + (f", {aggregation} aggregation" if aggregation not in (None, "diagonal") else "")
        ax.plot(xs, ys, marker=markers[i % len(markers)], markersize=7, label=name)
        for k, (x, y, run) in enumerate(zip(xs, ys, group, strict=True)):
            if finite(y):
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


def plot_per_joint(runs: Sequence[ExperimentMetrics], label: str, path: Path) -> bool:
    """P1's per-joint term (mm) of every experiment, joints in the layout's order."""
    with_joints = [(run, run.h36m.last_epoch.per_joint) for run in runs if run.h36m.last_epoch.per_joint]
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


def plot_3dhp(
    runs: Sequence[ExperimentMetrics], dhp_rows: Sequence[dict[str, Any]], scenes: Sequence[str], path: Path
) -> bool:
    """3DHP PCK overall and per scene (the :func:`mlpgraph.report.tables.dhp_rows`); False without 3DHP figures."""
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
