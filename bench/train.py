"""Training and evaluation benchmarks: samples/s with the data path included, and the accuracy check.

For MLP-Graph 1-frame and 243-frame (paper configurations), one training step is: batch
construction, forward, the released loss, backward, Adam(amsgrad) step. Three set-ups train the
same initial weights in the same run, interleaved, on the same arrays:

- release: the release's per-item path (``ReleaseStyleWindows`` through a ``DataLoader``,
  ``bench/peer_paths.py``, flips per item) feeding the release's arithmetic
  (``MLPGraph.use_arithmetic("release")``) in float32, eager;
- plain: our batches (``PoseArrays.index_batches`` + ``PoseArrays.batch``) feeding the release's
  arithmetic: what the data path alone gains;
- fast: our batches feeding the configured step ``mlpgraph.training.make_train_step`` with the
  params file's settings (``train.precision``, ``train.compile``; ``auto`` resolved for a
  ``full``-scale run of 50 epochs, as the training stage would), on the fast arithmetic. Its
  warm-up (compilation included) is reported apart.

The accuracy check (``--accuracy-epochs``, on a processed file, default the ``small`` synthetic
gt file of ``make reproduce``) trains the 1-frame model for the same epochs with the fast
settings and with the release's arithmetic in float32, and compares their test P1 (must be
within 2 %). It also times the evaluation of a Human3.6M-sized test split (``predict`` with flip
averaging on the fast inference path; measured on a slice and scaled), and estimates a
``full``-scale training epoch (1.56 M samples) from the measured throughput.

    .venv/bin/python bench/train.py            # -> metrics/bench_train.json
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from machine import machine_info
from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation import evaluate_h36m, predict
from mlpgraph.layouts import H36M16
from mlpgraph.models import PAPER_CONFIGS, build_model
from mlpgraph.params import load_params
from mlpgraph.training import Recipe, lifting_loss, make_train_step, seed_everything, train
from peer_paths import ReleaseStyleWindows, random_arrays
from results_file import refuse_bad_out, write_results

log = logging.getLogger("bench.train")

FULL_TRAIN_SAMPLES = 1_560_000
FULL_TEST_SAMPLES = 540_000
FULL_EPOCHS = 50
Step = Callable[[torch.Tensor, torch.Tensor], object]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release_step(model: torch.nn.Module) -> Step:
    """The release's step: its arithmetic, eager float32, Adam(amsgrad), the released loss."""
    model.use_arithmetic("release").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)

    def step(windows: torch.Tensor, targets: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        lifting_loss(model(windows), targets).backward()
        optimizer.step()

    return step


def ours(data: PoseArrays, step: Step, pad: int, batch_size: int, steps: int, seed: int) -> float:
    """Samples/s of ``steps`` training steps fed by index arithmetic (one warm-up step first)."""
    gen = torch.Generator().manual_seed(seed)
    batches = data.index_batches(batch_size, shuffle=True, generator=gen)

    def run(idx: torch.Tensor) -> None:
        windows, targets = data.batch(idx, pad, flip=torch.rand(len(idx), generator=gen) < 0.5)
        step(windows, targets - targets[:, :1])

    run(next(batches))
    _sync(data.device)
    began = time.perf_counter()
    for _, idx in zip(range(steps), batches, strict=False):
        run(idx)
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


def release(dataset: ReleaseStyleWindows, step: Step, batch_size: int, steps: int, seed: int) -> float:
    """Samples/s of ``steps`` training steps fed by the release's per-item DataLoader."""
    np.random.seed(seed)
    loader = iter(
        DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    )

    def run() -> None:
        _cam, window_3d, window_2d, *_ = next(loader)
        targets = window_3d[:, dataset.pad]
        step(window_2d, targets - targets[:, :1])

    run()
    began = time.perf_counter()
    for _ in range(steps):
        run()
    return steps * batch_size / (time.perf_counter() - began)


def fast_step(model: torch.nn.Module, params: Path, batch_size: int) -> tuple[Step, dict[str, Any]]:
    """The configured step for a full-scale run, and its settings with the warm-up (compilation) time."""
    run_steps = FULL_EPOCHS * -(-FULL_TRAIN_SAMPLES // batch_size)
    step = make_train_step(model, params, steps=run_steps)
    return step, {"precision": step.speed.precision, "compile": step.speed.compile}


def bench_model(label: str, args: argparse.Namespace) -> dict:
    """One paper configuration: release, plain and fast set-ups interleaved over ``args.repeats`` rounds."""
    config = PAPER_CONFIGS[label]
    torch.manual_seed(0)
    model = build_model(config.model, **config.overrides)
    pad = (model.config["frames"] - 1) // 2
    poses_2d, poses_3d, sequences = random_arrays(args.samples)
    data = PoseArrays.from_numpy(poses_2d, poses_3d, sequences)
    dataset = _FlippingRelease(poses_2d, poses_3d, sequences, pad)
    plain, release_run = release_step(copy.deepcopy(model)), release_step(copy.deepcopy(model))
    began = time.perf_counter()
    step, settings = fast_step(model, args.params, args.batch_size)
    ours(data, step, pad, args.batch_size, 1, seed=99)
    settings["warmup_s"] = time.perf_counter() - began
    rates: dict[str, list[float]] = {"fast": [], "plain": [], "release": []}
    for rep in range(args.repeats):
        log.info("%s: round %d/%d", label, rep + 1, args.repeats)
        rates["fast"].append(ours(data, step, pad, args.batch_size, args.steps, rep))
        rates["plain"].append(ours(data, plain, pad, args.batch_size, args.steps, rep))
        rates["release"].append(release(dataset, release_run, args.batch_size, args.steps, rep))
    row: dict[str, Any] = {"model": label, "frames": 2 * pad + 1, "batch_size": args.batch_size, "steps": args.steps}
    row["fast_settings"] = settings
    for key, values in rates.items():
        row[f"{key}_samples_per_s"] = statistics.median(values)
        row[f"{key}_runs"] = values
    row["speedup"] = row["fast_samples_per_s"] / row["release_samples_per_s"]
    row["speedup_over_plain"] = row["fast_samples_per_s"] / row["plain_samples_per_s"]
    row["full_epoch_estimate_s"] = FULL_TRAIN_SAMPLES / row["fast_samples_per_s"]
    row.update(evaluation_speed(model, data, pad, args.eval_samples))
    return row


def evaluation_speed(model: torch.nn.Module, data: PoseArrays, pad: int, eval_samples: int) -> dict[str, Any]:
    """Poses/s of ``predict`` (flip averaging, the default fast inference path) on a slice, scaled to a test split."""
    subset = torch.arange(min(eval_samples, data.num_samples))
    began = time.perf_counter()
    predict(model, data, pad, flip_test=True, batch_size=1024, indices=subset)
    rate = len(subset) / (time.perf_counter() - began)
    return {
        "eval_samples_measured": len(subset),
        "eval_poses_per_s": rate,
        "eval_full_test_split_s": FULL_TEST_SAMPLES / rate,
    }


def accuracy_check(args: argparse.Namespace) -> dict[str, Any]:
    """Test P1 of the 1-frame model after ``args.accuracy_epochs`` epochs: fast settings vs the release's arithmetic."""
    params = load_params(args.params)
    data_params, train_params = params["data"], params["train"]
    train_data = PoseArrays.from_processed(args.accuracy_processed, subjects=list(data_params["train_subjects"]))
    test = PoseArrays.from_processed(args.accuracy_processed, subjects=list(data_params["test_subjects"]))
    result: dict[str, Any] = {"processed": str(args.accuracy_processed), "epochs": args.accuracy_epochs}
    for name in ("fast", "release"):
        seed_everything(1)
        model = build_model("mlpgraph")
        fast = name == "fast"
        if not fast:
            model.use_arithmetic("release")
        recipe = Recipe(
            epochs=args.accuracy_epochs,
            batch_size=args.batch_size,
            device="cpu",
            precision=train_params["precision"] if fast else "float32",
            compile=train_params["compile"] if fast else False,
        )
        began = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            train(model, train_data, recipe, folder, pad=0)
        seconds = time.perf_counter() - began
        p1 = evaluate_h36m(predict(model, test, 0, flip_test=True), test)["P1"]
        result[name] = {"P1": p1, "train_seconds": seconds}
        log.info("accuracy check, %s: test P1 %.2f mm after %d epochs (%.0f s)", name, p1, recipe.epochs, seconds)
    result["relative_difference"] = abs(result["fast"]["P1"] - result["release"]["P1"]) / result["release"]["P1"]
    result["within_2_percent"] = result["relative_difference"] <= 0.02
    return result


def format_table(rows: list[dict]) -> str:
    head = ["model", "fast samples/s", "plain samples/s", "release samples/s", "speed-up", "settings", "full epoch"]
    head += ["full test eval"]
    lines = [head]
    for r in rows:
        settings = r["fast_settings"]
        lines.append(
            [
                r["model"],
                f"{r['fast_samples_per_s']:,.0f}",
                f"{r['plain_samples_per_s']:,.0f}",
                f"{r['release_samples_per_s']:,.0f}",
                f"{r['speedup']:.2f}x",
                f"{settings['precision']}, compile {'on' if settings['compile'] else 'off'}",
                f"{r['full_epoch_estimate_s'] / 60:,.1f} min (est.)",
                f"{r['eval_full_test_split_s'] / 60:,.1f} min (est.)",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def format_accuracy(check: dict[str, Any]) -> str:
    """One line: both runs' test P1 and whether they agree within 2 %."""
    fast, release = check["fast"]["P1"], check["release"]["P1"]
    verdict = "within" if check["within_2_percent"] else "NOT within"
    return (
        f"accuracy after {check['epochs']} epochs (1 frame, {check['processed']}): fast {fast:.2f} mm, "
        f"release arithmetic {release:.2f} mm, {100 * check['relative_difference']:.2f} % apart ({verdict} 2 %)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_train.json"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="settings of the fast step")
    parser.add_argument(
        "--samples", type=int, default=200_000, help="random training samples (Human3.6M-like sequences)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-samples", type=int, default=20_000, help="test samples timed for evaluation")
    parser.add_argument("--models", nargs="+", default=["mlpgraph_f1", "mlpgraph_f243"], choices=sorted(PAPER_CONFIGS))
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's; 1 on a shared machine)")
    parser.add_argument("--accuracy-epochs", type=int, default=2, help="0 skips the accuracy check")
    parser.add_argument("--accuracy-processed", type=Path, default=Path("data/processed/synthetic_gt_h36m16.h5"))
    args = parser.parse_args(argv)
    refuse_bad_out(parser, args.out)
    try:  # refused before the benchmark runs, not after
        load_params(args.params)
        if args.accuracy_epochs and not args.accuracy_processed.is_file():
            raise UserInputError(
                f"--accuracy-processed {args.accuracy_processed}: no such file (run `snakemake all` or "
                "`dvc repro preprocess@gt` first, or pass --accuracy-epochs 0)"
            )
    except UserInputError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [bench_model(label, args) for label in args.models]
    results: dict[str, Any] = {
        "machine": machine_info(["cpu"]),
        "note": "full-scale epoch and test-split times are estimates from the measured throughput",
        "rows": rows,
    }
    if args.accuracy_epochs:
        results["accuracy"] = accuracy_check(args)
    write_results(args.out, results)
    print(format_table(rows))
    if "accuracy" in results:
        print(format_accuracy(results["accuracy"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
