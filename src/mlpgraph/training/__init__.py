"""The released training recipe (docs/model.md, "Training recipe"), resumable and bit-reproducible.

:func:`train` (:mod:`mlpgraph.training.loop`) runs it; the recipe and learning-rate rule are in
:mod:`~mlpgraph.training.recipe`, the losses in :mod:`~mlpgraph.training.losses`, one epoch in
:mod:`~mlpgraph.training.epoch`, the RNGs in :mod:`~mlpgraph.training.rng`, the resume state in
:mod:`~mlpgraph.training.state` and the checkpoint files (``last.pt``, ``best.pt``, ``final.pt``)
in :mod:`~mlpgraph.training.checkpointing`; the step each batch takes (precision, ``torch.compile``,
loss, Adam) in :mod:`~mlpgraph.training.step` and :mod:`~mlpgraph.training.speed`.
"""

from mlpgraph.training.checkpointing import BEST, BEST_PENDING, BEST_SELECTION, FINAL, FINAL_SELECTION, LAST
from mlpgraph.training.epoch import TrainingDiverged
from mlpgraph.training.loop import train
from mlpgraph.training.losses import lifting_loss, mpjpe_loss, refinement_loss, symmetry_penalty
from mlpgraph.training.recipe import Recipe, lr_after_epoch, resolve_device
from mlpgraph.training.rng import RANK_SEED_STRIDE, seed_everything
from mlpgraph.training.state import TrainResult
from mlpgraph.training.step import TrainStep, make_train_step

__all__ = [
    "BEST",
    "BEST_PENDING",
    "BEST_SELECTION",
    "FINAL",
    "FINAL_SELECTION",
    "LAST",
    "RANK_SEED_STRIDE",
    "Recipe",
    "TrainResult",
    "TrainStep",
    "TrainingDiverged",
    "lifting_loss",
    "lr_after_epoch",
    "make_train_step",
    "mpjpe_loss",
    "refinement_loss",
    "resolve_device",
    "seed_everything",
    "symmetry_penalty",
    "train",
]
