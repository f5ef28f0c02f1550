"""GPU benchmark: a full-scale training epoch of MLP-Graph (1 and 243 frames) with the data on the device.

For MLP-Graph 1-frame (registry defaults, C = 128) and 243-frame (C = S = 384, D = 768), the
paper configurations of ``mlpgraph.models.PAPER_CONFIGS``:

- training: the configured step (``mlpgraph.training.make_train_step``, reading a copy of
  params.yaml with ``train.device`` / ``train.precision`` / ``train.compile`` set), fed as
  ``mlpgraph.training.epoch`` feeds it: shuffled index batches of ``PoseArrays`` resident on the
  device (random Human3.6M-like sequences, 1.56 M samples), a random flip mask per batch,
  root-relative targets. Each variant (eager; ``torch.compile``; CUDA graphs, i.e. the forward
  compiled with ``mode="reduce-overhead"``) reports samples/s, the epoch time (measured whole with
  ``--full-epoch``, otherwise extrapolated from ``--steps`` steps, labelled), the warm-up and
  compilation time apart, the peak GPU memory and the achieved FLOP/s as a fraction of the
  device's bfloat16 peak (measured, and nominal by device name: ``bench/flops.py``);
- inference: eval mode without autograd (the folded fast path), poses/s at batch 256 and 4096.

The goal printed beside the result (``bench/gpu_report.py``): a full 243-frame epoch (1.56 M
samples, about 0.95 PFLOP of training) in under 10 s on one H200-class GPU.

    .venv/bin/python bench/gpu.py                                          # -> metrics/bench_gpu.json
    .venv/bin/python bench/gpu.py --device cpu --samples 4096 --steps 3   # dry run on a CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from torch import Tensor
from torch._dynamo.utils import counters  # graph breaks and skipped CUDA graphs: what compilation did

from flops import device_peaks, training_flops
from gpu_report import format_report, goal_result
from machine import machine_info
from mlpgraph.data.batches import PoseArrays
from mlpgraph.devices import resolve_device
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout, root_relative
from mlpgraph.models import PAPER_CONFIGS, build_model, count_parameters
from mlpgraph.params import PRESETS_DIR
from mlpgraph.progress import progress
from mlpgraph.training import make_train_step
from mlpgraph.training.speed import PRECISIONS, Speed, native_bfloat16
from models import time_call
from peer_paths import random_arrays
from results_file import refuse_bad_out, write_results

log = logging.getLogger("bench.gpu")

ROOT = Path(__file__).resolve().parents[1]
FULL_TRAIN_SAMPLES = 1_560_000
NO_CUDA = "no CUDA device: run on a GPU machine, or pass --device cpu for a dry run"
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Variant:
    """How the training forward runs: ``train.compile`` and, for CUDA graphs, ``torch.compile``'s mode."""

    name: str
    compile: bool
    mode: str | None = None


EAGER = Variant("eager", compile=False)
COMPILED = Variant("compiled", compile=True)
CUDA_GRAPHS = Variant("cudagraphs", compile=True, mode="reduce-overhead")


def choose_device(name: str | None) -> torch.device:
    """``--device`` checked to exist; without it the first CUDA device, refused (one line) when there is none."""
    if name is None:
        if not torch.cuda.is_available():
            raise UserInputError(NO_CUDA)
        return torch.device("cuda")
    return resolve_device(name, key="--device")


def choose_variants(compile_choice: str, cuda_graphs: bool, device: torch.device) -> list[Variant]:
    """``--compile off|on|auto`` (auto: eager and compiled on CUDA, eager only on a CPU), then CUDA graphs if asked."""
    if cuda_graphs and device.type != "cuda":
        raise UserInputError(f"--cuda-graphs needs a CUDA device, not {device}")
    both = [EAGER, COMPILED] if device.type == "cuda" else [EAGER]
    chosen = {"off": [EAGER], "on": [COMPILED], "auto": both}[compile_choice]
    return chosen + ([CUDA_GRAPHS] if cuda_graphs else [])


