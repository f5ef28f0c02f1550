"""The released training recipe (design/model.md, "Training recipe"), resumable and bit-reproducible.

One loop trains a lifting network (MLP-Graph or a graph baseline) and, optionally, the pose
refinement (design/baselines.md section 5):

- ``refine_mode="joint"`` (the release): both networks in one Adam(amsgrad) optimiser; the loss
  ``(1 - w) MPJPE + w L1`` of the main output plus ``MPJPE + 0.01 sym`` of the refined output,
  whose gradients reach the main network through P and through its depths inside X~.
- ``refine_mode="two_stage"`` (the pipeline's ``train_refine`` stage): the spatial model is
  frozen (eval mode, no gradient) and only the refinement is trained, on the refinement loss.

Batches are index arithmetic on :class:`~mlpgraph.data.batches.PoseArrays` (no DataLoader); the
shuffle order and the per-sample flip mask come from one seeded ``torch.Generator``, dropout from
the global torch RNG. After every epoch the learning rate is decayed, the caller's ``evaluate``
runs, and ``last.pt`` is written atomically with everything needed to resume (weights, optimiser,
learning rate, every RNG state, history, best-so-far), so a run killed at any point and restarted
ends with exactly the numbers of an uninterrupted one (bit for bit on CPU).

Files in ``checkpoint_dir``: ``last.pt`` (resume state), ``best.pt`` (lowest test P1: the
release's rule, model selection on the TEST split, labelled as such) and ``final.pt`` (the last
epoch, the honest figure). All three are plain project checkpoints (:mod:`mlpgraph.checkpoints`).

Multi-process training: under ``torchrun --nproc-per-node N`` (the process group initialised by
:mod:`mlpgraph.distributed`, world size > 1) every rank draws the same global shuffle and flip mask
from the shared generator and trains on its contiguous share of each global batch
(``torch.tensor_split(batch, N)[rank]``), so the ranks together see exactly the one-process batch.
The trained networks are wrapped in ``DistributedDataParallel`` (two-stage: the refinement only)
with their batch norms synchronised over the ranks; each rank's loss is scaled by
``local_n * N / global_n`` so that DDP's gradient average is the gradient of the global batch's
mean loss, also for an uneven last batch. Logged losses are all-reduced (every rank records the
global batch loss, so the divergence guard fires on every rank). Rank 0 alone evaluates, calls
``on_epoch`` and writes the checkpoints (of the raw modules: no ``module.`` prefix) and broadcasts
the epoch record, so every rank keeps the same history and best epoch. Dropout differs per rank
(ranks > 0 reseed torch with ``seed + RANK_SEED_STRIDE * rank`` at a fresh start); ``last.pt`` keeps
every rank's torch RNG state (``rng["torch_by_rank"]``) so a restarted N-process run resumes
exactly; a restart with another world size warns and reseeds deterministically. The losses and
weights of an N-process run equal a one-process run's to float rounding (with dropout off; with
dropout on the masks differ). A plain single process runs the code path of before, bit for bit.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as fn
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mlpgraph import distributed
from mlpgraph.checkpoints import load_checkpoint, load_state_dict_checked, network_entry, save_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.models.refine import mean_bone_lengths, refinement_input
from mlpgraph.progress import progress

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
FINAL = "final.pt"
# best.pt is staged here and renamed after last.pt (the commit point) records it: see _save_epoch.
BEST_PENDING = "best.pending.pt"
BEST_SELECTION = "best on test (release rule)"
FINAL_SELECTION = "last epoch"
LAST_SELECTION = "resume state (latest epoch)"
REFINE_MODES = ("joint", "two_stage")
ROOT_DEPTHS = ("gt", "estimated")
# Recipe fields that may differ on resume: they choose where the run executes, not what it computes.
RESUME_IGNORED = ("device",)
# Per-batch losses stay on the device and are checked for divergence every this many batches
# (and at the end of each epoch), so a GPU run does not synchronise on every step.
CHECK_EVERY = 50
# Ranks > 0 of a multi-process run seed torch (their dropout) with seed + this * rank.
RANK_SEED_STRIDE = 1_000_003

Evaluate = Callable[[nn.Module, nn.Module | None], Mapping[str, float]]
OnEpoch = Callable[[int, dict[str, float]], None]


class TrainingDiverged(UserInputError):  # noqa: N818 (the name the stage CLIs use)
    """The loss became non-finite or exceeded ``Recipe.max_loss``; the last good checkpoint was kept."""


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training run; the defaults are the release's GT recipe.

    ``detected`` selects the learning-rate rule for detected 2D keypoints (e.g. HRNet);
    ``l1_weight`` w gives the main loss (1 - w) MPJPE + w L1; ``max_loss`` (metres) is the batch
    loss above which a run counts as exploded. ``device`` "auto" means CUDA when available, else
    CPU; ``amp`` (float16 autocast + GradScaler) applies on CUDA only.
    """

    epochs: int = 50
    batch_size: int = 256
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
    amp: bool = False
    max_loss: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "large_decay_epoch"):
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
        if not self.max_loss > 0:
            raise UserInputError(f"recipe.max_loss must be positive, got {self.max_loss!r}")

    @classmethod
    def gt(cls, **overrides: Any) -> Recipe:
        """The release's recipe for ground-truth 2D inputs: lr 1e-3, x0.95 per epoch, x0.5 every 5th."""
        return cls(**{"lr": 1e-3, "lr_decay": 0.95, "large_decay_epoch": 5, "detected": False, **overrides})

    @classmethod
    def hr(cls, **overrides: Any) -> Recipe:
        """The release's recipe for detected (HRNet) 2D inputs: lr 5e-3, x0.90 every 4th epoch."""
        return cls(**{"lr": 5e-3, "lr_decay": 0.90, "large_decay_epoch": 4, "detected": True, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (for checkpoints, MLflow params and resume checks)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`; unknown keys are refused by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(f"recipe: unknown field {unknown[0]!r}; expected some of {sorted(known)}")
        return cls(**dict(values))


@dataclass
class TrainResult:
    """What :func:`train` returns: per-epoch records and the best (on test) and last epochs."""

    history: list[dict[str, float]]
    last_epoch: int
    best_epoch: int | None
    best_metrics: dict[str, float]
    last_metrics: dict[str, float]


def lr_after_epoch(lr: float, epoch: int, recipe: Recipe) -> float:
    """The learning rate after 1-based ``epoch`` (applied once that epoch has finished).

    GT inputs: x ``lr_decay_large`` when ``epoch % large_decay_epoch == 0``, else x ``lr_decay``.
    Detected inputs: x ``lr_decay`` only when ``epoch % large_decay_epoch == 0``.
    """
    if epoch % recipe.large_decay_epoch == 0:
        return lr * (recipe.lr_decay if recipe.detected else recipe.lr_decay_large)
    return lr if recipe.detected else lr * recipe.lr_decay


# ---------------------------------------------------------------------------------------- losses
def mpjpe_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint position error (mean Euclidean distance over joints and batch), in the inputs' unit."""
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def symmetry_penalty(pose: Tensor, layout: str | SkeletonLayout) -> Tensor:
    """Mean over the layout's left/right bone pairs (and the batch) of |left bone| - |right bone|.

    Signed, as released (so it rewards a shorter left side); kept only for fidelity. The release
    sums the per-pair batch means (design/baselines.md section 5); this is that sum divided by the
    number of pairs (six for h36m16/17), the definition of design/model.md.
    """
    lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    bones = torch.as_tensor(lay.bones, device=pose.device)
    pairs = torch.as_tensor(lay.symmetric_bone_pairs, device=pose.device)
    lengths = torch.linalg.vector_norm(pose[:, bones[:, 0]] - pose[:, bones[:, 1]], dim=-1)
    return (lengths[:, pairs[:, 0]] - lengths[:, pairs[:, 1]]).mean()


def lifting_loss(pred: Tensor, target: Tensor, l1_weight: float = 0.01) -> Tensor:
    """The main network's loss: (1 - w) MPJPE + w L1 (mean absolute error over every coordinate)."""
    return (1.0 - l1_weight) * mpjpe_loss(pred, target) + l1_weight * fn.l1_loss(pred, target)


def refinement_loss(
    refined: Tensor, target: Tensor, layout: str | SkeletonLayout, symmetry_weight: float = 0.01
) -> Tensor:
    """The refinement's loss: MPJPE(refined, target) + ``symmetry_weight`` * sym(refined)."""
    return mpjpe_loss(refined, target) + symmetry_weight * symmetry_penalty(refined, layout)


def root_zeroed(poses: Tensor, layout: str | SkeletonLayout) -> Tensor:
    """``poses`` (N, J, 3) minus their root joint: the training target."""
    root = (layout if isinstance(layout, SkeletonLayout) else get_layout(layout)).root
    return poses - poses[:, root : root + 1]


def lifted_estimate(
    data: PoseArrays,
    indices: Tensor,
    windows: Tensor,
    pred: Tensor,
    pad: int,
    root_depth: str = "gt",
    bone_lengths: Tensor | None = None,
    flipped: Tensor | bool = False,
) -> Tensor:
    """X~ for a training batch: the centre frame of ``windows`` (as flipped) lifted with ``pred``'s depths.

    Intrinsics are each sample's sequence's (``meta['intrinsics']``); ``root_depth`` "gt" uses
    ``meta['root_3d'][:, 2]`` (the release's oracle, unchanged by a horizontal flip), "estimated"
    estimates it from the 2D with ``bone_lengths``.
    """
    if "intrinsics" not in data.meta:
        raise UserInputError("refinement needs meta['intrinsics'] (per sequence) in the training data")
    indices = indices.to(device=data.device, dtype=torch.long)
    intrinsics = data.meta["intrinsics"][data.sequence[indices]].to(pred.dtype)
    depth = None
    if root_depth == "gt":
        if "root_3d" not in data.meta:
            raise UserInputError("refinement with root_depth 'gt' needs meta['root_3d'] in the training data")
        depth = data.meta["root_3d"][indices, 2].to(pred.dtype)
    elif bone_lengths is None:
        raise ValueError("lifted_estimate: root_depth 'estimated' needs bone_lengths")
    if isinstance(flipped, Tensor):
        flipped = flipped.to(device=pred.device, dtype=torch.bool)
    uv = windows[:, pad].to(pred.dtype)
    return refinement_input(uv, pred, intrinsics, data.layout, depth, bone_lengths, flipped)


# ----------------------------------------------------------------------------------------- RNG
def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and torch (CPU and every CUDA device).

    Call it before building the networks so that their initial weights are reproducible too.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise UserInputError(f"recipe.device: {exc}") from None


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG state as tensors and plain values (``torch.load(weights_only=True)`` accepts them)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "generator": generator.get_state(),
        "numpy": [
            str(np_kind),
            torch.from_numpy(np_keys.astype(np.int64)),
            int(np_pos),
            int(np_has_gauss),
            float(np_gauss),
        ],
        "python": [int(py_version), torch.tensor(py_internal, dtype=torch.int64), py_gauss],
    }


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    generator.set_state(state["generator"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal.tolist()), gauss_next))


def _gather_rank_rng(device: torch.device) -> dict[str, list[Tensor]]:
    """Every rank's torch (and own CUDA device's) RNG state, in rank order: a collective of all ranks."""
    gathered = {"torch_by_rank": distributed.all_gather_object(torch.get_rng_state())}
    if device.type == "cuda":
        gathered["cuda_by_rank"] = distributed.all_gather_object(torch.cuda.get_rng_state(device))
    return gathered


def _restore_rank_rng(state: Mapping[str, Any], device: torch.device, seed: int, start_epoch: int) -> None:
    """After :func:`_set_rng_state` (rank 0's states): this rank's own torch / CUDA RNG state of a multi-rank run.

    When the checkpoint was written by another number of ranks, ranks > 0 reseed with
    ``seed + RANK_SEED_STRIDE * rank + start_epoch`` (a warning says so): deterministic, but not
    the continuation of any earlier run.
    """
    world, rank = distributed.world_size(), distributed.rank()
    by_rank = state.get("torch_by_rank")
    saved_world = len(by_rank) if by_rank is not None else 1
    if saved_world != world:
        if rank == 0:
            log.warning(
                "resuming a %d-process run with %d processes: ranks > 0 get fresh dropout seeds, "
                "so the run is deterministic but not the continuation of either",
                saved_world,
                world,
            )
        if rank > 0:
            torch.manual_seed(seed + RANK_SEED_STRIDE * rank + start_epoch)
        return
    if world == 1:
        return
    torch.set_rng_state(by_rank[rank])
    cuda_by_rank = state.get("cuda_by_rank")
    if device.type == "cuda" and cuda_by_rank and len(cuda_by_rank) == world:
        torch.cuda.set_rng_state(cuda_by_rank[rank], device)


# ---------------------------------------------------------------------------------- checkpoints
def _networks(model: nn.Module, refine: nn.Module | None, model_name: str) -> dict[str, dict[str, Any]]:
    networks = {"model": network_entry(model_name, model)}
    if refine is not None:
        networks["refine"] = network_entry("refine", refine)
    return networks


def _check_resume(
    path: Path,
    content: Mapping[str, Any],
    recipe: Recipe,
    networks: Mapping[str, Mapping[str, Any]],
    data_fingerprint: str | None,
) -> None:
    """Refuse to resume ``path`` under another recipe, network configuration or data set; name the first difference."""
    hint = f"delete {path.parent} or train into another directory"
    training = content["meta"].get("training")
    if not isinstance(training, Mapping):
        raise UserInputError(f"{path}: not a resumable training checkpoint (no meta['training'] entry); {hint}")
    saved = dict(training["recipe"])
    current = recipe.to_dict()
    for key in current:
        if key in RESUME_IGNORED:
            continue
        if key not in saved or saved[key] != current[key]:
            raise UserInputError(
                f"{path}: cannot resume: recipe.{key} is {saved.get(key)!r} in the checkpoint but "
                f"{current[key]!r} now; {hint}"
            )
    saved_networks = content["networks"]
    for role in sorted(set(saved_networks) | set(networks)):
        if role not in saved_networks or role not in networks:
            where = "the checkpoint" if role in saved_networks else "this run"
            raise UserInputError(f"{path}: cannot resume: only {where} has a {role!r} network; {hint}")
        old, new = saved_networks[role], networks[role]
        if old["name"] != new["name"]:
            raise UserInputError(
                f"{path}: cannot resume: {role} is {old['name']!r} in the checkpoint but {new['name']!r} now; {hint}"
            )
        for key in sorted(set(old["config"]) | set(new["config"])):
            if old["config"].get(key) != new["config"].get(key):
                raise UserInputError(
                    f"{path}: cannot resume: {role} config {key} is {old['config'].get(key)!r} in the checkpoint "
                    f"but {new['config'].get(key)!r} now; {hint}"
                )
    saved_fp = content.get("data_fingerprint")
    if saved_fp is not None and data_fingerprint is not None and saved_fp != data_fingerprint:
        raise UserInputError(
            f"{path}: cannot resume: trained on data {saved_fp[:12]}..., "
            f"this run has {data_fingerprint[:12]}...; {hint}"
        )


def _epoch_meta(
    selection: str, epoch: int, record: Mapping[str, float], recipe: Recipe, bone_lengths: Tensor | None
) -> dict[str, Any]:
    meta = {"selection": selection, "epoch": epoch, "metrics": dict(record), "recipe": recipe.to_dict()}
    if bone_lengths is not None:
        meta["bone_lengths"] = bone_lengths.detach().cpu().clone()
    return meta


def _settle_pending_best(directory: Path, best_epoch: int | None) -> None:
    """Finish or undo a best.pt update interrupted between last.pt's write and the rename."""
    pending = directory / BEST_PENDING
    if not pending.exists():
        return
    try:
        epoch = load_checkpoint(pending)["meta"].get("epoch")
    except UserInputError:
        epoch = None
    if best_epoch is not None and epoch == best_epoch:
        os.replace(pending, directory / BEST)
    else:
        pending.unlink()


# ------------------------------------------------------------------------------------- training
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
    (build the networks after :func:`seed_everything` for reproducible initial weights).
    ``bone_lengths`` (refinement only; default: the training set's mean per bone) feed the
    "estimated" root depth and are saved in every checkpoint's meta for the evaluation stages.
    With "estimated", the refinement loss also reaches the main network through the depth estimate.
    Raises :class:`TrainingDiverged` on a non-finite or exploded loss, ``UserInputError`` when
    ``last.pt`` belongs to another recipe, network configuration or data set.

    Under an initialised process group with more than one rank (``torchrun``; see the module
    docstring) call it on every rank with the same arguments: the ranks share each global batch,
    rank 0 alone calls ``evaluate`` and ``on_epoch`` and writes ``checkpoint_dir`` (which must be
    the same folder, readable by every rank, for resuming), and every rank returns the same result.
    A CUDA device without index means the rank's current device (``cuda:LOCAL_RANK``).
    """
    if recipe.refine != (refine is not None):
        raise UserInputError(
            "recipe.refine is true but no refinement network was given"
            if recipe.refine
            else "a refinement network was given but recipe.refine is false"
        )
    two_stage = refine is not None and recipe.refine_mode == "two_stage"
    world, rank = distributed.world_size(), distributed.rank()
    main = rank == 0
    device = resolve_device(recipe.device)
    if world > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    directory = Path(checkpoint_dir)
    if main:
        directory.mkdir(parents=True, exist_ok=True)
    last_path = directory / LAST
    layout = get_layout(train_data.layout)
    if train_data.device != device:
        train_data = train_data.to(device)
    model.to(device)
    if refine is not None:
        refine.to(device)
        if bone_lengths is None:
            bone_lengths = mean_bone_lengths(train_data.poses_3d, layout)
        bone_lengths = torch.as_tensor(bone_lengths, dtype=torch.float32, device=device)

    trained = [refine] if two_stage else [model] + ([refine] if refine is not None else [])
    params = [p for module in trained for p in module.parameters()]
    optimizer = torch.optim.Adam(params, lr=recipe.lr, amsgrad=True)
    use_amp = recipe.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    generator = torch.Generator(device="cpu")

    history: list[dict[str, float]] = []
    best_epoch: int | None = None
    best_p1: float | None = None
    lr = recipe.lr
    start_epoch = 1
    # Rank 0's view decides (the ranks must agree; every rank then reads the same shared file).
    if distributed.broadcast_object(last_path.exists()):
        content = load_checkpoint(last_path)
        _check_resume(last_path, content, recipe, _networks(model, refine, model_name), data_fingerprint)
        state = content["meta"]["training"]
        load_state_dict_checked(model, content["networks"]["model"]["state_dict"], f"{last_path} [model]")
        if refine is not None:
            load_state_dict_checked(refine, content["networks"]["refine"]["state_dict"], f"{last_path} [refine]")
        optimizer.load_state_dict(state["optimizer"])
        if use_amp and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], generator)
        lr = float(state["lr"])
        history = [dict(record) for record in state["history"]]
        best_epoch = state["best_epoch"]
        best_p1 = state["best_p1"]
        start_epoch = int(state["epoch"]) + 1
        _restore_rank_rng(state["rng"], device, recipe.seed, start_epoch)
        if main:
            _settle_pending_best(directory, best_epoch)
            log.info("resuming %s from epoch %d", last_path, start_epoch - 1)
    else:
        if main:
            for stale in (BEST, FINAL, BEST_PENDING):
                (directory / stale).unlink(missing_ok=True)
        seed_everything(recipe.seed)
        generator.manual_seed(recipe.seed)
        if rank > 0:
            torch.manual_seed(recipe.seed + RANK_SEED_STRIDE * rank)  # distinct dropout masks per rank
    for group in optimizer.param_groups:
        group["lr"] = lr
    # No rank goes on (and rank 0 may not write last.pt) before every rank has read last.pt.
    distributed.barrier()

    def save_final() -> None:
        save_checkpoint(
            directory / FINAL,
            _networks(model, refine, model_name),
            data_fingerprint,
            _epoch_meta(FINAL_SELECTION, len(history), history[-1], recipe, bone_lengths),
        )

    if start_epoch > recipe.epochs:
        final_path = directory / FINAL
        if (
            main
            and history
            and (not final_path.exists() or load_checkpoint(final_path)["meta"].get("epoch") != len(history))
        ):
            save_final()
        distributed.barrier()
        model.eval()
        if refine is not None:
            refine.eval()
        return _result(history, best_epoch)

    # What the epochs run: the raw modules in one process, DDP wrappers (sharing their parameters)
    # with globally synchronised batch norms under a multi-rank process group.
    run_model, run_refine = model, refine
    synced: list[nn.Module] = []
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        synced = [refine] if two_stage else trained
        for module in synced:
            distributed.synchronise_batch_norm(module)
        if not two_stage:
            run_model = DistributedDataParallel(model, device_ids=device_ids)
        if refine is not None:
            run_refine = DistributedDataParallel(refine, device_ids=device_ids)
    try:
        for epoch in range(start_epoch, recipe.epochs + 1):
            losses = _train_epoch(
                run_model,
                run_refine,
                train_data,
                recipe,
                pad,
                optimizer,
                scaler,
                generator,
                bone_lengths,
                device,
                epoch,
                two_stage,
                use_amp,
                last_path,
            )
            record: dict[str, float] = {"epoch": epoch, "lr": lr, **losses}
            lr = lr_after_epoch(lr, epoch, recipe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if evaluate is not None and main:
                model.eval()
                if refine is not None:
                    refine.eval()
                with torch.no_grad():
                    metrics = evaluate(model, refine)
                record.update({key: float(value) for key, value in metrics.items()})
            record = distributed.broadcast_object(record)
            history.append(record)
            if main:
                log.info(
                    "epoch %d/%d lr %.4g %s",
                    epoch,
                    recipe.epochs,
                    record["lr"],
                    " ".join(f"{key} {value:.5g}" for key, value in record.items() if key not in ("epoch", "lr")),
                )
            if on_epoch is not None and main:
                on_epoch(epoch, dict(record))
            p1 = record.get("P1")
            improved = p1 is not None and np.isfinite(p1) and (best_p1 is None or p1 < best_p1)
            if improved:
                best_epoch, best_p1 = epoch, p1
            rng = _rng_state(generator)
            if world > 1:
                rng.update(_gather_rank_rng(device))  # a collective: every rank takes part
            if main:
                networks = _networks(model, refine, model_name)
                if improved:
                    save_checkpoint(
                        directory / BEST_PENDING,
                        networks,
                        data_fingerprint,
                        _epoch_meta(BEST_SELECTION, epoch, record, recipe, bone_lengths),
                    )
                training = {
                    "epoch": epoch,
                    "lr": lr,
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict() if use_amp else None,
                    "rng": rng,
                    "recipe": recipe.to_dict(),
                    "history": history,
                    "best_epoch": best_epoch,
                    "best_p1": best_p1,
                }
                save_checkpoint(
                    last_path,
                    networks,
                    data_fingerprint,
                    {**_epoch_meta(LAST_SELECTION, epoch, record, recipe, bone_lengths), "training": training},
                )
                if improved:
                    os.replace(directory / BEST_PENDING, directory / BEST)
                if epoch == recipe.epochs:
                    save_final()
            # Rank 0 has finished writing before any rank reads a checkpoint (e.g. the divergence guard).
            distributed.barrier()
    finally:
        for module in synced:
            distributed.unsynchronise_batch_norm(module)
    model.eval()
    if refine is not None:
        refine.eval()
    return _result(history, best_epoch)


def _result(history: list[dict[str, float]], best_epoch: int | None) -> TrainResult:
    return TrainResult(
        history=history,
        last_epoch=len(history),
        best_epoch=best_epoch,
        best_metrics=dict(history[best_epoch - 1]) if best_epoch is not None else {},
        last_metrics=dict(history[-1]) if history else {},
    )


def _train_epoch(
    model: nn.Module,
    refine: nn.Module | None,
    data: PoseArrays,
    recipe: Recipe,
    pad: int,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator,
    bone_lengths: Tensor | None,
    device: torch.device,
    epoch: int,
    two_stage: bool,
    use_amp: bool,
    last_path: Path,
) -> dict[str, float]:
    """One pass over the shuffled data; returns the sample-weighted mean losses of the epoch.

    ``model`` / ``refine`` may be DDP wrappers: then this rank trains on its share of each global
    batch and the recorded losses are the global batch's (all-reduced), see :func:`_rank_loss`.
    """
    world, rank = distributed.world_size(), distributed.rank()
    model.train(not two_stage)
    if refine is not None:
        refine.train()
    layout = get_layout(data.layout)
    num_batches = -(-data.num_samples // recipe.batch_size)
    totals: list[Tensor] = []
    main_losses: list[Tensor] = []
    refine_losses: list[Tensor] = []
    sizes: list[int] = []
    checked = 0
    autocast = torch.autocast(device.type, dtype=torch.float16) if use_amp else nullcontext()
    batches = data.index_batches(recipe.batch_size, shuffle=True, generator=generator)
    for indices in progress(batches, total=num_batches, desc=f"epoch {epoch}/{recipe.epochs}", leave=False):
        flip: Tensor | bool = False
        if recipe.flip_augment:
            flip = (torch.rand(len(indices), generator=generator) < 0.5).to(device)
        global_n = len(indices)
        if world > 1:  # every rank drew the same global batch and mask; each keeps its contiguous share
            indices = torch.tensor_split(indices, world)[rank]
            if isinstance(flip, Tensor):
                flip = torch.tensor_split(flip, world)[rank]
        windows, target = data.batch(indices, pad, flip=flip)
        target = root_zeroed(target, layout)
        with autocast:
            with torch.no_grad() if two_stage else nullcontext():
                pred = model(windows)
            pred = pred.float()
            main = lifting_loss(pred, target, recipe.l1_weight)
            loss = main
            if refine is not None:
                lifted = lifted_estimate(data, indices, windows, pred, pad, recipe.root_depth, bone_lengths, flip)
                refined = refine(pred, lifted).float()
                refined_loss = refinement_loss(refined, target, layout, recipe.symmetry_weight)
                loss = refined_loss if two_stage else main + refined_loss
                if world == 1:
                    refine_losses.append(refined_loss.detach())
        optimizer.zero_grad(set_to_none=True)
        if world == 1:
            scaler.scale(loss).backward()
        else:
            outputs = [refined] if two_stage else [pred] + ([refined] if refine is not None else [])
            scaler.scale(_rank_loss(loss, outputs, len(indices), global_n, world)).backward()
        scaler.step(optimizer)
        scaler.update()
        if world == 1:
            totals.append(loss.detach())
            main_losses.append(main.detach())
        else:
            parts = [loss, main] + ([refined_loss] if refine is not None else [])
            batch_losses = _global_batch_losses(parts, len(indices), global_n)
            totals.append(batch_losses[0])
            main_losses.append(batch_losses[1])
            if refine is not None:
                refine_losses.append(batch_losses[2])
        sizes.append(global_n)
        if len(totals) - checked >= CHECK_EVERY:
            _check_losses(totals, checked, epoch, num_batches, recipe.max_loss, last_path)
            checked = len(totals)
    _check_losses(totals, checked, epoch, num_batches, recipe.max_loss, last_path)
    weights = torch.tensor(sizes, dtype=torch.float64, device=device)
    count = float(sum(sizes))

    def mean(values: list[Tensor]) -> float:
        return float((torch.stack(values).double() * weights).sum().item() / count)

    result = {"loss": mean(totals), "loss_main": mean(main_losses)}
    if refine_losses:
        result["loss_refine"] = mean(refine_losses)
    return result


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
    if last_path.exists():
        kept_epoch = load_checkpoint(last_path)["meta"].get("epoch")
        kept = f"the last good checkpoint {last_path} (epoch {kept_epoch}) was kept"
    else:
        kept = f"no checkpoint had been written yet ({last_path} does not exist)"
    raise TrainingDiverged(
        f"training diverged at epoch {epoch}, batch {start + first + 1}/{num_batches}: loss {value:g} ({reason}); "
        f"{kept}. Lower recipe.lr or check the data's units (metres)."
    )
