"""Experiments of ``params.yaml``: what each stage needs to know about one entry of ``experiments``.

An experiment names a registry model, its 2D keypoint source and its overrides; the training
recipe comes from the shared ``train`` section and the ``recipes`` entry of its keypoint kind
(``gt`` or ``detected``). Stages get everything from here, so no stage has hidden defaults.

An experiment with a ``pretrained`` entry (``{dir, weights, refine}``) is not trained: its
training stages import the MLP-Graph release's ``.pth`` files from ``dir`` instead, and every
later stage evaluates them like any other experiment. With ``dir: null`` the experiment is
*skipped*: its stages write ``available: false`` and the reason instead of figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpgraph.data.schema import processed_name
from mlpgraph.errors import UserInputError
from mlpgraph.models import REGISTRY
from mlpgraph.params import get

GT_KEYPOINTS = "gt"


@dataclass(frozen=True)
class Experiment:
    """One resolved experiment."""

    name: str
    model: str
    keypoints: str
    model_args: dict[str, Any] = field(default_factory=dict)
    refinement: dict[str, Any] | None = None
    pretrained: dict[str, Any] | None = None

    @property
    def skipped_reason(self) -> str | None:
        """Why a pretrained experiment has nothing to evaluate (its folder is not set), else None."""
        if self.pretrained is None or self.pretrained.get("dir"):
            return None
        return (
            f"experiments.{self.name}.pretrained.dir is not set: point it at the folder holding the "
            f"MLP-Graph release's {self.pretrained.get('weights')} to import and evaluate it"
        )

    def release_file(self, role: str = "weights") -> Path | None:
        """The release file for ``role`` (``weights`` or ``refine``) of a pretrained experiment, if named."""
        if self.pretrained is None or not self.pretrained.get(role) or not self.pretrained.get("dir"):
            return None
        return Path(self.pretrained["dir"]).expanduser() / str(self.pretrained[role])

    @property
    def frames(self) -> int:
        """Window length T (1 for single-frame models)."""
        return int(self.model_args.get("frames", REGISTRY[self.model].defaults.get("frames", 1)))

    @property
    def pad(self) -> int:
        """Half window: T = 2 * pad + 1."""
        return (self.frames - 1) // 2

    @property
    def recipe_kind(self) -> str:
        """``gt`` for ground-truth 2D, ``detected`` for any detector's keypoints."""
        return "gt" if self.keypoints == GT_KEYPOINTS else "detected"

    def processed_path(self, params: Mapping[str, Any], root: Path = Path(".")) -> Path:
        """The HDF5 file this experiment trains and evaluates on."""
        name = processed_name(get(params, "data.name"), self.keypoints, get(params, "data.layout"))
        return root / "data" / "processed" / name


def load_experiment(params: Mapping[str, Any], name: str) -> Experiment:
    """The experiment ``name`` of the (preset-merged) parameters, validated."""
    experiments = get(params, "experiments")
    if name not in experiments:
        raise UserInputError(f"params: no experiment {name!r} (experiments: {sorted(experiments)})")
    entry = experiments[name]
    try:
        model, keypoints = entry["model"], entry["keypoints"]
    except (KeyError, TypeError):
        raise UserInputError(f"params: experiments.{name} needs 'model' and 'keypoints'") from None
    if model not in REGISTRY:
        raise UserInputError(f"params: experiments.{name}.model {model!r} is not one of {sorted(REGISTRY)}")
    if keypoints not in get(params, "data.keypoints"):
        available = get(params, "data.keypoints")
        raise UserInputError(f"params: experiments.{name}.keypoints {keypoints!r} is not in data.keypoints {available}")
    frames = int((entry.get("model_args") or {}).get("frames", 1))
    if frames < 1 or frames % 2 == 0:
        raise UserInputError(f"params: experiments.{name}.model_args.frames must be odd and positive, got {frames}")
    refinement = (get(params, "refinement", {}) or {}).get(name)
    pretrained = entry.get("pretrained")
    if pretrained is not None:
        if not isinstance(pretrained, dict) or "weights" not in pretrained:
            raise UserInputError(f"params: experiments.{name}.pretrained needs 'dir' and 'weights' (a file name)")
        if model != "mlpgraph":
            raise UserInputError(f"params: experiments.{name}.pretrained: only MLP-Graph releases exist, not {model!r}")
        if refinement is not None and not pretrained.get("refine"):
            raise UserInputError(f"params: experiments.{name} is in 'refinement' but has no pretrained.refine file")
    return Experiment(
        name=name,
        model=model,
        keypoints=keypoints,
        model_args=dict(entry.get("model_args") or {}),
        refinement=dict(refinement) if refinement is not None else None,
        pretrained=dict(pretrained) if pretrained is not None else None,
    )
