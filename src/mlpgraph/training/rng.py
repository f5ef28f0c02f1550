"""Every random-number generator a training run draws from: seeding, saving and restoring their states.

One seeded ``torch.Generator`` (CPU) draws the shuffle order and the flip masks; dropout draws from
the global torch RNG (on CUDA, the device's). Ranks > 0 of a multi-process run seed torch with
``seed + RANK_SEED_STRIDE * rank`` at a fresh start, so that their dropout masks differ from rank 0's.
The states are stored as tensors and plain values (``torch.load(weights_only=True)`` accepts them).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mlpgraph import distributed

log = logging.getLogger(__name__)

# Ranks > 0 of a multi-process run seed torch (their dropout) with seed + this * rank.
RANK_SEED_STRIDE = 1_000_003


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and torch (CPU and every CUDA device).

    Call it before building the networks so that their initial weights are reproducible too.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_fresh_run(seed: int, generator: torch.Generator) -> None:
    """A fresh start's seeding: every RNG and the run's generator with ``seed``, distinct dropout per rank."""
    seed_everything(seed)
    generator.manual_seed(seed)
    rank = distributed.rank()
    if rank > 0:
        torch.manual_seed(seed + RANK_SEED_STRIDE * rank)


def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every RNG state; in a multi-rank run also every rank's torch state (a collective: all ranks call it)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
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
    if distributed.world_size() > 1:
        state.update(_gather_rank_rng(device))
    return state


def restore_rng(
    state: Mapping[str, Any], generator: torch.Generator, device: torch.device, seed: int, start_epoch: int
) -> None:
    """Restore what :func:`rng_state` saved, this rank's own torch state included (see :func:`_restore_rank_rng`).

    ``seed`` (the recipe's) and ``start_epoch`` reseed ranks > 0 when the saved run had another number of ranks.
    """
    _set_rng_state(state, generator)
    _restore_rank_rng(state, device, seed, start_epoch)


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    """Rank 0's saved states: torch, CUDA, the run's generator, numpy and Python."""
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
