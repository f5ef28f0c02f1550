"""Multi-process training (mlpgraph.distributed, the DDP path of mlpgraph.training.train).

The proof runs tests/ddp_worker.py's tiny trainings (every dropout off) once in this process and
once under ``torchrun --standalone --nproc-per-node 2`` (gloo, CPU) and compares them: the
per-epoch losses agree to float rounding (asserted to rtol 1e-4; measured about 1e-7), and so do
the final weights and the networks' training-mode outputs. Not compared: the biases of the graph
convolutions that feed a batch norm and the running means behind them. Their exact gradient is
zero (the batch norm subtracts any shift), so what Adam gets there is round-off noise, which it
scales up to steps of up to lr. Those biases wander differently in every run and, through the
running means, move eval-mode metrics (P1) a little. Also checked here: only rank 0 writes
checkpoints, a killed 2-process run resumes to exactly the uninterrupted one (dropout on, so the
per-rank RNG states are needed), and the global-statistics batch norm matches one nn.BatchNorm
over the concatenated batch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from mlpgraph import distributed
from mlpgraph.checkpoints import load_checkpoint
from mlpgraph.errors import UserInputError
from mlpgraph.training import LAST, RANK_SEED_STRIDE
from tests import ddp_worker
from tests.train_worker import PAD, last_epoch, make_data

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("ddp_worker.py")
TORCHRUN = Path(sys.executable).with_name("torchrun")
COMPARED = ("joint", "spatial", "two_stage")
LOSS_RTOL = 1e-4
WEIGHT_ATOL = 1e-4
# Parameters whose exact gradient is zero (biases right before a batch norm) and what tracks them.
NOISE_DRIVEN = re.compile(r"wjc\d\.bias|bn\d\.running_mean")
log = logging.getLogger(__name__)


def torchrun(out: Path, *cases: str, eval_sleep: float = 0.0) -> subprocess.Popen:
    """Start ``torchrun --standalone --nproc-per-node 2 tests/ddp_worker.py OUT CASES`` (a free port each time)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", str(WORKER), str(out), *cases]
    cmd += ["--eval-sleep", str(eval_sleep)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, timeout: float = 120) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out.decode()[-4000:]


def report(out: Path, case: str, rank: int) -> dict:
    return json.loads((out / f"{case}.rank{rank}.json").read_text())


def weights(out: Path, case: str, rank: int) -> dict[str, torch.Tensor]:
    return torch.load(out / f"{case}.rank{rank}.pt", weights_only=True)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    """One torchrun launch: the batch-norm check, then every case, each into its own folder."""
    out = tmp_path_factory.mktemp("ddp")
    began = time.perf_counter()
    finish(torchrun(out, "batchnorm", *COMPARED, "dropout"))
    log.info("2-process launch: %.1f s", time.perf_counter() - began)
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict[str, tuple[dict, dict[str, torch.Tensor], nn.Module]]:
    """The compared cases in this process: (history, final weights, the trained model)."""
    root = tmp_path_factory.mktemp("one")
    results = {}
    for case in COMPARED:
        result, model, refine = ddp_worker.run_case(case, root / case)
        results[case] = (result.history, ddp_worker.flat_weights(model, refine), model)
    return results


