"""MLflow tracking of stage runs: one run per stage execution, and never a reason for a stage to fail.

Runs go to experiment ``mlpgraph`` in ``sqlite:///mlflow.db`` (beside the working directory)
unless ``MLFLOW_TRACKING_URI`` says otherwise. Each run is tagged with the stage, the pipeline
experiment (EXP), the DVC stage it executes (``dvc_stage``, e.g. ``preprocess@gt``), the git
commit and the data fingerprint, and logs the parameters the stage
read, per-epoch and final metrics, and small artifacts. Every call to the store is retried a few
times (SQLite may be busy when several stages finish together); if it still fails, a warning is
logged and tracking is switched off for the rest of that run, while the stage carries on.

A training run ends by logging its final lifting network as an MLflow model
(:meth:`StageRun.log_model`), registered as a new version of the model named after the
experiment (:func:`registered_model_name`), so ``mlflow ui`` lists one model per experiment. It is
stored in MLflow's ``pt2`` format (``torch.export``: a traced graph, loaded without unpickling),
with a signature, an input example and metadata; its pip requirements are given (torch), so MLflow
does not inspect the environment. A failure there is warned about and the run goes on.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

log = logging.getLogger(__name__)

MLFLOW_EXPERIMENT = "mlpgraph"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_MAX_PARAM_LENGTH = 500
QUIET_LOGGERS = ("mlflow", "alembic")
# The name of the logged lifting network inside its run (MLflow's ``name`` of a logged model).
LOGGED_MODEL_NAME = "lifting_model"
T = TypeVar("T")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or the project's default SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def git_commit(cwd: str | os.PathLike[str] = ".") -> str:
    """The checked-out commit (with ``-dirty`` if tracked files changed), or ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters as ``{"a.b": "value"}`` strings, as MLflow stores them."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:_MAX_PARAM_LENGTH]
    return flat


class StageRun:
    """One MLflow run for one stage execution, used as a context manager; every call is best-effort."""

    def __init__(
        self,
        stage: str,
        experiment: str | None = None,
        params: Mapping[str, Any] | None = None,
        data_fingerprint: str | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        item: str | None = None,
    ) -> None:
        self.stage = stage
        self.experiment = experiment
        self.item = experiment if item is None else item
        self.params = dict(params or {})
        self.data_fingerprint = data_fingerprint
        self.retries = retries
        self.backoff_s = backoff_s
        self.run_id: str | None = None
        self._enabled = True
        self._mlflow: Any = None

    def _call(self, what: str, fn: Callable[[], T], disable: bool = True) -> T | None:
        """Run ``fn`` with retries; on lasting failure warn once and (``disable``) turn tracking off for this run."""
        if not self._enabled:
            return None
        for attempt in range(1, self.retries + 1):
            try:
                return fn()
            except Exception as exc:  # the store's failure must never become the stage's failure
                if attempt == self.retries:
                    log.warning(
                        "MLflow %s failed after %d attempts (%s: %s); %s",
                        what,
                        attempt,
                        type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "",
                        f"tracking is off for this {self.stage} run" if disable else "the run goes on without it",
                    )
                    self._enabled = self._enabled and not disable
                    return None
                time.sleep(self.backoff_s * attempt)
        return None

    def __enter__(self) -> StageRun:
        def start() -> str:
            import mlflow

            # The store's own INFO chatter (table creation, migrations) would bury the stage's log.
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
            self._mlflow = mlflow
            mlflow.set_tracking_uri(tracking_uri())
            mlflow.set_experiment(MLFLOW_EXPERIMENT)
            name = self.stage if self.item is None else f"{self.stage}@{self.item}"
            tags = {
                "stage": self.stage,
                "dvc_stage": name,
                "experiment": self.experiment or "",
                "git_commit": git_commit(),
                "data_fingerprint": self.data_fingerprint or "",
            }
            run = mlflow.start_run(run_name=name, tags=tags)
            return run.info.run_id

        self.run_id = self._call("start_run", start)
        if self.run_id is not None and self.params:
            flat = flatten(self.params)
            self._call("log_params", lambda: self._mlflow.log_params(flat))
        return self

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Numeric entries of ``metrics`` (nested dicts flattened to dotted names)."""
        values = {}
        for key, value in flatten_numbers(metrics).items():
            values[key.replace("@", "_at_")] = value
        if values and self.run_id is not None:
            self._call("log_metrics", lambda: self._mlflow.log_metrics(values, step=step))

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """A small file (metrics JSON, plot) attached to the run."""
        if self.run_id is not None and Path(path).is_file():
            self._call("log_artifact", lambda: self._mlflow.log_artifact(str(path)))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags added once the stage knows them (e.g. the fingerprint of the data it just wrote)."""
        if self.run_id is not None:
            self._call("set_tags", lambda: self._mlflow.set_tags({k: str(v) for k, v in tags.items()}))

    def log_model(
        self,
        module: nn.Module,
        input_example: np.ndarray,
        registered_name: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str | None:
        """Log ``module`` as an MLflow model (pt2) and register it as a new version of ``registered_name``.

        ``input_example`` (a float32 array of a batch of more than one row, so the batch dimension
        stays free) is stored with it and gives its signature (with ``module``'s output on it).
        Returns the model URI, or None when not tracking or (with a warning) when it could not be
        logged; tracking stays on either way (``mlpgraph.export.loggable_lifting_model`` prepares a
        lifting network).
        """
        if self.run_id is None:
            return None

        def log_model() -> str:
            import warnings

            import mlflow.pytorch
            import torch
            from mlflow.models import infer_signature

            with torch.no_grad():
                output = module(torch.from_numpy(input_example)).numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.export's deprecation notes, not the stage's business
                info = mlflow.pytorch.log_model(
                    module,
                    name=LOGGED_MODEL_NAME,
                    signature=infer_signature(input_example, output),
                    input_example=input_example,
                    registered_model_name=registered_name,
                    await_registration_for=0,
                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                    metadata=dict(metadata or {}),
                    serialization_format="pt2",
                )
            return str(info.model_uri)

        return self._call("log_model", log_model, disable=False)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.run_id is not None:
            status = "FINISHED" if exc_type is None else "FAILED"
            self._call("end_run", lambda: self._mlflow.end_run(status=status))


def flatten_numbers(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested ``metrics`` as ``{"a.b": float}``; everything else is skipped."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_numbers(value, f"{name}."))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float):
            flat[name.replace(" ", "_")] = float(value)
    return flat


class NoRun:
    """What ranks > 0 of a multi-process training stage have instead of a :class:`StageRun`: no MLflow run."""

    run_id: str | None = None

    def __enter__(self) -> NoRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Nothing: rank 0 logs."""

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """Nothing: rank 0 logs."""

    def log_model(
        self, module: Any, input_example: Any, registered_name: str | None = None, metadata: Any = None
    ) -> None:
        """Nothing: rank 0 logs."""


def registered_model_name(stage: str, experiment: str) -> str:
    """The registered model a training stage's network joins: ``EXP`` (train_spatial), ``EXP.train_refine``.

    train_refine's lifting network was trained with (or under) the refinement module, so its
    versions are kept apart from train_spatial's.
    """
    return experiment if stage == "train_spatial" else f"{experiment}.{stage}"
