"""Hard-pose search benchmark: the exact bound-and-refine search against brute force, up to Human3.6M's size.

The data are the synthetic Human3.6M's 3D poses as the processed file holds them (every camera's
view, h36m16, root-relative metres; ``mlpgraph.data.synthetic.generate_positions_3d`` for
``--scale``, train S1 S5 S6 S7 S8, test S9 S11). For each ``--every``, ``derive_hard_poses`` (what
the ``hard_pose_set`` stage runs) is timed with ``evaluate.hard_fraction``; reported: wall and CPU
seconds, the seconds of its steps (clustering, upper bounds, refinement), the exact pair distances
and node bounds computed (against the candidates x training poses of brute force) and the peak
memory of the search. Brute force runs on a subset of candidates (``--brute-pairs`` pair distances:
half the hardest found, half spread over all), and its pairs/s give its time for all candidates,
extrapolated and labelled so; the subset also checks the search: the hardest found must have the
same hardness bit for bit, the others none above the cut.

Results go to a JSON file (``metrics/bench_hard_poses.json`` by default); the table goes to stdout.

    .venv/bin/python bench/hard_poses.py --scale full            # every 5 and every 1
    .venv/bin/python bench/hard_poses.py --scale tiny --every 5  # seconds
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from machine import machine_info
from mlpgraph.cameras import load_cameras
from mlpgraph.data.synthetic import TEST_SUBJECTS, TRAIN_SUBJECTS, generate_positions_3d
from mlpgraph.evaluation import derive_hard_poses
from mlpgraph.evaluation.nearest_pose import SearchWork, nearest_distances_brute_force
from mlpgraph.layouts import H36M16, H36M32, root_relative, select_joints
from results_file import refuse_bad_out, write_results

log = logging.getLogger("bench.hard_poses")


def camera_poses(positions: dict[str, dict[str, np.ndarray]], subjects: tuple[str, ...]) -> np.ndarray:
    """(N, 16, 3) float32 root-relative camera-frame metres of ``subjects``, as ``preprocess`` writes them."""
    cameras = load_cameras()
    parts = []
    for subject in subjects:
        for world in positions[subject].values():
            joints = select_joints(world, H36M32, H36M16).astype(np.float64)
            for camera in cameras.cameras(subject):
                parts.append(root_relative(camera.world_to_camera(joints), H36M16.root).astype(np.float32))
    return np.concatenate(parts)


def synthetic_split(scale: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Training and test poses of the synthetic Human3.6M at ``scale`` (seed 0), and how long they took."""
    began = time.perf_counter()
    positions = generate_positions_3d(scale, seed=0)
    generated = time.perf_counter() - began
    train, test = camera_poses(positions, TRAIN_SUBJECTS), camera_poses(positions, TEST_SUBJECTS)
    info = {
        "source": f"synthetic {scale}, seed 0, h36m16, every camera",
        "train_poses": len(train),
        "test_poses": len(test),
        "joints": train.shape[1],
        "generate_seconds": generated,
        "to_camera_seconds": time.perf_counter() - began - generated,
    }
    return train, test, info


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: the process's resident set (Linux) or the device's allocations."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        log.warning("cannot reset the peak resident set; peaks include everything before")


