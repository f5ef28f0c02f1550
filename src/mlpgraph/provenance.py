"""What every metrics file and MLflow run says about where its figures come from.

:func:`data_description` is the ``data`` record each metrics file carries (the source, its scale
or folder, the layout, the preset, the data fingerprint); :func:`stage_params` the parameters an
experiment's stage logs to MLflow. Torch-free: the evaluation and training stages share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlpgraph.experiments import Experiment
from mlpgraph.results import DataDescription


def data_description(params: Mapping[str, Any], fingerprint: str | None) -> DataDescription:
    """The data the figures were measured on; ``fingerprint`` is the processed file's (or None)."""
    data = params["data"]
    synthetic = data["source"] == "synthetic"
    return DataDescription(
        source=data["source"],
        name=data["name"],
        layout=data["layout"],
        preset=params.get("preset"),
        fingerprint=fingerprint,
        scale=data["scale"] if synthetic else None,
        dir=None if synthetic else str(data["dir"]),
        label=f"synthetic Human3.6M ({data['scale']})" if synthetic else f"user data {data['name']}",
    )


def stage_params(
    params: Mapping[str, Any],
    experiment: Experiment,
    recipe: Mapping[str, Any] | None = None,
    refinement: bool = False,
) -> dict[str, Any]:
    """The parameters an experiment's stage records in its MLflow run (``refinement``: for its refinement stages)."""
    described: dict[str, Any] = {
        "experiment": {"name": experiment.name, "model": experiment.model, "keypoints": experiment.keypoints},
        "model_args": experiment.model_args,
        "data": dict(params["data"]),
        "evaluate": {key: params["evaluate"][key] for key in ("flip_test", "batch_size")},
    }
    if refinement and experiment.refinement:
        described["refinement"] = experiment.refinement
    if recipe is not None:
        described["recipe"] = dict(recipe)
    return described
