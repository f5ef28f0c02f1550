"""Training and evaluation benchmarks: samples/s with the data path included.

For MLP-Graph 1-frame and 243-frame (paper configurations), one training step is: batch
construction, forward, the released loss, backward, Adam step. Two data paths feed the same
model in the same run, on the same arrays:

- ours: ``PoseArrays.index_batches`` + ``PoseArrays.batch`` (one index per batch, random flips
  by mask), as ``mlpgraph.training`` does;
- the release's per-item path: ``ReleaseStyleWindows`` through a ``DataLoader``
  (``bench/peer_paths.py``), flips done per item as the release does.

It also times the evaluation of a Human3.6M-sized test split (``predict`` with flip
averaging; measured on a slice and scaled when the whole split would take too long), and
estimates a ``full``-scale training epoch (1.56 M samples) from the measured throughput.

    .venv/bin/python bench/train.py            # -> metrics/bench_train.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
from machine import machine_info
from peer_paths import ReleaseStyleWindows, random_arrays
from torch.utils.data import DataLoader

from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation import predict
from mlpgraph.layouts import H36M16
from mlpgraph.models import PAPER_CONFIGS, build_model
from mlpgraph.outputs import Output, atomic_path, check_outputs
from mlpgraph.training import lifting_loss

log = logging.getLogger("bench.train")

FULL_TRAIN_SAMPLES = 1_560_000
FULL_TEST_SAMPLES = 540_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, windows: torch.Tensor, targets: torch.Tensor
) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = lifting_loss(model(windows), targets - targets[:, :1])
    loss.backward()
    optimizer.step()


def ours(data: PoseArrays, model, optimizer, pad: int, batch_size: int, steps: int, seed: int) -> float:
    """Samples/s of ``steps`` training steps fed by index arithmetic."""
    gen = torch.Generator().manual_seed(seed)
    batches = data.index_batches(batch_size, shuffle=True, generator=gen)
    windows, targets = data.batch(next(batches), pad, flip=torch.rand(batch_size, generator=gen) < 0.5)
    _step(model, optimizer, windows, targets)  # warm-up
    _sync(data.device)
    began = time.perf_counter()
    for _, idx in zip(range(steps), batches, strict=False):
        mask = torch.rand(len(idx), generator=gen) < 0.5
        windows, targets = data.batch(idx, pad, flip=mask)
        _step(model, optimizer, windows, targets)
    _sync(data.device)
    return steps * batch_size / (time.perf_counter() - began)


class _FlippingRelease(ReleaseStyleWindows):
    """The release's per-item path with its per-item random flip (negate x, swap left/right)."""

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        cam, window_3d, window_2d, *rest = super().__getitem__(i)
        if np.random.random() < 0.5:
            perm = H36M16.flip_permutation
            window_2d = window_2d[:, perm] * np.array([-1.0, 1.0], dtype=np.float32)
            window_3d = window_3d[:, perm] * np.array([-1.0, 1.0, 1.0], dtype=np.float32)
        return (cam, window_3d, window_2d, *rest)


def release(dataset: ReleaseStyleWindows, model, optimizer, batch_size: int, steps: int, seed: int) -> float:
    """Samples/s of ``steps`` training steps fed by the release's per-item DataLoader."""
    np.random.seed(seed)
    loader = iter(
        DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    )

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        _cam, window_3d, window_2d, *_ = next(loader)
        return window_2d, window_3d[:, dataset.pad]

    _step(model, optimizer, *next_batch())
    began = time.perf_counter()
    for _ in range(steps):
        _step(model, optimizer, *next_batch())
    return steps * batch_size / (time.perf_counter() - began)


def bench_model(label: str, samples: int, batch_size: int, steps: int, repeats: int, eval_samples: int) -> dict:
    config = PAPER_CONFIGS[label]
    torch.manual_seed(0)
    model = build_model(config.model, **config.overrides)
    pad = (model.config["frames"] - 1) // 2
    poses_2d, poses_3d, sequences = random_arrays(samples)
    data = PoseArrays.from_numpy(poses_2d, poses_3d, sequences)
    dataset = _FlippingRelease(poses_2d, poses_3d, sequences, pad)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)
    model.train()
    rates: dict[str, list[float]] = {"ours": [], "release_per_item": []}
    for rep in range(repeats):
        log.info("%s: round %d/%d", label, rep + 1, repeats)
        rates["ours"].append(ours(data, model, optimizer, pad, batch_size, steps, rep))
        rates["release_per_item"].append(release(dataset, model, optimizer, batch_size, steps, rep))
    row: dict[str, Any] = {"model": label, "frames": 2 * pad + 1, "batch_size": batch_size, "steps": steps}
    for key, values in rates.items():
        row[f"{key}_samples_per_s"] = statistics.median(values)
        row[f"{key}_runs"] = values
    row["speedup"] = row["ours_samples_per_s"] / row["release_per_item_samples_per_s"]
    row["full_epoch_estimate_s"] = FULL_TRAIN_SAMPLES / row["ours_samples_per_s"]

    subset = torch.arange(min(eval_samples, data.num_samples))
    began = time.perf_counter()
    predict(model, data, pad, flip_test=True, batch_size=1024, indices=subset)
    seconds = time.perf_counter() - began
    row["eval_samples_measured"] = len(subset)
    row["eval_poses_per_s"] = len(subset) / seconds
    row["eval_full_test_split_s"] = FULL_TEST_SAMPLES / row["eval_poses_per_s"]
    return row


def format_table(rows: list[dict]) -> str:
    head = ["model", "ours samples/s", "release per-item samples/s", "speed-up", "full epoch (est.)", "full test eval"]
    lines = [head]
    for r in rows:
        lines.append(
            [
                r["model"],
                f"{r['ours_samples_per_s']:,.0f}",
                f"{r['release_per_item_samples_per_s']:,.0f}",
                f"{r['speedup']:.2f}x",
                f"{r['full_epoch_estimate_s'] / 60:,.1f} min",
                f"{r['eval_full_test_split_s'] / 60:,.1f} min",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="metrics/bench_train.json")
    parser.add_argument(
        "--samples", type=int, default=200_000, help="random training samples (Human3.6M-like sequences)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-samples", type=int, default=20_000, help="test samples timed for evaluation")
    parser.add_argument("--models", nargs="+", default=["mlpgraph_f1", "mlpgraph_f243"])
    args = parser.parse_args(argv)
    try:  # refused before the benchmark runs, not after
        check_outputs([Output(args.out, option="--out")])
    except UserInputError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rows = [
        bench_model(m, args.samples, args.batch_size, args.steps, args.repeats, args.eval_samples) for m in args.models
    ]
    results = {
        "machine": machine_info(["cpu"]),
        "note": "full-scale figures are estimates from the measured throughput (no GPU was available)",
        "rows": rows,
    }
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
