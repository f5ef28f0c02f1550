"""Pose refinement against the release's reference vectors, its parameter counts, the 2D lifting
(``lift_with_depth``) and the root-depth estimate on synthetic pinhole projections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout
from mlpgraph.models.refine import PoseRefinement, estimate_root_depth, lift_with_depth
from mlpgraph.models.release import refine_from_release, state_dict_to_release
from mlpgraph.models.stmlpgraph import count_parameters

REFERENCE = Path(__file__).parent / "data" / "reference"
REFERENCE_FILES = sorted(REFERENCE.glob("*.pt"))
SUMMARY = json.loads((REFERENCE / "summary.json").read_text())


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: p.stem)
def test_reference_refinement(path: Path):
    data = torch.load(path, weights_only=True)
    model = refine_from_release(data["refine_state_dict"], layout="h36m16")
    assert not model.training
    assert count_parameters(model) == SUMMARY[path.stem]["refine_parameters"]
    lifted = data["refine_input_xyz"].squeeze(1)
    with torch.no_grad():
        out = model(data["output_3d"], lifted)
    assert (out - data["refine_output"]).abs().max().item() < 1e-5
    # z is the prediction's, untouched
    assert torch.equal(out[..., 2], data["output_3d"][..., 2])
    exported = state_dict_to_release(model.state_dict())
    assert list(exported) == list(data["refine_state_dict"])


@pytest.mark.parametrize(("layout", "expected"), [("h36m16", 132_128), ("h36m17", 140_322)])
def test_refinement_parameter_counts(layout: str, expected: int):
    model = PoseRefinement(layout=layout)
    assert count_parameters(model) == expected
    rebuilt = PoseRefinement(**json.loads(json.dumps(model.config)))
    assert count_parameters(rebuilt) == expected and rebuilt.config == model.config


def test_refinement_gate_blends_xy_only():
    torch.manual_seed(0)
    model = PoseRefinement("h36m17").eval()
    pred, lifted = torch.randn(4, 17, 3), torch.randn(4, 17, 3)
    with torch.no_grad():
        out = model(pred, lifted)
        gate = model.net(torch.cat((pred, lifted), -1).reshape(4, -1)).view(4, 17, 2)
    torch.testing.assert_close(out[..., :2], gate * pred[..., :2] + (1 - gate) * lifted[..., :2])
    torch.testing.assert_close(out[..., 2], pred[..., 2])
    same = model(pred, pred)
    torch.testing.assert_close(same, pred)


def test_refinement_trains():
    torch.manual_seed(1)
    model = PoseRefinement("h36m16")
    pred = torch.randn(64, 16, 3)
    target = pred + 0.3 * torch.randn(64, 16, 3)
    lifted = target.clone()
    lifted[..., 2] = pred[..., 2]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = (model(pred, lifted) - target).norm(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_refinement_shape_errors():
    model = PoseRefinement("h36m16")
    with pytest.raises(ValueError, match=r"pred must have shape \(N, 16, 3\) for layout h36m16, got \(2, 17, 3\)"):
        model(torch.randn(2, 17, 3), torch.randn(2, 17, 3))
    with pytest.raises(ValueError, match=r"lifted must have shape \(N, 16, 3\)"):
        model(torch.randn(2, 16, 3), torch.randn(2, 1, 16, 3))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(torch.randn(2, 16, 3), torch.randn(3, 16, 3))


def test_refine_release_errors():
    data = torch.load(REFERENCE_FILES[0], weights_only=True)
    with pytest.raises(UserInputError, match=r"'post_refine.0.weight' has shape \(1024, 96\), expected \(1024, 102\)"):
        refine_from_release(data["refine_state_dict"], layout="h36m17")
    missing = {k: v for k, v in data["refine_state_dict"].items() if not k.startswith("post_refine.3")}
    with pytest.raises(UserInputError, match="missing tensor 'post_refine.3.weight'"):
        refine_from_release(missing)


# ---------------------------------------------------------------- synthetic pinhole scenes


def _scene(layout: str = "h36m16", n: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random root-relative poses (metres, human-sized) at known positions, projected with a pinhole."""
    lay = get_layout(layout)
    gen = torch.Generator().manual_seed(seed)
    j = lay.num_joints
    pose = torch.zeros(n, j, 3, dtype=torch.float64)
    # build each pose along the tree with ~0.25 m random bones, so it is a plausible body size
    for child, parent in lay.bones:
        step = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        pose[:, child] = pose[:, parent] + 0.25 * step / step.norm(dim=-1, keepdim=True)
    root = torch.stack(
        (
            torch.empty(n, dtype=torch.float64).uniform_(-0.8, 0.8, generator=gen),
            torch.empty(n, dtype=torch.float64).uniform_(-0.4, 0.4, generator=gen),
            torch.empty(n, dtype=torch.float64).uniform_(3.5, 6.5, generator=gen),
        ),
        dim=-1,
    )
    focal = torch.empty(n, 2, dtype=torch.float64).uniform_(2.2, 2.4, generator=gen)
    centre = torch.empty(n, 2, dtype=torch.float64).uniform_(-0.03, 0.03, generator=gen)
    cam = pose + root[:, None]
    uv = centre[:, None] + focal[:, None] * cam[..., :2] / cam[..., 2:]
    lengths = (pose[0, lay.bones[:, 0]] - pose[0, lay.bones[:, 1]]).norm(dim=-1)
    return {"pose": pose, "root": root, "focal": focal, "centre": centre, "uv": uv, "lengths": lengths}


