"""The artifact layout: where every stage's outputs live, relative to the repository root.

One definition of the paths that ``dvc.yaml`` spells out in its ``cmd``/``deps``/``outs`` (a test
checks that the two agree for every stage) and that the readers of those artifacts (the report,
the demos, the tests) find them by. Stages take their paths on the command line; code that reads
another stage's outputs asks :class:`ArtifactLayout` rather than spelling a path again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RAW_DIR = Path("data/raw")
PROCESSED_DIR = Path("data/processed")
HARD_POSES = PROCESSED_DIR / "hard_poses.npz"
MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics")

FINAL_CHECKPOINT = "final.pt"
BEST_CHECKPOINT = "best.pt"
SPATIAL, REFINE = "spatial", "refine"


def processed_name(dataset: str, keypoints: str, layout: str) -> str:
    """File name of one processed HDF5 file: ``<dataset>_<keypoints>_<layout>.h5``."""
    return f"{dataset}_{keypoints}_{layout}.h5"


@dataclass(frozen=True)
class ArtifactLayout:
    """The paths under one root (the repository, or a copy of its ``metrics``/``models`` folders)."""

    root: Path = Path(".")

    def raw(self) -> Path:
        """The fetched data set: the community files and the manifest."""
        return self.root / RAW_DIR

    def processed(self, dataset: str, keypoints: str, layout: str) -> Path:
        """One processed HDF5 file per 2D source."""
        return self.root / PROCESSED_DIR / processed_name(dataset, keypoints, layout)

    def hard_poses(self) -> Path:
        """The hard-pose set (derived or the user's)."""
        return self.root / HARD_POSES

    def models(self, experiment: str, network: str = SPATIAL) -> Path:
        """The folder of an experiment's checkpoints: ``spatial`` (train_spatial) or ``refine`` (train_refine)."""
        return self.root / MODELS_DIR / experiment / network

    def checkpoint(self, experiment: str, network: str = SPATIAL, file: str = FINAL_CHECKPOINT) -> Path:
        """One checkpoint of an experiment (the last epoch's by default)."""
        return self.models(experiment, network) / file

    def metrics(self) -> MetricsFiles:
        """The metrics folder's files."""
        return MetricsFiles(self.root / METRICS_DIR)


@dataclass(frozen=True)
class MetricsFiles:
    """The files of one metrics folder (``metrics/`` in the repository): per experiment and the report's."""

    folder: Path = METRICS_DIR

    def train_summary(self, experiment: str, refine: bool = False) -> Path:
        return self.folder / "train" / f"{experiment}{'_refine' if refine else ''}.json"

    def train_curve(self, experiment: str, refine: bool = False) -> Path:
        return self.folder / "train" / f"{experiment}{'_refine' if refine else ''}_curve.json"

    def h36m(self, experiment: str, refine: bool = False) -> Path:
        return self.folder / "h36m" / f"{experiment}{'_refine' if refine else ''}.json"

    def dhp(self, experiment: str) -> Path:
        return self.folder / "3dhp" / f"{experiment}.json"

    def hard(self, experiment: str) -> Path:
        return self.folder / "hard" / f"{experiment}.json"

    def real(self, experiment: str, refine: bool = False) -> Path:
        """The experiment's figures on real motion capture (``evaluate_real``; ``evaluate_real_refine`` with refine)."""
        return self.folder / "real" / f"{experiment}{'_refine' if refine else ''}.json"

    def results_html(self) -> Path:
        """The results document as one self-contained HTML page (what ``snakemake --report`` shows)."""
        return self.folder / "results.html"

    def summary(self, experiment: str) -> Path:
        """The flat per-experiment summary ``dvc exp show`` lists."""
        return self.folder / "summary" / f"{experiment}.json"

    def results(self) -> Path:
        return self.folder / "results.md"

    def plots(self) -> Path:
        return self.folder / "plots"

    def demos(self) -> Path:
        return self.folder / "demo"
