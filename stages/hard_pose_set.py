"""Stage `hard_pose_set` (see dvc.yaml): a thin wrapper over `mlpgraph hard-pose-set`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["hard-pose-set", *sys.argv[1:]]))
