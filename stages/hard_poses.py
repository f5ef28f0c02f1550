"""Stage `hard_poses` (see dvc.yaml): a thin wrapper over `mlpgraph hard-poses`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["hard-poses", *sys.argv[1:]]))
