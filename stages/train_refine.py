"""Stage `train_refine` (see dvc.yaml): a thin wrapper over `mlpgraph train-refine`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-refine", *sys.argv[1:]]))
