"""Multi-process training checks, run by tests/test_distributed.py under ``torchrun`` (or as one process).

``torchrun --standalone --nproc-per-node 2 tests/ddp_worker.py OUT_DIR CASE [CASE ...] [--eval-sleep S]``
runs each CASE in turn inside one gloo process group and writes, per rank, ``OUT_DIR/CASE.rank{R}.json``
(the returned history, the best epoch, the checkpoint paths this rank saved, its torch seed) and
``OUT_DIR/CASE.rank{R}.pt`` (its final weights); checkpoints go to ``OUT_DIR/CASE/``. Each rank
also writes ``OUT_DIR/pid.rank{R}`` first, so that a test can SIGKILL the workers themselves
(torchrun starts them in sessions of their own). The case ``batchnorm`` instead checks the
global-statistics batch norm against one ``nn.BatchNorm`` over the concatenated batch.

The cases (:data:`CASES`) share tests/train_worker.py's data and tiny MLP-Graph; ``joint`` and
``spatial`` have every dropout off so that one process and two compute the same thing, and batch
sizes whose batches split unevenly over two ranks (``spatial``'s last batch holds one sample, so
rank 1's share is empty).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import mlpgraph.training.checkpointing as checkpointing
from mlpgraph import distributed
from mlpgraph.data.batches import PoseArrays
from mlpgraph.models import build_model
from mlpgraph.training import Recipe, TrainResult, seed_everything, train
from tests.train_worker import PAD, make_data, p1_mm

# name -> (recipe overrides, refinement network?, dropout on?)
CASES: dict[str, tuple[dict[str, Any], bool, bool]] = {
    # 150 samples in batches of 31: 4 x (16 | 15) and a last batch of 26 (13 | 13)
    "joint": ({"epochs": 3, "batch_size": 31, "refine": True}, True, False),
    # batches of 149: (75 | 74), then a last batch of one sample (1 | empty)
    "spatial": ({"epochs": 2, "batch_size": 149}, False, False),
    # two-stage refinement: the frozen model is not wrapped, only the refinement trains
    "two_stage": ({"epochs": 2, "batch_size": 31, "refine": True, "refine_mode": "two_stage"}, True, False),
    # dropout on (0.2 in MLP-Graph, 0.5 in the refinement): per-rank dropout RNG must resume exactly
    "dropout": ({"epochs": 3, "batch_size": 31, "refine": True}, True, True),
}


def case_recipe(case: str) -> Recipe:
    """The recipe of ``case``: the GT recipe at lr 5e-3 on CPU with the case's overrides."""
    overrides, _, _ = CASES[case]
    return Recipe(**{"lr": 5e-3, "device": "cpu", **overrides})


def case_networks(case: str) -> tuple[nn.Module, nn.Module | None]:
    """train_worker's tiny MLP-Graph (and narrow refinement), dropout as the case says, seeded with 1."""
    _, with_refine, dropout = CASES[case]
    seed_everything(1)
    model = build_model(
        "mlpgraph",
        frames=2 * PAD + 1,
        hid_dim=16,
        spatial_hid_dim=16,
        channel_hid_dim=24,
        num_layers=1,
        dropout=0.2 if dropout else 0.0,
    )
    refine = build_model("refine", hidden_dim=32, dropout=0.5 if dropout else 0.0) if with_refine else None
    return model, refine


def run_case(
    case: str, checkpoint_dir: Path, eval_sleep: float = 0.0
) -> tuple[TrainResult, nn.Module, nn.Module | None]:
    """Train ``case`` into ``checkpoint_dir`` (resuming from it if it holds last.pt); evaluate P1 on held-out data."""
    train_data: PoseArrays = make_data(seed=0)
    test_data = make_data(num_sequences=2, seed=1)
    model, refine = case_networks(case)

    def evaluate(model: nn.Module, refine: nn.Module | None) -> dict[str, float]:
        time.sleep(eval_sleep)
        return {"P1": p1_mm(model, refine, test_data)}

    result = train(model, train_data, case_recipe(case), checkpoint_dir, PAD, evaluate=evaluate, refine=refine)
    return result, model, refine


def flat_weights(model: nn.Module, refine: nn.Module | None) -> dict[str, torch.Tensor]:
    """Both networks' state in one dict, keys prefixed ``model.`` / ``refine.``."""
    state = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    if refine is not None:
        state.update({f"refine.{k}": v.detach().clone() for k, v in refine.state_dict().items()})
    return state


def _max_abs(tensor: torch.Tensor) -> float:
    return float(tensor.detach().abs().max()) if tensor.numel() else 0.0


