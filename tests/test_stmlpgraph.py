"""MLP-Graph against the release's reference vectors, its parameter counts, the folded inference path,
the two WJC aggregations, training and argument errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout
from mlpgraph.models import joint_major
from mlpgraph.models.release import (
    mlpgraph_from_release,
    our_key_to_release,
    release_key_to_ours,
    state_dict_to_release,
)
from mlpgraph.models.stmlpgraph import FOLD_MIN_BATCH, MLPGraph, WeightedJacobiConv, count_parameters

REFERENCE = Path(__file__).parent / "data" / "reference"
REFERENCE_FILES = sorted(REFERENCE.glob("*.pt"))
SUMMARY = json.loads((REFERENCE / "summary.json").read_text())


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _from_reference(data: dict, **kwargs) -> MLPGraph:
    cfg = json.loads(data["config"])
    layout = {16: "h36m16", 17: "h36m17"}[cfg["n_joints"]]
    return mlpgraph_from_release(
        data["state_dict"],
        frames=cfg["frames"],
        hid_dim=cfg["hid_dim"],
        spatial_hid_dim=cfg["spatial_hid_dim"],
        channel_hid_dim=cfg["channel_hid_dim"],
        num_layers=cfg["num_layers"],
        layout=layout,
        **kwargs,
    )


def test_reference_files_present():
    assert len(REFERENCE_FILES) >= 2
    assert {p.stem for p in REFERENCE_FILES} == set(SUMMARY)


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: p.stem)
def test_reference_vectors_on_every_path(path: Path):
    data = _load(path)
    model = _from_reference(data)
    assert not model.training and model.arithmetic == "fast"
    x = data["input_2d"]
    with torch.no_grad():
        assert model.path_for(len(x)) == "folded"
        folded = model(x)
    assert model.path_for(len(x)) == "joint_major"  # autograd on: parameter gradients may be wanted
    joint_major = model(x).detach()
    model.use_arithmetic("release")
    assert model.path_for(len(x)) == "release"
    release = model(x).detach()
    for out in (folded, joint_major, release):
        assert out.shape == data["output_3d"].shape
        assert (out - data["output_3d"]).abs().max().item() < 1e-5


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: p.stem)
def test_reference_parameter_counts_and_keys(path: Path):
    data = _load(path)
    info = SUMMARY[path.stem]
    model = _from_reference(data)
    assert count_parameters(model) == info["parameters"]
    assert len(data["state_dict"]) == info["state_dict_keys"]
    exported = state_dict_to_release(model.state_dict())
    assert list(exported) == list(data["state_dict"])
    for key, value in exported.items():
        assert torch.equal(value, data["state_dict"][key]), key


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (dict(frames=1, hid_dim=128, spatial_hid_dim=128, channel_hid_dim=256, num_layers=3), 627_763),
        (dict(frames=243, hid_dim=384, spatial_hid_dim=384, channel_hid_dim=768, num_layers=3), 5_604_915),
        (dict(frames=9, hid_dim=64, spatial_hid_dim=64, channel_hid_dim=96, num_layers=2), 86_883),
    ],
)
def test_parameter_counts(cfg: dict, expected: int):
    model = MLPGraph(layout="h36m16", **cfg)
    assert count_parameters(model) == expected
    assert count_parameters(MLPGraph(layout="h36m16", aggregation="graph", **cfg)) == expected
    # the fixed adjacency is a buffer, not a parameter, and not in the state dict
    assert all(k.rpartition(".")[2] != "adjacency" for k in model.state_dict())


def test_config_rebuilds_and_is_json():
    model = MLPGraph(layout="h36m17", frames=9, hid_dim=32, spatial_hid_dim=48, channel_hid_dim=40, num_layers=2)
    cfg = json.loads(json.dumps(model.config))
    assert cfg == model.config
    assert set(cfg) == {
        "layout",
        "frames",
        "hid_dim",
        "spatial_hid_dim",
        "channel_hid_dim",
        "num_layers",
        "dropout",
        "mlp_dropout",
        "aggregation",
    }
    assert cfg["dropout"] == 0.2 and cfg["mlp_dropout"] == 0.0
    rebuilt = MLPGraph(**cfg)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(3, 9, 17, 2)
    model.eval()
    rebuilt.eval()
    torch.testing.assert_close(rebuilt(x), model(x))


def test_initialisation_as_released():
    torch.manual_seed(0)
    wjc = MLPGraph(hid_dim=128, spatial_hid_dim=128, channel_hid_dim=256).blocks[0].wjc1
    assert torch.all(wjc.adjacency_offset == 1e-6)
    assert wjc.bias.abs().max() <= 1 / 256**0.5
    # Xavier-uniform bound on the release's (2, Cin, Cout) shape: gain * sqrt(6 / (Cin*Cout + 2*Cout))
    bound = 1.414 * (6 / (128 * 256 + 2 * 256)) ** 0.5
    assert wjc.weight.abs().max() <= bound and wjc.weight.abs().max() > 0.9 * bound
    adj = torch.from_numpy(get_layout("h36m16").normalised_adjacency())
    assert torch.equal(wjc.adjacency, adj)
    assert torch.all(torch.diagonal(wjc.adjacency) == 0)


def _train_a_little(model: MLPGraph, steps: int = 3, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        x = torch.randn(16, model.frames, model.num_joints, 2, generator=gen)
        y = torch.randn(16, model.num_joints, 3, generator=gen)
        loss = (model(x) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


FAST_CONFIGS = [
    dict(layout="h36m16", frames=1, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=24, num_layers=2),
    dict(layout="h36m17", frames=3, hid_dim=8, spatial_hid_dim=12, channel_hid_dim=20, num_layers=1),
    dict(layout="h36m16", frames=9, hid_dim=12, spatial_hid_dim=12, channel_hid_dim=16, num_layers=3),
    dict(layout="h36m17", frames=27, hid_dim=32, spatial_hid_dim=16, channel_hid_dim=24, num_layers=2),
]


def _outputs_on_paths(model: MLPGraph, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Eval-mode outputs of ``model`` on ``x`` by each arithmetic (the model is left on the fast one)."""
    outs = {}
    with torch.no_grad():
        outs["folded"] = model.use_arithmetic("fast")(x)
        outs["release"] = model.use_arithmetic("release")(x)
    model.use_arithmetic("fast")
    outs["joint_major"] = model(x).detach()
    return outs