@pytest.mark.parametrize("layout", ["h36m16", "h36m17"])
def test_lift_with_true_depths_recovers_the_pose(layout: str):
    s = _scene(layout)
    lifted = lift_with_depth(s["uv"], s["pose"], s["root"][:, 2], s["focal"], s["centre"])
    torch.testing.assert_close(lifted, s["pose"], atol=1e-10, rtol=0)
    assert torch.all(lifted[:, 0] == 0)
    lifted32 = lift_with_depth(
        s["uv"].float(), s["pose"].float(), s["root"][:, 2].float(), s["focal"].float(), s["centre"].float()
    )
    torch.testing.assert_close(lifted32, s["pose"].float(), atol=1e-5, rtol=0)


def test_lift_uses_root_depth_for_the_root_row():
    s = _scene()
    pred = s["pose"].clone()
    pred[:, 0, 2] = 0.5  # a non-zero predicted root z is ignored, as released
    lifted = lift_with_depth(s["uv"], pred, s["root"][:, 2], s["focal"], s["centre"])
    torch.testing.assert_close(lifted[:, 1:, 2], pred[:, 1:, 2], atol=1e-10, rtol=0)
    assert torch.all(lifted[:, 0] == 0)


def test_estimate_root_depth_exact_for_true_pose():
    s = _scene(n=8, seed=1)
    lay = get_layout("h36m16")
    for i in range(8):
        lengths = (s["pose"][i, lay.bones[:, 0]] - s["pose"][i, lay.bones[:, 1]]).norm(dim=-1)
        z = estimate_root_depth(
            s["uv"][i : i + 1], s["pose"][i : i + 1], s["focal"][i : i + 1], lengths, lay, s["centre"][i : i + 1]
        )
        torch.testing.assert_close(z, s["root"][i : i + 1, 2], atol=1e-9, rtol=0)


def test_estimate_root_depth_rescales_a_wrongly_sized_prediction():
    s = _scene(n=1, seed=2)
    lay = get_layout("h36m16")
    z = estimate_root_depth(s["uv"], 0.8 * s["pose"], s["focal"], s["lengths"], lay, s["centre"])
    torch.testing.assert_close(z, s["root"][:, 2], atol=1e-9, rtol=0)
    # principal point assumed at the image centre (0): still close for a near-centred camera
    z0 = estimate_root_depth(s["uv"], s["pose"], s["focal"], s["lengths"], "h36m16")
    assert abs(z0.item() - s["root"][0, 2].item()) < 0.05 * s["root"][0, 2].item()


