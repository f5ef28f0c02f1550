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
from mlpgraph.params import load_params
from mlpgraph.training.losses import lifting_loss
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


def build_optimisation(params: Iterable[nn.Parameter], lr: float, device: torch.device, speed: Speed) -> Optimisation:
    """The released optimiser, Adam with amsgrad, and a gradient scaler enabled for float16 only."""
    scaled = speed.scales_loss
    optimizer = torch.optim.Adam(params, lr=lr, amsgrad=True)
    return Optimisation(optimizer, torch.amp.GradScaler(device.type, enabled=scaled), scaled)


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
    keypoints: str = "gt",
    steps: int | None = None,
) -> TrainStep:
    """The training step :func:`mlpgraph.training.train` runs for ``model``, configured from ``params_path``.

    Reads (validated, over the file's preset) ``train.device``, ``train.precision``,
    ``train.compile`` and ``train.l1_weight``, and the learning rate of the ``keypoints`` kind's
    recipe (``gt`` or ``detected``). ``steps``: how many steps the caller will take, which
    ``compile: auto`` weighs against the compilation's cost (None: a long run). Moves ``model``
    to the device in train mode; every call is one optimiser step (see :class:`TrainStep`).
    """
    params = load_params(params_path)
    train_params, rates = params["train"], params["recipes"]["gt" if keypoints == "gt" else "detected"]
    device = resolve_device(train_params["device"])
    model.to(device).train()
    run_steps = COMPILE_MIN_STEPS if steps is None else steps
    speed = resolve_speed(train_params["precision"], train_params["compile"], device, run_steps)
    optimisation = build_optimisation(model.parameters(), float(rates["lr"]), device, speed)
    return TrainStep(speed.forward(model), optimisation, speed, device, float(train_params["l1_weight"]))
