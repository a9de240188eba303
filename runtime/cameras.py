"""Cameras on a Jetson and elsewhere: the CSI (Argus) pipeline, V4L2 settings, flipping.

``csi://N`` is how jetson-inference's ``videoSource`` names MIPI CSI camera N, and what Jetson
users type first. It becomes one GStreamer pipeline (:func:`csi_pipeline`)::

    nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=(int)1920, height=(int)1080,
      framerate=(fraction)30/1, format=(string)NV12 ! nvvidconv flip-method=0 !
      video/x-raw, format=(string)BGRx, width=(int)480, height=(int)360 !
      appsink drop=true max-buffers=1 sync=false

``nvarguscamerasrc`` runs the sensor through the Jetson ISP (Argus) into NVMM buffers;
``nvvidconv`` (the VIC engine) flips, scales to what the run needs (``scale_hw``: the model's
input size for masks alone, at most 1280x720 for rendered outputs) and converts to BGRx, which
OpenCV's appsink takes as it is: no single-threaded ``videoconvert`` on the CPU (the fourth
byte is dropped in one vectorised pass when the frame is read); the appsink keeps one buffer and
drops older ones (``drop=true max-buffers=1``) and does not wait on the clock (``sync=false``):
without that, frames queue up in the appsink and users see 0.5-2 s of lag. The default mode,
1920x1080 at 30 fps, is a native mode of both common sensors: IMX219 (Raspberry Pi camera v2:
3264x2464 @21, 3264x1848 @28, 1920x1080 @30, 1640x1232 @30, 1280x720 @60) and IMX477
(Raspberry Pi HQ camera: 3840x2160 @30, 1920x1080 @60 with the JetPack driver), as their Argus
mode lists show (``docs/jetson.md`` cites them). The flip names are nvvidconv's ``flip-method``
values, as jetson-inference names them.

V4L2 cameras (``/dev/videoN``, ``v4l2:///dev/videoN``, an index) are opened with OpenCV's V4L2
backend: pixel format (``MJPG`` or ``YUYV``) first, then size, rate, and a one-buffer driver
queue (``CAP_PROP_BUFFERSIZE``, 1 to 10 buffers, default 4 in OpenCV's V4L2 backend), in that
order (:func:`v4l2_properties`); what the driver granted is read back and reported, since drivers
silently pick the nearest mode. Their flip is done on the CPU (:func:`flip_image`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.media import FLIP_METHODS, V4L2_FORMATS
from edgeseg.validate import ascii_int

CSI_SIZE_HW = (1080, 1920)  # a native mode of IMX219 (at 30 fps) and IMX477 (at 60 fps)
CSI_FPS = 30.0
#: ``--camera-format`` -> V4L2 FourCC.
V4L2_BUFFERS = 1  # the driver's queue: one buffer, so a read gets the newest frame


@dataclass(frozen=True)
class CameraSettings:
    """What a camera is asked for: ``size_hw`` (height, width), ``fps``, ``pixel_format``
    (``mjpg``/``yuyv``, V4L2 only) and ``flip`` (one of :data:`FLIP_METHODS`). None: the
    camera's own default (the CSI defaults for ``csi://``)."""

    size_hw: tuple[int, int] | None = None
    fps: float | None = None
    pixel_format: str | None = None
    flip: str = "none"

    def __post_init__(self) -> None:
        if self.flip not in FLIP_METHODS:
            raise EdgesegError(
                f"unknown --flip {self.flip!r}; choose from: {', '.join(FLIP_METHODS)}"
            )
        if self.pixel_format is not None and self.pixel_format.lower() not in V4L2_FORMATS:
            raise EdgesegError(
                f"unknown --camera-format {self.pixel_format!r}; choose from: "
                f"{', '.join(V4L2_FORMATS)}"
            )

    @property
    def given(self) -> bool:
        """Whether anything other than the defaults was asked for."""
        return self != CameraSettings()


def parse_csi(spec: str) -> int:
    """``csi://0`` -> 0; a one-line error for anything else after ``csi://``."""
    rest = spec.split("://", 1)[1].strip("/")
    if ascii_int(rest) is None:
        raise EdgesegError(f"{spec}: expected csi://N with N the sensor number (csi://0)")
    return int(rest)


