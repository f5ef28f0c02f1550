"""The training recipe (docs/model.md, "Training recipe"): hyper-parameters, learning-rate rule, device."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpgraph.devices import resolve_device
from mlpgraph.errors import UserInputError
from mlpgraph.models.refine import ROOT_DEPTHS
from mlpgraph.training.speed import COMPILE_CHOICES, PRECISIONS

REFINE_MODES = ("joint", "two_stage")

__all__ = ["REFINE_MODES", "Recipe", "lr_after_epoch", "resolve_device"]


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training run; the defaults are the release's GT recipe.

    ``detected`` selects the learning-rate rule for detected 2D keypoints (e.g. HRNet);
    ``frame_stride`` k trains on every k-th frame of each sequence (1, the release: every frame);
    ``l1_weight`` w gives the main loss (1 - w) MPJPE + w L1; ``max_loss`` (metres) is the batch
    loss above which a run counts as exploded. ``device`` "auto" means CUDA when available, else
    CPU. ``precision`` (auto | float32 | bfloat16 | float16 autocast; float16 with loss scaling)
    and ``compile`` (auto | True | False) are resolved for the device and the run's length by
    :func:`mlpgraph.training.speed.resolve_speed`.
    """

    epochs: int = 50
    batch_size: int = 256
    frame_stride: int = 1
    lr: float = 1e-3
    lr_decay: float = 0.95
    lr_decay_large: float = 0.5
    large_decay_epoch: int = 5
    detected: bool = False
    seed: int = 1
    l1_weight: float = 0.01
    flip_augment: bool = True
    refine: bool = False
    refine_mode: str = "joint"
    root_depth: str = "gt"
    symmetry_weight: float = 0.01
    device: str = "auto"
    precision: str = "float32"
    compile: str | bool = False
    max_loss: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "frame_stride", "large_decay_epoch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserInputError(f"recipe.{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise UserInputError(f"recipe.lr must be positive, got {self.lr!r}")
        if not 0.0 <= self.l1_weight <= 1.0:
            raise UserInputError(f"recipe.l1_weight must be in [0, 1], got {self.l1_weight!r}")
        if self.refine_mode not in REFINE_MODES:
            raise UserInputError(f"recipe.refine_mode must be one of {REFINE_MODES}, got {self.refine_mode!r}")
        if self.root_depth not in ROOT_DEPTHS:
            raise UserInputError(f"recipe.root_depth must be one of {ROOT_DEPTHS}, got {self.root_depth!r}")
        if self.precision not in PRECISIONS:
            raise UserInputError(f"recipe.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.compile not in COMPILE_CHOICES:
            raise UserInputError(f"recipe.compile must be auto, true or false, got {self.compile!r}")
        if not self.max_loss > 0:
            raise UserInputError(f"recipe.max_loss must be positive, got {self.max_loss!r}")

    @property
    def two_stage(self) -> bool:
        """True when only the refinement trains, on a frozen lifting network."""
        return self.refine and self.refine_mode == "two_stage"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (for checkpoints, MLflow params and resume checks)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], recipe_kind: str, **fields: Any) -> Recipe:
        """The ``train`` section of validated params plus the ``recipes.<recipe_kind>`` entry (gt | detected).

        ``fields`` set the rest (``refine``, ``refine_mode``, ``root_depth``).
        """
        train_params, rates = params["train"], params["recipes"][recipe_kind]
        return cls(
            epochs=train_params["epochs"],
            batch_size=train_params["batch_size"],
            frame_stride=train_params["frame_stride"],
            seed=train_params["seed"],
            device=train_params["device"],
            precision=train_params["precision"],
            compile=train_params["compile"],
            flip_augment=train_params["flip_augment"],
            l1_weight=float(train_params["l1_weight"]),
            symmetry_weight=float(train_params["symmetry_weight"]),
            max_loss=float(train_params["max_loss"]),
            lr=float(rates["lr"]),
            lr_decay=float(rates["lr_decay"]),
            lr_decay_large=float(rates["lr_decay_large"]),
            large_decay_epoch=rates["large_decay_epoch"],
            detected=recipe_kind == "detected",
            **fields,
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`; unknown keys are refused by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(f"recipe: unknown field {unknown[0]!r}; expected some of {sorted(known)}")
        return cls(**dict(values))


def lr_after_epoch(lr: float, epoch: int, recipe: Recipe) -> float:
    """The learning rate after 1-based ``epoch`` (applied once that epoch has finished).

    GT inputs: x ``lr_decay_large`` when ``epoch % large_decay_epoch == 0``, else x ``lr_decay``.
    Detected inputs: x ``lr_decay`` only when ``epoch % large_decay_epoch == 0``.
    """
    if epoch % recipe.large_decay_epoch == 0:
        return lr * (recipe.lr_decay if recipe.detected else recipe.lr_decay_large)
    return lr if recipe.detected else lr * recipe.lr_decay