@pytest.mark.parametrize("cfg", FAST_CONFIGS, ids=lambda c: f"{c['layout']}-T{c['frames']}-C{c['hid_dim']}")
def test_fast_paths_match_release(cfg: dict):
    torch.manual_seed(1)
    model = MLPGraph(**cfg)
    _train_a_little(model)
    model.eval()
    bn = model.blocks[0].bn1
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    offset = model.blocks[0].wjc1.adjacency_offset
    assert not torch.allclose(torch.diagonal(offset), torch.full_like(torch.diagonal(offset), 1e-6))
    x = torch.randn(40, cfg["frames"], get_layout(cfg["layout"]).num_joints, 2)
    outs = _outputs_on_paths(model, x)
    assert (outs["folded"] - outs["release"]).abs().max().item() < 1e-5
    assert (outs["joint_major"] - outs["release"]).abs().max().item() < 1e-5


def _gradients(model: MLPGraph, x: torch.Tensor, y: torch.Tensor, arithmetic: str) -> tuple[dict, dict]:
    """One train-mode forward/backward: (parameter gradients, BatchNorm buffers after it)."""
    model = copy.deepcopy(model).use_arithmetic(arithmetic).train()
    (model(x) - y).square().mean().backward()
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    return grads, {k: v for k, v in model.state_dict().items() if "bn" in k}


