"""The core install (``pip install .``, no extras) is enough for ``mlpgraph predict`` and ``mlpgraph.Lifter``.

A fresh virtual environment gets PyTorch and the project without extras; the test checks that
none of the pipeline's or the drawings' packages came with it, that ``predict`` lifts a COCO-17
file there exactly as the full install does, and that an option needing an extra names it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mlpgraph.checkpoints import network_entry, save_checkpoint
from mlpgraph.lifter import Lifter
from mlpgraph.models import build_model
from tests.conftest import ROOT

# Packages the full install has and the core one must not pull in.
NOT_IN_CORE = {"snakemake", "dvc", "mlflow", "h5py", "scipy", "pydantic", "matplotlib", "pillow", "onnxruntime"}


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=900, **kwargs)


BLOCK_IMPORTS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is not in the core install")
sys.meta_path.insert(0, Block())
from mlpgraph.cli import main
sys.exit(main({argv!r}))
"""
# Top-level modules the core install lacks (the packages of NOT_IN_CORE, by import name).
CORE_LACKS = ("snakemake", "dvc", "mlflow", "h5py", "scipy", "pydantic", "matplotlib", "PIL", "onnxruntime", "onnx")


def test_predict_imports_nothing_outside_the_core(tmp_path):
    """Fast guard for the slow test below: predict on a multi-person file with the extras' modules unimportable."""
    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m16", frames=3, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16)
    checkpoint = save_checkpoint(tmp_path / "f3.pt", {"model": network_entry("mlpgraph", model)})
    rng = np.random.default_rng(1)
    people = rng.uniform(100, 400, (2, 17, 2)) + np.array([[[0, 0]], [[450, 0]]])  # two people side by side
    entries = [
        {"image_id": i, "keypoints": np.c_[person + rng.normal(0, 2, (17, 2)), np.ones(17)].ravel().tolist()}
        for i in range(5)
        for person in people
    ]
    (tmp_path / "kp.json").write_text(json.dumps(entries))
    argv = ["predict", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "kp.json"), "--out",
            str(tmp_path / "o.npz"), "--width", "1000", "--height", "1000"]  # fmt: skip
    code = BLOCK_IMPORTS.format(blocked=set(CORE_LACKS), argv=argv)
    done = _run(sys.executable, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert np.load(tmp_path / "o.npz")["poses_3d"].shape == (5, 16, 3)


@pytest.mark.slow
def test_core_install_runs_predict(tmp_path):
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", str(venv)).returncode == 0
    python = venv / "bin" / "python"
    install = _run(
        str(python), "-m", "pip", "install", "--quiet", f"torch=={torch.__version__.split('+')[0]}", str(ROOT)
    )
    assert install.returncode == 0, install.stderr[-2000:]
    listed = _run(str(python), "-m", "pip", "list", "--format=json")
    installed = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "mlpgraph" in installed and not installed & NOT_IN_CORE, sorted(installed & NOT_IN_CORE)

    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m16", frames=3, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16)
    checkpoint = save_checkpoint(tmp_path / "f3.pt", {"model": network_entry("mlpgraph", model)})
    coco = np.random.default_rng(0).uniform(100, 900, (6, 17, 2))
    entries = [{"image_id": i, "keypoints": np.c_[kp, np.ones(17)].ravel().tolist()} for i, kp in enumerate(coco)]
    source = tmp_path / "kp.json"
    source.write_text(json.dumps(entries))
    command = [str(venv / "bin" / "mlpgraph"), "predict", "--checkpoint", str(checkpoint), "--input", str(source)]
    size = ["--width", "1000", "--height", "1000"]
    done = _run(*command, "--out", str(tmp_path / "o.npz"), *size, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = Lifter.from_checkpoint(checkpoint).lift(coco, width=1000.0, height=1000.0).poses_3d
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["poses_3d"], expected, atol=1e-5)

    gif = _run(*command, "--out", str(tmp_path / "g.npz"), *size, "--gif", str(tmp_path / "o.gif"), cwd=tmp_path)
    assert gif.returncode == 2 and "pip install 'mlpgraph[viz]'" in gif.stderr, gif.stderr
    assert not (tmp_path / "g.npz").exists()
    api = textwrap.dedent(f"""
        import numpy as np, mlpgraph
        lifter = mlpgraph.Lifter.from_checkpoint({str(checkpoint)!r})
        print(lifter.lift(np.full((4, 17, 2), 500.0), width=1000, height=1000).poses_3d.shape)
    """)
    assert _run(str(python), "-c", api).stdout.strip() == "(4, 16, 3)"
