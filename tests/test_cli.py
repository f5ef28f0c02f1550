"""The stage scripts and the CLI turn user errors into one line and exit status 2."""

import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, tool_env


def _mlpgraph(*args, cwd):
    return subprocess.run(["mlpgraph", *args], cwd=cwd, env=tool_env(), capture_output=True, text=True)


def _stage(script, *args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / script), *args], cwd=cwd, env=tool_env(), capture_output=True, text=True
    )


def _params(tmp_path, **data):
    """The repository's params.yaml (and presets) in ``tmp_path`` with ``data`` keys changed."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_user_error_is_one_line_and_exit_2(tmp_path):
    _params(tmp_path, source="files", dir="nowhere")
    proc = _stage("fetch.py", "--params", "params.yaml", "--out", "raw", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("fetch: error: ") and "data.dir must name an existing folder" in proc.stderr
    assert not (tmp_path / "raw").exists()


def test_missing_params_file_and_bad_values(tmp_path):
    proc = _stage("fetch.py", "--params", "absent.yaml", "--out", "raw", cwd=tmp_path)
    assert proc.returncode == 2 and "absent.yaml: file not found" in proc.stderr
    _params(tmp_path, source="ftp")
    proc = _stage("fetch.py", "--params", "params.yaml", "--out", "raw", cwd=tmp_path)
    assert proc.returncode == 2 and "params.yaml: data.source: input should be 'synthetic' or 'files'" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


# The first stage, an experiment stage and the last one, with the paths their commands take.
STAGE_ARGS = {
    "fetch.py": ["--out", "raw"],
    "train_spatial.py": [
        *("--experiment", "mlpgraph_gt_f1", "--processed", "p.h5", "--out", "m"),
        *("--metrics", "m.json", "--curve", "c.json"),
    ],
    "report.py": ["--metrics", "metrics", "--out", "results.md", "--plots", "plots"],
}


@pytest.mark.parametrize("script", sorted(STAGE_ARGS))
def test_stages_refuse_an_unknown_key_before_any_work(tmp_path, script):
    _params(tmp_path, scael="tiny")
    proc = _stage(script, "--params", "params.yaml", *STAGE_ARGS[script], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"{script[:-3]}: error: params.yaml: data.scael: unknown key (did you mean 'scale'?)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "params.yaml"]  # nothing written


def _release_file(path, **config):
    """A release-format state dict of a fresh MLP-Graph, saved like the release does."""
    import torch

    from mlpgraph.models import build_model
    from mlpgraph.models.release import state_dict_to_release

    torch.manual_seed(0)
    model = build_model("mlpgraph", **config)
    torch.save(state_dict_to_release(model.state_dict()), path)
    return model.eval()


def test_import_release_round_trip(tmp_path):
    import torch

    from mlpgraph.checkpoints import networks_from_checkpoint
    from mlpgraph.models import build_model
    from mlpgraph.models.release import state_dict_to_release

    model = _release_file(tmp_path / "gt_f9.pth", frames=9, hid_dim=64, spatial_hid_dim=64, channel_hid_dim=96)
    refine = build_model("refine")
    torch.save(state_dict_to_release(refine.state_dict()), tmp_path / "refine.pth")
    proc = _mlpgraph(
        "import-release", "--weights", "gt_f9.pth", "--refine", "refine.pth", "--frames", "9", "--out", "ckpt.pt",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    nets = networks_from_checkpoint(tmp_path / "ckpt.pt")
    assert nets["model"].config["frames"] == 9 and nets["model"].config["channel_hid_dim"] == 96
    x = torch.randn(3, 9, 16, 2)
    with torch.no_grad():
        assert torch.allclose(nets["model"](x), model(x), atol=1e-6)
        p, q = torch.randn(3, 16, 3), torch.randn(3, 16, 3)
        assert torch.allclose(nets["refine"](p, q), refine.eval()(p, q), atol=1e-6)


def test_import_release_refuses_bad_files_with_one_line(tmp_path):
    import torch

    _release_file(tmp_path / "gt_f1.pth")
    proc = _mlpgraph("import-release", "--weights", "gt_f1.pth", "--frames", "243", "--out", "c.pt", cwd=tmp_path)
    assert proc.returncode == 2 and "frames is 1 in the weights, 243 was asked for" in proc.stderr

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"to_patch_embedding.weight": Payload()}, tmp_path / "evil.pth")
    proc = _mlpgraph("import-release", "--weights", "evil.pth", "--out", "c.pt", cwd=tmp_path)
    assert proc.returncode == 2 and "refused to load" in proc.stderr and "Traceback" not in proc.stderr
    torch.save({"epoch": torch.tensor(3)}, tmp_path / "other.pth")
    proc = _mlpgraph("import-release", "--weights", "other.pth", "--out", "c.pt", cwd=tmp_path)
    assert proc.returncode == 2 and "not an MLP-Graph release state dict" in proc.stderr
    state = torch.load(tmp_path / "gt_f1.pth", weights_only=True)
    state["gconv_layers.layer_norm.weight"] = torch.ones(64)
    torch.save(state, tmp_path / "broken.pth")
    proc = _mlpgraph("import-release", "--weights", "broken.pth", "--out", "c.pt", cwd=tmp_path)
    assert proc.returncode == 2 and "'gconv_layers.layer_norm.weight' has shape (64)" in proc.stderr
    assert not (tmp_path / "c.pt").exists()


def _edited_params(tmp_path, **dotted):
    """The repository's params.yaml (and presets) in ``tmp_path`` with ``dotted`` keys (``"a.b"``) set."""
    from tests.conftest import set_params

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    set_params(tmp_path, **dotted)


