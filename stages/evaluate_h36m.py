"""Stage `evaluate_h36m` (see dvc.yaml): a thin wrapper over `mlpgraph evaluate-h36m`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate-h36m", *sys.argv[1:]]))
