"""One function per pipeline stage after preprocessing: parameters in, files out.

Each ``run_*`` reads the (preset-merged) parameters and one experiment, calls the library
(:mod:`mlpgraph.training`, :mod:`mlpgraph.evaluation`), records an MLflow run, and writes its
outputs atomically. The stage CLIs (``mlpgraph train-spatial`` ...) only parse arguments and
call these. Every metrics file names the data it was measured on, the model-selection rule
of each figure, and the MLflow run.

The training stages also run under ``torchrun --nproc-per-node N`` (one process per GPU, or N CPU
processes with gloo): they set up the process group (:mod:`mlpgraph.distributed`), load the data
on the rank's device, train together (:func:`mlpgraph.training.train`), and rank 0 alone
evaluates, records the MLflow run and writes the checkpoints and the metrics and curve files.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpgraph import distributed, metrics
from mlpgraph.checkpoints import load_checkpoint, networks_from_checkpoint
from mlpgraph.data import schema
from mlpgraph.data.batches import PoseArrays
from mlpgraph.data.formats import read_3dhp_test, read_hard_poses
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation import derive_hard_poses, evaluate_3dhp, evaluate_h36m, evaluate_poses, inference_time, predict
from mlpgraph.experiments import Experiment, load_experiment
from mlpgraph.io import atomic_path, sha256_file
from mlpgraph.models import build_model, count_parameters
from mlpgraph.models.refine import mean_bone_lengths
from mlpgraph.params import get
from mlpgraph.pretrained import import_release
from mlpgraph.tracking import StageRun
from mlpgraph.training import (
    BEST,
    BEST_SELECTION,
    FINAL,
    FINAL_SELECTION,
    Recipe,
    resolve_device,
    seed_everything,
    train,
)

log = logging.getLogger(__name__)

ORACLE_NOTE = "root depth from the ground truth (the release's oracle)"
ESTIMATED_NOTE = "root depth estimated from the 2D and the training set's mean bone lengths"


def write_json(path: str | Path, content: Mapping[str, Any]) -> None:
    """``content`` as indented JSON at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n")


def data_description(params: Mapping[str, Any], fingerprint: str | None) -> dict[str, Any]:
    """What the figures were measured on: the source, its scale or folder, the layout, the fingerprint."""
    source = get(params, "data.source")
    described = {
        "source": source,
        "name": get(params, "data.name"),
        "layout": get(params, "data.layout"),
        "preset": get(params, "preset", None),
        "fingerprint": fingerprint,
    }
    if source == "synthetic":
        described["scale"] = get(params, "data.scale")
        described["label"] = f"synthetic Human3.6M ({get(params, 'data.scale')})"
    else:
        described["dir"] = str(get(params, "data.dir"))
        described["label"] = f"user data {get(params, 'data.name')}"
    return described


def recipe_for(params: Mapping[str, Any], experiment: Experiment, refine: bool = False) -> Recipe:
    """The training recipe of ``experiment``: the ``train`` section plus its keypoint kind's ``recipes`` entry."""
    train_params = dict(get(params, "train"))
    rates = dict(get(params, f"recipes.{experiment.recipe_kind}"))
    refinement = experiment.refinement or {}
    return Recipe(
        epochs=int(train_params["epochs"]),
        batch_size=int(train_params["batch_size"]),
        seed=int(train_params["seed"]),
        device=str(train_params["device"]),
        amp=bool(train_params["amp"]),
        flip_augment=bool(train_params["flip_augment"]),
        l1_weight=float(train_params["l1_weight"]),
        symmetry_weight=float(train_params["symmetry_weight"]),
        max_loss=float(train_params["max_loss"]),
        lr=float(rates["lr"]),
        lr_decay=float(rates["lr_decay"]),
        lr_decay_large=float(rates["lr_decay_large"]),
        large_decay_epoch=int(rates["large_decay_epoch"]),
        detected=experiment.recipe_kind == "detected",
        refine=refine,
        refine_mode=str(refinement.get("mode", "joint")),
        root_depth=str(refinement.get("root_depth", "gt")),
    )