EVALUATE_H36M_ARGS = ["--experiment", "mlpgraph_gt_f1", "--processed", "p.h5", "--models", "m", "--out", "o.json"]


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"evaluate.batch_size": -5}, "params.yaml: evaluate.batch_size: input should be greater than or equal to 1"),
        (
            {"experiments.mlpgraph_gt_f1.model_args": {"frames": "many"}},
            "params.yaml: experiments.mlpgraph_gt_f1.model_args.frames: input should be a valid integer, got 'many'",
        ),
        ({"data.seed": "zero"}, "params.yaml: data.seed: input should be a valid integer, got 'zero'"),
    ],
)
def test_out_of_range_values_stop_a_stage_with_one_line(tmp_path, edits, message):
    _edited_params(tmp_path, **edits)
    proc = _stage("evaluate_h36m.py", "--params", "params.yaml", *EVALUATE_H36M_ARGS, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"evaluate_h36m: error: {message}") and proc.stderr.count("\n") == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "params.yaml"]


@pytest.mark.parametrize(
    ("script", "args"),
    [("train_spatial.py", STAGE_ARGS["train_spatial.py"]), ("evaluate_h36m.py", EVALUATE_H36M_ARGS)],
)
def test_a_device_this_machine_lacks_stops_a_stage_before_any_work(tmp_path, script, args):
    import torch

    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or the first of none
    _edited_params(tmp_path, **{"train.device": missing})
    proc = _stage(script, "--params", "params.yaml", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    expected = f"{script[:-3]}: error: params.yaml: train.device: {missing} is not available (this machine has "
    assert proc.stderr.startswith(expected) and proc.stderr.count("\n") == 1, proc.stderr
    # before any work: the processed file p.h5 does not exist, and nothing was written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "params.yaml"]


def test_render_refuses_a_device_this_machine_lacks(tmp_path, capsys):
    import torch

    from mlpgraph.cli import main

    missing = f"cuda:{torch.cuda.device_count()}"
    args = ["--checkpoint", "c.pt", "--processed", "p.h5", "--subject", "S9", "--action", "Walking"]
    assert main(["render", *args, "--device", missing, "--out", str(tmp_path / "d.gif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mlpgraph render: error: --device: {missing} is not available") and err.count("\n") == 1
    assert not any(tmp_path.iterdir())
