"""Data-path benchmarks: batch construction, synthetic generation and preprocessing speed.

1. Window gather: our vectorised ``PoseArrays.batch`` (one index per batch) against two per-item
   ``Dataset.__getitem__`` + ``DataLoader`` paths on the same data, batch size, number of batches
   and machine; reports samples/s and the ratios.
   - ``release``: the per-item path of the MLP-Graph release and the code it derives from (a
     ``Fusion`` dataset over a chunked generator): per item it looks the sequence up by key,
     copies the whole 2D and 3D sequence, edge-pads the 2D and 3D windows with ``np.pad``, and
     returns the release's eight fields (camera, 3D, 2D, action, subject, scale, box, camera
     index) for the default collate. This is the baseline of the ratio.
   - ``window_only``: a lean per-item path that slices and pads only the 2D window and returns
     (window, target); a lower bound on what any per-item path costs.
2. Synthetic generation time (``mlpgraph.data.synthetic.generate``) and preprocessing speed in
   poses/s (``mlpgraph.data.preprocess.build_hdf5``), in a temporary directory deleted afterwards.

Results go to a JSON file (``metrics/bench_data.json`` by default); the table goes to stdout.

    .venv/bin/python bench/data.py --scale small
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from machine import machine_info
from mlpgraph.data.batches import PoseArrays, gather_windows
from peer_paths import PerItemWindows, ReleaseStyleWindows, per_item_epoch, random_arrays, release_epoch
from results_file import refuse_bad_out, write_results

log = logging.getLogger("bench.data")

# Samples of random data for the gather benchmark when no processed file is given: tiny is quick,
# small is about a Human3.6M test split's 2D poses, full a Human3.6M training split's.
RANDOM_SAMPLES = {"tiny": 50_000, "small": 540_000, "full": 1_560_000}
# Synthetic scales whose generation and preprocessing are timed, per --scale.
GENERATE_SCALES = {"tiny": ["tiny"], "small": ["small"], "full": ["small", "full"]}
# The vectorised batch paths compared with the per-item one.
METHODS = {
    "padded": "PoseArrays.batch (padded strided view)",
    "clamped": "gather_windows (clamped frame index)",
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def configure_allocator() -> str:
    """Keep freed memory in glibc's heap so that batch buffers are reused, not page-faulted anew.

    Without this, whether each 8 MB batch buffer comes back from the OS (a page fault per 4 KB,
    slow in a VM) depends on what ran before in the process, and the same code varied 20x
    between runs. Applied once, for every path alike; a long training run reaches this state.
    """
    if not sys.platform.startswith("linux"):
        return "default"
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 256 << 20) and libc.mallopt(m_trim_threshold, 2 << 30)
    except (OSError, AttributeError):
        return "default"
    return "glibc M_MMAP_THRESHOLD=256MiB M_TRIM_THRESHOLD=2GiB" if ok else "default"


def time_run(batches: Iterator[Any], num_batches: int, device: torch.device) -> tuple[float, float]:
    """(warm-up seconds, samples/s over the next ``num_batches`` batches) of one epoch iterator."""
    began = time.perf_counter()
    next(batches)
    _sync(device)
    warmup = time.perf_counter() - began
    samples = 0
    began = time.perf_counter()
    for _, (windows, _targets) in zip(range(num_batches), batches, strict=False):
        samples += len(windows)
    _sync(device)
    return warmup, samples / (time.perf_counter() - began)


def vectorised_epoch(
    data: PoseArrays, batch_size: int, pad: int, method: str, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches of ``PoseArrays.batch`` (``padded``) or ``gather_windows`` (``clamped``)."""
    gen = torch.Generator().manual_seed(seed)
    for idx in data.index_batches(batch_size, shuffle=True, generator=gen):
        if method == "padded":
            yield data.batch(idx, pad)
        else:
            windows = gather_windows(data.poses_2d, data.seq_start, data.seq_end, idx, pad)
            yield windows, data.poses_3d[idx]


def check_paths_agree(
    cpu: PoseArrays, dataset: PerItemWindows, release: ReleaseStyleWindows, pad: int
) -> None:
    """The per-item paths and the vectorised batch give the same windows (sequence ends included)."""
    probe = torch.cat([cpu.sequences[:3, 0], cpu.sequences[:3].sum(1) - 1, torch.tensor([0])])
    windows, targets = cpu.batch(probe, pad)
    for k, i in enumerate(probe.tolist()):
        item_window, item_target = dataset[i]
        _cam, release_3d, release_2d, *_rest = release[i]
        same_lean = torch.equal(item_window, windows[k]) and torch.equal(item_target, targets[k])
        same_release = np.array_equal(release_2d, windows[k].numpy()) and np.array_equal(
            release_3d[pad], targets[k].numpy()
        )
        if not (same_lean and same_release):
            raise AssertionError(f"per-item and vectorised windows differ at sample {i}")


