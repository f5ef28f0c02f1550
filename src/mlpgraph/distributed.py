"""The process-group context for multi-process (multi-GPU) training under ``torchrun``.

``torchrun --nproc-per-node N script.py ...`` starts N copies of the script with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` (and the rendezvous address) in their environment.
:func:`init_distributed` reads them, initialises the default process group (NCCL when the rank
computes on a CUDA device, gloo on CPU) and returns a :class:`DistributedContext` naming the
rank's device (``cuda:LOCAL_RANK`` on GPUs); :func:`shutdown` (or the :func:`distributed_context`
context manager) tears it down again.

Without ``torchrun`` (or with a world size of 1) nothing is initialised and every helper here is a
no-op: :func:`barrier` returns at once, :func:`all_reduce_sum` leaves its tensor alone,
:func:`broadcast_object` returns its argument and :func:`all_gather_object` a one-element list.
So a plain ``python`` process runs exactly the code path it ran before this module existed.

Batch normalisation is the one layer whose forward couples the samples of a batch. When each
rank sees only its share of the global batch, the plain layer would normalise with the share's
statistics and the run would no longer compute what one process computes.
:func:`synchronise_batch_norm` turns every ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` of a module into
a subclass that, in training mode and under a multi-rank process group, normalises with the
statistics of the whole global batch (over all ranks, differentiably) and updates the running
statistics as the plain layer would with them. ``torch.nn.SyncBatchNorm`` does the same but
refuses CPU tensors, so it cannot run under gloo; this one works on both backends. The swap only
changes the modules' classes: parameters, buffers and state-dict keys are untouched, so
checkpoints stay interchangeable with the plain modules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from mlpgraph.devices import PARAMS_KEY, resolve_device
from mlpgraph.errors import UserInputError

log = logging.getLogger(__name__)

T = TypeVar("T")

ENV_WORLD_SIZE = "WORLD_SIZE"
ENV_RANK = "RANK"
ENV_LOCAL_RANK = "LOCAL_RANK"


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly trivial) process group.

    ``device`` is the device this rank computes on; ``backend`` is ``"nccl"`` or ``"gloo"`` when a
    process group with more than one rank is active, else ``None``; ``initialised_here`` says
    whether :func:`init_distributed` created the group (and so :func:`shutdown` destroys it).
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    initialised_here: bool = False

    @property
    def is_distributed(self) -> bool:
        """True when more than one rank takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that evaluates, logs and writes files."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserInputError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < 0:
        raise UserInputError(f"environment variable {name}={raw!r} must be >= 0")
    return value


def launched_world() -> tuple[int, int, int]:
    """``(world_size, rank, local_rank)`` as ``torchrun`` set them in the environment, else ``(1, 0, 0)``."""
    world = _env_int(ENV_WORLD_SIZE, 1)
    rank = _env_int(ENV_RANK, 0)
    local = _env_int(ENV_LOCAL_RANK, 0)
    if world < 1 or rank >= world:
        raise UserInputError(f"environment: RANK={rank} is not below WORLD_SIZE={world}")
    return world, rank, local


def rank_device(device: str | torch.device = "auto", key: str = PARAMS_KEY) -> torch.device:
    """The device this process should compute on.

    ``"auto"`` is CUDA when available, else CPU; a device this machine lacks is a one-line error
    naming ``key`` (:func:`mlpgraph.devices.resolve_device`). A CUDA device without an index becomes
    ``cuda:LOCAL_RANK`` when launched by ``torchrun`` with more than one rank (one GPU per rank on
    a node), ``cuda`` otherwise (the current device, as before). Anything else is taken as given.
    """
    resolved = resolve_device(device, key)
    world, _, local = launched_world()
    if resolved.type == "cuda" and resolved.index is None and world > 1:
        count = torch.cuda.device_count()
        if local >= count:
            raise UserInputError(f"LOCAL_RANK {local} has no GPU: this node has {count} CUDA device(s)")
        return torch.device("cuda", local)
    return resolved


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process)."""
    return rank() == 0


def init_distributed(device: str | torch.device = "auto", timeout: timedelta | None = None) -> DistributedContext:
    """Initialise the default process group if ``torchrun`` launched more than one rank.

    The backend is NCCL when CUDA is available and the rank's device (:func:`rank_device`) is a
    CUDA device (then made the current device), gloo otherwise. With a world size of 1 nothing is
    initialised. A group the caller initialised already is used as it is (and not destroyed by
    :func:`shutdown`).
    """
    world, rank_, local = launched_world()
    resolved = rank_device(device)
    if world <= 1:
        return DistributedContext(device=resolved)
    if not dist.is_available():
        raise UserInputError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed support")
    if dist.is_initialized():
        return DistributedContext(
            dist.get_world_size(), dist.get_rank(), local, resolved, str(dist.get_backend()), initialised_here=False
        )
    use_nccl = resolved.type == "cuda" and torch.cuda.is_available()
    backend = "nccl" if use_nccl else "gloo"
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    if use_nccl:
        torch.cuda.set_device(resolved)
        kwargs["device_id"] = resolved
    dist.init_process_group(backend=backend, **kwargs)
    log.info("rank %d/%d (local %d) on %s, backend %s", rank_, world, local, resolved, backend)
    return DistributedContext(world, rank_, local, resolved, backend, initialised_here=True)


def shutdown(context: DistributedContext) -> None:
    """Destroy the process group if ``context`` initialised it (a no-op otherwise)."""
    if context.initialised_here and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_context(device: str | torch.device = "auto") -> Iterator[DistributedContext]:
    """:func:`init_distributed` on entry, :func:`shutdown` on exit (also after an exception)."""
    context = init_distributed(device)
    try:
        yield context
    finally:
        shutdown(context)


# --------------------------------------------------------------------------------- collectives
def barrier() -> None:
    """Wait until every rank has reached this point (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all ranks in place and return it (unchanged in a single process).

    Not differentiable; see :func:`differentiable_all_reduce_sum` for that.
    """
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` (a small picklable value) on every rank; ``obj`` itself in a single process."""
    if not is_distributed():
        return obj
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]  # type: ignore[return-value]


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank; ``[obj]`` in a single process."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


