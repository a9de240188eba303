"""What edgeseg reads frames from, named once for every stage and the CLI.

The file suffixes of images and videos: datasets, calibration and the runtime all decide "is
this an image? a video?" from these, so a file that trains also calibrates and plays (lower
case, with the dot; compare against ``path.suffix.lower()``). And the camera options the CLI
offers and the runtime's camera code implements (``--camera-format``, ``--flip``), kept here so
that ``edgeseg --help`` lists them without importing the runtime.
"""

from __future__ import annotations

#: Image suffixes OpenCV reads, lossless first: when a dataset holds several masks of one stem,
#: the earliest suffix here wins (a PNG mask over a JPEG one).
IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jpg", ".jpeg")

#: Video containers OpenCV's FFmpeg backend opens.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv")

#: ``--camera-format`` of a V4L2 camera -> its FourCC.
V4L2_FORMATS = {"mjpg": "MJPG", "yuyv": "YUYV"}

#: ``--flip`` values; the position is nvvidconv's ``flip-method`` number (jetson-utils'
#: ``videoOptions::FlipMethod`` uses the same order and names).
FLIP_METHODS = (
    "none",
    "counterclockwise",
    "rotate-180",
    "clockwise",
    "horizontal",
    "upper-right-diagonal",
    "vertical",
    "upper-left-diagonal",
)
