"""params.yaml: the preset's defaults under the user's values, and the one schema both are checked against."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest
import yaml

from mlpgraph.errors import UserInputError
from mlpgraph.experiments import load_experiment
from mlpgraph.params import get, load_params, with_defaults
from mlpgraph.params_schema import MODEL_ARGS
from mlpgraph.training.recipe import Recipe, lr_after_epoch
from mlpgraph.training_stage import recipe_for
from tests.conftest import ROOT


def write_repo(tmp_path: Path, preset: str = "tiny", **dotted: object) -> Path:
    """The repository's params.yaml and presets in ``tmp_path``, at ``preset``, with ``dotted`` edits
    (a value ``DELETE`` removes the key)."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["preset"] = preset
    for key, value in dotted.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path / "params.yaml"


DELETE = object()


def test_a_value_set_in_params_yaml_wins_over_the_preset(tmp_path):
    path = write_repo(tmp_path, **{"train.epochs": 7, "experiments.mlpgraph_gt_f1.model_args": {"hid_dim": 64}})
    params = load_params(path)
    assert params["train"]["epochs"] == 7
    # The user's width wins; the preset still supplies the keys the user did not set.
    assert params["experiments"]["mlpgraph_gt_f1"]["model_args"] == {
        "hid_dim": 64,
        "spatial_hid_dim": 32,
        "channel_hid_dim": 48,
        "num_layers": 2,
    }


def test_null_in_params_yaml_takes_the_presets_value(tmp_path):
    params = load_params(write_repo(tmp_path))
    assert (params["train"]["epochs"], params["train"]["batch_size"], params["data"]["scale"]) == (2, 512, "tiny")
    assert params["evaluate"]["timing_batches"] == [1, 64]


@pytest.mark.parametrize(("preset", "frames", "epochs"), [("full", 243, 50), ("small", 27, 10), ("tiny", 9, 2)])
def test_presets_scale_the_temporal_experiment(tmp_path, preset, frames, epochs):
    params = load_params(write_repo(tmp_path, preset))
    assert params["experiments"]["mlpgraph_gt_f243_refine"]["model_args"]["frames"] == frames
    assert (params["train"]["epochs"], params["data"]["scale"]) == (epochs, preset)


def test_every_preset_sets_the_same_keys():
    """Each preset supplies every value params.yaml leaves to it, so switching presets never leaves one unset."""

    def keys(tree: dict, prefix: str = "") -> set[str]:
        found = set()
        for key, value in tree.items():
            if isinstance(value, dict) and key != "model_args":
                found |= keys(value, f"{prefix}{key}.")
            elif key != "model_args":
                found.add(prefix + key)
        return found

    presets = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "configs").glob("*.yaml")}
    assert set(presets) == {"tiny", "small", "full"}
    scalar_keys = {name: keys({k: v for k, v in tree.items() if k != "experiments"}) for name, tree in presets.items()}
    assert len({frozenset(k) for k in scalar_keys.values()}) == 1, scalar_keys
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key in scalar_keys["full"]:
        assert get(raw, key, None) is None, f"params.yaml sets {key}, so no preset could"


@pytest.mark.parametrize("preset", ["tiny", "full"])
def test_tiny_and_full_train_with_the_releases_recipes(tmp_path, preset):
    params = load_params(write_repo(tmp_path, preset))
    gt = recipe_for(params, load_experiment(params, "mlpgraph_gt_f1"))
    hr = recipe_for(params, load_experiment(params, "mlpgraph_hr_f243_refine"))
    assert (gt.lr, gt.lr_decay, gt.lr_decay_large, gt.large_decay_epoch) == (1e-3, 0.95, 0.5, 5)
    assert (hr.lr, hr.lr_decay, hr.lr_decay_large, hr.large_decay_epoch) == (5e-3, 0.90, 0.5, 4)


def learning_rates(recipe: Recipe) -> list[float]:
    """The learning rate of every epoch of ``recipe``'s run."""
    rates = [recipe.lr]
    for epoch in range(1, recipe.epochs):
        rates.append(lr_after_epoch(rates[-1], epoch, recipe))
    return rates


