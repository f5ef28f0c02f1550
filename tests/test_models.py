"""The model registry and the project's checkpoint format."""

from __future__ import annotations

import pytest
import torch

from mlpgraph.checkpoints import (
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
