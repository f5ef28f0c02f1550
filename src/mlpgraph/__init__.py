"""mlpgraph: lifting 2D keypoints to root-relative 3D poses with MLP-Graph and its graph baselines."""

__version__ = "0.1.0"
