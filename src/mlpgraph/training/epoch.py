"""One training epoch: shuffled index batches, flip augmentation, the losses, the optimiser step.

Batches are index arithmetic on :class:`~mlpgraph.data.batches.PoseArrays` (no DataLoader); the
shuffle order and the per-sample flip mask come from the run's seeded ``torch.Generator``, dropout
from the global torch RNG. In ``two_stage`` refinement the lifting network runs in eval mode without
gradient and only the refinement trains, on the refinement loss; in ``joint`` refinement the
refinement loss reaches the lifting network through P and through its depths inside X~ (and,
with ``root_depth: estimated``, through the depth estimate).

Under a multi-rank process group every rank draws the same global shuffle and flip mask and
trains on its contiguous share of each global batch (``torch.tensor_split(batch, N)[rank]``);
each rank's loss is scaled by ``local_n * N / global_n`` so that DDP's gradient average is the
gradient of the global batch's mean loss, also for an uneven last batch. Logged losses are
all-reduced, so every rank records the global batch's loss and the divergence guard fires on every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mlpgraph import distributed
from mlpgraph.checkpoints import first_non_finite, load_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout, root_relative
from mlpgraph.models.refine import lifted_estimate
from mlpgraph.progress import progress
from mlpgraph.training.losses import refinement_loss
from mlpgraph.training.recipe import Recipe
from mlpgraph.training.speed import Speed
from mlpgraph.training.step import Optimisation, lifting_forward

# Per-batch losses stay on the device and are checked for divergence every this many batches
# (and at the end of each epoch), so a GPU run does not synchronise on every step.
CHECK_EVERY = 50


class TrainingDiverged(UserInputError):  # noqa: N818 (the name the stage CLIs use)
    """The loss became non-finite or exceeded ``Recipe.max_loss``; the last good checkpoint was kept."""


@dataclass(frozen=True)
class EpochContext:
    """What every epoch of a run works with; ``model`` / ``refine`` may be DDP wrappers of the raw networks.

    ``forward`` is how the lifting network is called in training (``model`` itself or compiled,
    :class:`~mlpgraph.training.speed.Speed`); ``data`` is on ``device``; ``pad``: windows of
    2 * pad + 1 frames; ``bone_lengths`` feed the "estimated" root depth; ``last_path`` is named by
    the divergence guard.
    """

    model: nn.Module
    refine: nn.Module | None
    data: PoseArrays
    recipe: Recipe
    pad: int
    device: torch.device
    optimisation: Optimisation
    generator: torch.Generator
    bone_lengths: Tensor | None
    last_path: Path
    speed: Speed
    forward: Callable[[Tensor], Tensor]

    @property
    def two_stage(self) -> bool:
        """True when only the refinement trains (the lifting network is frozen)."""
        return self.refine is not None and self.recipe.refine_mode == "two_stage"

    @property
    def layout(self) -> SkeletonLayout:
        """The data's skeleton layout."""
        return get_layout(self.data.layout)

    def autocast(self) -> AbstractContextManager[Any]:
        """Autocast to the run's reduced precision; nothing in float32."""
        return self.speed.autocast(self.device)


def train_epoch(ctx: EpochContext, epoch: int) -> dict[str, float]:
    """One pass over the shuffled data; returns the sample-weighted mean losses of the epoch.

    ``loss`` (what was optimised), ``loss_main`` (the lifting loss) and, with refinement,
    ``loss_refine``. Raises :class:`TrainingDiverged` on a non-finite or exploded batch loss.
    """
    ctx.model.train(not ctx.two_stage)
    if ctx.refine is not None:
        ctx.refine.train()
    recipe = ctx.recipe
    num_batches = -(-ctx.data.num_targets(recipe.frame_stride) // recipe.batch_size)
    losses = _LossLog(epoch, num_batches, recipe.max_loss, ctx.last_path)
    batches = ctx.data.index_batches(
        recipe.batch_size, shuffle=True, generator=ctx.generator, stride=recipe.frame_stride
    )
    for indices in progress(batches, total=num_batches, desc=f"epoch {epoch}/{recipe.epochs}", leave=False):
        flip: Tensor | bool = False
        if recipe.flip_augment:
            flip = (torch.rand(len(indices), generator=ctx.generator) < 0.5).to(ctx.device)
        losses.add(_train_step(ctx, indices, flip), len(indices))
    losses.check()
    check_weights(ctx, epoch)
    return losses.means(ctx.device)


def check_weights(ctx: EpochContext, epoch: int) -> None:
    """Raise :class:`TrainingDiverged` when ``epoch`` left a network's weights or statistics non-finite.

    The loss guard sees a step's damage only at the next batch's loss; the epoch's last step (or a
    batch-norm statistic) can turn the weights NaN with every loss finite, and they must not be saved.
    """
    for role, module in (("lifting", ctx.model), ("refinement", ctx.refine)):
        bad = first_non_finite(module.state_dict()) if module is not None else None
        if bad is not None:
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}: the {role} network's tensor {bad.removeprefix('module.')} "
                f"became non-finite; {_kept(ctx.last_path)}. Lower recipe.lr or check the data's units (metres)."
            )


def _train_step(ctx: EpochContext, indices: Tensor, flip: Tensor | bool) -> list[Tensor]:
    """One optimiser step on the global batch ``indices``; returns its losses [total, main, (refine)] (no sync).

    In a multi-rank run every rank drew the same global batch and mask and keeps its contiguous share.
    """
    world, rank = distributed.world_size(), distributed.rank()
    global_n = len(indices)
    if world > 1:
        indices = torch.tensor_split(indices, world)[rank]
        if isinstance(flip, Tensor):
            flip = torch.tensor_split(flip, world)[rank]
    windows, target = ctx.data.batch(indices, ctx.pad, flip=flip)
    target = root_relative(target, ctx.layout.root)
    with ctx.autocast():
        loss, parts, outputs = _losses(ctx, indices, windows, target, flip)
    if world == 1:
        ctx.optimisation.step(loss)
        return [part.detach() for part in parts]
    ctx.optimisation.step(_rank_loss(loss, outputs, len(indices), global_n, world))
    return list(_global_batch_losses(parts, len(indices), global_n))


