"""The configured training step: forward under the run's precision, the released loss, one Adam step.

:func:`train` runs it for every batch (:mod:`mlpgraph.training.epoch`); :func:`make_train_step`
hands the same step to a caller, configured from a params file, so that a benchmark times
exactly what trains.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mlpgraph.devices import resolve_device
from mlpgraph.experiments import GT_KEYPOINTS
from mlpgraph.params import load_params
from mlpgraph.training.losses import lifting_loss
from mlpgraph.training.recipe import Recipe
from mlpgraph.training.speed import COMPILE_MIN_STEPS, Speed, resolve_speed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Optimisation:
    """Adam (amsgrad, as released) with its gradient scaler; ``scaled``: float16 loss scaling."""

    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    scaled: bool

    def set_lr(self, lr: float) -> None:
        """Use learning rate ``lr`` from the next step on."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, loss: Tensor) -> None:
        """Back-propagate ``loss`` (scaled under float16) and take one optimiser step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def state_dicts(self) -> dict[str, Any]:
        """``{"optimizer", "scaler"}`` states for the resume checkpoint (the scaler's only when scaling)."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict() if self.scaled else None}

    def load_state_dicts(self, saved: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dicts`."""
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scaled and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])


def configure_speed_and_optimiser(
    params: Iterable[nn.Parameter], recipe: Recipe, device: torch.device, steps: int
) -> tuple[Speed, Optimisation]:
    """The run's resolved speed settings and the released optimiser (Adam with amsgrad, float16 loss scaling)."""
    speed = resolve_speed(recipe.precision, recipe.compile, device, steps)
    optimizer = torch.optim.Adam(params, lr=recipe.lr, amsgrad=True)
    scaler = torch.amp.GradScaler(device.type, enabled=speed.scales_loss)
    return speed, Optimisation(optimizer, scaler, speed.scales_loss)


def lifting_forward(
    forward: Callable[[Tensor], Tensor], windows: Tensor, target: Tensor, l1_weight: float
) -> tuple[Tensor, Tensor]:
    """(the released lifting loss, the prediction in float32) of ``forward`` on a batch of ``windows``."""
    pred = forward(windows).float()
    return lifting_loss(pred, target, l1_weight), pred


@dataclass(frozen=True)
class TrainStep:
    """One optimiser step of a lifting network on a batch; call with (inputs_2d, root-relative targets_3d)."""

    forward: Callable[[Tensor], Tensor]
    optimisation: Optimisation
    speed: Speed
    device: torch.device
    l1_weight: float

    def __call__(self, inputs_2d: Tensor, targets_3d: Tensor) -> Tensor:
        """Forward (N, T, J, 2), loss against (N, J, 3) metres, backward, step; returns the detached loss."""
        with self.speed.autocast(self.device):
            loss, _ = lifting_forward(self.forward, inputs_2d, targets_3d, self.l1_weight)
        self.optimisation.step(loss)
        return loss.detach()


def make_train_step(
    model: nn.Module,
    params_path: str | os.PathLike[str] = "params.yaml",
    keypoints: str = GT_KEYPOINTS,
    steps: int | None = None,
) -> TrainStep:
    """The training step :func:`mlpgraph.training.train` runs for ``model``, configured from ``params_path``.

    The recipe is the training stage's (:meth:`Recipe.from_params`: the ``train`` section, validated
    over the file's preset, and the learning rate of the ``keypoints`` kind: ``gt`` or detected).
    ``steps``: how many steps the caller will take, which ``compile: auto`` weighs against the
    compilation's cost (None: a long run). Moves ``model`` to the device in train mode; every call
    is one optimiser step (see :class:`TrainStep`).
    """
    recipe = Recipe.from_params(load_params(params_path), "gt" if keypoints == GT_KEYPOINTS else "detected")
    device = resolve_device(recipe.device)
    model.to(device).train()
    run_steps = COMPILE_MIN_STEPS if steps is None else steps
    speed, optimisation = configure_speed_and_optimiser(model.parameters(), recipe, device, run_steps)
    return TrainStep(speed.forward(model), optimisation, speed, device, recipe.l1_weight)
