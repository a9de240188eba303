"""The file suffixes edgeseg reads as images and as videos: one list each for every stage.

Datasets, calibration and the runtime all decide "is this an image? a video?" from these, so a
file that trains also calibrates and plays. Lower case, with the dot; compare against
``path.suffix.lower()``.
"""

from __future__ import annotations

#: Image suffixes OpenCV reads, lossless first: when a dataset holds several masks of one stem,
#: the earliest suffix here wins (a PNG mask over a JPEG one).
IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jpg", ".jpeg")

#: Video containers OpenCV's FFmpeg backend opens.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv")
