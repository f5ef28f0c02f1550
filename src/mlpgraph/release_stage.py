"""Pretrained experiments: the release's weights imported by the training stages, or the stage skipped.

An experiment with a ``pretrained`` entry is not trained: its training stages convert the
MLP-Graph release's ``.pth`` files from ``pretrained.dir`` into ``final.pt`` (and ``best.pt``, the
same network: nothing here selects on any split), and every later stage evaluates them like any
other experiment. Without ``pretrained.dir`` every stage of the experiment is *skipped*: it writes
a :class:`~mlpgraph.results.Skipped` record saying why, and an MLflow run tagged ``available: false``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.errors import UserInputError
from mlpgraph.experiments import Experiment
from mlpgraph.io import sha256_file
from mlpgraph.models import count_parameters
from mlpgraph.outputs import CHECKPOINTS, atomic_outputs, atomic_path, output_folder
from mlpgraph.pretrained import import_release
from mlpgraph.provenance import data_description, stage_params
from mlpgraph.results import RELEASE_SOURCE, EpochRecord, ReleaseSummary, Skipped, TrainingCurve, write_record
from mlpgraph.tracking import StageRun
from mlpgraph.training import BEST, FINAL

if TYPE_CHECKING:
    from mlpgraph.training_stage import TrainingOutputs

RELEASE_SELECTION = "released checkpoint (trained by the MLP-Graph authors)"
SKIPPED_MARKER = "SKIPPED.json"
# Nothing was trained; one point keeps `dvc plots show` working (it refuses an empty list).
RELEASE_CURVE = TrainingCurve(
    history=(EpochRecord(epoch=0, figures={"loss": None, "P1": None}),), note="no training here"
)


def skip_if_unavailable(params: Mapping[str, Any], stage: str, experiment: Experiment, out: Path) -> bool:
    """For a pretrained experiment without its release folder: write its :class:`Skipped` file, return True."""
    if experiment.skipped_reason is None:
        return False
    with StageRun(stage, experiment.name, stage_params(params, experiment)) as run:
        run.set_tags({"available": False})
        name, reason = experiment.name, experiment.skipped_reason
        write_record(out, Skipped(experiment=name, model=experiment.model, reason=reason, mlflow_run_id=run.run_id))
    return True


def import_release_stage(
    params: Mapping[str, Any], experiment: Experiment, stage: str, outputs: TrainingOutputs, refining: bool
) -> ReleaseSummary | Skipped:
    """The training stage of a pretrained experiment: import the release's files, or record the skip."""
    output_folder(outputs.models, CHECKPOINTS)
    for stale in (FINAL, BEST, SKIPPED_MARKER):
        (outputs.models / stale).unlink(missing_ok=True)
    with StageRun(stage, experiment.name, stage_params(params, experiment, refinement=refining)) as run:
        if experiment.skipped_reason is not None:
            run.set_tags({"available": False})
            marker = {"experiment": experiment.name, "reason": experiment.skipped_reason}
            with atomic_path(outputs.models / SKIPPED_MARKER) as tmp:
                tmp.write_text(json.dumps(marker, indent=2) + "\n")
            summary: ReleaseSummary | Skipped = Skipped(
                experiment=experiment.name,
                model=experiment.model,
                source=RELEASE_SOURCE,
                data=data_description(params, None),
                reason=experiment.skipped_reason,
                mlflow_run_id=run.run_id,
            )
        else:
            summary = _imported(params, experiment, outputs.models, refining, run)
        with atomic_outputs(outputs.summary, outputs.curve) as (summary_tmp, curve_tmp):
            write_record(summary_tmp, summary)
            write_record(curve_tmp, RELEASE_CURVE)
        run.log_artifact(outputs.summary)
    return summary


def _imported(
    params: Mapping[str, Any], experiment: Experiment, out_dir: Path, refining: bool, run: StageRun
) -> ReleaseSummary:
    """Convert the release's files into ``final.pt`` (copied to ``best.pt``) and describe them."""
    weights = experiment.release_file("weights")
    refine = experiment.release_file("refine") if refining else None
    for path in (weights, refine):
        if path is not None and not path.is_file():
            raise UserInputError(f"{path}: release file not found (experiments.{experiment.name}.pretrained)")
    expected = {"frames": experiment.frames, "layout": params["data"]["layout"]}
    config = import_release(weights, out_dir / FINAL, refine_weights=refine, expected=expected)
    sources = {p.name: sha256_file(p) for p in (weights, refine) if p is not None}
    run.set_tags({"data_fingerprint": "+".join(sources.values())})
    shutil.copyfile(out_dir / FINAL, out_dir / BEST)
    model = networks_from_checkpoint(out_dir / FINAL)["model"]
    released = EpochRecord(selection=RELEASE_SELECTION, epoch=0)  # no epoch trained here
    return ReleaseSummary(
        experiment=experiment.name,
        model=experiment.model,
        source=RELEASE_SOURCE,
        data=data_description(params, None),
        model_config=config,
        parameters=count_parameters(model),
        source_files=sources,
        epochs=0,
        last_epoch=released,
        best_on_test=released,
        mlflow_run_id=run.run_id,
    )