def test_small_trains_both_2d_sources_on_one_decaying_schedule(tmp_path):
    """``make reproduce`` compares ground-truth with detected 2D, so their schedules must not differ."""
    params = load_params(write_repo(tmp_path, "small"))
    gt = recipe_for(params, load_experiment(params, "mlpgraph_gt_f243_refine"))
    hr = recipe_for(params, load_experiment(params, "mlpgraph_hr_f243_refine"))
    assert gt.detected != hr.detected
    assert learning_rates(gt) == pytest.approx(learning_rates(hr), rel=1e-12)
    assert learning_rates(gt)[-1] < learning_rates(gt)[0] / 4


def test_a_recipe_set_in_params_yaml_wins_over_the_presets(tmp_path):
    mine = {"lr": 2e-4, "lr_decay": 0.99, "lr_decay_large": 0.9, "large_decay_epoch": 3}
    params = load_params(write_repo(tmp_path, "small", **{"recipes.gt": mine}))
    assert params["recipes"]["gt"] == mine
    assert params["recipes"]["detected"] == load_params(write_repo(tmp_path / "b", "small"))["recipes"]["detected"]


def test_a_preset_entry_for_an_experiment_not_listed_is_ignored(tmp_path):
    path = write_repo(tmp_path, experiments={"mlpgraph_gt_f1": {"model": "mlpgraph", "keypoints": "gt"}}, refinement={})
    assert set(load_params(path)["experiments"]) == {"mlpgraph_gt_f1"}


def test_with_defaults_keeps_the_users_order_and_does_not_mutate():
    defaults = {"a": {"b": 1, "c": [1]}, "d": 2}
    merged = with_defaults({"e": 0, "a": {"b": 5, "f": None}}, defaults)
    assert merged == {"e": 0, "a": {"b": 5, "f": None, "c": [1]}, "d": 2}
    assert list(merged) == ["e", "a", "d"]
    assert defaults["a"]["b"] == 1


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"trian": {}}, "params.yaml: trian: unknown key (did you mean 'train'?)"),
        ({"train.l1_wieght": 0.1}, "params.yaml: train.l1_wieght: unknown key (did you mean 'l1_weight'?)"),
        ({"train.epochs": "ten"}, "params.yaml: train.epochs: input should be a valid integer, got 'ten'"),
        ({"train.epochs": 1.5}, "params.yaml: train.epochs: input should be a valid integer, got 1.5"),
        ({"train.epochs": 0}, "params.yaml: train.epochs: input should be greater than or equal to 1, got 0"),
        ({"train.frame_stride": 0}, "params.yaml: train.frame_stride: input should be greater than or equal to 1"),
        ({"data.keypoints": "gt"}, "params.yaml: data.keypoints: input should be a valid list, got 'gt'"),
        ({"data.seed": "zero"}, "params.yaml: data.seed: input should be a valid integer, got 'zero'"),
        ({"evaluate.batch_size": -5}, "params.yaml: evaluate.batch_size: input should be greater than or equal to 1"),
        ({"evaluate.hard_fraction": 2.0}, "params.yaml: evaluate.hard_fraction: input should be less than or equal"),
        (
            {"evaluate.real_mocap": "mocap.bvh"},
            "params.yaml: evaluate.real_mocap: expected a path to an .npz file, got 'mocap.bvh'",
        ),
        ({"evaluate.real_mocap": DELETE}, "params.yaml: evaluate.real_mocap: missing (set it in "),
        ({"train.device": "gpu"}, "params.yaml: train.device: expected auto, cpu, mps, cuda or cuda:N, got 'gpu'"),
        ({"train.flip_augment": "yes"}, "params.yaml: train.flip_augment: input should be a valid boolean"),
        ({"data.train_subjects": ["S1", "S9"]}, "params.yaml: data.test_subjects: ['S9'] are also training subjects"),
        ({"train.seed": DELETE}, "params.yaml: train.seed: missing (set it in "),
        (
            {"experiments.mlpgraph_gt_f1.model_args": {"hid_dm": 3}},
            "params.yaml: experiments.mlpgraph_gt_f1.model_args.hid_dm: unknown key (did you mean 'hid_dim'?)",
        ),
        (
            {"experiments.mlpgraph_gt_f1.model_args": {"frames": 4}},
            "params.yaml: experiments.mlpgraph_gt_f1.model_args.frames: the window must be odd",
        ),
        (
            {"experiments.mlpgraph_gt_f243_refine.model_args": {"frames": "many"}},
            "params.yaml: experiments.mlpgraph_gt_f243_refine.model_args.frames: input should be a valid integer",
        ),
        ({"experiments.mlpgraph_gt_f1.model": "gcn"}, "params.yaml: experiments.mlpgraph_gt_f1.model: input should be"),
        (
            {"experiments.mlpgraph_gt_f1.keypoints": "cpn"},
            "params.yaml: experiments.mlpgraph_gt_f1.keypoints: 'cpn' is not in data.keypoints",
        ),
        ({"experiments.x": {"model": "mlpgraph"}}, "params.yaml: experiments.x.keypoints: missing"),
        (
            {"refinement.mlpgraph_gt_f243_refine.keypoints": "hr"},
            "params.yaml: refinement.mlpgraph_gt_f243_refine.keypoints: 'hr' differs from experiments.",
        ),
        (
            {"refinement.nope": {"keypoints": "gt", "mode": "joint", "root_depth": "gt"}},
            "params.yaml: refinement.nope: no experiment of that name",
        ),
        ({"preset": "huge"}, "params.yaml: preset: 'huge' has no file in"),
        ({"preset": 3}, "params.yaml: preset: 3 has no file in"),
    ],
)
def test_bad_values_are_one_line_naming_file_and_key(tmp_path, edits, message):
    with pytest.raises(UserInputError) as caught:
        load_params(write_repo(tmp_path, **edits))
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path / 'params.yaml'}: "), text
    assert message.split(": ", 1)[1] in text, text


