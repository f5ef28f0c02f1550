"""Stage `evaluate_refine` (see dvc.yaml): a thin wrapper over `mlpgraph evaluate-refine`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate-refine", *sys.argv[1:]]))
