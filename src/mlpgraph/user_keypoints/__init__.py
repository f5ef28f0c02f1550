"""The user's own 2D keypoint files for ``mlpgraph predict``: reading, mapping onto the model's layout, filling.

- :mod:`.sequence`: :class:`~.sequence.Keypoints2D` (what a reader returns) and the image size;
- :mod:`.reading`: :func:`~.reading.read_keypoints` tells the format apart by content (or takes a
  forced one, :mod:`.formats`), and reads the ``.npz`` (keypoints already in the model's layout);
- :mod:`.coco`, :mod:`.mmpose`, :mod:`.alphapose`, :mod:`.openpose`: COCO keypoint JSON, MMPose
  prediction JSON, AlphaPose results JSON and OpenPose ``--write_json`` folders;
- :mod:`.people`: what the multi-person readers share: frame order, who is kept (file track ids,
  else :mod:`.association`, which links detections over time by keypoint similarity);
- :mod:`.joint_maps`: the detectors' skeletons (COCO-17, Halpe-26, BODY_25) and the joint-name
  tables that map them onto the model's layout;
- :mod:`.filling`: the gap-free frame grid, low-confidence joints and missing frames filled in time.

The lifting itself (network, flip test, output file) is :mod:`mlpgraph.lifting`.
"""