def check_batchnorm(out: Path) -> dict[str, float]:
    """Global-statistics batch norm on this rank's share vs nn.BatchNorm on the whole batch (every rank).

    Returns the largest absolute differences of outputs, input gradients, parameter gradients
    (summed over ranks) and running statistics after three training steps, for BatchNorm1d on
    (N, C, L) and (N, C) inputs with uneven shares, with a share left empty, with momentum None,
    and BatchNorm2d; plus whether the state-dict keys equal the plain module's.
    """
    world, rank = distributed.world_size(), distributed.rank()
    errors: dict[str, float] = {}

    def compare(name: str, make: Any, shape: tuple[int, ...]) -> None:
        torch.manual_seed(0)
        reference = make()
        with torch.no_grad():
            reference.weight.uniform_(0.5, 1.5)
            reference.bias.uniform_(-0.5, 0.5)
        synced = make()
        synced.load_state_dict(reference.state_dict())
        distributed.synchronise_batch_norm(synced)
        errors[f"{name}.keys_differ"] = float(list(synced.state_dict()) != list(reference.state_dict()))
        worst = {"out": 0.0, "grad_input": 0.0, "grad_params": 0.0, "running": 0.0}
        for step in range(3):
            x = torch.randn(*shape) * (step + 1) + 3.0  # an offset mean: the two-pass variance matters
            weights = torch.randn(*shape)
            x_full = x.clone().requires_grad_(True)
            out_full = reference(x_full)
            (out_full * weights).sum().backward()
            share = torch.tensor_split(torch.arange(shape[0]), world)[rank]
            x_local = x[share].clone().requires_grad_(True)
            out_local = synced(x_local)
            (out_local * weights[share]).sum().backward()
            worst["out"] = max(worst["out"], _max_abs(out_local - out_full[share]))
            worst["grad_input"] = max(worst["grad_input"], _max_abs(x_local.grad - x_full.grad[share]))
            for param in ("weight", "bias"):
                grad = getattr(synced, param).grad.clone()
                distributed.all_reduce_sum(grad)
                worst["grad_params"] = max(worst["grad_params"], _max_abs(grad - getattr(reference, param).grad))
            reference.zero_grad()
            synced.zero_grad()
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                diff = _max_abs(getattr(synced, buffer).double() - getattr(reference, buffer).double())
                worst["running"] = max(worst["running"], diff)
        x = torch.randn(*shape)
        errors[f"{name}.eval"] = _max_abs(synced.eval()(x) - reference.eval()(x))
        distributed.unsynchronise_batch_norm(synced)
        errors[f"{name}.restored_class"] = float(type(synced) is not type(reference))
        errors.update({f"{name}.{key}": value for key, value in worst.items()})

    compare("bn1d_ncl", lambda: nn.BatchNorm1d(4), (7, 4, 5))
    compare("bn1d_nc", lambda: nn.BatchNorm1d(3), (9, 3))
    compare("bn1d_empty_share", lambda: nn.BatchNorm1d(4), (1, 4, 6))
    compare("bn1d_cumulative", lambda: nn.BatchNorm1d(4, momentum=None), (6, 4, 3))
    compare("bn2d", lambda: nn.BatchNorm2d(3), (5, 3, 4, 2))
    (out / f"batchnorm.rank{rank}.json").write_text(json.dumps(errors, indent=1))
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("cases", nargs="+", choices=[*CASES, "batchnorm"])
    parser.add_argument("--eval-sleep", type=float, default=0.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with distributed.distributed_context("cpu") as context:
        rank = context.rank
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"pid.rank{rank}").write_text(str(os.getpid()))
        saved: list[str] = []
        original_save = checkpointing.save_checkpoint

        def recording_save(path: Any, *rest: Any, **kwargs: Any) -> Path:
            saved.append(Path(path).name)
            return original_save(path, *rest, **kwargs)

        checkpointing.save_checkpoint = recording_save  # every checkpoint write of train() goes through it
        for case in args.cases:
            if case == "batchnorm":
                check_batchnorm(args.out)
                continue
            saved.clear()
            result, model, refine = run_case(case, args.out / case, args.eval_sleep)
            report = {
                "history": result.history,
                "best_epoch": result.best_epoch,
                "saved": list(saved),
                "initial_seed": torch.initial_seed(),
                "world_size": context.world_size,
            }
            (args.out / f"{case}.rank{rank}.json").write_text(json.dumps(report))
            torch.save(flat_weights(model, refine), args.out / f"{case}.rank{rank}.pt")
        distributed.barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
