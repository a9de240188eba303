"""Frame sources: cameras, video files, image folders and globs, network streams, GStreamer.

:func:`open_source` turns what a user types into a :class:`FrameSource`:

==================================  ==========================================  ======
spec                                source                                      live
==================================  ==========================================  ======
``csi://0``                         Jetson CSI camera through Argus               yes
                                    (:func:`~edgeseg.runtime.cameras.csi_pipeline`)
``0``, ``/dev/video0``,             V4L2 camera (``--camera-width/height/fps``,   yes
``v4l2:///dev/video0``              ``--camera-format``, one-buffer queue)
``clip.mp4``, ``file://clip.mp4``   video file                                  no
``frames/``, ``'img/*.png'``        image folder or glob, sorted by name        no
``photo.jpg``                       one image                                   no
``rtsp://…``, ``http://…``          network stream (``http`` URLs ending in a    yes
                                    video suffix are files)
``nvarguscamerasrc ! … ! appsink``  GStreamer pipeline (a ``!`` in the spec)    yes
==================================  ==========================================  ======

A *live* source keeps only the newest frame when inference falls behind (latency first); a file
source never drops a frame. A frame that cannot be decoded raises :class:`CorruptFrame` (the
pipeline skips and counts it); a camera or stream that stops delivering raises
:class:`SourceLost`, and the pipeline calls :meth:`FrameSource.reopen` with backoff
(:class:`RetryPolicy`). A source that cannot be opened at all raises EdgesegError, one line.

OpenCV's and FFmpeg's own warnings are silenced while opening (they would print beside our one
line); set ``OPENCV_FFMPEG_LOGLEVEL=24`` and ``OPENCV_LOG_LEVEL=INFO`` to see them.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from pathlib import Path

import cv2

from edgeseg.errors import EdgesegError
from edgeseg.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from edgeseg.runtime.cameras import (
    CameraSettings,
    csi_pipeline,
    describe_v4l2,
    flip_image,
    gstreamer_missing,
    parse_csi,
    v4l2_properties,
)
from edgeseg.runtime.frames import Frame, FrameSource, SourceLost, quiet_opencv
from edgeseg.runtime.gst_standin import STANDIN_ENV, pipeline_to_open
from edgeseg.runtime.images import ImageFolderSource, image_files
from edgeseg.validate import ascii_int

# Quiet FFmpeg (AV_LOG_QUIET) unless the user chose a level; OpenCV reads this when it first
# opens a video, not at import.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__all__ = ["VideoCaptureSource", "gstreamer_available", "open_source"]

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt", "http", "https")
STREAM_TIMEOUT_MS = 5000  # open and read timeouts for network streams


def gstreamer_available() -> bool:
    """Whether this OpenCV was built with GStreamer (``cv2.getBuildInformation()``)."""
    match = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() != "NO"


class VideoCaptureSource(FrameSource):
    """Anything ``cv2.VideoCapture`` opens: ``kind`` is camera (V4L2), file, stream or
    gstreamer (a pipeline; ``csi://`` builds one). ``camera``: what a V4L2 camera is asked for
    (:class:`~edgeseg.runtime.cameras.CameraSettings`; ``camera_size``/``camera_fps`` are the
    older spelling of its size and rate); its flip is applied to every frame here, except for a
    pipeline, which flips on its own."""

    def __init__(
        self,
        target: str | int,
        kind: str,
        live: bool,
        camera_size: tuple[int, int] | None = None,
        camera_fps: float | None = None,
        *,
        camera: CameraSettings | None = None,
        description: str | None = None,
    ) -> None:
        self.target, self.kind, self.live = target, kind, live
        self.camera = camera or CameraSettings(camera_size, camera_fps)
        self.description = description or f"{kind} {target}"
        self._flip = self.camera.flip if kind != "gstreamer" else "none"
        self._index = 0
        self._capture = self._open()
        if kind == "camera":
            self.description += f" ({describe_v4l2(self._capture)})"
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if kind == "file" and count > 0 else None
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 0 < fps <= 1000 else None

    def _open(self) -> cv2.VideoCapture:
        with quiet_opencv():
            if self.kind == "camera":
                api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
                capture = cv2.VideoCapture(self.target, api)
                self._configure_camera(capture)
            elif self.kind == "stream":
                params = [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    STREAM_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    STREAM_TIMEOUT_MS,
                ]
                capture = cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG, params)
            elif self.kind == "gstreamer":
                pipeline = pipeline_to_open(str(self.target))
                if pipeline != str(self.target):  # EDGESEG_GST_STANDIN=1, a rehearsal
                    print(f"edgeseg: {STANDIN_ENV}=1, opening: {pipeline}", file=sys.stderr)
                capture = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
            else:
                capture = cv2.VideoCapture(str(self.target))
        if not capture.isOpened():
            raise EdgesegError(self._open_failure())
        return capture

    def _configure_camera(self, capture: cv2.VideoCapture) -> None:
        # Each set() may be refused (a format or size the device lacks); the granted mode is
        # read back into the description instead.
        if not capture.isOpened():
            return
        for prop, value in v4l2_properties(self.camera):
            capture.set(prop, value)

    def _open_failure(self) -> str:
        if self.kind == "camera":
            present = ", ".join(sorted(str(p) for p in Path("/dev").glob("video*"))) or "none"
            return (
                f"cannot open camera {self.target} (cameras here: {present}); check that it is "
                "connected and not used by another program"
            )
        if self.kind == "stream":
            return f"cannot open stream {self.target}; check the address and that it is reachable"
        if self.kind == "gstreamer":
            return f"GStreamer pipeline did not start: {self.target}"
        return f"cannot open video {self.target}: not a video OpenCV can decode"

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        now = time.perf_counter()
        if not ok or image is None:
            if self.live:
                raise SourceLost(f"{self.description} stopped delivering frames")
            return None
        index = self._index
        self._index += 1
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self._flip != "none":
            image = flip_image(image, self._flip)
        return Frame(image, index, now, f"{index:06d}")

    def reopen(self) -> None:
        self._capture.release()
        try:
            self._capture = self._open()
        except EdgesegError as exc:
            raise SourceLost(str(exc)) from None

    def close(self) -> None:
        self._capture.release()


def _check_camera_options(kind: str, camera: CameraSettings) -> None:
    if kind in ("camera", "csi") or not camera.given:
        if kind == "csi" and camera.pixel_format is not None:
            raise EdgesegError(
                "--camera-format applies to V4L2 cameras; a CSI camera delivers NV12 through Argus"
            )
        return
    raise EdgesegError(
        "--camera-width/--camera-height/--camera-fps/--camera-format/--flip apply to cameras "
        f"(csi://N, an index, /dev/videoN or v4l2:///dev/videoN), not to a {kind} source"
    )


def _v4l2_device(text: str) -> tuple[str, str | int]:
    path = text.split("://", 1)[1] if text.lower().startswith("v4l2://") else text
    if ascii_int(path) is not None:
        return "camera", int(path)
    if not Path(path).exists():
        present = ", ".join(sorted(str(p) for p in Path("/dev").glob("video*"))) or "none"
        raise EdgesegError(f"camera {path} not found (cameras here: {present})")
    return "camera", path


def _open_csi(text: str, camera: CameraSettings, live: bool | None) -> FrameSource:
    _check_camera_options("csi", camera)
    sensor = parse_csi(text)
    pipeline = csi_pipeline(sensor, camera)
    if not gstreamer_available():
        raise gstreamer_missing(pipeline, text)
    height, width = camera.size_hw or (0, 0)
    mode = f"{width}x{height}" if width else "1920x1080"
    description = f"CSI camera {sensor} (nvarguscamerasrc, {mode} at {camera.fps or 30:g} fps)"
    source = VideoCaptureSource(pipeline, "gstreamer", True, camera=camera, description=description)
    return _with_live(source, live)


def _open_path(text: str, camera: CameraSettings, live: bool | None) -> FrameSource | Path:
    """An image folder, glob or image as a source; a video file as its path."""
    if any(ch in text for ch in "*?["):
        _check_camera_options("image glob", camera)
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgesegError(f"no images match {text}")
        return _with_live(ImageFolderSource(files, f"images {text}"), live)
    path = Path(text).expanduser()
    if not path.exists():
        raise EdgesegError(
            f"source {text} not found; expected csi://N, a camera index or /dev/videoN, a video "
            "file, an image folder or glob, an rtsp:// or http:// URL, or a GStreamer pipeline"
        )
    if path.is_dir():
        _check_camera_options("image folder", camera)
        files = image_files(path)
        if not files:
            raise EdgesegError(
                f"no images in folder {path} (looked for {' '.join(IMAGE_SUFFIXES)})"
            )
        return _with_live(ImageFolderSource(files, f"folder {path}"), live)
    if not os.access(path, os.R_OK):
        raise EdgesegError(f"cannot read {path}: permission denied")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        _check_camera_options("image", camera)
        # The header only: decoding here would cost a 16000x16000 PNG 768 MB before the
        # pixel budget (checked when the frame is read) could refuse it.
        if not cv2.haveImageReader(str(path)):
            raise EdgesegError(f"cannot read image {path}: not an image OpenCV can decode")
        return _with_live(ImageFolderSource([path], f"image {path}"), live)
    return path


def open_source(
    spec: str | int | os.PathLike[str],
    camera_size: tuple[int, int] | None = None,
    camera_fps: float | None = None,
    live: bool | None = None,
    *,
    camera_format: str | None = None,
    flip: str = "none",
) -> FrameSource:
    """Open what ``spec`` names (see the module table). ``camera_size`` is (height, width);
    ``camera_format`` (``mjpg``/``yuyv``) and ``flip`` (:data:`~edgeseg.runtime.cameras.
    FLIP_METHODS`) apply to cameras too.

    ``live`` overrides the drop policy the source kind implies. Raises EdgesegError with one
    line for a nonexistent or unreadable source, an empty folder, a missing camera, or a
    GStreamer pipeline (``csi://`` included) on an OpenCV built without GStreamer.
    """
    camera = CameraSettings(camera_size, camera_fps, camera_format, flip)
    text = str(spec).strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not text:
        raise EdgesegError("--source is empty (an unset variable?); give a file, folder or camera")
    if (
        isinstance(spec, int)
        or ascii_int(text) is not None
        or text.startswith("/dev/video")
        or scheme == "v4l2"
    ):
        kind, target = _v4l2_device(text)
    elif scheme == "csi":
        return _open_csi(text, camera, live)
    elif "!" in text:
        if not gstreamer_available():
            raise EdgesegError(
                "this OpenCV was built without GStreamer (cv2.getBuildInformation() says "
                "GStreamer: NO), so it cannot run a pipeline; install an OpenCV with GStreamer "
                "(on Jetson the JetPack python3-opencv, not opencv-python from pip)"
            )
        kind, target = "gstreamer", text
    elif scheme:
        if scheme == "file":
            rest = text.split("://", 1)[1]
            return open_source(
                rest, camera_size, camera_fps, live, camera_format=camera_format, flip=flip
            )
        if scheme not in LIVE_SCHEMES:
            raise EdgesegError(
                f"unsupported URL scheme {scheme!r} in {text}; use csi://, v4l2://, file://, "
                f"or one of {', '.join(s + '://' for s in LIVE_SCHEMES)}"
            )
        suffix = Path(text.split("?", 1)[0]).suffix.lower()
        remote_file = scheme in ("http", "https") and suffix in VIDEO_SUFFIXES
        kind, target = ("file" if remote_file else "stream"), text
    else:
        opened = _open_path(text, camera, live)
        if isinstance(opened, FrameSource):
            return opened
        kind, target = "file", str(opened)
    _check_camera_options(kind, camera)
    implied = kind in ("camera", "stream", "gstreamer") and not (
        kind == "gstreamer" and str(target).lstrip().startswith("filesrc")
    )
    return VideoCaptureSource(target, kind, implied if live is None else live, camera=camera)


def _with_live(source: FrameSource, live: bool | None) -> FrameSource:
    if live is not None:
        source.live = live
    return source
