"""The one schema of ``params.yaml`` and its presets: every key, its type and its range.

Validated once, when :func:`mlpgraph.params.load_params` reads the files, so a misspelt key, a
wrong type (``epochs: ten``, ``epochs: 1.5``), an out-of-range value or a wrong shape (a string
where a list belongs) stops every stage and ``snakemake -n`` with one line naming the file and
the key, before any work. The models are strict: no silent coercion (``1.5`` is not an epoch
count, ``"true"`` is not a flag); integers are accepted where a float belongs.

Torch-free on purpose: every stage imports this module, so it must not pull the networks into
every stage's dependency closure. The per-model arguments below mirror the constructors of
:mod:`mlpgraph.models` (a test keeps them equal).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SUBJECT_PATTERN = r"^[A-Za-z0-9_-]+$"
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"
NPZ_PATTERN = r"^[^\s].*\.npz$"
PATTERN_MEANINGS = {
    NAME_PATTERN: "a name of letters, digits, '_', '.' and '-'",
    SUBJECT_PATTERN: "a subject name of letters, digits, '_' and '-'",
    DEVICE_PATTERN: "auto, cpu, mps, cuda or cuda:N",
    NPZ_PATTERN: "a path to an .npz file",
}

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0.0, le=1.0)]
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]
Weight = Annotated[float, Field(ge=0.0)]


class Strict(BaseModel):
    """Base of every section: unknown keys refused, no type coercion, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Data(Strict):
    source: Literal["synthetic", "files"]
    name: Name
    dir: str | None = None
    file_3d: str
    cameras: str | None = None
    up_axis: Literal["y", "z", "Y", "Z"]
    layout: Literal["h36m16", "h36m17"]
    keypoints: Annotated[list[Name], Field(min_length=1)]
    scale: Literal["tiny", "small", "full"]
    seed: NonNegative
    train_subjects: Annotated[list[Annotated[str, Field(pattern=SUBJECT_PATTERN)]], Field(min_length=1)]
    test_subjects: Annotated[list[Annotated[str, Field(pattern=SUBJECT_PATTERN)]], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct(self) -> Data:
        if len(set(self.keypoints)) != len(self.keypoints):
            raise ValueError("keypoints: a 2D source is listed twice")
        if overlap := sorted(set(self.train_subjects) & set(self.test_subjects)):
            raise ValueError(f"test_subjects: {overlap} are also training subjects")
        return self


class Train(Strict):
    epochs: Positive
    batch_size: Positive
    frame_stride: Positive
    seed: NonNegative
    device: Annotated[str, Field(pattern=DEVICE_PATTERN)]
    precision: Literal["auto", "float32", "bfloat16", "float16"]
    compile: Literal["auto", True, False]
    flip_augment: bool
    l1_weight: Weight
    symmetry_weight: Weight
    max_loss: Annotated[float, Field(gt=0.0)]


class Recipe(Strict):
    lr: Annotated[float, Field(gt=0.0)]
    lr_decay: Fraction
    lr_decay_large: Fraction
    large_decay_epoch: Positive


class Recipes(Strict):
    gt: Recipe
    detected: Recipe


class MLPGraphArgs(Strict):
    frames: Positive = 1
    hid_dim: Positive = 128
    spatial_hid_dim: Positive = 128
    channel_hid_dim: Positive = 256
    num_layers: Positive = 3
    dropout: Dropout = 0.2
    mlp_dropout: Dropout = 0.0
    aggregation: Literal["diagonal", "graph"] = "diagonal"

    @model_validator(mode="after")
    def _odd_window(self) -> MLPGraphArgs:
        if self.frames % 2 == 0:
            raise ValueError(f"frames: the window must be odd (T = 2 * pad + 1), got {self.frames}")
        return self


class GraphNetArgs(Strict):
    hid_dim: Positive = 128
    num_blocks: NonNegative = 4
    dropout: Dropout = 0.0


class HighOrderGCNArgs(GraphNetArgs):
    hid_dim: Positive = 96


# model name -> its arguments and their defaults (the registry of mlpgraph.models, without torch).
MODEL_ARGS: dict[str, type[Strict]] = {
    "mlpgraph": MLPGraphArgs,
    "semgcn": GraphNetArgs,
    "semgcn_nonlocal": GraphNetArgs,
    "hgcn": HighOrderGCNArgs,
    "wugcn": GraphNetArgs,
    "modgcn": GraphNetArgs,
}


class Pretrained(Strict):
    dir: str | None = None
    weights: str
    refine: str | None = None


class Experiment(Strict):
    model: Literal["mlpgraph", "semgcn", "semgcn_nonlocal", "hgcn", "wugcn", "modgcn"]
    keypoints: Name
    model_args: dict[str, Any] = Field(default_factory=dict)
    pretrained: Pretrained | None = None

    @model_validator(mode="after")
    def _pretrained_is_mlpgraph(self) -> Experiment:
        if self.pretrained is not None and self.model != "mlpgraph":
            raise ValueError(f"pretrained: only MLP-Graph releases exist, not {self.model!r}")
        return self


class Refinement(Strict):
    keypoints: Name  # the experiment's, repeated: dvc.yaml names the processed file from it
    mode: Literal["joint", "two_stage"]
    root_depth: Literal["gt", "estimated"]


class Evaluate(Strict):
    flip_test: bool
    batch_size: Positive
    curve_frame_stride: Positive
    hard_every: Positive
    hard_fraction: Fraction
    timing_batches: Annotated[list[Positive], Field(min_length=1)]
    real_mocap: Annotated[str, Field(pattern=NPZ_PATTERN)]  # the real-data check's mocap file (evaluate_real)


class Resources(Strict):
    threads: Positive | None = None
    mem_mb: Positive | None = None
    runtime: Positive | None = None
    gpu: NonNegative | None = None


class Params(Strict):
    """The whole of ``params.yaml`` merged with its preset."""

    preset: Name | None = None
    data: Data
    train: Train
    recipes: Recipes
    experiments: Annotated[dict[Name, Experiment], Field(min_length=1)]
    refinement: dict[Name, Refinement] = Field(default_factory=dict)
    evaluate: Evaluate
    resources: dict[Name, Resources] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_references(self) -> Params:
        for name, experiment in self.experiments.items():
            if experiment.keypoints not in self.data.keypoints:
                raise ValueError(
                    f"experiments.{name}.keypoints: {experiment.keypoints!r} is not in data.keypoints "
                    f"{self.data.keypoints}"
                )
        for name in self.refinement:
            if name not in self.experiments:
                raise ValueError(f"refinement.{name}: no experiment of that name in 'experiments'")
            if self.refinement[name].keypoints != self.experiments[name].keypoints:
                raise ValueError(
                    f"refinement.{name}.keypoints: {self.refinement[name].keypoints!r} differs from "
                    f"experiments.{name}.keypoints {self.experiments[name].keypoints!r}"
                )
            pretrained = self.experiments[name].pretrained
            if pretrained is not None and not pretrained.refine:
                raise ValueError(f"refinement.{name}: the experiment's pretrained entry names no 'refine' file")
        return self