def bench_gather(
    data: PoseArrays,
    source: str,
    batch_size: int,
    num_batches: int,
    pad: int,
    devices: list[str],
    repeats: int,
) -> dict[str, Any]:
    """Per-item DataLoader vs the vectorised paths on the same arrays; checks they agree first.

    The paths' runs are interleaved (one run of each, ``repeats`` rounds) so that they see the
    same machine state; each reports the median samples/s of its runs.
    """
    cpu = data.to("cpu")
    dataset = PerItemWindows(
        cpu.poses_2d.numpy(), cpu.poses_3d.numpy(), cpu.seq_start.numpy(), cpu.seq_end.numpy(), pad
    )
    release = ReleaseStyleWindows(cpu.poses_2d.numpy(), cpu.poses_3d.numpy(), cpu.sequences.numpy(), pad)
    check_paths_agree(cpu, dataset, release, pad)
    paths: dict[str, tuple[Callable[[int], Iterator[Any]], torch.device]] = {
        "per_item_release_cpu": (lambda seed: release_epoch(release, batch_size, seed), torch.device("cpu")),
        "per_item_window_only_cpu": (lambda seed: per_item_epoch(dataset, batch_size, seed), torch.device("cpu")),
    }
    for device in devices:
        on_device = cpu if device == "cpu" else cpu.to(device)
        for method in METHODS:
            paths[f"{method}_{device}"] = (
                lambda seed, d=on_device, m=method: vectorised_epoch(d, batch_size, pad, m, seed),
                on_device.device,
            )
    runs: dict[str, list[float]] = {key: [] for key in paths}
    setup: dict[str, float] = {}
    for rep in range(repeats):
        log.info("round %d/%d: %s", rep + 1, repeats, ", ".join(paths))
        for key, (epoch, device) in paths.items():
            warmup, rate = time_run(epoch(rep), num_batches, device)
            setup.setdefault(key, warmup)
            runs[key].append(rate)

    result: dict[str, Any] = {
        "data": {
            "source": source,
            "samples": cpu.num_samples,
            "sequences": len(cpu.sequences),
            "joints": cpu.num_joints,
        },
        "batch_size": batch_size,
        "num_batches": num_batches,
        "pad": pad,
        "frames": 2 * pad + 1,
        "repeats": repeats,
    }
    return result | path_rates(runs, setup)