def load_split(params: Mapping[str, Any], experiment: Experiment, split: str, device: torch.device) -> PoseArrays:
    """The train or test subjects of the experiment's processed file, in memory on ``device``."""
    subjects = list(get(params, f"data.{split}_subjects"))
    return PoseArrays.from_processed(experiment.processed_path(params), subjects=subjects, device=device)


def _h36m_evaluator(params: Mapping[str, Any], experiment: Experiment, test: PoseArrays, root_depth: str = "gt"):
    """The per-epoch test evaluation: P1/P2 (mm), refined when a refinement network is given."""
    flip = bool(get(params, "evaluate.flip_test"))
    batch = int(get(params, "evaluate.batch_size"))

    def evaluate(model: nn.Module, refine: nn.Module | None) -> dict[str, float]:
        record: dict[str, float] = {}
        if refine is not None:
            plain = evaluate_h36m(predict(model, test, experiment.pad, flip, batch), test)
            record["P1_spatial"], record["P2_spatial"] = plain["P1"], plain["P2"]
        pred = predict(model, test, experiment.pad, flip, batch, refine=refine, root_depth=root_depth)
        result = evaluate_h36m(pred, test)
        record["P1"], record["P2"] = result["P1"], result["P2"]
        return record

    return evaluate


def _stage_params(params: Mapping[str, Any], experiment: Experiment, recipe: Recipe | None = None) -> dict[str, Any]:
    described = {
        "experiment": {"name": experiment.name, "model": experiment.model, "keypoints": experiment.keypoints},
        "model_args": experiment.model_args,
        "data": dict(get(params, "data")),
        "evaluate": dict(get(params, "evaluate")),
    }
    if experiment.refinement:
        described["refinement"] = experiment.refinement
    if recipe is not None:
        described["recipe"] = recipe.to_dict()
    return described


def _train_summary(
    experiment: Experiment,
    model: nn.Module,
    recipe: Recipe,
    result: Any,
    data: dict[str, Any],
    run: StageRun | _NoRun,
    seconds: float,
) -> dict[str, Any]:
    last = next((r for r in result.history if r.get("epoch") == result.last_epoch), {})
    best = next((r for r in result.history if r.get("epoch") == result.best_epoch), {})
    return {
        "experiment": experiment.name,
        "model": experiment.model,
        "model_config": dict(model.config),
        "parameters": count_parameters(model),
        "recipe": recipe.to_dict(),
        "data": data,
        "epochs": result.last_epoch,
        "seconds": seconds,
        "last_epoch": {"selection": FINAL_SELECTION, **last},
        "best_on_test": {"selection": BEST_SELECTION, **best},
        "mlflow_run_id": run.run_id,
    }


