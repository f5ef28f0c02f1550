"""The CLI turns user errors into one line and exit status 2."""

import subprocess
import sys

import yaml

from tests.conftest import ROOT, tool_env


def _mlpgraph(*args, cwd):
    return subprocess.run(["mlpgraph", *args], cwd=cwd, env=tool_env(), capture_output=True, text=True)


def test_user_error_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"source": "files", "dir": "nowhere"}}))
    proc = _mlpgraph("fetch", "--params", "params.yaml", "--out", "raw", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "data.dir must name an existing folder" in proc.stderr
    assert not (tmp_path / "raw").exists()


def test_missing_params_file_and_unknown_source(tmp_path):
    proc = _mlpgraph("fetch", "--params", "absent.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "absent.yaml: file not found" in proc.stderr
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"source": "ftp"}}))
    proc = _mlpgraph("fetch", "--params", "params.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "data.source must be 'synthetic' or 'files'" in proc.stderr


def test_stage_script_is_the_same_command(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"source": "ftp"}}))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "fetch.py"), "--params", "params.yaml"],
        cwd=tmp_path,
        env=tool_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "mlpgraph fetch: error:" in proc.stderr
