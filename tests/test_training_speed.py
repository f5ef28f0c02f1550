"""The training step's speed settings (precision, torch.compile), make_train_step, and the blocked joint MLP."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as fn

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import root_relative
from mlpgraph.models import build_model, joint_mlp
from mlpgraph.training import Recipe, make_train_step, seed_everything, train
from mlpgraph.training import speed as speed_module
from mlpgraph.training.losses import lifting_loss
from mlpgraph.training.speed import COMPILE_MIN_STEPS, resolve_speed
from tests.train_worker import PAD, build_networks, make_data

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return make_data(seed=0)


# ------------------------------------------------------------------ blocked joint MLP
@pytest.mark.parametrize("rows", [1, 63, 64, 1000, 3 * joint_mlp.rows_per_block(48) + 5])
def test_blocked_joint_mlp_matches_the_layers(rows: int):
    torch.manual_seed(rows)
    lin_in, lin_out = nn.Linear(16, 48), nn.Linear(48, 16)
    x = torch.randn(rows, 16, requires_grad=True)
    grad = torch.randn(rows, 16)
    expected = lin_out(fn.gelu(lin_in(x)))
    expected.backward(grad)
    reference = [t.grad.clone() for t in (x, lin_in.weight, lin_in.bias, lin_out.weight, lin_out.bias)]
    for t in (x, lin_in.weight, lin_in.bias, lin_out.weight, lin_out.bias):
        t.grad = None
    out = joint_mlp.joint_mlp_rows(x, lin_in.weight, lin_in.bias, lin_out.weight, lin_out.bias)
    out.backward(grad)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    grads = (x.grad, lin_in.weight.grad, lin_in.bias.grad, lin_out.weight.grad, lin_out.bias.grad)
    for got, want in zip(grads, reference, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(
            joint_mlp.joint_mlp_rows(x, lin_in.weight, lin_in.bias, lin_out.weight, lin_out.bias), expected.detach()
        )


def test_blocked_joint_mlp_gradcheck():
    torch.manual_seed(0)
    shapes = [(150, 5), (7, 5), (7,), (5, 7), (5,)]
    args = [torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    assert torch.autograd.gradcheck(joint_mlp.joint_mlp_rows, args)


# ------------------------------------------------------------------ precision and compile
def test_auto_precision_follows_the_hardware(monkeypatch):
    speed_module.cpu_flags.cache_clear()
    monkeypatch.setattr(speed_module, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert resolve_speed("auto", False, CPU, 10).precision == "float32"
    monkeypatch.setattr(speed_module, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert resolve_speed("auto", False, CPU, 10).precision == "bfloat16"
    monkeypatch.setattr(speed_module, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert resolve_speed("auto", False, CPU, 10).precision == "bfloat16"
    assert resolve_speed("float32", False, CPU, 10).precision == "float32"


def test_cpu_flags_read_from_this_machine():
    speed_module.cpu_flags.cache_clear()
    flags = speed_module.cpu_flags()
    if Path("/proc/cpuinfo").exists():
        assert flags and all(isinstance(flag, str) for flag in flags)


def test_auto_compile_only_for_long_runs():
    short = resolve_speed("float32", "auto", CPU, COMPILE_MIN_STEPS - 1)
    assert not short.compile
    long = resolve_speed("float32", "auto", CPU, COMPILE_MIN_STEPS)
    assert long.compile == speed_module.compiler_available(CPU)
    assert resolve_speed("float32", True, CPU, 1).compile
    assert not resolve_speed("float32", False, CPU, 10**9).compile


def test_bad_settings_refused():
    with pytest.raises(UserInputError, match="precision"):
        Recipe(precision="half")
    with pytest.raises(UserInputError, match="compile"):
        Recipe(compile="sometimes")
    with pytest.raises(ValueError, match="precision"):
        resolve_speed("fp8", False, CPU, 1)


def test_bfloat16_training_runs_on_cpu(data, tmp_path):
    model, _ = build_networks(refine=False)
    recipe = Recipe(epochs=1, batch_size=64, precision="bfloat16", device="cpu")
    result = train(model, data, recipe, tmp_path / "bf16", pad=PAD)
    assert len(result.history) == 1 and torch.isfinite(torch.tensor(result.history[0]["loss"]))


@pytest.mark.slow
def test_compiled_training_matches_eager(data, tmp_path):
    results = {}
    for compiled in (False, True):  # without dropout: compiled kernels draw their own random numbers
        seed_everything(3)
        sizes = {"hid_dim": 16, "spatial_hid_dim": 16, "channel_hid_dim": 24}
        model = build_model("mlpgraph", frames=2 * PAD + 1, dropout=0.0, **sizes)
        batch = data.num_samples // 3  # equal batches: one compilation
        recipe = Recipe(epochs=1, batch_size=batch, compile=compiled, device="cpu", flip_augment=False)
        results[compiled] = (train(model, data, recipe, tmp_path / str(compiled), pad=PAD), model)
    assert results[True][0].history[0]["loss"] == pytest.approx(results[False][0].history[0]["loss"], rel=1e-4)
    # Compare the trained functions with batch statistics: a WJC bias has zero gradient but for
    # rounding (a batch norm follows), which Adam scales up to +-lr per step, and the running mean
    # follows it only slowly; batch statistics cancel it exactly.
    windows, _ = data.batch(torch.arange(data.num_samples), PAD)
    with torch.no_grad():
        eager, compiled = (results[key][1].train()(windows) for key in (False, True))
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-3)


# ------------------------------------------------------------------ make_train_step
def _params_file(tmp_path: Path, **train: object) -> Path:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["preset"] = "tiny"
    params["train"].update(train)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_make_train_step_is_one_configured_optimiser_step(data, tmp_path):
    params_path = _params_file(tmp_path, device="cpu", precision="float32", compile=False, l1_weight=0.05)
    model, _ = build_networks(seed=4, refine=False)
    reference = copy.deepcopy(model).train()
    step = make_train_step(model, params_path, keypoints="gt")
    assert not step.speed.compile and step.speed.precision == "float32" and model.training
    windows, target = data.batch(torch.arange(32), PAD)
    target = root_relative(target, 0)

    torch.manual_seed(0)
    loss = step(windows, target)
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3, amsgrad=True)
    expected = lifting_loss(reference(windows), target, 0.05)
    expected.backward()
    optimizer.step()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, atol=1e-6, rtol=1e-5, msg=key)
    losses = [step(windows, target).item() for _ in range(20)]
    assert losses[-1] < 0.7 * loss.item()


def test_make_train_step_reads_the_detected_recipe_and_refuses_bad_params(tmp_path):
    params_path = _params_file(tmp_path, device="cpu", compile=False)
    model, _ = build_networks(refine=False)
    step = make_train_step(model, params_path, keypoints="hr")
    assert step.optimisation.optimizer.param_groups[0]["lr"] == pytest.approx(5e-3)
    bad = _params_file(tmp_path / "bad", precision="fp8")
    with pytest.raises(UserInputError, match="train.precision"):
        make_train_step(model, bad)