def csi_pipeline(
    sensor_id: int, settings: CameraSettings | None = None, scale_hw: tuple[int, int] | None = None
) -> str:
    """The GStreamer pipeline that opens CSI camera ``sensor_id`` for OpenCV (module docs):
    frames scaled by nvvidconv to ``scale_hw`` (height, width; None: the capture size) and
    delivered as BGRx."""
    from edgeseg.runtime.gstreamer import LIVE_APPSINK, fraction

    settings = settings or CameraSettings()
    height, width = settings.size_hw or CSI_SIZE_HW
    fps = settings.fps or CSI_FPS
    scaled = f", width=(int){scale_hw[1]}, height=(int){scale_hw[0]}" if scale_hw else ""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! video/x-raw(memory:NVMM), "
        f"width=(int){width}, height=(int){height}, framerate=(fraction){fraction(fps)}, "
        f"format=(string)NV12 ! nvvidconv flip-method={FLIP_METHODS.index(settings.flip)} ! "
        f"video/x-raw, format=(string)BGRx{scaled} ! {LIVE_APPSINK}"
    )


def gstreamer_missing(pipeline: str, spec: str) -> EdgesegError:
    """The one line for ``csi://`` on an OpenCV without GStreamer: the pipeline it would open
    and what to install."""
    return EdgesegError(
        f"{spec} needs an OpenCV built with GStreamer, and this one has none "
        "(cv2.getBuildInformation() says GStreamer: NO); on a Jetson use JetPack's OpenCV "
        "(nvidia-opencv or python3-opencv, seen from a --system-site-packages venv as "
        "recipes/jetpack6.sh makes it, and pip uninstall opencv-python "
        "opencv-python-headless so they do not hide it), elsewhere an opencv-python built with "
        f"GStreamer; the pipeline it would open: {pipeline}"
    )


def v4l2_properties(settings: CameraSettings) -> list[tuple[int, float]]:
    """OpenCV properties to set on a V4L2 capture, in the order that works: the pixel format
    first (it resets the device), then width and height (the backend applies a size once both
    are set), the rate, and the driver's queue of :data:`V4L2_BUFFERS`."""
    props: list[tuple[int, float]] = []
    if settings.pixel_format is not None:
        code = V4L2_FORMATS[settings.pixel_format.lower()]
        props.append((cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter_fourcc(*code))))
    if settings.size_hw is not None:
        props.append((cv2.CAP_PROP_FRAME_WIDTH, float(settings.size_hw[1])))
        props.append((cv2.CAP_PROP_FRAME_HEIGHT, float(settings.size_hw[0])))
    if settings.fps is not None:
        props.append((cv2.CAP_PROP_FPS, float(settings.fps)))
    props.append((cv2.CAP_PROP_BUFFERSIZE, float(V4L2_BUFFERS)))
    return props


def fourcc_text(code: float) -> str:
    """1196444237.0 -> ``MJPG``; empty for 0 or a value that is not printable."""
    value = int(code)
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return text if value > 0 and text.isprintable() else ""


def describe_v4l2(capture: cv2.VideoCapture) -> str:
    """``1280x720 MJPG 30 fps, 1 buffer``: what the driver granted."""
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = capture.get(cv2.CAP_PROP_FPS)
    buffers = int(capture.get(cv2.CAP_PROP_BUFFERSIZE))
    parts = [f"{width}x{height}", fourcc_text(capture.get(cv2.CAP_PROP_FOURCC))]
    if fps and fps > 0:
        parts.append(f"{fps:g} fps,")
    parts.append(f"{buffers} buffer{'s' if buffers != 1 else ''}" if buffers > 0 else "")
    return " ".join(p for p in parts if p).rstrip(",")


def flip_image(image: np.ndarray, method: str) -> np.ndarray:
    """``image`` turned as nvvidconv's ``flip-method`` would (the CPU path for V4L2 cameras)."""
    if method == "none":
        return image
    if method == "counterclockwise":
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if method == "rotate-180":
        return cv2.rotate(image, cv2.ROTATE_180)
    if method == "clockwise":
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if method == "horizontal":
        return cv2.flip(image, 1)
    if method == "vertical":
        return cv2.flip(image, 0)
    if method == "upper-left-diagonal":  # the transpose
        return cv2.transpose(image)
    if method == "upper-right-diagonal":  # across the other diagonal
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    raise EdgesegError(f"unknown flip {method!r}; choose from: {', '.join(FLIP_METHODS)}")
