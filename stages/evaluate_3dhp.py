"""Stage `evaluate_3dhp` (see dvc.yaml): a thin wrapper over `mlpgraph evaluate-3dhp`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate-3dhp", *sys.argv[1:]]))
