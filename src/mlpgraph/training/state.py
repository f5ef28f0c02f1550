"""Where a training run stands between epochs, and starting it afresh or resuming it from ``last.pt``.

``last.pt`` records everything needed to resume (weights, optimiser, learning rate, every RNG state,
history, best-so-far), so a run killed at any point and restarted ends with exactly the numbers of
an uninterrupted one (bit for bit on CPU). A multi-rank run keeps every rank's torch RNG state;
a restart with another world size warns and reseeds deterministically (:mod:`mlpgraph.training.rng`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpgraph import distributed
from mlpgraph.checkpoints import load_checkpoint, load_state_dict_checked
from mlpgraph.outputs import CHECKPOINTS, output_folder
from mlpgraph.training.checkpointing import RunCheckpoints
from mlpgraph.training.epoch import EpochContext
from mlpgraph.training.rng import restore_rng, seed_fresh_run

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`~mlpgraph.training.train` returns: per-epoch records and the best (on test) and last epochs."""

    history: list[dict[str, float]]
    last_epoch: int
    best_epoch: int | None
    best_metrics: dict[str, float]
    last_metrics: dict[str, float]


@dataclass
class RunState:
    """The run's progress: the last finished ``epoch``, the learning rate of the next, the history and best-so-far.

    The best epoch is the one of lowest finite test ``P1`` (the release's rule, selection on the TEST split).
    """

    lr: float
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_p1: float | None = None

    def select(self, epoch: int, record: Mapping[str, float]) -> bool:
        """Make ``epoch`` the best if its record's P1 is finite and lower than any before; say whether it was."""
        p1 = record.get("P1")
        improved = p1 is not None and np.isfinite(p1) and (self.best_p1 is None or p1 < self.best_p1)
        if improved:
            self.best_epoch, self.best_p1 = epoch, p1
        return improved

    def training_entry(self, ctx: EpochContext, rng: Mapping[str, Any]) -> dict[str, Any]:
        """last.pt's ``meta["training"]``: this state, the optimiser's and the RNGs' (``rng``, from ``rng_state``)."""
        optimisation = ctx.optimisation.state_dicts()
        return {
            "epoch": self.epoch,
            "lr": self.lr,
            "optimizer": optimisation["optimizer"],
            "scaler": optimisation["scaler"],
            "rng": rng,
            "recipe": ctx.recipe.to_dict(),
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_p1": self.best_p1,
        }

    def result(self) -> TrainResult:
        """The run's :class:`TrainResult`."""
        history, best_epoch = self.history, self.best_epoch
        return TrainResult(
            history=history,
            last_epoch=len(history),
            best_epoch=best_epoch,
            best_metrics=dict(history[best_epoch - 1]) if best_epoch is not None else {},
            last_metrics=dict(history[-1]) if history else {},
        )


def resume_or_start(ctx: EpochContext, checkpoints: RunCheckpoints) -> RunState:
    """Resume from last.pt when rank 0 sees one, else start afresh (stale best/final removed, every RNG seeded).

    Rank 0 creates the checkpoint folder (a folder output of kind ``checkpoints``, :mod:`mlpgraph.outputs`).

    Every rank then uses the state's learning rate and waits for all ranks to have read last.pt
    (so that rank 0 does not overwrite it before).
    """
    main = distributed.rank() == 0
    if main:
        output_folder(checkpoints.directory, CHECKPOINTS)
    # Rank 0's view decides (the ranks must agree; every rank then reads the same shared file).
    if distributed.broadcast_object(checkpoints.last_path.exists()):
        state = _resume(ctx, checkpoints)
        if main:
            checkpoints.settle_pending_best(state.best_epoch)
            log.info("resuming %s from epoch %d", checkpoints.last_path, state.epoch)
    else:
        if main:
            checkpoints.remove_stale()
        seed_fresh_run(ctx.recipe.seed, ctx.generator)
        state = RunState(lr=ctx.recipe.lr)
    ctx.optimisation.set_lr(state.lr)
    distributed.barrier()
    return state


def _resume(ctx: EpochContext, checkpoints: RunCheckpoints) -> RunState:
    """Load last.pt into the networks, the optimiser and every RNG (after checking that it belongs to this run)."""
    path = checkpoints.last_path
    content = load_checkpoint(path)
    checkpoints.check_resume(content, checkpoints.networks(ctx.model, ctx.refine))
    saved = content["meta"]["training"]
    load_state_dict_checked(ctx.model, content["networks"]["model"]["state_dict"], f"{path} [model]")
    if ctx.refine is not None:
        load_state_dict_checked(ctx.refine, content["networks"]["refine"]["state_dict"], f"{path} [refine]")
    ctx.optimisation.load_state_dicts(saved)
    state = RunState(
        lr=float(saved["lr"]),
        epoch=int(saved["epoch"]),
        history=[dict(record) for record in saved["history"]],
        best_epoch=saved["best_epoch"],
        best_p1=saved["best_p1"],
    )
    restore_rng(saved["rng"], ctx.generator, ctx.device, ctx.recipe.seed, state.epoch + 1)
    return state