# --------------------------------------------------------------------------- single process
def test_helpers_are_no_ops_without_a_process_group(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.is_distributed()
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    distributed.barrier()
    tensor = torch.arange(3.0)
    assert distributed.all_reduce_sum(tensor) is tensor and tensor.tolist() == [0.0, 1.0, 2.0]
    assert distributed.differentiable_all_reduce_sum(tensor) is tensor
    record = {"epoch": 1, "P1": 3.5}
    assert distributed.broadcast_object(record) is record
    assert distributed.all_gather_object(record) == [record]
    with distributed.distributed_context("cpu") as context:
        assert context == distributed.DistributedContext(device=torch.device("cpu"))
        assert not context.is_distributed and context.is_main and not torch.distributed.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert distributed.init_distributed("cpu").backend is None and not torch.distributed.is_initialized()


def test_launch_environment_is_checked(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(UserInputError, match="WORLD_SIZE='two' is not an integer"):
        distributed.launched_world()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(UserInputError, match="RANK=2 is not below WORLD_SIZE=2"):
        distributed.launched_world()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.launched_world() == (2, 1, 1)
    assert distributed.rank_device("cpu") == torch.device("cpu")


def test_synchronised_batch_norm_is_the_plain_one_in_a_single_process():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    plain = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
    plain.load_state_dict(model[:2].state_dict())
    keys = list(model.state_dict())
    distributed.synchronise_batch_norm(model)
    assert isinstance(model[1], distributed.GlobalBatchNorm1d) and isinstance(model[3], distributed.GlobalBatchNorm2d)
    assert isinstance(model[1], nn.BatchNorm1d) and list(model.state_dict()) == keys
    x = torch.randn(8, 4)
    assert torch.equal(model[:2](x), plain(x))  # no process group: the parent's forward, bit for bit
    assert torch.equal(model[1].running_var, plain[1].running_var)
    distributed.unsynchronise_batch_norm(model)
    assert type(model[1]) is nn.BatchNorm1d and type(model[3]) is nn.BatchNorm2d


# ---------------------------------------------------------------------------- two processes
@pytest.mark.slow
def test_global_batch_norm_matches_one_batch_norm_over_the_whole_batch(two_processes):
    for rank in (0, 1):
        errors = json.loads((two_processes / f"batchnorm.rank{rank}.json").read_text())
        assert len(errors) == 5 * 7
        for key, value in errors.items():
            if key.endswith(("keys_differ", "restored_class")):
                assert value == 0.0, (rank, key)
            else:  # outputs, input and parameter gradients, running stats, eval outputs
                assert value < 1e-5, (rank, key, value)


@pytest.mark.slow
@pytest.mark.parametrize("case", COMPARED)
def test_two_processes_train_what_one_process_trains(case, two_processes, one_process):
    history, expected, model = one_process[case]
    rank0, rank1 = report(two_processes, case, 0), report(two_processes, case, 1)
    assert rank0["world_size"] == 2 and rank0["history"] == rank1["history"]
    assert [r["epoch"] for r in rank0["history"]] == [r["epoch"] for r in history]
    worst = 0.0
    for one, two in zip(history, rank0["history"], strict=True):
        for key in one:
            if key.startswith("loss"):
                assert two[key] == pytest.approx(one[key], rel=LOSS_RTOL), (case, one["epoch"], key)
                worst = max(worst, abs(two[key] - one[key]) / abs(one[key]))
    log.info("%s: max relative loss difference 1 vs 2 processes %.3g", case, worst)

    got = weights(two_processes, case, 0)
    other = weights(two_processes, case, 1)
    assert got.keys() == expected.keys() == other.keys()  # raw modules' keys: no "module." prefix
    assert all(torch.equal(got[key], other[key]) for key in got)  # the ranks hold one model
    for key, value in expected.items():
        if not NOISE_DRIVEN.search(key):
            torch.testing.assert_close(got[key], value, rtol=0, atol=WEIGHT_ATOL, msg=lambda m, k=key: f"{k}: {m}")
    trained = ddp_worker.case_networks(case)[0]
    trained.load_state_dict({key[len("model.") :]: v for key, v in got.items() if key.startswith("model.")})
    data = make_data(seed=0)
    windows, _ = data.batch(torch.arange(data.num_samples), PAD)
    with torch.no_grad():  # training mode: batch statistics, in which those biases cancel
        torch.testing.assert_close(trained.train()(windows), model.train()(windows), rtol=0, atol=WEIGHT_ATOL)

    # rank 0 alone wrote the checkpoints
    assert rank1["saved"] == []
    epochs = len(history)
    assert rank0["saved"].count(LAST) == epochs and rank0["saved"][-1] == "final.pt"
    last = load_checkpoint(two_processes / case / LAST)  # weights_only=True
    assert len(last["meta"]["training"]["rng"]["torch_by_rank"]) == 2


@pytest.mark.slow
def test_killed_two_process_run_resumes_exactly(two_processes, tmp_path, caplog):
    out = tmp_path / "run"
    victim = torchrun(out, "dropout", eval_sleep=0.6)
    deadline = time.monotonic() + 90
    while last_epoch(out / "dropout" / LAST) < 1:
        assert victim.poll() is None, victim.communicate()[0].decode()[-4000:]
        assert time.monotonic() < deadline, "epoch 1 checkpoint never appeared"
        time.sleep(0.01)
    pids = [int((out / f"pid.rank{rank}").read_text()) for rank in (0, 1)]
    for pid in pids:  # the workers run in sessions of their own: kill them, then the launcher
        os.kill(pid, signal.SIGKILL)
    victim.kill()
    victim.communicate()
    killed_at = last_epoch(out / "dropout" / LAST)
    assert killed_at in (1, 2) and not (out / "dropout" / "final.pt").exists()
    assert not (out / "dropout.rank0.json").exists()

    # the same checkpoint resumed by ONE process: a warning, then a deterministic continuation
    shutil.copytree(out / "dropout", tmp_path / "one")
    with caplog.at_level(logging.WARNING, logger="mlpgraph.training"):
        single, _, _ = ddp_worker.run_case("dropout", tmp_path / "one")
    assert "resuming a 2-process run with 1 processes" in caplog.text
    assert [r["epoch"] for r in single.history] == [1, 2, 3]

    finish(torchrun(out, "dropout"))
    expected, got = report(two_processes, "dropout", 0), report(out, "dropout", 0)
    assert got["history"] == expected["history"]  # exact: weights, optimiser and every rank's RNG resumed
    assert report(out, "dropout", 1)["history"] == expected["history"]
    a, b = weights(two_processes, "dropout", 0), weights(out, "dropout", 0)
    assert all(torch.equal(a[key], b[key]) for key in a)
    # fresh start: rank 1 drew other dropout masks than rank 0
    assert report(two_processes, "dropout", 0)["initial_seed"] == 1
    assert report(two_processes, "dropout", 1)["initial_seed"] == 1 + RANK_SEED_STRIDE
