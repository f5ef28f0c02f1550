"""Data layer: synthetic Human3.6M, the community file formats, fetch, preprocessing and batching."""