# ------------------------------------------------------------------------------- batch norm
class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of a rank's input is the sum of every rank's output gradient.

    What ``torch.distributed.nn.functional.all_reduce`` does (deprecated in recent PyTorch, with a
    warning on every call, in favour of a private API), kept here so batch norm does not depend on it.
    """

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        reduced = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return _AllReduceSum.apply(grad)


def differentiable_all_reduce_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over all ranks, as a new tensor through which gradients flow back to every rank."""
    return _AllReduceSum.apply(tensor) if is_distributed() else tensor


class _GlobalBatchNormMixin:
    """Training-mode forward with the global batch statistics of all ranks (see the module docstring).

    Mean and biased variance are computed in two passes (sum and count, then the sum of squared
    deviations from the global mean), each one differentiable all-reduce
    (:func:`differentiable_all_reduce_sum`), in at least float32.
    The running statistics get exactly nn.BatchNorm's update with these global values (unbiased
    variance, ``momentum`` or the cumulative average when it is ``None``, ``num_batches_tracked``).
    In eval mode, or without a multi-rank process group, the parent's forward runs unchanged (so
    rank 0 may evaluate alone while the other ranks wait).
    """

    def forward(self, input: Tensor) -> Tensor:
        bn: nn.modules.batchnorm._BatchNorm = self  # type: ignore[assignment]
        # Eval mode never synchronises, even without running statistics: rank 0 evaluates alone.
        if not (bn.training and is_distributed()):
            return super().forward(input)  # type: ignore[misc]
        bn._check_input_dim(input)
        all_reduce = differentiable_all_reduce_sum
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        shape = [1, channels] + [1] * (input.dim() - 2)
        dtype = torch.promote_types(input.dtype, torch.float32)
        x = input.to(dtype)
        count = torch.full((1,), float(input.numel() // max(channels, 1)), dtype=dtype, device=input.device)
        packed = all_reduce(torch.cat([x.sum(dims), count]))
        total = packed[-1]  # not checked for > 1 as nn.BatchNorm does: that would synchronise a GPU
        mean = packed[:channels] / total
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / total

        if bn.training and bn.track_running_stats:
            factor = 0.0 if bn.momentum is None else bn.momentum
            if bn.num_batches_tracked is not None:
                bn.num_batches_tracked.add_(1)
                factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            with torch.no_grad():
                unbiased = var.detach() * (total / (total - 1))
                bn.running_mean.mul_(1.0 - factor).add_(mean.detach().to(bn.running_mean.dtype), alpha=factor)
                bn.running_var.mul_(1.0 - factor).add_(unbiased.to(bn.running_var.dtype), alpha=factor)

        out = centred * torch.rsqrt(var + bn.eps).view(shape)
        if bn.weight is not None:
            out = out * bn.weight.to(dtype).view(shape)
        if bn.bias is not None:
            out = out + bn.bias.to(dtype).view(shape)
        return out.to(input.dtype)


class GlobalBatchNorm1d(_GlobalBatchNormMixin, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training-mode statistics are those of the global batch over all ranks."""


class GlobalBatchNorm2d(_GlobalBatchNormMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode statistics are those of the global batch over all ranks."""


_SYNCED: dict[type[nn.Module], type[nn.Module]] = {
    nn.BatchNorm1d: GlobalBatchNorm1d,
    nn.BatchNorm2d: GlobalBatchNorm2d,
}
_PLAIN = {synced: plain for plain, synced in _SYNCED.items()}


def synchronise_batch_norm(module: nn.Module) -> nn.Module:
    """Turn every plain ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` inside ``module`` into its global-statistics subclass.

    In place (only the classes change, so parameters, buffers, hooks, optimiser references and
    state-dict keys stay as they are); returns ``module``. Subclasses of the batch norms are left
    alone. Undone by :func:`unsynchronise_batch_norm`.
    """
    return _swap_classes(module, _SYNCED)


def unsynchronise_batch_norm(module: nn.Module) -> nn.Module:
    """Inverse of :func:`synchronise_batch_norm`: the plain batch-norm classes again (in place); returns ``module``."""
    return _swap_classes(module, _PLAIN)


def _swap_classes(module: nn.Module, classes: dict[type[nn.Module], type[nn.Module]]) -> nn.Module:
    """Give every submodule whose exact class is a key of ``classes`` the class it maps to; returns ``module``."""
    for sub in module.modules():
        swapped = classes.get(type(sub))
        if swapped is not None:
            sub.__class__ = swapped
    return module