def test_estimate_root_depth_is_robust_to_noise():
    s = _scene(n=200, seed=3)
    lay = get_layout("h36m16")
    gen = torch.Generator().manual_seed(4)
    noisy_pose = s["pose"] + 0.01 * torch.randn(s["pose"].shape, generator=gen, dtype=torch.float64)
    noisy_uv = s["uv"] + 0.002 * torch.randn(s["uv"].shape, generator=gen, dtype=torch.float64)
    # 1 cm noise on the 3D, about 2 px on the 2D: a few per cent of the depth at most
    z = estimate_root_depth(noisy_uv, noisy_pose, s["focal"], s["lengths"], lay, s["centre"])
    rel = (z - s["root"][:, 2]).abs() / s["root"][:, 2]
    assert rel.median().item() < 0.03 and rel.max().item() < 0.1
    assert np.isfinite(z.numpy()).all()


def test_estimate_root_depth_argument_errors():
    s = _scene()
    with pytest.raises(ValueError, match=r"mean_bone_lengths must have shape \(15,\) for layout h36m16"):
        estimate_root_depth(s["uv"], s["pose"], s["focal"], torch.ones(16), "h36m16")
    with pytest.raises(ValueError, match="16 joints but layout h36m17 has 17"):
        estimate_root_depth(s["uv"], s["pose"], s["focal"], torch.ones(16), "h36m17")
    with pytest.raises(ValueError, match=r"pred must have shape \(6, 16, 3\)"):
        lift_with_depth(s["uv"], s["pose"][:, :15], s["root"][:, 2], s["focal"], s["centre"])


def test_refinement_input_on_a_projected_pose_and_its_mirror():
    """A pose at a known depth, projected with a pinhole camera: X~ is the pose itself, flipped or not."""
    from mlpgraph.data.batches import flip_poses
    from mlpgraph.layouts import H36M16
    from mlpgraph.models.refine import mean_bone_lengths, refinement_input

    gen = torch.Generator().manual_seed(0)
    pose = torch.randn(4, 16, 3, generator=gen, dtype=torch.float64) * 0.3
    pose = pose - pose[:, :1]
    root = torch.tensor([[0.2, -0.1, 4.0], [0.0, 0.3, 5.0], [-0.4, 0.1, 3.5], [0.1, 0.1, 6.0]], dtype=torch.float64)
    intr = torch.tensor([[2.3, 2.3, 0.02, -0.03]], dtype=torch.float64).expand(4, 4)
    absolute = pose + root[:, None]
    uv = absolute[..., :2] / absolute[..., 2:] * intr[:, None, :2] + intr[:, None, 2:]
    lifted = refinement_input(uv, pose, intr, "h36m16", root_depth=root[:, 2])
    assert torch.allclose(lifted, pose, atol=1e-9)
    for i in range(4):  # estimated depth: exact when the bone lengths are the pose's own
        lengths = mean_bone_lengths(pose[i : i + 1], H36M16)
        estimated = refinement_input(uv[i : i + 1], pose[i : i + 1], intr[:1], "h36m16", bone_lengths=lengths)
        assert torch.allclose(estimated, pose[i : i + 1], atol=1e-7)
    mirrored = refinement_input(
        flip_poses(uv, H36M16.flip_permutation), flip_poses(pose, H36M16.flip_permutation), intr, "h36m16",
        root_depth=root[:, 2], flipped=True,
    )  # fmt: skip
    assert torch.allclose(mirrored, flip_poses(pose, H36M16.flip_permutation), atol=1e-9)


def test_lifted_estimate_names_the_missing_data():
    """X~ of PoseArrays samples needs the per-sequence intrinsics, and root_3d (gt) or bone lengths (estimated)."""
    from mlpgraph.models.refine import lifted_estimate
    from tests.train_worker import make_data

    data = make_data(num_sequences=1, frames=5)
    indices = torch.arange(5)
    windows, _ = data.batch(indices, 1)
    pred = torch.zeros(5, 16, 3)
    assert lifted_estimate(data, indices, windows, pred, 1).shape == (5, 16, 3)
    with pytest.raises(ValueError, match="'estimated' needs bone_lengths"):
        lifted_estimate(data, indices, windows, pred, 1, root_depth="estimated")
    del data.meta["root_3d"]
    with pytest.raises(UserInputError, match=r"root_depth 'gt' needs meta\['root_3d'\]"):
        lifted_estimate(data, indices, windows, pred, 1)
    del data.meta["intrinsics"]
    with pytest.raises(UserInputError, match=r"needs meta\['intrinsics'\]"):
        lifted_estimate(data, indices, windows, pred, 1)
