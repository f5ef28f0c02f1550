"""The user's own 2D keypoint files for ``mlpgraph predict``: reading, mapping onto the model's layout, filling.

- :mod:`.sequence`: :class:`~.sequence.Keypoints2D` (what a reader returns) and the image size;
- :mod:`.reading`: :func:`~.reading.read_keypoints` tells ``.npz`` from COCO JSON by content, and
  reads the ``.npz`` (keypoints already in the model's layout);
- :mod:`.coco`: the COCO-17 keypoint JSON reader (who is kept when several people are seen) and
  the joint-name table that maps COCO-17 onto the model's layout;
- :mod:`.filling`: the gap-free frame grid, low-confidence joints and missing frames filled in time.

The lifting itself (network, flip test, output file) is :mod:`mlpgraph.lifting`.
"""