class _NoRun:
    """What ranks > 0 of a multi-process training stage have instead of a :class:`StageRun`: no MLflow run."""

    run_id: str | None = None

    def __enter__(self) -> _NoRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Nothing: rank 0 logs."""

    def log_artifact(self, path: str | Path) -> None:
        """Nothing: rank 0 logs."""


def _run_training(
    params: Mapping[str, Any],
    name: str,
    stage: str,
    out_dir: Path,
    metrics_path: Path,
    curve_path: Path,
    spatial_dir: Path | None = None,
) -> dict:
    """Train one experiment (with its refinement when ``spatial_dir`` is given) and write its summaries.

    Under ``torchrun`` with more than one rank, inside a process group set up here (and torn down
    on return): every rank trains on its device, rank 0 alone evaluates, opens the MLflow run and
    writes files; every rank returns the same summary (``mlflow_run_id`` None on ranks > 0).
    """
    experiment = load_experiment(params, name)
    refining = spatial_dir is not None
    if refining and experiment.refinement is None:
        raise UserInputError(f"params: experiment {name!r} has no entry in 'refinement'")
    if experiment.pretrained is not None:
        return _import_pretrained(params, experiment, stage, out_dir, metrics_path, curve_path, refining)
    recipe = recipe_for(params, experiment, refine=refining)
    with distributed.distributed_context(recipe.device) as context:
        return _train_experiment(
            params, experiment, recipe, context, stage, out_dir, metrics_path, curve_path, spatial_dir
        )


def _train_experiment(
    params: Mapping[str, Any],
    experiment: Experiment,
    recipe: Recipe,
    context: distributed.DistributedContext,
    stage: str,
    out_dir: Path,
    metrics_path: Path,
    curve_path: Path,
    spatial_dir: Path | None,
) -> dict:
    """The body of :func:`_run_training` on one rank (``context``)."""
    name = experiment.name
    refining = spatial_dir is not None
    device = context.device
    train_data = load_split(params, experiment, "train", device)
    # Only rank 0 evaluates (the others would only hold the test split in memory).
    test_data = load_split(params, experiment, "test", device) if context.is_main else None
    fingerprint = str(train_data.attrs.get("fingerprint"))
    seed_everything(recipe.seed)
    if refining and recipe.refine_mode == "two_stage":
        model = networks_from_checkpoint(spatial_dir / FINAL)["model"]
    else:
        model = build_model(experiment.model, layout=train_data.layout, **experiment.model_args)
    refine = build_model("refine", layout=train_data.layout) if refining else None
    began = time.perf_counter()
    stage_params = _stage_params(params, experiment, recipe)
    tracked = StageRun(stage, name, stage_params, fingerprint) if context.is_main else _NoRun()
    with tracked as run:
        result = train(
            model,
            train_data,
            recipe,
            out_dir,
            pad=experiment.pad,
            evaluate=_h36m_evaluator(params, experiment, test_data) if test_data is not None else None,
            refine=refine,
            on_epoch=lambda epoch, record: run.log_metrics(record, step=epoch),
            data_fingerprint=fingerprint,
            model_name=experiment.model,
        )
        summary = _train_summary(
            experiment, model, recipe, result, data_description(params, fingerprint), run, time.perf_counter() - began
        )
        if refining:
            summary["refinement"] = experiment.refinement
            summary["selection_metric"] = f"refined P1 on the test split, {ORACLE_NOTE}"
        if context.is_distributed:
            summary["processes"] = context.world_size
        if context.is_main:
            write_json(metrics_path, summary)
            write_json(curve_path, {"history": result.history})
            run.log_artifact(metrics_path)
    return summary


RELEASE_SELECTION = "released checkpoint (trained by the MLP-Graph authors)"
SKIPPED_MARKER = "SKIPPED.json"


def _import_pretrained(
    params: Mapping[str, Any],
    experiment: Experiment,
    stage: str,
    out_dir: Path,
    metrics_path: Path,
    curve_path: Path,
    refining: bool,
) -> dict:
    """The training stages of a pretrained experiment: import the release's files instead of training.

    ``final.pt`` and ``best.pt`` are the same released network (nothing here selects on any split).
    Without ``pretrained.dir`` the folder holds only ``SKIPPED.json`` and the summary says why.
    """
    name = experiment.name
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (FINAL, BEST, SKIPPED_MARKER):
        (out_dir / stale).unlink(missing_ok=True)
    summary: dict[str, Any] = {
        "experiment": name,
        "model": experiment.model,
        "source": "MLP-Graph release",
        "data": data_description(params, None),
    }
    with StageRun(stage, name, _stage_params(params, experiment)) as run:
        reason = experiment.skipped_reason
        if reason is not None:
            summary.update(available=False, reason=reason)
            run.set_tags({"available": False})
            write_json(out_dir / SKIPPED_MARKER, {"experiment": name, "reason": reason})
            log.info("%s@%s: skipped (%s)", stage, name, reason)
        else:
            weights = experiment.release_file("weights")
            refine = experiment.release_file("refine") if refining else None
            for path in (weights, refine):
                if path is not None and not path.is_file():
                    raise UserInputError(f"{path}: release file not found (experiments.{name}.pretrained)")
            expected = {"frames": experiment.frames, "layout": get(params, "data.layout")}
            config = import_release(weights, out_dir / FINAL, refine_weights=refine, expected=expected)
            sources = {p.name: sha256_file(p) for p in (weights, refine) if p is not None}
            run.set_tags({"data_fingerprint": "+".join(sources.values())})
            shutil.copyfile(out_dir / FINAL, out_dir / BEST)
            model = networks_from_checkpoint(out_dir / FINAL)["model"]
            summary.update(
                available=True,
                model_config=config,
                parameters=count_parameters(model),
                source_files=sources,
                epochs=0,
                last_epoch={"selection": RELEASE_SELECTION, "epoch": 0},  # no epoch trained here
                best_on_test={"selection": RELEASE_SELECTION, "epoch": 0},
            )
        summary["mlflow_run_id"] = run.run_id
        write_json(metrics_path, summary)
        # Nothing was trained; one empty point keeps `dvc plots show` working (it refuses an empty list).
        write_json(curve_path, {"history": [{"epoch": 0, "loss": None, "P1": None}], "note": "no training here"})
        run.log_artifact(metrics_path)
    return summary


def _skipped(params: Mapping[str, Any], stage: str, name: str, out_path: Path) -> dict | None:
    """For a skipped pretrained experiment: write its ``available: false`` metrics file and return it."""
    experiment = load_experiment(params, name)
    if experiment.skipped_reason is None:
        return None
    out = {"experiment": name, "model": experiment.model, "available": False, "reason": experiment.skipped_reason}
    with StageRun(stage, name, _stage_params(params, experiment)) as run:
        run.set_tags({"available": False})
        out["mlflow_run_id"] = run.run_id
        write_json(out_path, out)
    return out


def run_train_spatial(
    params: Mapping[str, Any], name: str, out_dir: Path, metrics_path: Path, curve_path: Path
) -> dict:
    """Stage train_spatial@EXP: the lifting network alone, with the released recipe."""
    return _run_training(params, name, "train_spatial", out_dir, metrics_path, curve_path)


def run_train_refine(
    params: Mapping[str, Any], name: str, spatial_dir: Path, out_dir: Path, metrics_path: Path, curve_path: Path
) -> dict:
    """Stage train_refine@EXP: lifting network and refinement together (joint), or the refinement alone (two_stage)."""
    return _run_training(params, name, "train_refine", out_dir, metrics_path, curve_path, spatial_dir)


def _mean_pose_baseline(train_data: PoseArrays, test_data: PoseArrays) -> dict[str, float]:
    """P1/P2 of predicting the training set's mean root-relative pose for every test sample."""
    mean = train_data.poses_3d.mean(dim=0, keepdim=True)
    pred = mean.expand_as(test_data.poses_3d)
    result = evaluate_h36m(pred, test_data)
    return {"P1": result["P1"], "P2": result["P2"]}