def test_a_bad_value_in_the_preset_names_the_preset(tmp_path):
    path = write_repo(tmp_path)
    preset = yaml.safe_load((tmp_path / "configs" / "tiny.yaml").read_text())
    preset["train"]["epochs"] = "two"
    (tmp_path / "configs" / "tiny.yaml").write_text(yaml.safe_dump(preset))
    with pytest.raises(UserInputError, match=r"configs/tiny\.yaml: train\.epochs: input should be a valid integer"):
        load_params(path)
    preset["train"]["epochz"] = preset["train"].pop("epochs")
    (tmp_path / "configs" / "tiny.yaml").write_text(yaml.safe_dump(preset))
    with pytest.raises(UserInputError, match=r"configs/tiny\.yaml: train\.epochz: unknown key"):
        load_params(path)


def test_unreadable_files(tmp_path):
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    with pytest.raises(UserInputError, match="invalid YAML"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("- a list\n")
    with pytest.raises(UserInputError, match="expected a mapping"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(UserInputError, match="file not found"):
        load_params(tmp_path / "missing.yaml")


def test_get_reads_dotted_keys():
    params = {"data": {"seed": 3}}
    assert get(params, "data.seed") == 3
    assert get(params, "data.missing", None) is None
    with pytest.raises(UserInputError, match="missing key 'data.missing'"):
        get(params, "data.missing")


def test_model_arguments_mirror_the_constructors():
    """The torch-free schema of model_args names exactly the constructors' keyword arguments."""
    from mlpgraph.models import REGISTRY

    for name, arguments in MODEL_ARGS.items():
        spec = REGISTRY[name]
        accepted = set(inspect.signature(spec.factory).parameters) - {"self", "layout"} - set(spec.defaults)
        if name != "mlpgraph":
            accepted -= {"non_local"}  # fixed by the registry entry (semgcn vs semgcn_nonlocal)
        schema = set(arguments.model_fields) - ({"frames"} if name != "mlpgraph" else set())
        assert schema >= accepted and schema <= accepted | set(spec.defaults), (name, schema, accepted)
        defaults = {k: p.default for k, p in inspect.signature(spec.factory).parameters.items() if k in schema}
        assert {k: f.default for k, f in arguments.model_fields.items() if k in defaults} == defaults, name


def test_the_repositorys_params_load_at_every_preset(tmp_path):
    for preset in ("tiny", "small", "full"):
        folder = tmp_path / preset
        folder.mkdir()
        assert load_params(write_repo(folder, preset))["data"]["scale"] == preset