def path_rates(runs: dict[str, list[float]], setup: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each path's median samples/s, its runs, first-batch time and speed-ups over the per-item paths."""
    baseline = float(np.median(runs["per_item_release_cpu"]))
    lean = float(np.median(runs["per_item_window_only_cpu"]))
    rates: dict[str, dict[str, Any]] = {}
    for key, key_runs in runs.items():
        rate = float(np.median(key_runs))
        rates[key] = {
            "samples_per_s": rate,
            "runs_samples_per_s": key_runs,
            "first_batch_seconds": setup[key],
            "speedup": rate / baseline,
            "speedup_over_window_only": rate / lean,
        }
    return rates


def bench_generate_preprocess(scales: list[str], workdir: Path) -> list[dict[str, Any]]:
    """Wall time of ``generate`` per scale, then ``build_hdf5`` (gt, h36m16) on its output."""
    import h5py

    from mlpgraph.data.preprocess import build_hdf5
    from mlpgraph.data.synthetic import TEST_SUBJECTS, TRAIN_SUBJECTS, generate

    rows: list[dict[str, Any]] = []
    for scale in scales:
        row: dict[str, Any] = {"scale": scale}
        rows.append(row)
        raw_dir = workdir / f"raw_{scale}"
        log.info("generating synthetic data, scale %s", scale)
        began = time.perf_counter()
        files = generate(raw_dir, scale=scale, seed=0)
        row["generate"] = {
            "status": "ok",
            "seconds": time.perf_counter() - began,
            "bytes": sum(Path(p).stat().st_size for p in files.values() if Path(p).is_file()),
        }
        out_path = workdir / f"h36m_gt_h36m16_{scale}.h5"
        log.info("preprocessing scale %s", scale)
        began = time.perf_counter()
        split = {"train_subjects": TRAIN_SUBJECTS, "test_subjects": TEST_SUBJECTS}
        build_hdf5(raw_dir, out_path, keypoints="gt", layout="h36m16", **split)
        seconds = time.perf_counter() - began
        with h5py.File(out_path, "r") as h5:
            poses = int(h5["poses_2d"].shape[0])
        row["preprocess"] = {
            "status": "ok",
            "seconds": seconds,
            "poses": poses,
            "poses_per_s": poses / seconds,
            "bytes": out_path.stat().st_size,
        }
    return rows


def format_table(results: dict[str, Any]) -> str:
    """The human-readable summary printed to stdout."""
    rows: list[tuple[str, str]] = []
    gather = results.get("window_gather")
    if gather:
        d = gather["data"]
        rows.append(
            (
                "data",
                f"{d['source']}: {d['samples']:,} samples, {d['sequences']} sequences, "
                f"{d['joints']} joints; T={gather['frames']}, batch {gather['batch_size']}, "
                f"{gather['num_batches']} batches, median of {gather['repeats']} runs",
            )
        )
        rows.append(
            (
                "per-item, release-style Dataset+DataLoader (cpu)",
                f"{gather['per_item_release_cpu']['samples_per_s']:,.0f} samples/s (baseline)",
            )
        )
        lean = gather["per_item_window_only_cpu"]
        rows.append(
            (
                "per-item, window-only Dataset+DataLoader (cpu)",
                f"{lean['samples_per_s']:,.0f} samples/s ({lean['speedup']:.1f}x)",
            )
        )
        for device in results["machine"]["devices"]:
            for method, name in METHODS.items():
                timing = gather[f"{method}_{device}"]
                rows.append(
                    (
                        f"{name} ({device})",
                        f"{timing['samples_per_s']:,.0f} samples/s ({timing['speedup']:.1f}x release-style, "
                        f"{timing['speedup_over_window_only']:.1f}x window-only)",
                    )
                )
    for row in results.get("synthetic", []):
        gen, pre = row.get("generate", {}), row.get("preprocess", {})
        rows.append((f"generate synthetic ({row['scale']})", f"{gen['seconds']:.1f} s"))
        if pre:
            rows.append(
                (
                    f"preprocess gt/h36m16 ({row['scale']})",
                    f"{pre['poses']:,} poses in {pre['seconds']:.1f} s = {pre['poses_per_s']:,.0f} poses/s",
                )
            )
    rows.append(("peak RSS", f"{results['peak_rss_mb']:,.0f} MB"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{'benchmark':<{width}}  result", f"{'-' * width}  {'-' * 40}"]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(RANDOM_SAMPLES), default="small")
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_data.json"))
    parser.add_argument("--processed", type=Path, help="processed HDF5 to gather from (else random arrays)")
    parser.add_argument("--skip-generate", action="store_true", help="skip generate + preprocess")
    parser.add_argument("--skip-gather", action="store_true", help="skip the window benchmark")
    parser.add_argument(
        "--generate-scales",
        nargs="+",
        choices=["tiny", "small", "full"],
        help="synthetic scales to time (default: small for --scale small, small and full for full)",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-batches", type=int, default=50)
    parser.add_argument("--pad", type=int, default=121, help="window half-width (T = 2*pad+1)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs; the median is kept")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1, like the single-process per-item path; more "
        "threads made CPU timings erratic on a 2-vCPU VM)",
    )
    parser.add_argument("--default-allocator", action="store_true", help="leave glibc's malloc settings alone")
    parser.add_argument(
        "--device",
        action="append",
        help="device(s) for the vectorised path (default: cpu, and cuda when available)",
    )
    args = parser.parse_args(argv)
    refuse_bad_out(parser, args.out, inputs=(args.processed,))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results: dict[str, Any] = {"scale": args.scale, "machine": machine_info(devices)}
    results["machine"]["allocator"] = "default" if args.default_allocator else configure_allocator()

    if not args.skip_gather:
        if args.processed:
            log.info("loading %s", args.processed)
            data = PoseArrays.from_processed(args.processed)
            source = str(args.processed)
        else:
            samples = RANDOM_SAMPLES[args.scale]
            log.info("random arrays: %d samples", samples)
            data = PoseArrays.from_numpy(*random_arrays(samples))
            source = "random arrays"
        results["window_gather"] = bench_gather(
            data, source, args.batch_size, args.num_batches, args.pad, devices, args.repeats
        )
        del data

    if not args.skip_generate:
        scales = args.generate_scales or GENERATE_SCALES[args.scale]
        with tempfile.TemporaryDirectory(prefix="mlpgraph-bench-") as tmp:
            results["synthetic"] = bench_generate_preprocess(scales, Path(tmp))

    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_results(args.out, results)
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