def write_params(base: Path, folder: Path, device: torch.device, precision: str, compile_forward: bool) -> Path:
    """A copy of ``base`` and its presets in ``folder``, ``train.device/precision/compile`` set: what the step reads."""
    params = yaml.safe_load(base.read_text())
    params["train"].update(device=str(device), precision=precision, compile=compile_forward)
    if not (folder / PRESETS_DIR).exists():
        shutil.copytree(base.parent / PRESETS_DIR, folder / PRESETS_DIR)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """(``fn()``, its wall seconds), the device's queued work included."""
    synchronise(device)
    began = time.perf_counter()
    out = fn()
    synchronise(device)
    return out, time.perf_counter() - began


def full_batches(data: PoseArrays, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Shuffled index batches as ``train_epoch`` draws them, epoch after epoch, less each epoch's smaller last one."""
    while True:
        batches = data.index_batches(batch_size, shuffle=True, generator=generator)
        yield from (indices for indices in batches if len(indices) == batch_size)


def train_batches(step: Callable[[Tensor, Tensor], Tensor], data: PoseArrays, pad: int, batches: Iterable[Tensor],
                  generator: torch.Generator, total: int, desc: str) -> list[Tensor]:
    """One ``step`` per index batch, fed as ``mlpgraph.training.epoch`` feeds it; the losses stay on the device."""
    root = get_layout(data.layout).root
    losses = []
    for indices in progress(batches, total=total, desc=desc, leave=False):
        flip = (torch.rand(len(indices), generator=generator) < 0.5).to(data.device)
        windows, target = data.batch(indices, pad, flip=flip)
        losses.append(step(windows, root_relative(target, root)))
    return losses


def bench_variant(label: str, variant: Variant, data: PoseArrays, params_file: Path, args: argparse.Namespace,
                  device: torch.device) -> dict[str, Any]:
    """One training row: warm-up (compilation) apart, then ``--steps`` steps or one whole epoch, timed."""
    config = PAPER_CONFIGS[label]
    torch.manual_seed(args.seed)
    model = build_model(config.model, **config.overrides)
    pad = (int(model.config["frames"]) - 1) // 2
    num_batches = -(-data.num_samples // args.batch_size)
    step = make_train_step(model, params_file, steps=num_batches)
    if variant.mode is not None:
        step = dataclasses.replace(step, forward=torch.compile(model, mode=variant.mode))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    counters.clear()
    generator = torch.Generator().manual_seed(args.seed)
    stream = full_batches(data, args.batch_size, generator)
    warm = list(islice(stream, args.warmup_steps))
    last = data.num_samples % args.batch_size
    if args.full_epoch and last and variant.compile:
        warm.append(warm[-1][:last])  # the epoch's smaller last batch compiles once more: here, not in the epoch
    desc = f"{label} {variant.name}"
    _, first_s = timed(lambda: train_batches(step, data, pad, warm[:1], generator, 1, desc), device)
    _, rest_s = timed(lambda: train_batches(step, data, pad, warm[1:], generator, len(warm) - 1, desc), device)
    if args.full_epoch:
        batches, total = data.index_batches(args.batch_size, shuffle=True, generator=generator), num_batches
    else:
        batches, total = islice(stream, args.steps), args.steps
    losses, seconds = timed(lambda: train_batches(step, data, pad, batches, generator, total, desc), device)
    timed_samples = data.num_samples if args.full_epoch else len(losses) * args.batch_size
    rate = timed_samples / seconds
    measured_full = args.full_epoch and data.num_samples == FULL_TRAIN_SAMPLES
    return {
        "model": label,
        "variant": variant.name,
        "precision": step.speed.precision,
        "compile": step.speed.compile,
        "compile_mode": (variant.mode or "default") if variant.compile else None,
        "batch_size": args.batch_size,
        "samples": data.num_samples,
        "timed_steps": len(losses),
        "timed_s": seconds,
        "samples_per_s": rate,
        "epoch_s": data.num_samples / rate,
        "epoch_basis": "measured (one whole epoch)" if args.full_epoch else f"extrapolated from {len(losses)} steps",
        "full_scale_epoch_s": FULL_TRAIN_SAMPLES / rate,
        "full_scale_basis": "measured" if measured_full else "extrapolated to 1.56 M samples from samples/s",
        "first_step_s": first_s,
        "warmup_steps": len(warm),
        "warmup_s": first_s + rest_s,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "losses_finite": bool(torch.isfinite(torch.stack(losses)).all()),
        "graph_breaks": sum(counters["graph_break"].values()),
        "cudagraph_skips": counters["inductor"]["cudagraph_skips"] if variant.mode == CUDA_GRAPHS.mode else None,
    }


def with_flops(row: dict[str, Any], costs: dict[str, Any], peaks: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its achieved FLOP/s (counted arithmetic and the release's) and fractions of the peaks."""
    achieved = costs["train_flops_per_sample"] * row["samples_per_s"]
    nominal = peaks["nominal_bf16_dense_flops_per_s"]
    return {
        **row,
        "achieved_flops_per_s": achieved,
        "release_equivalent_flops_per_s": costs["release_train_flops_per_sample"] * row["samples_per_s"],
        "fraction_of_measured_peak": achieved / peaks["measured_matmul_flops_per_s"],
        "fraction_of_nominal_peak": achieved / nominal if nominal else None,
    }


def bench_inference(label: str, data: PoseArrays, batches: list[int], device: torch.device,
                    min_seconds: float) -> list[dict[str, Any]]:
    """Eval-mode poses/s without autograd (the fast path) per batch size, float32 and, where native, bfloat16."""
    config = PAPER_CONFIGS[label]
    model = build_model(config.model, **config.overrides).to(device).eval()
    pad = (int(model.config["frames"]) - 1) // 2
    precisions = ["float32", "bfloat16"] if native_bfloat16(device) else ["float32"]
    generator = torch.Generator().manual_seed(0)
    rows = []
    for batch in batches:
        windows, _ = data.batch(torch.randint(data.num_samples, (batch,), generator=generator), pad)
        for precision in precisions:
            with torch.inference_mode(), Speed(precision, compile=False).autocast(device):
                seconds = time_call(lambda w=windows: model(w), device, min_runs=5, min_seconds=min_seconds)
                path = model.path_for(len(windows))
            rows.append({"model": label, "batch": batch, "precision": precision, "path": path,
                         "latency_ms": seconds * 1e3, "poses_per_s": batch / seconds})
            log.info("%s inference batch %d %s: %.0f poses/s", label, batch, precision, batch / seconds)
    return rows


def model_costs(label: str, data: PoseArrays, batch_size: int, device: torch.device) -> dict[str, Any]:
    """Size, FLOPs per training sample at ``batch_size`` (the arithmetic that trains, the release's), memory in use.

    Counted at the training batch size: the fast arithmetic has per-step products of weights (the
    initial maps) whose cost does not grow with the batch.
    """
    config = PAPER_CONFIGS[label]
    model = build_model(config.model, **config.overrides).to(device)
    pad = (int(model.config["frames"]) - 1) // 2
    data.windows(torch.zeros(1, dtype=torch.long), pad)  # the padded copy batches gather from, built once
    counted = training_flops(model, device, batch_size)
    release = training_flops(model.use_arithmetic("release"), device, batch_size)
    return {
        "frames": 2 * pad + 1,
        "parameters": count_parameters(model),
        "forward_flops_per_sample": counted["forward"],
        "train_flops_per_sample": counted["train"],
        "release_train_flops_per_sample": release["train"],
        "release_epoch_pflop_full_scale": release["train"] * FULL_TRAIN_SAMPLES / 1e15,
        # the data, their padded windows and the model on the device before training (CUDA only)
        "allocated_before_training_bytes": torch.cuda.memory_allocated(device) if device.type == "cuda" else None,
    }


def run_training(label: str, variants: list[Variant], data: PoseArrays, args: argparse.Namespace,
                 device: torch.device, folder: Path) -> list[dict[str, Any]]:
    """Every variant of ``label``; a variant that fails is recorded with its error, the others still run."""
    rows = []
    for variant in variants:
        params_file = write_params(args.params, folder, device, args.precision, variant.compile)
        log.info("%s: training, %s", label, variant.name)
        try:
            rows.append(bench_variant(label, variant, data, params_file, args, device))
        except UserInputError:
            raise
        except Exception as exc:  # a GPU run is scarce: one failing variant must not lose the others' results
            log.exception("%s %s failed", label, variant.name)
            rows.append({"model": label, "variant": variant.name, "error": f"{type(exc).__name__}: {exc}"[:500]})
        finally:
            torch.compiler.reset()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def run(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    variants = choose_variants(args.compile, args.cuda_graphs, device)
    peaks = device_peaks(device)
    measured = peaks["measured_matmul_flops_per_s"]
    log.info("%s matmul peak measured on %s: %.1f TFLOP/s", peaks["measured_matmul_dtype"], device, measured / 1e12)
    poses_2d, poses_3d, sequences = random_arrays(args.samples)
    data = PoseArrays.from_numpy(poses_2d, poses_3d, sequences, device=device)
    results: dict[str, Any] = {
        "machine": machine_info([str(device)]),
        "device": str(device),
        "dry_run": device.type != "cuda",
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "peaks": peaks,
        "models": {},
        "training": [],
        "inference": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as folder:
        for label in args.models:
            costs = model_costs(label, data, args.batch_size, device)
            results["models"][label] = costs
            for row in run_training(label, variants, data, args, device, Path(folder)):
                results["training"].append(row if "error" in row else with_flops(row, costs, peaks))
            results["inference"] += bench_inference(label, data, args.inference_batches, device, args.min_seconds)
    results["goal"] = goal_result(results["training"], results["models"])
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_gpu.json"))
    parser.add_argument("--device", help="cuda, cuda:N, or cpu for a dry run (default: the first CUDA device)")
    parser.add_argument("--samples", type=int, default=FULL_TRAIN_SAMPLES, help="training samples (Human3.6M: 1.56 M)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200, help="timed steps, extrapolated to an epoch")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--full-epoch", action="store_true", help="time one whole epoch instead of --steps steps")
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                        help="train.compile; auto: time both on a GPU (eager only on a CPU)")
    parser.add_argument("--cuda-graphs", action="store_true", help="also time torch.compile(mode='reduce-overhead')")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="train.precision (auto: bfloat16 on CUDA >= 8.0, float32 on most CPUs)")
    parser.add_argument("--inference-batches", type=int, nargs="*", default=None,
                        help="eval batch sizes (default: 256 4096 on CUDA, 64 on a CPU)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="minimum timed seconds per inference batch")
    parser.add_argument("--models", nargs="+", choices=["mlpgraph_f1", "mlpgraph_f243"],
                        default=["mlpgraph_f1", "mlpgraph_f243"])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="params file the step's copy is of")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.samples < args.batch_size or args.batch_size < 1 or args.steps < 1 or args.warmup_steps < 1:
        parser.error("need --batch-size >= 1, --samples >= --batch-size, --steps >= 1 and --warmup-steps >= 1")
    if not args.params.is_file():
        parser.error(f"--params: {args.params} is not a file")
    refuse_bad_out(parser, args.out)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = choose_device(args.device)
        if args.inference_batches is None:
            args.inference_batches = [256, 4096] if device.type == "cuda" else [64]
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        results = run(args, device)
    except UserInputError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    write_results(args.out, results)
    print(format_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