def _losses(
    ctx: EpochContext, indices: Tensor, windows: Tensor, target: Tensor, flip: Tensor | bool
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """(the loss to optimise, the recorded losses [total, main, (refine)], the trained networks' outputs)."""
    with torch.no_grad() if ctx.two_stage else nullcontext():
        main, pred = lifting_forward(ctx.forward, windows, target, ctx.recipe.l1_weight)
    if ctx.refine is None:
        return main, [main, main], [pred]
    recipe = ctx.recipe
    lifted = lifted_estimate(ctx.data, indices, windows, pred, ctx.pad, recipe.root_depth, ctx.bone_lengths, flip)
    refined = ctx.refine(pred, lifted).float()
    refined_loss = refinement_loss(refined, target, ctx.layout, recipe.symmetry_weight)
    if ctx.two_stage:
        return refined_loss, [refined_loss, main, refined_loss], [refined]
    loss = main + refined_loss
    return loss, [loss, main, refined_loss], [pred, refined]


def _rank_loss(loss: Tensor, outputs: list[Tensor], local_n: int, global_n: int, world: int) -> Tensor:
    """What this rank back-propagates so that DDP's gradient average is the global batch's gradient.

    Every loss term is a per-sample mean, so the global batch's mean loss is
    sum_r (n_r / N) * loss_r and its gradient is sum_r (n_r / N) * grad loss_r; DDP averages the
    ranks' gradients (divides their sum by ``world``), hence the factor ``n_r * world / N``. A rank
    whose share is empty (a last batch smaller than the world) contributes an exact zero that still
    reaches every parameter (DDP expects a gradient for each), instead of the mean of nothing (NaN).
    """
    if local_n == 0:
        return sum(output.float().sum() for output in outputs) * 0.0
    return loss * (local_n * world / global_n)


def _global_batch_losses(parts: list[Tensor], local_n: int, global_n: int) -> Tensor:
    """The global batch's per-sample mean of each of this rank's mean losses ``parts``: sum_r n_r loss_r / N.

    An all-reduce every rank takes part in; the result stays on the device (no synchronisation).
    """
    stacked = torch.stack([part.detach().float() for part in parts])
    stacked = stacked * local_n if local_n > 0 else torch.zeros_like(stacked)
    return distributed.all_reduce_sum(stacked) / global_n


@dataclass
class _LossLog:
    """The epoch's per-batch losses (on the device) and global batch sizes, checked every :data:`CHECK_EVERY`."""

    epoch: int
    num_batches: int
    max_loss: float
    last_path: Path
    columns: tuple[list[Tensor], ...] = field(default_factory=lambda: ([], [], []))
    sizes: list[int] = field(default_factory=list)
    checked: int = 0

    def add(self, losses: list[Tensor], size: int) -> None:
        """Record one batch's [total, main, (refine)] losses; check the unchecked ones every CHECK_EVERY batches."""
        for column, value in zip(self.columns, losses, strict=False):
            column.append(value)
        self.sizes.append(size)
        if len(self.sizes) - self.checked >= CHECK_EVERY:
            self.check()

    def check(self) -> None:
        """Raise :class:`TrainingDiverged` naming the first unchecked batch with a non-finite or too large loss."""
        _check_losses(self.columns[0], self.checked, self.epoch, self.num_batches, self.max_loss, self.last_path)
        self.checked = len(self.sizes)

    def means(self, device: torch.device) -> dict[str, float]:
        """Sample-weighted means: ``loss``, ``loss_main`` and, when recorded, ``loss_refine``."""
        weights = torch.tensor(self.sizes, dtype=torch.float64, device=device)
        count = float(sum(self.sizes))

        def mean(values: list[Tensor]) -> float:
            return float((torch.stack(values).double() * weights).sum().item() / count)

        totals, main, refine = self.columns
        result = {"loss": mean(totals), "loss_main": mean(main)}
        if refine:
            result["loss_refine"] = mean(refine)
        return result


def _check_losses(
    losses: list[Tensor], start: int, epoch: int, num_batches: int, max_loss: float, last_path: Path
) -> None:
    """Raise :class:`TrainingDiverged` naming the first batch from ``start`` on with a non-finite or too large loss."""
    if start >= len(losses):
        return
    values = torch.stack(losses[start:])
    bad = ~torch.isfinite(values) | (values > max_loss)
    if not bool(bad.any().item()):
        return
    first = int(torch.nonzero(bad)[0, 0].item())
    value = float(values[first].item())
    reason = "non-finite" if not np.isfinite(value) else f"above max_loss {max_loss:g}"
    raise TrainingDiverged(
        f"training diverged at epoch {epoch}, batch {start + first + 1}/{num_batches}: loss {value:g} ({reason}); "
        f"{_kept(last_path)}. Lower recipe.lr or check the data's units (metres)."
    )


def _kept(last_path: Path) -> str:
    """What a divergence leaves behind: the last good checkpoint's epoch, or that there is none."""
    if last_path.exists():
        kept_epoch = load_checkpoint(last_path)["meta"].get("epoch")
        return f"the last good checkpoint {last_path} (epoch {kept_epoch}) was kept"
    return f"no checkpoint had been written yet ({last_path} does not exist)"
