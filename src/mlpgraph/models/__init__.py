"""Lifting networks: MLP-Graph (as released), its pose refinement, and the graph baselines."""
