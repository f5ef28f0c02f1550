"""The model registry and the project's checkpoint format."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from mlpgraph.checkpoints import (
    NonFiniteTensorError,
    load_checkpoint,
    load_state_dict_checked,
    network_entry,
    networks_from_checkpoint,
    save_checkpoint,
)
from mlpgraph.errors import UserInputError
from mlpgraph.models import PAPER_CONFIGS, build_model, count_parameters, model_names


def test_registry_names():
    assert set(model_names()) == {"mlpgraph", "semgcn", "semgcn_nonlocal", "hgcn", "wugcn", "modgcn", "refine"}
    with pytest.raises(UserInputError, match="unknown model 'gcn'"):
        build_model("gcn")
    with pytest.raises(UserInputError, match="bad configuration"):
        build_model("semgcn", widths=3)


@pytest.mark.parametrize("label", list(PAPER_CONFIGS))
def test_paper_configurations_match_published_parameter_counts(label):
    config = PAPER_CONFIGS[label]
    count = count_parameters(build_model(config.model, **config.overrides))
    if config.model in ("mlpgraph", "refine"):
        assert count == config.published_parameters  # the release's exact count
    else:
        assert abs(count - config.published_parameters) / config.published_parameters < 0.02


@pytest.mark.parametrize("name", ["mlpgraph", "semgcn_nonlocal", "hgcn", "wugcn", "modgcn"])
@pytest.mark.parametrize("layout", ["h36m16", "h36m17"])
def test_every_model_lifts_one_frame(name, layout):
    model = build_model(name, layout=layout).eval()
    joints = 16 if layout == "h36m16" else 17
    with torch.no_grad():
        out = model(torch.randn(4, 1, joints, 2))
    assert out.shape == (4, joints, 3) and torch.isfinite(out).all()


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("mlpgraph", frames=9, hid_dim=32, spatial_hid_dim=32, channel_hid_dim=48, num_layers=2)
    refine = build_model("refine")
    path = save_checkpoint(
        tmp_path / "ckpt.pt",
        {"model": network_entry("mlpgraph", model), "refine": network_entry("refine", refine)},
        data_fingerprint="ab" * 32,
        meta={"epoch": 3, "selection": "last epoch"},
    )
    content = load_checkpoint(path)
    assert content["data_fingerprint"] == "ab" * 32 and content["meta"]["epoch"] == 3
    rebuilt = networks_from_checkpoint(path)
    x = torch.randn(5, 9, 16, 2)
    with torch.no_grad():
        assert torch.equal(rebuilt["model"](x), model.eval()(x))
    assert not rebuilt["refine"].training


def test_mismatched_config_names_the_tensor(tmp_path):
    small = build_model("mlpgraph", hid_dim=64, spatial_hid_dim=64)
    big = build_model("mlpgraph")
    expected = r"tensor '.+' has shape \(64, 2\) in the checkpoint, the model expects \(128, 2\)"
    with pytest.raises(UserInputError, match=expected):
        load_state_dict_checked(big, small.state_dict(), "ckpt.pt")
    state = big.state_dict()
    first = next(iter(state))
    del state[first]
    with pytest.raises(UserInputError, match=f"tensor '{first}' is missing"):
        load_state_dict_checked(big, state, "ckpt.pt")
    state = {**big.state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(UserInputError, match="unexpected tensor 'extra.weight'"):
        load_state_dict_checked(big, state, "ckpt.pt")


def test_unsafe_or_foreign_files_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserInputError, match="evil.pt: refused to load"):
        load_checkpoint(tmp_path / "evil.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(UserInputError, match="not an mlpgraph checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserInputError, match="junk.pt: not a readable PyTorch file"):
        load_checkpoint(tmp_path / "junk.pt")


# ------------------------------------------------------------------------ untrusted checkpoints
def _tiny_checkpoint(path):
    """A small MLP-Graph checkpoint, returned with its content as loaded."""
    torch.manual_seed(0)
    model = build_model("mlpgraph", frames=3, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16, num_layers=1)
    save_checkpoint(path, {"model": network_entry("mlpgraph", model)}, meta={"epoch": 1})
    return torch.load(path, weights_only=True)


DELETE = object()


def _set(content, dotted, value):
    """Set (or, for DELETE, remove) ``content[a][b]...`` for ``"a.b..."``; a tensor's name (dots and all) is one key."""
    head, sep, tensor = dotted.partition(".state_dict.")
    *parents, leaf = [*head.split("."), "state_dict", tensor] if sep else dotted.split(".")
    node = content
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value


