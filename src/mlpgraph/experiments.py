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

from mlpgraph.errors import UserInputError
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
        return int(self.model_args.get("frames", 1))

    @property
    def pad(self) -> int:
        """Half window: T = 2 * pad + 1."""
        return (self.frames - 1) // 2

    @property
    def recipe_kind(self) -> str:
        """``gt`` for ground-truth 2D, ``detected`` for any detector's keypoints."""
        return "gt" if self.keypoints == GT_KEYPOINTS else "detected"


def load_experiment(params: Mapping[str, Any], name: str) -> Experiment:
    """The experiment ``name`` of the parameters (validated by :func:`mlpgraph.params.load_params`)."""
    experiments = get(params, "experiments")
    if name not in experiments:
        raise UserInputError(f"params: no experiment {name!r} (experiments: {sorted(experiments)})")
    entry = experiments[name]
    refinement = (get(params, "refinement", {}) or {}).get(name)
    pretrained = entry.get("pretrained")
    return Experiment(
        name=name,
        model=entry["model"],
        keypoints=entry["keypoints"],
        model_args=dict(entry.get("model_args") or {}),
        # keypoints repeats the experiment's own (for dvc.yaml); the refinement is its mode and root depth
        refinement={k: v for k, v in refinement.items() if k != "keypoints"} if refinement is not None else None,
        pretrained=dict(pretrained) if pretrained is not None else None,
    )