def peak_memory_mb(device: torch.device) -> float:
    """The peak since :func:`reset_peak_memory`: device allocations, else the resident set (VmHWM)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_search(
    train: np.ndarray, test: np.ndarray, every: int, fraction: float, device: torch.device
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """One ``derive_hard_poses`` run: its figures, the indices and the hardness found."""
    work = SearchWork()
    reset_peak_memory(device)
    base_mb = peak_memory_mb(device)
    began, cpu_began = time.perf_counter(), time.process_time()
    found, hardness = derive_hard_poses(train, test, every=every, fraction=fraction, device=device, work=work)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    candidates = len(range(0, len(test), every))
    all_pairs = candidates * len(train)
    figures = {
        "every": every,
        "fraction": fraction,
        "candidates": candidates,
        "kept": len(found),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "steps_seconds": work.seconds,
        "exact_pair_distances": work.exact_pairs,
        "brute_force_pair_distances": all_pairs,
        "exact_pairs_share": work.exact_pairs / all_pairs,
        "node_bounds": work.bounds,
        "refined_candidates": work.refined,
        "peak_memory_mb": peak_memory_mb(device),
        "memory_before_mb": base_mb,
        "hardness_mm": {"max": float(hardness[0]), "cut": float(hardness[-1])},
    }
    return figures, found, hardness


def check_with_brute_force(
    train: np.ndarray, test: np.ndarray, every: int, found: np.ndarray, hardness: np.ndarray, budget: float, device: str
) -> dict[str, Any]:
    """Brute force on a subset of the candidates: its pairs/s, and the search's answers checked against it."""
    candidates = np.arange(0, len(test), every)
    count = max(2, min(len(candidates), int(budget // len(train))))
    top = found[: count // 2]
    spread = np.setdiff1d(candidates[np.linspace(0, len(candidates) - 1, count - len(top)).astype(np.int64)], top)
    subset = np.concatenate([top, spread])
    test_mm = torch.as_tensor(test[subset] * 1000.0, device=device)  # root-relative already
    train_mm = torch.as_tensor(train * 1000.0, device=device)
    began = time.perf_counter()
    reference = nearest_distances_brute_force(test_mm, train_mm).cpu().double().numpy()
    if test_mm.is_cuda:
        torch.cuda.synchronize(test_mm.device)
    seconds = time.perf_counter() - began
    reported = dict(zip(found.tolist(), hardness.tolist(), strict=True))
    pairs = list(zip(subset.tolist(), reference.tolist(), strict=True))
    same = [reported[i] == h for i, h in pairs if i in reported]
    above_cut = [h > hardness[-1] for i, h in pairs if i not in reported]
    return {
        "candidates": len(subset),
        "pair_distances": len(subset) * len(train),
        "seconds": seconds,
        "pairs_per_second": len(subset) * len(train) / seconds,
        "found_checked": len(same),
        "found_identical": int(sum(same)),
        "others_checked": len(above_cut),
        "others_above_cut": int(sum(above_cut)),
    }


def run_rows(run: dict[str, Any], train_poses: int) -> list[tuple[str, str]]:
    """The table's rows for one ``--every``."""
    brute, name = run["brute_force"], f"every={run['every']}"
    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in run["steps_seconds"].items())
    brute_seconds = run["brute_force_extrapolated_seconds"]
    return [
        (f"{name}: candidates", f"{run['candidates']:,} x {train_poses:,} training poses, {run['kept']:,} kept"),
        (f"{name}: exact search", f"{run['seconds']:.1f} s wall, {run['cpu_seconds']:.1f} s CPU ({steps})"),
        (
            f"{name}: work",
            f"{run['exact_pair_distances']:,} exact pair distances ({100 * run['exact_pairs_share']:.3f}% of "
            f"brute force's {run['brute_force_pair_distances']:,}), {run['node_bounds']:,} node bounds, "
            f"{run['refined_candidates']:,} candidates refined",
        ),
        (f"{name}: peak memory", f"{run['peak_memory_mb']:,.0f} MB (before: {run['memory_before_mb']:,.0f} MB)"),
        (
            f"{name}: brute force (extrapolated)",
            f"{brute_seconds:,.0f} s = {brute_seconds / 3600:.1f} h from {brute['pairs_per_second']:,.0f} pairs/s "
            f"on {brute['candidates']} candidates; the search is {run['speedup']:,.0f}x faster",
        ),
        (
            f"{name}: checked against brute force",
            f"{brute['found_identical']}/{brute['found_checked']} hardest identical, "
            f"{brute['others_above_cut']}/{brute['others_checked']} others above the cut",
        ),
    ]


def format_table(results: dict[str, Any]) -> str:
    """The human-readable summary printed to stdout."""
    data = results["data"]
    rows = [
        (
            "data",
            f"{data['source']}: {data['train_poses']:,} training, {data['test_poses']:,} test poses; "
            f"generated in {data['generate_seconds']:.0f} s (+{data['to_camera_seconds']:.0f} s to camera frames)",
        )
    ]
    for run in results["runs"]:
        rows += run_rows(run, data["train_poses"])
    rows.append(("peak RSS of the process", f"{results['peak_rss_mb']:,.0f} MB"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{'benchmark':<{width}}  result", f"{'-' * width}  {'-' * 40}"]
    return "\n".join(lines + [f"{name:<{width}}  {value}" for name, value in rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["tiny", "small", "full"], default="small")
    parser.add_argument("--every", type=int, nargs="+", default=[5, 1], help="candidate strides to time")
    parser.add_argument("--fraction", type=float, default=0.05, help="evaluate.hard_fraction")
    parser.add_argument("--brute-pairs", type=float, default=5e7, help="pair distances brute force measures")
    parser.add_argument("--device", default="cpu", help="torch device of the search (cpu, cuda)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a shared 2-vCPU VM, two threads made every small "
        "operation wait for the other core and the same search vary by several times)",
    )
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_hard_poses.json"))
    args = parser.parse_args(argv)
    refuse_bad_out(parser, args.out)
    if min(args.every) < 1 or not 0.0 < args.fraction <= 1.0:
        parser.error("--every must be at least 1 and --fraction in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: dict[str, Any] = {"scale": args.scale, "machine": machine_info([args.device])}
    log.info("generating the synthetic %s 3D poses", args.scale)
    train, test, results["data"] = synthetic_split(args.scale)
    results["runs"] = []
    for every in args.every:
        log.info("every %d: exact search", every)
        run, found, hardness = time_search(train, test, every, args.fraction, device)
        log.info("every %d: brute force on a subset", every)
        brute = check_with_brute_force(train, test, every, found, hardness, args.brute_pairs, args.device)
        run["brute_force"] = brute
        run["brute_force_extrapolated_seconds"] = run["brute_force_pair_distances"] / brute["pairs_per_second"]
        run["speedup"] = run["brute_force_extrapolated_seconds"] / run["seconds"]
        results["runs"].append(run)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_results(args.out, results)
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