@pytest.mark.parametrize("cfg", FAST_CONFIGS, ids=lambda c: f"{c['layout']}-T{c['frames']}-C{c['hid_dim']}")
def test_training_gradients_and_batch_statistics_match_release(cfg: dict):
    torch.manual_seed(5)
    model = MLPGraph(**{**cfg, "dropout": 0.0})
    _train_a_little(model)
    joints = get_layout(cfg["layout"]).num_joints
    x, y = torch.randn(32, cfg["frames"], joints, 2), torch.randn(32, joints, 3)
    fast_grads, fast_bn = _gradients(model, x, y, "fast")
    release_grads, release_bn = _gradients(model, x, y, "release")
    assert set(fast_grads) == set(release_grads) == {k for k, p in model.named_parameters()}
    scale = max(g.abs().max().item() for g in release_grads.values())
    for key, grad in release_grads.items():
        assert (fast_grads[key] - grad).abs().max().item() < 1e-5 * scale, key
    for key, value in release_bn.items():
        torch.testing.assert_close(fast_bn[key], value, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cfg", FAST_CONFIGS, ids=lambda c: f"{c['layout']}-T{c['frames']}-C{c['hid_dim']}")
def test_empty_batch_on_every_path(cfg: dict):
    # a DDP rank whose share of the epoch's tail batch is empty still runs forward and backward
    model = MLPGraph(**cfg).train()
    joints = get_layout(cfg["layout"]).num_joints
    x = torch.randn(0, cfg["frames"], joints, 2)
    out = model(x)
    assert out.shape == (0, joints, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    for arithmetic in ("fast", "release"):
        with torch.no_grad():
            assert model.eval().use_arithmetic(arithmetic)(x).shape == (0, joints, 3)


def test_dropout_is_applied_on_the_training_path():
    torch.manual_seed(6)
    model = MLPGraph(**FAST_CONFIGS[0], dropout=0.5).train()
    x = torch.randn(16, 1, 16, 2)
    assert model.path_for(len(x)) == "joint_major"
    assert not torch.allclose(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_fast_configs_cover_both_initial_variants():
    # 2T < C: the initial terms come from the token; otherwise from the embedded features X0
    variants = {joint_major.uses_tokens(MLPGraph(**cfg)) for cfg in FAST_CONFIGS}
    assert variants == {True, False}


def test_small_batches_of_wide_windows_are_not_folded():
    model = MLPGraph(**FAST_CONFIGS[3]).eval()  # 2T = 54 > C = 32
    with torch.no_grad():
        assert model.path_for(FOLD_MIN_BATCH - 1) == "release"
        assert model.path_for(FOLD_MIN_BATCH) == "folded"
        narrow = MLPGraph(**FAST_CONFIGS[0]).eval()
        assert narrow.path_for(1) == "folded"


def test_fold_invalidated_by_train_mode_and_weight_changes():
    torch.manual_seed(2)
    cfg = FAST_CONFIGS[0]
    model = MLPGraph(**cfg)
    _train_a_little(model)
    model.eval()
    x = torch.randn(8, 1, 16, 2)

    def release_output() -> torch.Tensor:
        with torch.no_grad():
            out = model.use_arithmetic("release")(x)
        model.use_arithmetic("fast")
        return out

    with torch.no_grad():
        first = model(x)
    assert model._folded is not None
    torch.testing.assert_close(first, release_output(), atol=1e-5, rtol=0)

    # back to train mode: batch statistics and dropout, and the fold is dropped
    model.train()
    assert model._folded is None
    _train_a_little(model, steps=2, seed=5)
    model.eval()
    with torch.no_grad():
        after_training = model(x)
    assert (after_training - first).abs().max() > 1e-4
    torch.testing.assert_close(after_training, release_output(), atol=1e-5, rtol=0)

    # in-place weight edits in eval mode and load_state_dict re-fold as well
    with torch.no_grad():
        model(x)
        model.blocks[0].wjc1.adjacency_offset.add_(0.3)
        model.blocks[0].bn2.running_var.mul_(2.0)
        edited = model(x)
    torch.testing.assert_close(edited, release_output(), atol=1e-5, rtol=0)
    model.load_state_dict(MLPGraph(**cfg).state_dict())
    with torch.no_grad():
        reloaded = model(x)
    torch.testing.assert_close(reloaded, release_output(), atol=1e-5, rtol=0)


def test_eval_mode_with_autograd_gives_parameter_gradients():
    torch.manual_seed(3)
    model = MLPGraph(**FAST_CONFIGS[0]).eval()
    x = torch.randn(8, 1, 16, 2, requires_grad=True)
    model(x).sum().backward()
    assert model.blocks[0].wjc1.weight.grad is not None and x.grad is not None


def test_fast_path_input_gradient_matches_release():
    torch.manual_seed(7)
    model = MLPGraph(**FAST_CONFIGS[2])
    _train_a_little(model)
    model.eval()
    x = torch.randn(6, 9, 16, 2)
    grads = []
    for arithmetic in ("release", "fast"):
        model.use_arithmetic(arithmetic)
        xi = x.clone().requires_grad_(True)
        model(xi).square().sum().backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)


def test_graph_aggregation_is_release_only():
    model = MLPGraph(**FAST_CONFIGS[0], aggregation="graph").eval()
    x = torch.randn(4, 1, 16, 2)
    with torch.no_grad():
        assert model.path_for(len(x)) == "release"
        out = model(x)
    assert out.shape == (4, 16, 3) and model._folded is None
    with pytest.raises(ValueError, match="arithmetic"):
        model.use_arithmetic("quick")


def _wjc_pair(num_joints_layout: str = "h36m16") -> tuple[WeightedJacobiConv, WeightedJacobiConv]:
    adj = torch.from_numpy(get_layout(num_joints_layout).normalised_adjacency())
    torch.manual_seed(4)
    diag = WeightedJacobiConv(6, 5, 4, adj, aggregation="diagonal")
    graph = WeightedJacobiConv(6, 5, 4, adj, aggregation="graph")
    graph.load_state_dict(diag.state_dict())
    return diag, graph


def test_wjc_graph_differs_from_diagonal_and_passes_messages():
    diag, graph = _wjc_pair()
    lay = get_layout("h36m16")
    h = torch.randn(3, lay.num_joints, 6, requires_grad=True)
    x = torch.randn(3, lay.num_joints, 4)
    out_d, x1_d = diag(h, x)
    out_g, x1_g = graph(h, x)
    torch.testing.assert_close(x1_d, x1_g)
    assert (out_d - out_g).abs().max() > 1e-2
    child, parent = (int(v) for v in lay.bones[0])
    # graph: joint `parent`'s output depends on neighbour `child`'s input
    (grad_g,) = torch.autograd.grad(out_g[:, parent].sum(), h)
    assert grad_g[:, child].abs().max() > 1e-4
    # diagonal (as released): no message between joints inside WJC
    (grad_d,) = torch.autograd.grad(out_d[:, parent].sum(), h)
    others = [j for j in range(lay.num_joints) if j != parent]
    assert torch.all(grad_d[:, others] == 0)


def test_wjc_formula():
    diag, graph = _wjc_pair("h36m17")
    h = torch.randn(2, 17, 6)
    x = torch.randn(2, 17, 4)
    with torch.no_grad():
        graph.adjacency_offset.normal_()
        diag.adjacency_offset.copy_(graph.adjacency_offset)
        a = graph.adjacency + graph.adjacency_offset
        a = (a + a.T) / 2
        m, w, alpha = graph.modulation, graph.weight, 0.1
        mh1 = m * (h @ w[0])
        x1 = x @ graph.initial_weight
        rest = h @ w[1] - mh1 + alpha * m * x1 + graph.bias
        expect_graph = rest + (1 - alpha) * torch.einsum("ij,njc->nic", a, mh1)
        expect_diag = rest + (1 - alpha) * torch.diagonal(a)[:, None] * mh1
        torch.testing.assert_close(graph(h, x)[0], expect_graph)
        torch.testing.assert_close(diag(h, x)[0], expect_diag)


@pytest.mark.parametrize("frames", [1, 9])
@pytest.mark.parametrize("aggregation", ["diagonal", "graph"])
def test_adam_steps_reduce_loss(frames: int, aggregation: str):
    torch.manual_seed(5)
    model = MLPGraph(
        frames=frames, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=24, num_layers=2, aggregation=aggregation
    )
    model.train()
    x = torch.randn(32, frames, 16, 2)
    y = torch.randn(32, 16, 3) * 0.3
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = (model(x) - y).norm(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(p.grad is not None for p in model.parameters())


def test_input_shape_errors_are_clear():
    model = MLPGraph(layout="h36m16", frames=9, hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8, num_layers=1)
    with pytest.raises(ValueError, match="17 joints but layout h36m16 has 16"):
        model(torch.randn(2, 9, 17, 2))
    with pytest.raises(ValueError, match="3 frames but the model was built for frames=9"):
        model(torch.randn(2, 3, 16, 2))
    with pytest.raises(ValueError, match=r"shape \(N, T=9, J=16, 2\)"):
        model(torch.randn(2, 9, 16, 3))
    with pytest.raises(ValueError, match=r"shape \(N, T=9, J=16, 2\)"):
        model(torch.randn(9, 16, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(frames=4), "frames must be a positive odd integer"),
        (dict(frames=0), "frames must be a positive odd integer"),
        (dict(hid_dim=0), "hid_dim must be a positive integer"),
        (dict(num_layers=0), "num_layers must be a positive integer"),
        (dict(aggregation="mean"), "aggregation must be one of"),
        (dict(dropout=1.5), "dropout must be in"),
    ],
)
def test_constructor_argument_errors(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        MLPGraph(**kwargs)


def test_unknown_layout():
    with pytest.raises(UserInputError, match="unknown skeleton layout"):
        MLPGraph(layout="h36m99")


# ---------------------------------------------------------------- release key mapping


def test_release_round_trip_from_fresh_model():
    torch.manual_seed(6)
    cfg = dict(frames=3, hid_dim=8, spatial_hid_dim=8, channel_hid_dim=12, num_layers=2)
    model = MLPGraph(**cfg)
    _train_a_little(model)
    release_sd = state_dict_to_release(model.state_dict())
    assert "gconv_layers.mixer_blocks.1.gconv.graphConvII.adj2_1" in release_sd
    assert release_sd["gconv_layers.mixer_blocks.0.gconv.graphConv.W2"].shape == (1, 8, 12)
    assert release_sd["gconv_layers.mixer_blocks.0.gconv.graphConv.M"].shape == (1, 16, 12)
    for key in release_sd:
        assert our_key_to_release(release_key_to_ours(key)) == key
    loaded = mlpgraph_from_release(release_sd, **cfg)
    model.eval()
    x = torch.randn(5, 3, 16, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    prefixed = {f"module.{k}": v for k, v in release_sd.items()}
    mlpgraph_from_release(prefixed, **cfg)


def test_release_import_errors_name_the_tensor_and_shapes():
    data = _load(REFERENCE / "stmlpgraph_f9_z64_l2.pt")
    sd = dict(data["state_dict"])
    cfg = dict(frames=9, hid_dim=64, spatial_hid_dim=64, channel_hid_dim=96, num_layers=2)

    wrong = dict(cfg, channel_hid_dim=128)
    with pytest.raises(UserInputError, match=r"'gconv_layers.mixer_blocks.0.gconv.graphConv.W' has shape "
                       r"\(2, 64, 96\), expected \(2, 64, 128\)") as err:  # fmt: skip
        mlpgraph_from_release(sd, **wrong)
    assert "\n" not in str(err.value)

    with pytest.raises(UserInputError, match=r"to_patch_embedding.weight' has shape \(64, 18\), expected \(64, 2\)"):
        mlpgraph_from_release(sd, **dict(cfg, frames=1))

    extra = dict(sd, **{"gconv_layers.extra.weight": torch.zeros(3)})
    with pytest.raises(UserInputError, match=r"unexpected tensor 'gconv_layers.extra.weight' with shape \(3\)"):
        mlpgraph_from_release(extra, **cfg)

    with pytest.raises(UserInputError, match="unexpected tensor 'gconv_layers.mixer_blocks.1"):
        mlpgraph_from_release(sd, **dict(cfg, num_layers=1))

    missing = {k: v for k, v in sd.items() if k != "gconv_layers.mlp_head.0.bias"}
    with pytest.raises(UserInputError, match=r"missing tensor 'gconv_layers.mlp_head.0.bias', expected shape \(3\)"):
        mlpgraph_from_release(missing, **cfg)

    with pytest.raises(UserInputError, match="missing tensor 'gconv_layers.mixer_blocks.2"):
        mlpgraph_from_release(sd, **dict(cfg, num_layers=3))
