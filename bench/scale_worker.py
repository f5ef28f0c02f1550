"""The parts of ``bench/scale.py``'s stages that are timed on a part of the work, each in a process of its own.

Every command loads what its stage loads (the processed file's splits, the checkpoints), times the
stage's work on a part of it, and writes a JSON result (``--result``) with the measured seconds and
the extrapolation to the whole; ``bench/scale.py`` measures the process's peak memory and the disk
it wrote.

- ``train``: ``--warmup`` then ``--steps`` optimiser steps of the experiment's network on the
  training split: ``mlpgraph.training.make_train_step``'s step (what the training stage runs),
  the data path included (shuffled index batches, flip mask, ``PoseArrays.batch``, as
  ``mlpgraph.training.epoch`` builds them); one epoch is extrapolated from the samples/s. Saves
  the weights as ``final.pt`` and ``best.pt`` in ``--models`` (the checkpoint files the
  evaluation stages read; the same epoch, so those stages measure one model).
- ``evaluate``: protocols #1/#2 with flip averaging (``predict`` + ``evaluate_h36m``) on
  ``--samples`` test poses spread over the split, extrapolated to the whole; the mean-pose baseline
  and the inference timing of the stage are run whole.
- ``hard_pose_set``: the derived set's nearest-training-pose search (``derive_hard_poses``) for the
  first ``--candidates`` candidates, extrapolated to all; ``--out`` then gets a stand-in set of the
  derived set's size (indices spread over the test split, hardness unknown: NaN) for ``hard_poses``.

    python bench/scale_worker.py train --params P --processed F --experiment E --models DIR --result R
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpgraph.checkpoints import network_entry, networks_from_checkpoint, save_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.devices import params_device
from mlpgraph.entry import run_command
from mlpgraph.evaluation import derive_hard_poses, evaluate_h36m, predict
from mlpgraph.evaluation_stage import EvaluationSetup, mean_pose_baseline, timing
from mlpgraph.experiments import Experiment, load_experiment
from mlpgraph.hard_pose_set import DERIVED, HardPoseSet
from mlpgraph.layouts import get_layout, root_relative
from mlpgraph.models import PAPER_CONFIGS, build_model, count_parameters
from mlpgraph.outputs import CHECKPOINTS, atomic_path, output_folder
from mlpgraph.params import load_params
from mlpgraph.training import BEST, BEST_SELECTION, FINAL, FINAL_SELECTION, TrainStep, make_train_step, seed_everything
from mlpgraph.training_stage import load_split

log = logging.getLogger("bench.scale_worker")

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paper_config(experiment: Experiment, model: nn.Module) -> str | None:
    """The name of the paper configuration ``model`` is (``mlpgraph_f1``, ``mlpgraph_f243``), if it is one."""
    for name, config in PAPER_CONFIGS.items():
        if config.model == experiment.model:
            reference = build_model(config.model, **config.overrides)
            if dict(reference.config) == dict(model.config):
                return name
    return None


def training_batches(
    data: PoseArrays, batch_size: int, pad: int, flip: bool, seed: int, stride: int = 1
) -> Iterator[tuple]:
    """Endless (windows, root-relative targets) as a training epoch draws them: shuffled indices, random flips."""
    generator = torch.Generator().manual_seed(seed)
    root = get_layout(data.layout).root
    while True:
        for indices in data.index_batches(batch_size, shuffle=True, generator=generator, stride=stride):
            mask: torch.Tensor | bool = False
            if flip:
                mask = (torch.rand(len(indices), generator=generator) < 0.5).to(data.device)
            windows, targets = data.batch(indices, pad, flip=mask)
            yield windows, root_relative(targets, root)


def timed_steps(
    step: TrainStep, batches: Iterator[tuple], count: int, device: torch.device
) -> tuple[float, int, float]:
    """(seconds, samples, last loss) of ``count`` steps on the next batches, the batch construction included."""
    began = time.perf_counter()
    samples, loss = 0, torch.zeros(())
    for _ in range(count):
        windows, targets = next(batches)
        loss = step(windows, targets)
        samples += len(windows)
    last = float(loss.item())
    _sync(device)
    return time.perf_counter() - began, samples, last


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``--steps`` training steps after ``--warmup``; extrapolate one epoch; save the checkpoints.

    The step is :func:`mlpgraph.training.make_train_step`'s, told the run's length (``train.epochs``
    epochs of the split), so that ``train.compile: auto`` decides as the training stage does; the
    warm-up steps pay for a compilation.
    """
    began = time.perf_counter()
    params = load_params(args.params)
    experiment = load_experiment(params, args.experiment)
    device = params_device(params, args.params)
    data = load_split(params, Path(args.processed), "train", device, experiment)
    seed_everything(params["train"]["seed"])
    model = build_model(experiment.model, layout=data.layout, **experiment.model_args)
    batch_size, epochs, stride = (params["train"][key] for key in ("batch_size", "epochs", "frame_stride"))
    epoch_samples = data.num_targets(stride)
    run_steps = epochs * -(-epoch_samples // batch_size)
    step = make_train_step(model, args.params, keypoints=experiment.keypoints, steps=run_steps)
    batches = training_batches(data, batch_size, experiment.pad, params["train"]["flip_augment"], args.seed, stride)
    setup_s = time.perf_counter() - began
    warmup_s = timed_steps(step, batches, args.warmup, device)[0] if args.warmup else 0.0
    steps_s, samples, loss = timed_steps(step, batches, args.steps, device)
    rate = samples / steps_s
    save_s = save_checkpoints(Path(args.models), experiment, model, loss, str(data.attrs.get("fingerprint")))
    return {
        "experiment": experiment.name,
        "model_config": dict(model.config),
        "paper_config": paper_config(experiment, model),
        "parameters": count_parameters(model),
        "device": str(device),
        "precision": step.speed.precision,
        "compiled": step.speed.compile,
        "run_steps": run_steps,
        "batch_size": batch_size,
        "warmup_steps": args.warmup,
        "warmup_s": warmup_s,
        "steps": args.steps,
        "samples_timed": samples,
        "steps_s": steps_s,
        "samples_per_s": rate,
        "train_samples": epoch_samples,
        "joints": data.num_joints,
        "setup_s": setup_s,
        "checkpoint_save_s": save_s,
        "epoch_s_extrapolated": epoch_samples / rate,
        "last_loss": loss,
    }


def save_checkpoints(models: Path, experiment: Experiment, model: nn.Module, loss: float, fingerprint: str) -> float:
    """Write ``final.pt`` and ``best.pt`` (the same weights, epoch 1) as a training run does; returns the seconds."""
    began = time.perf_counter()
    folder = output_folder(models, CHECKPOINTS)
    networks = {"model": network_entry(experiment.model, model)}
    for file, selection in ((FINAL, FINAL_SELECTION), (BEST, BEST_SELECTION)):
        meta = {"selection": selection, "epoch": 1, "metrics": {"loss": loss}, "note": "bench/scale.py timed steps"}
        save_checkpoint(folder / file, networks, data_fingerprint=fingerprint, meta=meta)
    return time.perf_counter() - began


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Protocols #1/#2 with flips on a spread slice of the test split, extrapolated; baseline and timing whole."""
    began = time.perf_counter()
    params = load_params(args.params)
    experiment = load_experiment(params, args.experiment)
    ev = EvaluationSetup.load(params, experiment, Path(args.processed), args.params)
    checkpoint = Path(args.models) / FINAL
    model = networks_from_checkpoint(checkpoint)["model"].to(ev.device)
    setup_s = time.perf_counter() - began
    total = ev.test.num_samples
    indices = torch.linspace(0, total - 1, min(args.samples, total)).round().long().unique()
    began = time.perf_counter()
    pred = predict(model, ev.test, experiment.pad, ev.flip, ev.batch, indices=indices)
    evaluate_h36m(pred, ev.test, indices)
    slice_s = time.perf_counter() - began
    began = time.perf_counter()
    mean_pose_baseline(ev.train, ev.test)
    baseline_s = time.perf_counter() - began
    began = time.perf_counter()
    timing(model, experiment.frames, ev.test.num_joints, params["evaluate"]["timing_batches"])
    timing_s = time.perf_counter() - began
    whole_s = slice_s * total / len(indices)
    return {
        "experiment": experiment.name,
        "device": str(ev.device),
        "flip_test": ev.flip,
        "batch_size": ev.batch,
        "test_samples": total,
        "samples_timed": len(indices),
        "slice_s": slice_s,
        "poses_per_s": len(indices) / slice_s,
        "predict_whole_s_extrapolated": whole_s,
        "mean_pose_baseline_s": baseline_s,
        "inference_timing_s": timing_s,
        "setup_s": setup_s,
        "stage_s_extrapolated": setup_s + whole_s + baseline_s + timing_s,
        "selections_measured": 1,
    }


def hard_pose_set(args: argparse.Namespace) -> dict[str, Any]:
    """Time the derivation for the first ``--candidates`` candidates; extrapolate; write a stand-in set to ``--out``."""
    began = time.perf_counter()
    params = load_params(args.params)
    data, settings = params["data"], params["evaluate"]
    device = str(params_device(params, args.params))
    train_3d = PoseArrays.from_processed(args.processed, subjects=list(data["train_subjects"])).poses_3d
    test = PoseArrays.from_processed(args.processed, subjects=list(data["test_subjects"]))
    setup_s = time.perf_counter() - began
    every, fraction = settings["hard_every"], settings["hard_fraction"]
    total = math.ceil(test.num_samples / every)
    timed = min(args.candidates, total)
    began = time.perf_counter()
    derive_hard_poses(train_3d, test.poses_3d[: timed * every], every=every, fraction=fraction, device=device)
    slice_s = time.perf_counter() - began
    whole_s = slice_s * total / timed
    result = {
        "device": device,
        "train_samples": len(train_3d),
        "test_samples": test.num_samples,
        "candidates": total,
        "candidates_timed": timed,
        "slice_s": slice_s,
        "search_whole_s_extrapolated": whole_s,
        "setup_s": setup_s,
        "stage_s_extrapolated": setup_s + whole_s,
    }
    if args.out:
        keep = math.ceil(fraction * total)
        result["stand_in_poses"] = keep
        write_stand_in(Path(args.out), test, every, total, keep)
    return result


def write_stand_in(out: Path, test: PoseArrays, every: int, total: int, keep: int) -> None:
    """A derived-format set of ``keep`` candidates spread over the test split (hardness NaN: not measured)."""
    candidates = np.arange(0, total, dtype=np.int64) * every
    indices = candidates[np.linspace(0, total - 1, keep).round().astype(np.int64)]
    hard = HardPoseSet(
        source=DERIVED,
        indices=indices,
        hardness_mm=np.full(keep, np.nan, dtype=np.float32),
        poses_3d=test.poses_3d[torch.as_tensor(indices)].numpy(),
    )
    hard.write(out)


COMMANDS = {"train": train, "evaluate": evaluate, "hard_pose_set": hard_pose_set}


def parser() -> argparse.ArgumentParser:
    """One sub-command per timed stage; every one takes ``--params``, ``--processed`` and ``--result``."""
    result = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = result.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        sub = commands.add_parser(name)
        sub.add_argument("--params", required=True)
        sub.add_argument("--processed", required=True)
        sub.add_argument("--result", required=True, help="JSON file for the measurements")
        if name != "hard_pose_set":
            sub.add_argument("--experiment", required=True)
            sub.add_argument("--models", required=True, help="checkpoint folder (written by train, read by evaluate)")
    train_cmd, evaluate_cmd, hard_cmd = (commands.choices[name] for name in COMMANDS)
    train_cmd.add_argument("--steps", type=int, default=20)
    train_cmd.add_argument("--warmup", type=int, default=2)
    train_cmd.add_argument("--seed", type=int, default=0, help="shuffle and flip seed of the timed batches")
    evaluate_cmd.add_argument("--samples", type=int, default=4096)
    hard_cmd.add_argument("--candidates", type=int, default=256)
    hard_cmd.add_argument("--out", help="write a stand-in set of the derived set's size here")
    return result


def main(args: argparse.Namespace) -> None:
    """Run the command and write its result."""
    result = COMMANDS[args.command](args)
    with atomic_path(args.result) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(run_command("scale_worker", parser(), main))
