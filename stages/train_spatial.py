"""Stage `train_spatial` (see dvc.yaml): a thin wrapper over `mlpgraph train-spatial`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-spatial", *sys.argv[1:]]))
