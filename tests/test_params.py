"""params.yaml: preset merging and key access."""

import pytest
import yaml

from mlpgraph.errors import UserInputError
from mlpgraph.params import deep_merge, get, load_params


def test_preset_overrides_base_keys(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"preset": "tiny", "data": {"scale": "small", "seed": 3}}))
    (tmp_path / "configs" / "tiny.yaml").write_text(yaml.safe_dump({"data": {"scale": "tiny"}}))
    params = load_params(tmp_path / "params.yaml")
    assert params["data"] == {"scale": "tiny", "seed": 3}
    assert get(params, "data.seed") == 3
    assert get(params, "data.missing", None) is None
    with pytest.raises(UserInputError, match="missing key 'data.missing'"):
        get(params, "data.missing")


def test_unknown_preset_and_bad_yaml(tmp_path):
    (tmp_path / "params.yaml").write_text("preset: huge\n")
    with pytest.raises(UserInputError, match="preset 'huge' has no file"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    with pytest.raises(UserInputError, match="invalid YAML"):
        load_params(tmp_path / "params.yaml")


def test_deep_merge_does_not_mutate():
    base = {"a": {"b": 1, "c": [1]}, "d": 2}
    merged = deep_merge(base, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": [1]}, "d": 2}
    assert base["a"]["b"] == 1


def test_repository_params_and_presets_are_consistent():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for preset in ("tiny", "small", "full"):
        base = yaml.safe_load((root / "params.yaml").read_text())
        base["preset"] = preset
        assert (root / "configs" / f"{preset}.yaml").is_file()
        merged = deep_merge(base, yaml.safe_load((root / "configs" / f"{preset}.yaml").read_text()))
        assert merged["data"]["scale"] == preset
