"""Stage `report` (see dvc.yaml): a thin wrapper over `mlpgraph report`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
