"""The training loop: set up, resume or start, then per epoch train, record, select and save.

One loop trains a lifting network (MLP-Graph or a graph baseline) and, optionally, the pose
refinement (docs/baselines.md section 5): ``refine_mode="joint"`` (the release) trains both in one
Adam(amsgrad) optimiser, ``"two_stage"`` (the pipeline's ``train_refine`` stage) only the refinement
on a frozen lifting network (:mod:`mlpgraph.training.epoch`). After every epoch the learning rate is
decayed, the caller's ``evaluate`` runs, and the checkpoints are written
(:mod:`mlpgraph.training.checkpointing`, :mod:`mlpgraph.training.state`).

Multi-process training: under ``torchrun --nproc-per-node N`` (the process group initialised by
:mod:`mlpgraph.distributed`, world size > 1) the trained networks are wrapped in
``DistributedDataParallel`` (two-stage: the refinement only) with their batch norms synchronised
over the ranks. Rank 0 alone evaluates, calls ``on_epoch`` and writes the checkpoints (of the raw
modules: no ``module.`` prefix) and broadcasts the epoch record, so every rank keeps the same
history and best epoch. The losses and weights of an N-process run equal a one-process run's to
float rounding (with dropout off; with dropout on the masks differ). A plain single process runs
the one-process code path, bit for bit.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mlpgraph import distributed
from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.models.refine import mean_bone_lengths
from mlpgraph.training.checkpointing import LAST, RunCheckpoints
from mlpgraph.training.epoch import EpochContext, train_epoch
from mlpgraph.training.recipe import Recipe, lr_after_epoch, resolve_device
from mlpgraph.training.rng import rng_state
from mlpgraph.training.state import RunState, TrainResult, resume_or_start
from mlpgraph.training.step import configure_speed_and_optimiser

log = logging.getLogger(__name__)

Evaluate = Callable[[nn.Module, nn.Module | None], Mapping[str, float]]
OnEpoch = Callable[[int, dict[str, float]], None]


def train(
    model: nn.Module,
    train_data: PoseArrays,
    recipe: Recipe,
    checkpoint_dir: str | os.PathLike[str],
    pad: int,
    evaluate: Evaluate | None = None,
    refine: nn.Module | None = None,
    on_epoch: OnEpoch | None = None,
    data_fingerprint: str | None = None,
    bone_lengths: Tensor | None = None,
    model_name: str = "mlpgraph",
) -> TrainResult:
    """Train ``model`` (and ``refine`` when ``recipe.refine``) on ``train_data``; resume from ``last.pt`` if present.

    ``pad``: windows of 2 * pad + 1 frames. After each epoch: learning-rate decay, then
    ``evaluate(model, refine)`` (networks in eval mode, under ``torch.no_grad``; the caller's test
    metrics, "P1" in mm at least, and with refinement the refined P1, which selects best.pt), then
    ``on_epoch(epoch, record)`` with the epoch's record (epoch, lr used, losses, metrics), then
    the checkpoints. The networks are moved to the recipe's device in place and hold the last
    epoch's weights, in eval mode, on return. Seeds every RNG with ``recipe.seed`` at a fresh start
    (build the networks after :func:`~mlpgraph.training.rng.seed_everything` for reproducible
    initial weights). ``bone_lengths`` (refinement only; default: the training set's mean per bone)
    feed the "estimated" root depth and are saved in every checkpoint's meta for the evaluation
    stages. Raises :class:`~mlpgraph.training.epoch.TrainingDiverged` on a non-finite or exploded
    loss, ``UserInputError`` when ``last.pt`` belongs to another recipe, network configuration or data set.

    Under an initialised process group with more than one rank (``torchrun``; see the module
    docstring) call it on every rank with the same arguments: the ranks share each global batch,
    rank 0 alone calls ``evaluate`` and ``on_epoch`` and writes ``checkpoint_dir`` (which must be
    the same folder, readable by every rank, for resuming), and every rank returns the same result.
    A CUDA device without index means the rank's current device (``cuda:LOCAL_RANK``).
    """
    _check_refinement_given(recipe, refine)
    directory = Path(checkpoint_dir)
    ctx = _set_up(model, refine, train_data, recipe, pad, bone_lengths, directory / LAST)
    checkpoints = RunCheckpoints(directory, recipe, model_name, data_fingerprint, ctx.bone_lengths)
    state = resume_or_start(ctx, checkpoints)
    if state.epoch < recipe.epochs:
        _run_epochs(ctx, checkpoints, state, evaluate, on_epoch)
    else:
        _complete_finished_run(ctx, checkpoints, state)
    _eval_mode(ctx)
    return state.result()


def _check_refinement_given(recipe: Recipe, refine: nn.Module | None) -> None:
    """Refuse a refinement network without ``recipe.refine``, and the reverse."""
    if recipe.refine != (refine is not None):
        raise UserInputError(
            "recipe.refine is true but no refinement network was given"
            if recipe.refine
            else "a refinement network was given but recipe.refine is false"
        )


def _set_up(
    model: nn.Module,
    refine: nn.Module | None,
    data: PoseArrays,
    recipe: Recipe,
    pad: int,
    bone_lengths: Tensor | None,
    last_path: Path,
) -> EpochContext:
    """The run's device (the networks and data moved there), bone lengths, optimiser and generator."""
    device = resolve_device(recipe.device)
    if distributed.world_size() > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if data.device != device:
        data = data.to(device)
    model.to(device)
    if refine is not None:
        refine.to(device)
        if bone_lengths is None:
            bone_lengths = mean_bone_lengths(data.poses_3d, data.layout)
        bone_lengths = torch.as_tensor(bone_lengths, dtype=torch.float32, device=device)
    params = [p for module in _trained_networks(model, refine, recipe) for p in module.parameters()]
    steps = recipe.epochs * -(-data.num_samples // recipe.batch_size)
    speed, optimisation = configure_speed_and_optimiser(params, recipe, device, steps)
    generator = torch.Generator(device="cpu")
    return EpochContext(
        model, refine, data, recipe, pad, device, optimisation, generator, bone_lengths, last_path, speed,
        speed.forward(model),
    )


def _trained_networks(model: nn.Module, refine: nn.Module | None, recipe: Recipe) -> list[nn.Module]:
    """The networks the optimiser updates: the refinement alone in two-stage mode, else every network."""
    if recipe.two_stage:
        return [refine]
    return [model] + ([refine] if refine is not None else [])


def _run_epochs(
    ctx: EpochContext, checkpoints: RunCheckpoints, state: RunState, evaluate: Evaluate | None, on_epoch: OnEpoch | None
) -> None:
    """Every remaining epoch: train, record (with rank 0's evaluation), select the best, save the checkpoints."""
    with _distributed_networks(ctx) as epoch_ctx:
        for epoch in range(state.epoch + 1, ctx.recipe.epochs + 1):
            losses = train_epoch(epoch_ctx, epoch)
            record = _record_epoch(ctx, state, epoch, losses, evaluate)
            if on_epoch is not None and distributed.rank() == 0:
                on_epoch(epoch, dict(record))
            improved = state.select(epoch, record)
            _save_epoch(ctx, checkpoints, state, record, improved)
            # Rank 0 has finished writing before any rank reads a checkpoint (e.g. the divergence guard).
            distributed.barrier()


@contextmanager
def _distributed_networks(ctx: EpochContext) -> Iterator[EpochContext]:
    """What the epochs run: ``ctx`` itself in one process, DDP wrappers under a multi-rank process group.

    The wrappers share the raw networks' parameters; their batch norms are globally synchronised
    for the epochs and plain again on exit.
    """
    if distributed.world_size() == 1:
        yield ctx
        return
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    synced = _trained_networks(ctx.model, ctx.refine, ctx.recipe)
    for module in synced:
        distributed.synchronise_batch_norm(module)
    model, refine = ctx.model, ctx.refine
    if not ctx.two_stage:
        model = DistributedDataParallel(model, device_ids=device_ids)
    if refine is not None:
        refine = DistributedDataParallel(refine, device_ids=device_ids)
    try:
        yield dataclasses.replace(ctx, model=model, refine=refine, forward=ctx.speed.forward(model))
    finally:
        for module in synced:
            distributed.unsynchronise_batch_norm(module)


def _record_epoch(
    ctx: EpochContext, state: RunState, epoch: int, losses: Mapping[str, float], evaluate: Evaluate | None
) -> dict[str, float]:
    """The epoch's record (epoch, lr used, losses, rank 0's metrics), the same on every rank; the lr decays."""
    main = distributed.rank() == 0
    record: dict[str, float] = {"epoch": epoch, "lr": state.lr, **losses}
    state.lr = lr_after_epoch(state.lr, epoch, ctx.recipe)
    ctx.optimisation.set_lr(state.lr)
    if evaluate is not None and main:
        _eval_mode(ctx)
        with torch.no_grad():
            metrics = evaluate(ctx.model, ctx.refine)
        record.update({key: float(value) for key, value in metrics.items()})
    record = distributed.broadcast_object(record)
    state.history.append(record)
    state.epoch = epoch
    if main:
        figures = " ".join(f"{key} {value:.5g}" for key, value in record.items() if key not in ("epoch", "lr"))
        log.info("epoch %d/%d lr %.4g %s", epoch, ctx.recipe.epochs, record["lr"], figures)
    return record


def _save_epoch(
    ctx: EpochContext, checkpoints: RunCheckpoints, state: RunState, record: Mapping[str, float], improved: bool
) -> None:
    """Rank 0 writes the epoch's checkpoints (best when ``improved``, last, final after the last epoch).

    Every rank takes part in gathering the RNG states (a collective).
    """
    rng = rng_state(ctx.generator, ctx.device)
    if distributed.rank() != 0:
        return
    networks = checkpoints.networks(ctx.model, ctx.refine)
    checkpoints.save_epoch(networks, state.epoch, record, state.training_entry(ctx, rng), improved)
    if state.epoch == ctx.recipe.epochs:
        checkpoints.save_final(ctx.model, ctx.refine, state.history)


def _complete_finished_run(ctx: EpochContext, checkpoints: RunCheckpoints, state: RunState) -> None:
    """A run restarted after its last epoch: rank 0 makes sure final.pt holds that epoch."""
    if distributed.rank() == 0:
        checkpoints.ensure_final(ctx.model, ctx.refine, state.history)
    distributed.barrier()


def _eval_mode(ctx: EpochContext) -> None:
    ctx.model.eval()
    if ctx.refine is not None:
        ctx.refine.eval()
