"""Training loop: the released learning-rate rule, losses, determinism, resume after SIGKILL, divergence
guard, joint and two-stage refinement, best/final checkpoint selection and resume refusals."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from mlpgraph.checkpoints import load_checkpoint, networks_from_checkpoint
from mlpgraph.data.batches import flip_poses
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout, root_relative
from mlpgraph.models.refine import lifted_estimate, mean_bone_lengths
from mlpgraph.outputs import MARKER
from mlpgraph.training import (
    BEST,
    BEST_PENDING,
    FINAL,
    LAST,
    Recipe,
    TrainingDiverged,
    lr_after_epoch,
    resolve_device,
    train,
)
from mlpgraph.training import epoch as epoch_module
from mlpgraph.training.losses import lifting_loss, mpjpe_loss, refinement_loss, symmetry_penalty
from tests.train_worker import PAD, build_networks, last_epoch, make_data

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("train_worker.py")


@pytest.fixture(scope="module")
def data():
    return make_data(seed=0)


def _states_equal(a: nn.Module | dict, b: nn.Module | dict) -> bool:
    sa = a.state_dict() if isinstance(a, nn.Module) else a
    sb = b.state_dict() if isinstance(b, nn.Module) else b
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------------ recipe
# The release's recipe for detected (HRNet) 2D inputs: lr 5e-3, x0.90 every 4th epoch.
HR_RECIPE = Recipe(lr=5e-3, lr_decay=0.90, large_decay_epoch=4, detected=True)


def test_recipe_defaults_and_round_trip():
    gt = Recipe()  # the defaults are the release's recipe for ground-truth 2D inputs
    assert (gt.lr, gt.lr_decay, gt.lr_decay_large, gt.large_decay_epoch, gt.detected) == (1e-3, 0.95, 0.5, 5, False)
    assert (gt.epochs, gt.batch_size, gt.seed, gt.l1_weight, gt.flip_augment) == (50, 256, 1, 0.01, True)
    assert Recipe.from_dict(json.loads(json.dumps(HR_RECIPE.to_dict()))) == HR_RECIPE
    with pytest.raises(UserInputError, match="unknown field 'lr_rate'"):
        Recipe.from_dict({"lr_rate": 1e-3})
    with pytest.raises(UserInputError, match="refine_mode"):
        Recipe(refine_mode="both")


# Hand-written: factor applied after each 1-based epoch, and the lr after it.
GT_TABLE = [
    (1, 0.95, 9.5e-4),
    (2, 0.95, 9.025e-4),
    (3, 0.95, 8.57375e-4),
    (4, 0.95, 8.1450625e-4),
    (5, 0.5, 4.07253125e-4),
    (6, 0.95, 3.8689046875e-4),
    (7, 0.95, 3.675459453125e-4),
    (8, 0.95, 3.49168648046875e-4),
    (9, 0.95, 3.3171021564453125e-4),
    (10, 0.5, 1.6585510782226562e-4),
    (11, 0.95, 1.5756235243115234e-4),
]
HR_TABLE = [
    (1, 1.0, 5e-3),
    (2, 1.0, 5e-3),
    (3, 1.0, 5e-3),
    (4, 0.9, 4.5e-3),
    (5, 1.0, 4.5e-3),
    (6, 1.0, 4.5e-3),
    (7, 1.0, 4.5e-3),
    (8, 0.9, 4.05e-3),
    (9, 1.0, 4.05e-3),
]


@pytest.mark.parametrize(("recipe", "table"), [(Recipe(), GT_TABLE), (HR_RECIPE, HR_TABLE)], ids=["gt", "hr"])
def test_lr_schedule_table(recipe: Recipe, table):
    lr = recipe.lr
    for epoch, factor, expected in table:
        new = lr_after_epoch(lr, epoch, recipe)
        assert new == pytest.approx(lr * factor, rel=1e-15)
        assert new == pytest.approx(expected, rel=1e-12)
        lr = new


# ------------------------------------------------------------------------------------ losses
def test_losses():
    target = torch.zeros(2, 16, 3)
    pred = target + torch.tensor([0.003, 0.004, 0.0])
    assert mpjpe_loss(pred, target).item() == pytest.approx(0.005)
    assert lifting_loss(pred, target, 0.01).item() == pytest.approx(0.99 * 0.005 + 0.01 * 0.007 / 3)

    layout = get_layout("h36m16")
    pose = torch.randn(16, 3)
    pose[[i for i in range(16) if i not in (*layout.left_joints, *layout.right_joints)], 0] = 0.0
    pose[list(layout.right_joints)] = pose[list(layout.left_joints)] * torch.tensor([-1.0, 1.0, 1.0])
    assert symmetry_penalty(pose[None], layout).abs().item() < 1e-6
    ankle, knee = layout.index("left_ankle"), layout.index("left_knee")
    longer = pose.clone()
    direction = longer[ankle] - longer[knee]
    longer[ankle] += 0.1 * direction / direction.norm()
    # signed, mean over the six pairs: a left bone 0.1 m longer gives +0.1 / 6
    assert symmetry_penalty(longer[None], layout).item() == pytest.approx(0.1 / 6, abs=1e-6)
    mirrored = pose.clone()
    mirrored[list(layout.right_joints)] = longer[list(layout.left_joints)] * torch.tensor([-1.0, 1.0, 1.0])
    assert symmetry_penalty(mirrored[None], layout).item() == pytest.approx(-0.1 / 6, abs=1e-6)
    refined = longer[None] + 0.01
    assert refinement_loss(refined, longer[None], layout).item() == pytest.approx(
        mpjpe_loss(refined, longer[None]).item() + 0.01 * 0.1 / 6, abs=1e-6
    )


# ------------------------------------------------------------------------------------ training
def _run(data, tmp: Path, recipe: Recipe, refine: bool = False, seed: int = 1, **kwargs):
    model, ref = build_networks(seed=seed, refine=refine)
    result = train(model, data, recipe, tmp, PAD, refine=ref, **kwargs)
    return result, model, ref


def test_loss_falls(data, tmp_path):
    result, _, _ = _run(data, tmp_path, Recipe(epochs=4, batch_size=32, lr=5e-3, device="cpu"))
    losses = [record["loss"] for record in result.history]
    assert [record["epoch"] for record in result.history] == [1, 2, 3, 4]
    assert losses[-1] < 0.6 * losses[0] and all(b < a for a, b in itertools.pairwise(losses))
    assert [record["lr"] for record in result.history] == pytest.approx([5e-3, 4.75e-3, 4.5125e-3, 4.286875e-3])
    assert result.best_epoch is None and result.last_epoch == 4
    assert (tmp_path / FINAL).exists() and not (tmp_path / BEST).exists()


def test_frame_stride_trains_on_every_kth_frame(data, tmp_path, monkeypatch):
    seen: list[torch.Tensor] = []
    real_step = epoch_module._train_step

    def recording_step(ctx, indices, flip):
        seen.append(indices.clone())
        return real_step(ctx, indices, flip)

    monkeypatch.setattr(epoch_module, "_train_step", recording_step)
    _run(data, tmp_path, Recipe(epochs=1, batch_size=32, frame_stride=3, device="cpu"))
    together = torch.cat(seen)
    assert together.sort().values.tolist() == data.target_indices(3).tolist()
    assert len(together) < data.num_samples / 2
    with pytest.raises(UserInputError, match="frame_stride"):
        Recipe(frame_stride=0)


def test_determinism(data, tmp_path):
    recipe = Recipe(epochs=2, batch_size=32, lr=5e-3, refine=True, device="cpu")
    first, model_a, ref_a = _run(data, tmp_path / "a", recipe, refine=True)
    second, model_b, ref_b = _run(data, tmp_path / "b", recipe, refine=True)
    assert first.history == second.history
    assert _states_equal(model_a, model_b) and _states_equal(ref_a, ref_b)
    other, model_c, _ = _run(data, tmp_path / "c", Recipe(**{**recipe.to_dict(), "seed": 2}), refine=True, seed=2)
    assert other.history != first.history and not _states_equal(model_a, model_c)
    # the training seed alone (same initial weights) changes the shuffle, flips and dropout
    shuffled, model_d, _ = _run(data, tmp_path / "d", Recipe(**{**recipe.to_dict(), "seed": 2}), refine=True)
    assert shuffled.history != first.history and not _states_equal(model_a, model_d)


def test_resume_after_sigkill_is_exact(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(directory: Path, result: Path, sleep: float) -> subprocess.Popen:
        cmd = [sys.executable, str(WORKER), str(directory), str(result), "--eval-sleep", str(sleep)]
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    reference = start(tmp_path / "ref", tmp_path / "ref.json", 0.0)
    victim = start(tmp_path / "run", tmp_path / "run.json", 0.4)
    deadline = time.monotonic() + 60
    while last_epoch(tmp_path / "run" / LAST) < 2:
        assert victim.poll() is None, victim.communicate()[1].decode()
        assert time.monotonic() < deadline, "epoch 2 checkpoint never appeared"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert last_epoch(tmp_path / "run" / LAST) == 2 and not (tmp_path / "run.json").exists()
    assert not (tmp_path / "run" / FINAL).exists()

    resumed = start(tmp_path / "run", tmp_path / "run.json", 0.0)
    for proc in (resumed, reference):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    expected = json.loads((tmp_path / "ref.json").read_text())
    got = json.loads((tmp_path / "run.json").read_text())
    assert got == expected
    assert [r["epoch"] for r in got["history"]] == [1, 2, 3, 4]
    for name in (LAST, BEST, FINAL):
        a, b = load_checkpoint(tmp_path / "ref" / name), load_checkpoint(tmp_path / "run" / name)
        assert a["meta"]["epoch"] == b["meta"]["epoch"]
        for role in ("model", "refine"):
            assert _states_equal(a["networks"][role]["state_dict"], b["networks"][role]["state_dict"]), (name, role)
    opt_a = load_checkpoint(tmp_path / "ref" / LAST)["meta"]["training"]["optimizer"]["state"]
    opt_b = load_checkpoint(tmp_path / "run" / LAST)["meta"]["training"]["optimizer"]["state"]
    assert all(torch.equal(opt_a[k][n], opt_b[k][n]) for k in opt_a for n in opt_a[k])


def test_finished_run_returns_and_settles_pending_best(data, tmp_path):
    recipe = Recipe(epochs=2, batch_size=64, device="cpu")
    scores = iter([50.0, 40.0])
    first, model, _ = _run(data, tmp_path, recipe, evaluate=lambda m, r: {"P1": next(scores)})
    # a kill between last.pt (which records best epoch 2) and the rename of the staged best.pt
    os.replace(tmp_path / BEST, tmp_path / BEST_PENDING)
    (tmp_path / FINAL).unlink()
    again, model_again, _ = _run(data, tmp_path, recipe, seed=7, evaluate=lambda m, r: pytest.fail("no epoch runs"))
    assert again.history == first.history and again.best_epoch == 2
    assert _states_equal(model, model_again)
    assert load_checkpoint(tmp_path / BEST)["meta"]["epoch"] == 2 and not (tmp_path / BEST_PENDING).exists()
    assert load_checkpoint(tmp_path / FINAL)["meta"]["epoch"] == 2


def test_best_and_final_selection(data, tmp_path):
    scores = iter([50.0, 40.0, 45.0])
    weights: dict[int, dict[str, torch.Tensor]] = {}
    logged: list[tuple[int, dict[str, float]]] = []

    def evaluate(model: nn.Module, refine: nn.Module | None) -> dict[str, float]:
        assert not model.training and not torch.is_grad_enabled()
        weights[len(weights) + 1] = _snapshot(model)
        return {"P1": next(scores), "P2": 1.0}

    recipe = Recipe(epochs=3, batch_size=64, device="cpu")
    result, model, _ = _run(
        data,
        tmp_path,
        recipe,
        evaluate=evaluate,
        on_epoch=lambda e, m: logged.append((e, m)),
        data_fingerprint="abc123",
    )
    assert result.best_epoch == 2 and result.last_epoch == 3
    assert result.best_metrics["P1"] == 40.0 and result.last_metrics["P1"] == 45.0
    assert [e for e, _ in logged] == [1, 2, 3] and logged[1][1]["P1"] == 40.0 and "loss" in logged[1][1]
    best, final = load_checkpoint(tmp_path / BEST), load_checkpoint(tmp_path / FINAL)
    assert best["meta"]["selection"] == "best on test (release rule)" and best["meta"]["epoch"] == 2
    assert final["meta"]["selection"] == "last epoch" and final["meta"]["epoch"] == 3
    assert best["data_fingerprint"] == final["data_fingerprint"] == "abc123"
    assert _states_equal(best["networks"]["model"]["state_dict"], weights[2])
    assert _states_equal(final["networks"]["model"]["state_dict"], weights[3])
    assert _states_equal(model, weights[3])
    rebuilt = networks_from_checkpoint(tmp_path / BEST)["model"]
    assert _states_equal(rebuilt, weights[2])


def test_resume_refuses_other_recipe_or_model(data, tmp_path):
    recipe = Recipe(epochs=1, batch_size=64, device="cpu")
    _run(data, tmp_path, recipe)
    with pytest.raises(UserInputError, match=r"recipe\.lr is 0\.001 in the checkpoint but 0\.002 now"):
        _run(data, tmp_path, Recipe(epochs=1, batch_size=64, lr=2e-3, device="cpu"))
    with pytest.raises(UserInputError, match="model config hid_dim is 16 in the checkpoint but 32 now"):
        train(build_networks_wider(), data, recipe, tmp_path, PAD)
    with pytest.raises(UserInputError, match="refine"):
        _run(data, tmp_path, Recipe(epochs=1, batch_size=64, refine=True, device="cpu"), refine=True)


def build_networks_wider() -> nn.Module:
    from mlpgraph.models import build_model

    return build_model("mlpgraph", frames=3, hid_dim=32, spatial_hid_dim=16, channel_hid_dim=24, num_layers=1)


def test_divergence_guard_keeps_last_checkpoint(data, tmp_path):
    model, _ = build_networks(refine=False)
    calls = {"n": 0}
    seen: dict[str, str] = {}

    def inject(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 6:  # first batch of epoch 2 (5 batches per epoch): last.pt is epoch 1's
            seen["sha"] = hashlib.sha256((tmp_path / LAST).read_bytes()).hexdigest()
        return output * float("nan") if calls["n"] == 7 else output

    model.register_forward_hook(inject)
    recipe = Recipe(epochs=3, batch_size=32, device="cpu")
    with pytest.raises(TrainingDiverged, match=r"epoch 2, batch 2/5.*non-finite.*epoch 1\) was kept"):
        train(model, data, recipe, tmp_path, PAD)
    assert hashlib.sha256((tmp_path / LAST).read_bytes()).hexdigest() == seen["sha"]
    assert load_checkpoint(tmp_path / LAST)["meta"]["epoch"] == 1
    assert not (tmp_path / FINAL).exists()


def test_divergence_guard_explosion(data, tmp_path):
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch \d+/5: .*(above max_loss|non-finite).*no checkpoint"):
        _run(data, tmp_path, Recipe(epochs=2, batch_size=32, lr=1e6, max_loss=10.0, device="cpu"))
    assert not (tmp_path / LAST).exists()


def test_weights_turned_non_finite_by_the_last_step_are_not_saved(data, tmp_path):
    """The loss guard sees a step's damage at the next batch; the epoch's last step has none: weights are checked."""
    model, _ = build_networks(refine=False)
    calls = {"n": 0}

    def poison(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 5:  # the last of epoch 1's 5 batches: its loss is finite, its step spreads the NaN
                with torch.no_grad():
                    module.head.bias[0] = float("nan")
        return output

    model.register_forward_hook(poison)
    expected = r"epoch 1: the lifting network's tensor head\.bias became non-finite; no checkpoint had been written"
    with pytest.raises(TrainingDiverged, match=expected):
        train(model, data, Recipe(epochs=2, batch_size=32, device="cpu"), tmp_path, PAD)
    assert calls["n"] == 5 and [p.name for p in tmp_path.iterdir()] in ([], [MARKER])


def test_a_device_this_machine_lacks_is_one_line(data, tmp_path):
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or the first of none
    with pytest.raises(UserInputError, match=rf"^train\.device: {missing} is not available \(this machine has "):
        resolve_device(missing)
    with pytest.raises(UserInputError, match=rf"^--device: {missing} is not available"):
        resolve_device(missing, "--device")
    if not torch.cuda.is_available():
        with pytest.raises(UserInputError, match=r"^train\.device: cuda is not available \(this machine has no CUDA"):
            resolve_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(UserInputError, match=r"^train\.device: mps is not available \(MPS is not available"):
            resolve_device("mps")
    with pytest.raises(UserInputError, match=r"^train\.device: 'gpu' is not a device"):
        resolve_device("gpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserInputError, match=rf"^train\.device: {missing} is not available"):
        _run(data, tmp_path, Recipe(epochs=1, batch_size=32, device=missing))
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------ refinement
def test_refinement_loss_reaches_main_network(data):
    model, refine = build_networks(refine=True)
    indices = torch.arange(40)
    flip = torch.arange(40) % 2 == 0
    windows, target = data.batch(indices, PAD, flip=flip)
    pred = model(windows)
    lifted = lifted_estimate(data, indices, windows, pred, PAD, flipped=flip)
    refinement_loss(refine(pred, lifted), root_relative(target, get_layout(data.layout).root), data.layout).backward()
    assert all(p.grad is not None for p in refine.parameters())
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    # a flipped sample's X~ is the unflipped one's, mirrored: the flip mask reaches the principal point
    pose = torch.randn(40, 16, 3) * 0.2
    plain = lifted_estimate(data, indices, data.batch(indices, PAD)[0], pose, PAD)
    mirrored = lifted_estimate(
        data,
        indices,
        data.batch(indices, PAD, flip=True)[0],
        flip_poses(pose, data.flip_permutation),
        PAD,
        flipped=True,
    )
    torch.testing.assert_close(flip_poses(mirrored, data.flip_permutation), plain)


def test_joint_refinement_trains_both(data, tmp_path):
    recipe = Recipe(epochs=1, batch_size=32, refine=True, device="cpu")
    model, refine = build_networks(refine=True)
    before_model, before_refine = _snapshot(model), _snapshot(refine)
    result = train(model, data, recipe, tmp_path, PAD, refine=refine)
    assert not _states_equal(model, before_model) and not _states_equal(refine, before_refine)
    record = result.history[0]
    assert record["loss"] == pytest.approx(record["loss_main"] + record["loss_refine"], rel=1e-6)
    assert set(networks_from_checkpoint(tmp_path / FINAL)) == {"model", "refine"}
    last = load_checkpoint(tmp_path / LAST)
    assert set(networks_from_checkpoint(tmp_path / LAST)) == {"model", "refine"}
    training = last["meta"]["training"]
    assert training["epoch"] == 1 and training["recipe"] == recipe.to_dict()
    assert training["lr"] == lr_after_epoch(recipe.lr, 1, recipe)
    assert set(training["rng"]) == {"torch", "cuda", "generator", "numpy", "python"}
    expected_lengths = mean_bone_lengths(data.poses_3d, data.layout)
    assert torch.equal(load_checkpoint(tmp_path / FINAL)["meta"]["bone_lengths"], expected_lengths)


def test_two_stage_freezes_main_network(data, tmp_path):
    recipe = Recipe(epochs=2, batch_size=32, refine=True, refine_mode="two_stage", device="cpu")
    model, refine = build_networks(refine=True)
    before_model, before_refine = _snapshot(model), _snapshot(refine)
    result = train(model, data, recipe, tmp_path, PAD, refine=refine)
    assert _states_equal(model, before_model)  # weights and BatchNorm statistics untouched
    assert not _states_equal(refine, before_refine)
    assert all(r["loss"] == r["loss_refine"] for r in result.history)
    assert result.history[1]["loss"] < result.history[0]["loss"]


def test_estimated_root_depth_runs(data, tmp_path):
    recipe = Recipe(epochs=1, batch_size=32, refine=True, root_depth="estimated", device="cpu")
    result, _, _ = _run(data, tmp_path, recipe, refine=True)
    assert torch.isfinite(torch.tensor(result.history[0]["loss_refine"]))
    with pytest.raises(UserInputError, match="no refinement network"):
        _run(data, tmp_path / "x", recipe)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_float16_runs_and_resumes(data, tmp_path):
    recipe = Recipe(epochs=2, batch_size=32, refine=True, precision="float16", device="cuda")
    result, model, refine = _run(data, tmp_path, recipe, refine=True)
    assert next(model.parameters()).device.type == "cuda" and next(refine.parameters()).device.type == "cuda"
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    assert load_checkpoint(tmp_path / LAST)["meta"]["training"]["scaler"] is not None
    again, _, _ = _run(data, tmp_path, recipe, refine=True)
    assert again.history == result.history
