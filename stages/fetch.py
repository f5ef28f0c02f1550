"""Stage `fetch` (see dvc.yaml): a thin wrapper over `mlpgraph fetch`."""

import sys

from mlpgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", *sys.argv[1:]]))
