"""Stage `preprocess` (see dvc.yaml): a thin wrapper over `mlpgraph preprocess`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["preprocess", *sys.argv[1:]]))
