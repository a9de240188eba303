"""The one test hook for Jetson GStreamer pipelines on a desktop: ``EDGESEG_GST_STANDIN=1``.

The Jetson rehearsal (``.ci/jetson-rehearsal``, ``docs/jetson.md``) runs the pipeline string the
product builds for ``csi://N`` (or one a user typed) through a desktop OpenCV built with
GStreamer. Only NVIDIA's elements, which exist on a Jetson alone, are replaced, element by
element, just before ``cv2.VideoCapture`` opens the string; everything else (caps, sizes, rates,
``videoconvert``, the appsink's ``drop=true max-buffers=1 sync=false``) runs as written:

========================================  ==========================================================
Jetson                                    desktop stand-in
========================================  ==========================================================
``nvarguscamerasrc sensor-id=N ...``      ``videotestsrc is-live=true`` (a live camera's clock)
``v4l2src device=...``                    ``videotestsrc is-live=true`` (+ ``jpegenc`` before
                                          ``image/jpeg`` caps, as an MJPG camera delivers)
``video/x-raw(memory:NVMM), ...``         ``video/x-raw, ...`` (system memory)
``nvvidconv flip-method=N``               ``videoflip video-direction=D ! videoconvert !
                                          videoscale`` (nvvidconv scales too); D is
                                          nvvidconv's method N by name
                                          (:data:`VIDEOFLIP_DIRECTIONS`)
``nvvidconv`` (no flip)                   ``videoconvert ! videoscale``
``nvjpegdec``                             ``jpegdec``
========================================  ==========================================================

Unset (the default, and always on a user's machine), the pipeline is opened exactly as built.
The stand-ins need gstreamer1.0-plugins-base (videotestsrc, videoconvert, appsink) and -good
(videoflip, jpegenc, jpegdec).
"""

from __future__ import annotations

import os
import re

from edgeseg.media import FLIP_METHODS

STANDIN_ENV = "EDGESEG_GST_STANDIN"
#: nvvidconv's flip names (edgeseg's --flip) -> videoflip's ``video-direction`` names. Not its
#: ``method``: besides numbering the turns differently (1 is clockwise there, counterclockwise
#: in nvvidconv), a ``method`` set in a pipeline string turns the pixels without swapping width
#: and height in GStreamer 1.22 (a 1280x720 frame stays 1280x720 at 90 degrees).
VIDEOFLIP_DIRECTIONS = {
    "none": "identity",
    "counterclockwise": "90l",
    "rotate-180": "180",
    "clockwise": "90r",
    "horizontal": "horiz",
    "upper-right-diagonal": "ur-ll",
    "vertical": "vert",
    "upper-left-diagonal": "ul-lr",
}
LIVE_TEST_SOURCE = "videotestsrc is-live=true"


def standin_enabled() -> bool:
    return os.environ.get(STANDIN_ENV, "") == "1"


def _nvvidconv(element: str) -> str:
    match = re.search(r"flip-method=(\d+)", element)
    if not match or int(match.group(1)) == 0:
        return "videoconvert ! videoscale"
    method = int(match.group(1))
    if method >= len(FLIP_METHODS):
        raise ValueError(f"nvvidconv flip-method={method} has no stand-in")
    direction = VIDEOFLIP_DIRECTIONS[FLIP_METHODS[method]]
    return f"videoflip video-direction={direction} ! videoconvert ! videoscale"


def _element(element: str, previous: str) -> str:
    """One ``!``-separated piece of a pipeline -> its stand-in (itself when not NVIDIA's)."""
    name = element.split(None, 1)[0] if element.strip() else ""
    if name in ("nvarguscamerasrc", "v4l2src"):
        return LIVE_TEST_SOURCE
    if name == "nvvidconv":
        return _nvvidconv(element)
    if name == "nvjpegdec":
        return "jpegdec"
    if element.startswith("image/jpeg") and previous == LIVE_TEST_SOURCE:
        return f"jpegenc ! {element}"
    return element.replace("video/x-raw(memory:NVMM)", "video/x-raw")


def desktop_standin(pipeline: str) -> str:
    """``pipeline`` with NVIDIA's elements replaced by desktop ones (table above); the caps and
    the appsink are kept as written.

    >>> desktop_standin("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=(int)1280"
    ...                 " ! nvvidconv flip-method=2 ! appsink")
    'videotestsrc is-live=true ! video/x-raw, width=(int)1280 ! videoflip video-direction=180 ! videoconvert ! videoscale ! appsink'
    """  # noqa: E501
    mapped: list[str] = []
    for piece in pipeline.split("!"):
        element = piece.strip()
        mapped.append(_element(element, mapped[-1] if mapped else ""))
    return " ! ".join(mapped)


def pipeline_to_open(pipeline: str) -> str:
    """What ``cv2.VideoCapture`` is given: ``pipeline`` itself, or its stand-in under
    ``EDGESEG_GST_STANDIN=1``."""
    return desktop_standin(pipeline) if standin_enabled() else pipeline
