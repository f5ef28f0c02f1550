"""The checkpoints a training run writes into its ``checkpoint_dir``, and the check before resuming one.

``last.pt`` is the resume state (weights, optimiser, learning rate, every RNG state, history,
best-so-far: see :mod:`mlpgraph.training.state`), written atomically after every epoch; ``best.pt``
holds the epoch of lowest test P1 (the release's rule: model selection on the TEST split, labelled
as such); ``final.pt`` the last epoch (the honest figure). All three are plain project checkpoints
(:mod:`mlpgraph.checkpoints`). A new best is staged as ``best.pending.pt`` and renamed only after
``last.pt`` (the commit point) records it, so a run killed in between settles it on resume.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from mlpgraph.checkpoints import load_checkpoint, network_entry, save_checkpoint
from mlpgraph.errors import UserInputError
from mlpgraph.paths import BEST_CHECKPOINT, FINAL_CHECKPOINT
from mlpgraph.training.recipe import Recipe

LAST = "last.pt"
BEST = BEST_CHECKPOINT  # the artifact layout's names (mlpgraph.paths): the evaluation stages read these
FINAL = FINAL_CHECKPOINT
# best.pt is staged here and renamed after last.pt (the commit point) records it: see RunCheckpoints.save_epoch.
BEST_PENDING = "best.pending.pt"
BEST_SELECTION = "best on test (release rule)"
FINAL_SELECTION = "last epoch"
LAST_SELECTION = "resume state (latest epoch)"
# Recipe fields that may differ on resume: they choose where the run executes, not what it computes.
RESUME_IGNORED = ("device", "compile")


@dataclass(frozen=True)
class RunCheckpoints:
    """Where one run's checkpoints go and what each records besides the weights.

    Every checkpoint's meta holds the selection rule, the epoch, its record (losses, metrics), the
    recipe and, with refinement, the ``bone_lengths`` the evaluation stages need.
    """

    directory: Path
    recipe: Recipe
    model_name: str
    data_fingerprint: str | None
    bone_lengths: Tensor | None

    @property
    def last_path(self) -> Path:
        """The resume state's path."""
        return self.directory / LAST

    def networks(self, model: nn.Module, refine: nn.Module | None) -> dict[str, dict[str, Any]]:
        """The checkpoint entries of the raw (unwrapped) networks: ``model`` and, if given, ``refine``."""
        networks = {"model": network_entry(self.model_name, model)}
        if refine is not None:
            networks["refine"] = network_entry("refine", refine)
        return networks

    def remove_stale(self) -> None:
        """A fresh start's clean-up: no best, final or staged best of an earlier run survives."""
        for stale in (BEST, FINAL, BEST_PENDING):
            (self.directory / stale).unlink(missing_ok=True)

    def settle_pending_best(self, best_epoch: int | None) -> None:
        """Finish or undo a best.pt update interrupted between last.pt's write and the rename."""
        pending = self.directory / BEST_PENDING
        if not pending.exists():
            return
        try:
            epoch = load_checkpoint(pending)["meta"].get("epoch")
        except UserInputError:
            epoch = None
        if best_epoch is not None and epoch == best_epoch:
            os.replace(pending, self.directory / BEST)
        else:
            pending.unlink()

    def save_epoch(
        self,
        networks: Mapping[str, Mapping[str, Any]],
        epoch: int,
        record: Mapping[str, float],
        training: Mapping[str, Any],
        improved: bool,
    ) -> None:
        """The checkpoints of a finished epoch: a new best (staged), last.pt with ``training``, final.pt at the end."""
        if improved:
            self._save(BEST_PENDING, networks, self._meta(BEST_SELECTION, epoch, record))
        self._save(LAST, networks, {**self._meta(LAST_SELECTION, epoch, record), "training": training})
        if improved:
            os.replace(self.directory / BEST_PENDING, self.directory / BEST)

    def save_final(self, model: nn.Module, refine: nn.Module | None, history: list[dict[str, float]]) -> None:
        """final.pt: the networks as they are after the last epoch of ``history``."""
        self._save(FINAL, self.networks(model, refine), self._meta(FINAL_SELECTION, len(history), history[-1]))

    def ensure_final(self, model: nn.Module, refine: nn.Module | None, history: list[dict[str, float]]) -> None:
        """A finished run restarted: write final.pt unless it already holds the last epoch."""
        final_path = self.directory / FINAL
        if history and (not final_path.exists() or load_checkpoint(final_path)["meta"].get("epoch") != len(history)):
            self.save_final(model, refine, history)

    def check_resume(self, content: Mapping[str, Any], networks: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse to resume last.pt under another recipe, network configuration or data set.

        The error names the first difference; ``networks`` are this run's (:meth:`networks`).
        """
        path = self.last_path
        hint = f"delete {path.parent} or train into another directory"
        training = content["meta"].get("training")
        if not isinstance(training, Mapping):
            raise UserInputError(f"{path}: not a resumable training checkpoint (no meta['training'] entry); {hint}")
        problem = (
            _recipe_difference(training["recipe"], self.recipe)
            or _network_difference(content["networks"], networks)
            or _data_difference(content.get("data_fingerprint"), self.data_fingerprint)
        )
        if problem is not None:
            raise UserInputError(f"{path}: cannot resume: {problem}; {hint}")

    def _meta(self, selection: str, epoch: int, record: Mapping[str, float]) -> dict[str, Any]:
        meta = {"selection": selection, "epoch": epoch, "metrics": dict(record), "recipe": self.recipe.to_dict()}
        if self.bone_lengths is not None:
            meta["bone_lengths"] = self.bone_lengths.detach().cpu().clone()
        return meta

    def _save(self, name: str, networks: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any]) -> None:
        save_checkpoint(self.directory / name, networks, self.data_fingerprint, meta)


def _recipe_difference(saved_recipe: Mapping[str, Any], recipe: Recipe) -> str | None:
    """The first recipe field (other than :data:`RESUME_IGNORED`) that differs from the saved one."""
    saved = dict(saved_recipe)
    current = recipe.to_dict()
    for key in current:
        if key in RESUME_IGNORED:
            continue
        if key not in saved or saved[key] != current[key]:
            return f"recipe.{key} is {saved.get(key)!r} in the checkpoint but {current[key]!r} now"
    return None


def _network_difference(
    saved_networks: Mapping[str, Mapping[str, Any]], networks: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """The first network role, registry name or config entry that differs from the saved ones."""
    for role in sorted(set(saved_networks) | set(networks)):
        if role not in saved_networks or role not in networks:
            where = "the checkpoint" if role in saved_networks else "this run"
            return f"only {where} has a {role!r} network"
        old, new = saved_networks[role], networks[role]
        if old["name"] != new["name"]:
            return f"{role} is {old['name']!r} in the checkpoint but {new['name']!r} now"
        for key in sorted(set(old["config"]) | set(new["config"])):
            if old["config"].get(key) != new["config"].get(key):
                return (
                    f"{role} config {key} is {old['config'].get(key)!r} in the checkpoint "
                    f"but {new['config'].get(key)!r} now"
                )
    return None


def _data_difference(saved: str | None, current: str | None) -> str | None:
    """The data sets' fingerprints when both are known and differ."""
    if saved is not None and current is not None and saved != current:
        return f"trained on data {saved[:12]}..., this run has {current[:12]}..."
    return None