BAD_CHECKPOINTS = {
    "networks_list": ("networks", [1, 2], "networks is a list, expected a mapping"),
    "networks_empty": ("networks", {}, "networks is empty"),
    "entry_str": ("networks.model", "mlpgraph", "networks.model is a str, expected a mapping"),
    "config_list": ("networks.model.config", [16, 16], "networks.model.config is a list, expected a mapping"),
    "config_value_list": ("networks.model.config.hid_dim", [16], "networks.model.config.hid_dim is a list"),
    "state_list": ("networks.model.state_dict", [torch.zeros(1)], "networks.model.state_dict is a list"),
    "state_entry": ("networks.model.state_dict.head.bias", 3, "entry 'head.bias' is an int, not a tensor"),
    "no_name": ("networks.model.name", DELETE, "networks.model: no 'name' entry"),
    "name_int": ("networks.model.name", 7, "networks.model.name is an int, expected a string"),
    "meta_list": ("meta", [1], "meta is a list, expected a mapping"),
    "fingerprint_int": ("data_fingerprint", 3, "data_fingerprint is an int, expected a string or null"),
    "unknown_model": ("networks.model.name", "gcn", "do not build a network (unknown model 'gcn'"),
    "unknown_layout": ("networks.model.config.layout", "h99", "unknown skeleton layout 'h99'"),
    "unknown_argument": ("networks.model.config.widths", 3, "unexpected keyword argument 'widths'"),
    "string_width": ("networks.model.config.hid_dim", "wide", "hid_dim must be a positive integer"),
    "negative_width": ("networks.model.config.hid_dim", -4, "networks.model.config.hid_dim is -4, expected 0 to"),
    "width_beyond_bound": ("networks.model.config.hid_dim", 10**9, "hid_dim is 1000000000, expected 0 to 65536"),
    "nan_dropout": ("networks.model.config.dropout", float("nan"), "config.dropout is nan, expected a finite"),
    "layers_beyond_tensors": ("networks.model.config.num_layers", 5000, "num_layers is 5000, more than the 32 tensors"),
    "missing_tensor": ("networks.model.state_dict.head.weight", DELETE, "tensor 'head.weight' is missing"),
    "wrong_shape": (
        "networks.model.state_dict.head.weight",
        torch.zeros(3, 3),
        "tensor 'head.weight' has shape (3, 3) in the checkpoint, the model expects (3, 16)",
    ),
    "extra_tensor": ("networks.model.state_dict.extra", torch.zeros(1), "unexpected tensor 'extra'"),
    "nan_weight": (
        "networks.model.state_dict.embed.weight",
        torch.full((16, 6), float("nan")),
        "tensor networks.model.state_dict.embed.weight holds NaN or infinite values",
    ),
    "inf_buffer": (
        "networks.model.state_dict.blocks.0.bn1.running_var",
        torch.full((16,), float("inf")),
        "tensor networks.model.state_dict.blocks.0.bn1.running_var holds NaN or infinite values",
    ),
    "nan_meta_tensor": ("meta.bone_lengths", torch.tensor([1.0, float("nan")]), "tensor meta.bone_lengths holds NaN"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_bad_checkpoints_are_one_line_naming_the_file_and_key(tmp_path, case):
    key, value, expected = BAD_CHECKPOINTS[case]
    content = _tiny_checkpoint(tmp_path / "good.pt")
    _set(content, key, value)
    path = tmp_path / "bad.pt"
    torch.save(content, path)
    with pytest.raises(UserInputError) as info:
        networks_from_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert expected in message, message


class _NoLargeTensors(torch.overrides.TorchFunctionMode):
    """Fails the test as soon as anything creates a real (non-meta) tensor of more than ``limit`` elements."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.device.type != "meta" and out.numel() > self.limit:
            raise AssertionError(f"{func.__name__} allocated a tensor of {tuple(out.shape)}")
        return out


def test_huge_widths_with_small_tensors_are_refused_without_allocating(tmp_path):
    """A config claiming widths of 65536 (a 34 GB weight) beside the small tensors it holds: refused at once."""
    content = _tiny_checkpoint(tmp_path / "good.pt")
    content["networks"]["model"]["config"].update(hid_dim=65536, spatial_hid_dim=65536, channel_hid_dim=65536)
    torch.save(content, tmp_path / "huge.pt")
    started = time.perf_counter()
    with _NoLargeTensors(limit=10**6), pytest.raises(UserInputError) as info:
        networks_from_checkpoint(tmp_path / "huge.pt")
    assert time.perf_counter() - started < 1.0
    assert "huge.pt: networks.model: tensor 'embed.weight' has shape (16, 6) in the checkpoint" in str(info.value)
    # the guard itself catches a real allocation of that size
    with _NoLargeTensors(limit=10**6), pytest.raises(AssertionError, match="allocated a tensor"):
        torch.empty(2, 1000, 1000)


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("layout", ["h36m16", "h36m17"])
def test_models_built_on_the_meta_device_have_the_real_shapes(name, layout):
    """The shape check builds on the meta device: it must expect exactly what the real model holds."""
    with torch.device("meta"):
        shell = build_model(name, layout=layout).state_dict()
    real = build_model(name, layout=layout).state_dict()
    assert list(shell) == list(real)
    assert all(shell[k].shape == real[k].shape and shell[k].device.type == "meta" for k in shell)


def test_writers_refuse_non_finite_tensors(tmp_path):
    model = build_model("refine", hidden_dim=8)
    entry = network_entry("refine", model)
    entry["state_dict"]["net.0.weight"][0, 0] = float("inf")
    with pytest.raises(NonFiniteTensorError, match=r"w\.pt: .*tensor networks\.refine\.state_dict\.net\.0\.weight"):
        save_checkpoint(tmp_path / "w.pt", {"refine": entry})
    good = network_entry("refine", model)
    with pytest.raises(NonFiniteTensorError, match=r"tensor meta\.training\.optimizer\.0 is not finite"):
        save_checkpoint(tmp_path / "w.pt", {"refine": good}, meta={"training": {"optimizer": [torch.tensor(np.nan)]}})
    assert not (tmp_path / "w.pt").exists()
    assert not isinstance(NonFiniteTensorError("x"), UserInputError)  # a bug upstream, kept as a traceback
    save_checkpoint(tmp_path / "w.pt", {"refine": good}, meta={"steps": torch.tensor([3])})
    assert load_checkpoint(tmp_path / "w.pt")["meta"]["steps"].item() == 3


def _release_state(path):
    """A tiny MLP-Graph saved as the release saves its weights (a plain state dict of release names)."""
    from mlpgraph.models.release import state_dict_to_release

    torch.manual_seed(0)
    model = build_model("mlpgraph", frames=3, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16, num_layers=1)
    state = state_dict_to_release(model.state_dict())
    torch.save(state, path)
    return state


def test_release_import_refuses_non_finite_and_inconsistent_sizes(tmp_path):
    from mlpgraph.pretrained import import_release

    state = _release_state(tmp_path / "good.pth")
    assert import_release(tmp_path / "good.pth", tmp_path / "good.pt")["hid_dim"] == 16
    nan = {**state, "gconv_layers.mlp_head.0.bias": torch.tensor([0.0, float("nan"), 0.0])}
    torch.save(nan, tmp_path / "nan.pth")
    with pytest.raises(UserInputError, match=r"nan\.pth: tensor 'gconv_layers\.mlp_head\.0\.bias' holds NaN"):
        import_release(tmp_path / "nan.pth", tmp_path / "out.pt")
    # The embedding claims 65536 channels; every other tensor has 16: the sizes read from it build nothing.
    wide = {**state, "to_patch_embedding.weight": torch.zeros(65536, 6), "to_patch_embedding.bias": torch.zeros(65536)}
    torch.save(wide, tmp_path / "wide.pth")
    started = time.perf_counter()
    expected = r"wide\.pth: release MLP-Graph state dict .* has shape \(16\), expected \(65536\)"
    with _NoLargeTensors(limit=10**6), pytest.raises(UserInputError, match=expected):
        import_release(tmp_path / "wide.pth", tmp_path / "out.pt")
    assert time.perf_counter() - started < 1.0
    assert not (tmp_path / "out.pt").exists()
