"""Export of a checkpoint's lifting network to ONNX and TorchScript: parity with the library, metadata, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from mlpgraph.checkpoints import lifting_network, network_entry, save_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation import model_pad, predict
from mlpgraph.export import (
    METADATA_FILE,
    PARITY_TOLERANCE,
    ExportParityError,
    export_checkpoint,
    verify_export,
)
from mlpgraph.layouts import get_layout
from mlpgraph.models import build_model

# Small networks of each kind: MLP-Graph 1-frame (folded, token-augmented kernels), 9-frame (folded,
# shared initial GEMM: 2T > C), graph aggregation (release ops), and the graph baselines.
NETWORKS: dict[str, tuple[str, str, dict]] = {
    "mlpgraph_f1": (
        "mlpgraph",
        "h36m16",
        {"hid_dim": 16, "spatial_hid_dim": 16, "channel_hid_dim": 32, "num_layers": 2},
    ),
    "mlpgraph_f9": ("mlpgraph", "h36m16", {"frames": 9, "hid_dim": 16, "spatial_hid_dim": 16, "channel_hid_dim": 32}),
    "mlpgraph_f3_graph_h17": ("mlpgraph", "h36m17", {"frames": 3, "hid_dim": 8, "aggregation": "graph"}),
    "semgcn": ("semgcn", "h36m16", {"hid_dim": 16, "num_blocks": 1}),
    "semgcn_nonlocal": ("semgcn_nonlocal", "h36m16", {"hid_dim": 16, "num_blocks": 1}),
    "hgcn": ("hgcn", "h36m16", {"hid_dim": 8, "num_blocks": 1}),
    "wugcn": ("wugcn", "h36m16", {"hid_dim": 8, "num_blocks": 1}),
    "modgcn": ("modgcn", "h36m16", {"hid_dim": 16, "num_blocks": 1}),
}
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript is what is tested
ONNX_NETWORKS = ("mlpgraph_f1", "mlpgraph_f9", "semgcn", "modgcn")
SEQUENCE_FRAMES = 40  # windows of one sequence, run as batches of 1, 7 and 32


def _network(name: str) -> torch.nn.Module:
    """A seeded network with non-trivial BatchNorm statistics (so the folding has something to fold)."""
    registry_name, layout, args = NETWORKS[name]
    torch.manual_seed(sum(map(ord, name)))
    model = build_model(registry_name, layout=layout, **args)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {
        name: save_checkpoint(folder / f"{name}.pt", {"model": network_entry(NETWORKS[name][0], _network(name))})
        for name in NETWORKS
    }
    paths["refine_only"] = save_checkpoint(
        folder / "refine.pt", {"refine": network_entry("refine", build_model("refine"))}
    )
    return paths


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory):
    """``exported(name, fmt, flip_test)``: the exported file, each written once per module."""
    folder = tmp_path_factory.mktemp("exported")
    cache: dict[tuple[str, str, bool], Path] = {}

    def get(name: str, fmt: str, flip_test: bool = False) -> Path:
        key = (name, fmt, flip_test)
        if key not in cache:
            out = folder / f"{name}{'_flip' if flip_test else ''}.{fmt}"
            cache[key] = export_checkpoint(checkpoints[name], out, fmt, flip_test=flip_test)
        return cache[key]

    return get


def _runner(path: Path, fmt: str):
    """Run the exported file the way a user would: onnxruntime, or torch.jit.load."""
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["keypoints_2d"]
        return lambda x: session.run(None, {"keypoints_2d": x})[0]
    module = torch.jit.load(str(path))
    return lambda x: module(torch.from_numpy(x)).detach().numpy()


def _library_predictions(checkpoint: Path, flip_test: bool) -> tuple[np.ndarray, np.ndarray]:
    """(windows (N, T, J, 2), mlpgraph.evaluation.predict's poses (N, J, 3)) on one random normalised sequence."""
    model, layout = lifting_network(checkpoint)
    rng = np.random.default_rng(7)
    poses_2d = rng.uniform(-1.0, 1.0, (SEQUENCE_FRAMES, layout.num_joints, 2)).astype(np.float32)
    data = PoseArrays.from_numpy(
        poses_2d,
        np.zeros((SEQUENCE_FRAMES, layout.num_joints, 3), np.float32),
        np.array([[0, SEQUENCE_FRAMES]]),
        layout=layout.name,
    )
    pad = model_pad(model)
    expected = predict(model, data, pad, flip_test=flip_test).numpy()
    return data.windows(torch.arange(SEQUENCE_FRAMES), pad).numpy(), expected


def _check_parity(checkpoint: Path, path: Path, fmt: str, flip_test: bool) -> None:
    windows, expected = _library_predictions(checkpoint, flip_test)
    run = _runner(path, fmt)
    for rows in (slice(0, 1), slice(1, 8), slice(8, SEQUENCE_FRAMES)):  # batch sizes 1, 7 and 32
        got = run(np.ascontiguousarray(windows[rows]))
        assert got.shape == expected[rows].shape
        np.testing.assert_allclose(got, expected[rows], atol=PARITY_TOLERANCE, rtol=0)
    assert np.abs(expected).max() > 1e-3  # a network whose output is not trivially zero
    assert 0.0 <= verify_export(checkpoint, path, fmt, batch_sizes=(1, 5)) <= PARITY_TOLERANCE


@pytest.mark.parametrize("name", ONNX_NETWORKS)
def test_onnx_matches_the_library_at_any_batch_size(checkpoints, exported, name):
    _check_parity(checkpoints[name], exported(name, "onnx"), "onnx", flip_test=False)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_torchscript_matches_the_library_at_any_batch_size(checkpoints, exported, name):
    _check_parity(checkpoints[name], exported(name, "torchscript"), "torchscript", flip_test=False)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_flip_test_is_exported_as_predict_averages_it(checkpoints, exported, fmt):
    _check_parity(checkpoints["mlpgraph_f9"], exported("mlpgraph_f9", fmt, flip_test=True), fmt, flip_test=True)


def _expect_metadata(metadata: dict[str, str], name: str, flip_test: bool) -> None:
    _, layout_name, args = NETWORKS[name]
    layout = get_layout(layout_name)
    assert metadata["mlpgraph.layout"] == layout_name
    assert json.loads(metadata["mlpgraph.joint_names"]) == list(layout.joint_names)
    assert metadata["mlpgraph.root_joint"] == "pelvis"
    assert int(metadata["mlpgraph.frames"]) == args.get("frames", 1)
    assert json.loads(metadata["mlpgraph.flip_test"]) is flip_test
    assert "normalised" in metadata["mlpgraph.input"] and "height / width" in metadata["mlpgraph.input"]
    assert "root-relative" in metadata["mlpgraph.output"] and "metres" in metadata["mlpgraph.output"]


def test_onnx_metadata_and_dynamic_batch_axis(exported):
    model = onnx.load(str(exported("mlpgraph_f9", "onnx")))
    _expect_metadata({p.key: p.value for p in model.metadata_props}, "mlpgraph_f9", flip_test=False)
    (inp,), (out,) = model.graph.input, model.graph.output
    in_dims, out_dims = inp.type.tensor_type.shape.dim, out.type.tensor_type.shape.dim
    assert (inp.name, out.name) == ("keypoints_2d", "poses_3d")
    assert in_dims[0].dim_param and not in_dims[0].HasField("dim_value")
    assert [d.dim_value for d in in_dims[1:]] == [9, 16, 2]
    assert out_dims[0].dim_param == in_dims[0].dim_param and [d.dim_value for d in out_dims[1:]] == [16, 3]


def test_torchscript_metadata(exported):
    extra = {METADATA_FILE: ""}
    torch.jit.load(str(exported("mlpgraph_f9", "torchscript", flip_test=True)), _extra_files=extra)
    _expect_metadata(json.loads(extra[METADATA_FILE]), "mlpgraph_f9", flip_test=True)


def _one_line_error(excinfo: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message


def test_unknown_format_and_non_lifting_checkpoint_are_one_line_errors(checkpoints, tmp_path):
    out = tmp_path / "model.bin"
    with pytest.raises(UserInputError) as excinfo:
        export_checkpoint(checkpoints["semgcn"], out, "tflite")
    _one_line_error(excinfo, "'tflite'", "onnx", "torchscript")
    with pytest.raises(UserInputError) as excinfo:
        export_checkpoint(checkpoints["refine_only"], out, "torchscript")
    _one_line_error(excinfo, str(checkpoints["refine_only"]), "not a lifting network")
    with pytest.raises(UserInputError) as excinfo:
        export_checkpoint(checkpoints["semgcn"], checkpoints["semgcn"], "torchscript")
    assert checkpoints["semgcn"].stat().st_size > 0
    assert not out.exists()


def test_verify_refuses_a_file_of_another_network_or_no_model_file(checkpoints, exported, tmp_path):
    with pytest.raises(UserInputError) as excinfo:
        verify_export(checkpoints["mlpgraph_f1"], exported("mlpgraph_f9", "torchscript"), "torchscript")
    _one_line_error(excinfo, "mlpgraph.frames")
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(b"not a model")
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(UserInputError) as excinfo:
            verify_export(checkpoints["semgcn"], garbage, fmt)
        _one_line_error(excinfo, str(garbage), f"not a readable {fmt} file")


def test_a_failed_export_leaves_the_existing_file_untouched(checkpoints, tmp_path):
    out = tmp_path / "model.torchscript"
    out.write_bytes(b"the earlier export")
    # The 9-frame network's batches under 8 take the release's ops in PyTorch, the export the folded
    # ones: equal to about 1e-7, never to 1e-12.
    with pytest.raises(ExportParityError) as excinfo:
        export_checkpoint(checkpoints["mlpgraph_f9"], out, "torchscript", tolerance=1e-12)
    _one_line_error(excinfo, "differs from the PyTorch network", str(out))
    assert out.read_bytes() == b"the earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.torchscript"]
    export_checkpoint(checkpoints["mlpgraph_f9"], out, "torchscript")
    assert out.read_bytes() != b"the earlier export"
    assert verify_export(checkpoints["mlpgraph_f9"], out, "torchscript") <= PARITY_TOLERANCE


def test_export_command_writes_a_checked_file_and_refuses_mistakes_in_one_line(tmp_path, capsys):
    from mlpgraph.cli import main

    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m16", frames=1, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16)
    checkpoint = save_checkpoint(tmp_path / "f1.pt", {"model": network_entry("mlpgraph", model)})
    out = tmp_path / "f1.ts"
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "torchscript", "--out", str(out)]) == 0
    assert verify_export(checkpoint, out, "torchscript") <= 1e-4
    missing = ["export", "--checkpoint", str(tmp_path / "nope.pt"), "--format", "torchscript", "--out", str(out)]
    before = out.read_bytes()
    assert main(missing) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.pt" in err and "\n" not in err, err
    assert out.read_bytes() == before