def _h36m_figures(result: Mapping[str, Any], selection: str) -> dict[str, Any]:
    return {
        "selection": selection,
        "P1": result["P1"],
        "P2": result["P2"],
        "P1_sample_mean": result["P1_sample_mean"],
        "P2_sample_mean": result["P2_sample_mean"],
        "num_samples": result["num_samples"],
        "per_joint": result["per_joint"],
        "per_action": {
            family: {"P1": r["P1"], "P2": r["P2"], "num_samples": r["num_samples"]}
            for family, r in result["per_family"].items()
        },
    }


def _timing(params: Mapping[str, Any], model: nn.Module, experiment: Experiment, layout_joints: int) -> dict:
    deployed = copy.deepcopy(model).eval()
    if hasattr(deployed, "fuse_for_inference"):
        deployed.fuse_for_inference()
    batches = tuple(int(b) for b in get(params, "evaluate.timing_batches"))
    device = next(deployed.parameters()).device
    timing = inference_time(deployed, (experiment.frames, layout_joints, 2), device, batch_sizes=batches)
    timing["path"] = "fused" if getattr(deployed, "is_fused", False) else "plain"
    return timing


@dataclass
class _Evaluation:
    """What every evaluation stage starts from: the experiment, its splits and the protocol settings."""

    experiment: Experiment
    device: torch.device
    flip: bool
    batch: int
    train: PoseArrays
    test: PoseArrays
    fingerprint: str

    @classmethod
    def setup(cls, params: Mapping[str, Any], name: str) -> _Evaluation:
        experiment = load_experiment(params, name)
        device = resolve_device(str(get(params, "train.device")))
        test = load_split(params, experiment, "test", device)
        return cls(
            experiment=experiment,
            device=device,
            flip=bool(get(params, "evaluate.flip_test")),
            batch=int(get(params, "evaluate.batch_size")),
            train=load_split(params, experiment, "train", device),
            test=test,
            fingerprint=str(test.attrs.get("fingerprint")),
        )

    def header(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The fields every metrics file of an experiment starts with."""
        return {
            "experiment": self.experiment.name,
            "model": self.experiment.model,
            "keypoints": self.experiment.keypoints,
            "frames": self.experiment.frames,
            "flip_test": self.flip,
            "data": data_description(params, self.fingerprint),
        }


# The two models every figure is given for: (key in the metrics file, checkpoint, selection label).
SELECTIONS = (("last_epoch", FINAL, FINAL_SELECTION), ("best_on_test", BEST, BEST_SELECTION))


def _selections(models_dir: Path) -> Iterator[tuple[str, str, Path, str | None]]:
    """``SELECTIONS`` for ``models_dir``: (key, selection label, checkpoint, twin).

    ``twin`` is the key of an earlier selection holding the same weights (the same training epoch,
    or the same file for imported checkpoints); its figures are reused instead of measured again,
    which halves the evaluation when the last epoch is also the best.
    """
    seen: dict[Any, str] = {}
    for key, file, selection in SELECTIONS:
        path = models_dir / file
        epoch = load_checkpoint(path)["meta"].get("epoch")
        identity = ("epoch", epoch) if epoch is not None else ("file", sha256_file(path))
        twin = seen.setdefault(identity, key)
        yield key, selection, path, (twin if twin != key else None)


def _relabelled(figures: Any, selection: str) -> Any:
    """A deep copy of ``figures`` with every ``selection`` field set to ``selection``."""
    if isinstance(figures, Mapping):
        return {k: selection if k == "selection" else _relabelled(v, selection) for k, v in figures.items()}
    return copy.deepcopy(figures)


def run_evaluate_h36m(params: Mapping[str, Any], name: str, models_dir: Path, out_path: Path) -> dict:
    """Stage evaluate_h36m@EXP: P1/P2 per action on the test subjects, every frame, flip averaging."""
    if (skipped := _skipped(params, "evaluate_h36m", name, out_path)) is not None:
        return skipped
    ev = _Evaluation.setup(params, name)
    out = {**ev.header(params), "mean_pose_baseline": _mean_pose_baseline(ev.train, ev.test)}
    with StageRun("evaluate_h36m", name, _stage_params(params, ev.experiment), ev.fingerprint) as run:
        for key, selection, path, twin in _selections(models_dir):
            if twin is not None:
                out[key] = _relabelled(out[twin], selection)
            else:
                model = networks_from_checkpoint(path)["model"].to(ev.device)
                result = evaluate_h36m(predict(model, ev.test, ev.experiment.pad, ev.flip, ev.batch), ev.test)
                out[key] = _h36m_figures(result, selection)
            run.log_metrics({key: {"P1": out[key]["P1"], "P2": out[key]["P2"]}})
        out["parameters"] = count_parameters(model)
        out["model_config"] = dict(model.config)
        out["inference_time"] = _timing(params, model, ev.experiment, ev.test.num_joints)
        out["mlflow_run_id"] = run.run_id
        write_json(out_path, out)
        run.log_artifact(out_path)
    return out


def run_evaluate_refine(params: Mapping[str, Any], name: str, models_dir: Path, out_path: Path) -> dict:
    """Stage evaluate_refine@EXP: P1/P2 with and without refinement, with oracle and estimated root depth."""
    if (skipped := _skipped(params, "evaluate_refine", name, out_path)) is not None:
        return skipped
    ev = _Evaluation.setup(params, name)
    experiment, device, flip, batch, test_data = ev.experiment, ev.device, ev.flip, ev.batch, ev.test
    bones = mean_bone_lengths(ev.train.poses_3d, ev.train.layout)
    out = {**ev.header(params), "refinement": experiment.refinement}
    with StageRun("evaluate_refine", name, _stage_params(params, experiment), ev.fingerprint) as run:
        for key, selection, path, twin in _selections(models_dir):
            if twin is not None:
                out[key] = _relabelled(out[twin], selection)
            else:
                nets = networks_from_checkpoint(path)
                model, refine = nets["model"].to(device), nets["refine"].to(device)
                figures: dict[str, Any] = {"selection": selection}
                plain = evaluate_h36m(predict(model, test_data, experiment.pad, flip, batch), test_data)
                figures["without_refinement"] = _h36m_figures(plain, selection)
                for depth, note in (("gt", ORACLE_NOTE), ("estimated", ESTIMATED_NOTE)):
                    pred = predict(model, test_data, experiment.pad, flip, batch, refine, depth, bones)
                    figures[f"refined_{depth}_root"] = {
                        **_h36m_figures(evaluate_h36m(pred, test_data), selection),
                        "note": note,
                    }
                out[key] = figures
            run.log_metrics(
                {
                    key: {
                        "P1_without_refinement": out[key]["without_refinement"]["P1"],
                        "P1_refined_gt_root": out[key]["refined_gt_root"]["P1"],
                        "P1_refined_estimated_root": out[key]["refined_estimated_root"]["P1"],
                    }
                }
            )
        out["mlflow_run_id"] = run.run_id
        write_json(out_path, out)
        run.log_artifact(out_path)
    return out


def find_3dhp_file(raw_dir: Path) -> Path | None:
    """The raw folder's MPI-INF-3DHP test file (P-STMO's or PoseAug's format), if any."""
    for name in (schema.RAW_3DHP_PSTMO, schema.RAW_3DHP_POSEAUG):
        if (raw_dir / name).is_file():
            return raw_dir / name
    return None


def run_evaluate_3dhp(params: Mapping[str, Any], name: str, models_dir: Path, raw_dir: Path, out_path: Path) -> dict:
    """Stage evaluate_3dhp@EXP: PCK@150 mm and AUC on the MPI-INF-3DHP test set (cross-data-set)."""
    if (skipped := _skipped(params, "evaluate_3dhp", name, out_path)) is not None:
        return skipped
    experiment = load_experiment(params, name)
    device = resolve_device(str(get(params, "train.device")))
    flip = bool(get(params, "evaluate.flip_test"))
    path = find_3dhp_file(raw_dir)
    out: dict[str, Any] = {"experiment": name, "model": experiment.model, "flip_test": flip}
    if path is None:
        out.update(available=False, reason=f"no MPI-INF-3DHP test file in {raw_dir}")
        write_json(out_path, out)
        return out
    test = read_3dhp_test(path, layout=get(params, "data.layout"))
    fingerprint = sha256_file(path)
    out.update(available=True, file=path.name, data=data_description(params, fingerprint))
    with StageRun("evaluate_3dhp", name, _stage_params(params, experiment), fingerprint) as run:
        for key, selection, path, twin in _selections(models_dir):
            if twin is not None:
                out[key] = _relabelled(out[twin], selection)
            else:
                model = networks_from_checkpoint(path)["model"].to(device)
                batch = int(get(params, "evaluate.batch_size"))
                out[key] = {"selection": selection, **evaluate_3dhp(model, test, experiment.pad, flip, batch, device)}
            run.log_metrics({key: {"PCK": out[key]["PCK"], "AUC": out[key]["AUC"]}})
        out["mlflow_run_id"] = run.run_id
        write_json(out_path, out)
        run.log_artifact(out_path)
    return out


def run_hard_pose_set(params: Mapping[str, Any], raw_dir: Path, processed: Path, out_path: Path) -> dict:
    """Stage hard_pose_set: the user's hard-pose file if fetched, else the derived top-5 % set (model.md)."""
    user = raw_dir / schema.RAW_HARD_POSES
    layout = get(params, "data.layout")
    if user.is_file():
        hard = read_hard_poses(user, layout=layout)
        fingerprint = sha256_file(user)
        arrays = {"source": np.array("user"), "poses_2d": hard.poses_2d, "poses_3d": hard.poses_3d}
    else:
        train_subjects = list(get(params, "data.train_subjects"))
        test_subjects = list(get(params, "data.test_subjects"))
        train_3d = PoseArrays.from_processed(processed, subjects=train_subjects).poses_3d
        test = PoseArrays.from_processed(processed, subjects=test_subjects)
        fingerprint = str(test.attrs.get("fingerprint"))
        device = resolve_device(str(get(params, "train.device")))
        indices, hardness = derive_hard_poses(
            train_3d,
            test.poses_3d,
            every=int(get(params, "evaluate.hard_every")),
            fraction=float(get(params, "evaluate.hard_fraction")),
            device=str(device),
        )
        indices = np.asarray(indices, dtype=np.int64)
        arrays = {
            "source": np.array("derived"),
            "indices": indices,
            "hardness_mm": np.asarray(hardness, dtype=np.float32),
            "poses_3d": test.poses_3d[torch.as_tensor(indices)].numpy(),
        }
    with atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    summary = {"source": str(arrays["source"]), "num_poses": len(arrays["poses_3d"])}
    described = {
        "evaluate": {key: get(params, f"evaluate.{key}") for key in ("hard_every", "hard_fraction")},
        "source": summary["source"],
    }
    with StageRun("hard_pose_set", params=described, data_fingerprint=fingerprint) as run:
        run.log_metrics({"num_poses": summary["num_poses"]})
    log.info("hard poses: %s", summary)
    return summary


def run_hard_poses(params: Mapping[str, Any], name: str, models_dir: Path, hard_path: Path, out_path: Path) -> dict:
    """Stage hard_poses@EXP: P1/P2 with flip on the hard-pose set (derived or the user's)."""
    if (skipped := _skipped(params, "hard_poses", name, out_path)) is not None:
        return skipped
    experiment = load_experiment(params, name)
    device = resolve_device(str(get(params, "train.device")))
    flip = bool(get(params, "evaluate.flip_test"))
    batch = int(get(params, "evaluate.batch_size"))
    with np.load(hard_path, allow_pickle=False) as content:
        hard = {key: content[key] for key in content.files}
    source = str(hard["source"])
    out: dict[str, Any] = {"experiment": name, "model": experiment.model, "flip_test": flip, "source": source}
    test = load_split(params, experiment, "test", device) if source == "derived" else None
    fingerprint = str(test.attrs.get("fingerprint")) if test is not None else None
    out["data"] = data_description(params, fingerprint)
    with StageRun("hard_poses", name, _stage_params(params, experiment), fingerprint) as run:
        for key, selection, path, twin in _selections(models_dir):
            if twin is not None:
                out[key] = _relabelled(out[twin], selection)
                run.log_metrics({key: {"P1": out[key]["P1"], "P2": out[key]["P2"]}})
                continue
            model = networks_from_checkpoint(path)["model"].to(device)
            if test is not None:
                indices = torch.as_tensor(hard["indices"], device=device)
                pred = predict(model, test, experiment.pad, flip, batch, indices=indices)
                target = test.poses_3d[indices]
                result = {
                    "P1": metrics.mpjpe(pred * 1000, target * 1000),
                    "P2": metrics.pa_mpjpe(pred * 1000, target * 1000),
                    "num_samples": len(indices),
                }
            else:
                result = evaluate_poses(
                    model, hard["poses_2d"], hard["poses_3d"], flip, get(params, "data.layout"), experiment.pad
                )
            out[key] = {
                "selection": selection,
                "P1": result["P1"],
                "P2": result["P2"],
                "num_samples": result["num_samples"],
            }
            run.log_metrics({key: {"P1": result["P1"], "P2": result["P2"]}})
        out["mlflow_run_id"] = run.run_id
        write_json(out_path, out)
        run.log_artifact(out_path)
    return out
