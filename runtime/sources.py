"""Frame sources by URI: :func:`open_source` and its one table of schemes (:data:`SOURCE_SCHEMES`).

==================================  ==========================================  ======
URI                                 source                                      live
==================================  ==========================================  ======
``csi://0``                         Jetson CSI camera through Argus, scaled and   yes
                                    converted in nvvidconv
                                    (:func:`~edgeseg.runtime.cameras.csi_pipeline`)
``0``, ``/dev/video0``,             V4L2 camera (size, rate, pixel format, one-   yes
``v4l2:///dev/video0``              buffer queue); MJPEG through nvjpegdec on a
                                    Jetson
``clip.mp4``, ``file://clip.mp4``   video file (nvv4l2decoder on a Jetson)      no
``frames/``, ``'img/*.png'``        image folder or glob, sorted by name        no
``photo.jpg``                       one image                                   no
``rtsp://…``                        network stream (nvv4l2decoder on a Jetson)  yes
``http(s)://…``                     MJPEG stream (URLs ending in a video         yes
                                    suffix are files)
``gst:… ! appsink``, ``… ! appsink``  GStreamer pipeline (``gst:`` or a ``!``)  yes
==================================  ==========================================  ======

Which path decodes is the source's ``media`` (``OpenCV FFmpeg``, ``GStreamer nvv4l2decoder``…),
reported by ``edgeseg run`` and kept in the stats. On a Jetson (the NVIDIA elements in GStreamer's
registry, :func:`~edgeseg.runtime.gstreamer.on_jetson`) files and ``rtsp://`` decode in
``nvv4l2decoder``; elsewhere the same URIs take the CPU path (OpenCV's FFmpeg).

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
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from edgeseg.errors import EdgesegError
from edgeseg.media import FLIP_METHODS, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from edgeseg.runtime import gstreamer as gst
from edgeseg.runtime.cameras import (
    CameraSettings,
    csi_pipeline,
    describe_v4l2,
    flip_image,
    fourcc_text,
    gstreamer_missing,
    parse_csi,
    v4l2_properties,
)
from edgeseg.runtime.frames import Frame, FrameSource, SourceLost, quiet_opencv
from edgeseg.runtime.gst_standin import STANDIN_ENV, pipeline_to_open
from edgeseg.runtime.gstreamer import gstreamer_available
from edgeseg.runtime.images import ImageFolderSource, image_files
from edgeseg.runtime.uris import MediaUri, parse_uri
from edgeseg.validate import ascii_int

# Quiet FFmpeg (AV_LOG_QUIET) unless the user chose a level; OpenCV reads this when it first
# opens a video, not at import.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__all__ = ["SOURCE_SCHEMES", "VideoCaptureSource", "gstreamer_available", "open_source"]

STREAM_TIMEOUT_MS = 5000  # open and read timeouts for network streams


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
        media: str | None = None,
    ) -> None:
        self.target, self.kind, self.live = target, kind, live
        gstreamer = "GStreamer (CPU)" if kind == "gstreamer" else "OpenCV FFmpeg"
        self.media = media or ("OpenCV V4L2" if kind == "camera" else gstreamer)
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
        elif image.shape[2] == 4:  # BGRx from nvvidconv: one vectorised pass, no videoconvert
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
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
                "the camera pixel format applies to V4L2 cameras; a CSI camera delivers NV12 "
                "through Argus"
            )
        return
    raise EdgesegError(
        "camera width/height/fps/format/flip apply to cameras (csi://N, an index, /dev/videoN "
        f"or v4l2:///dev/videoN), not to a {kind} source"
    )


def _open_v4l2(uri: MediaUri, camera: CameraSettings, opening: _Opening) -> FrameSource:
    path = uri.location
    index = ascii_int(path)  # '²'.isdigit() is True, int('²') fails
    target: str | int = index if index is not None else path
    if index is None and not Path(path).exists():
        present = ", ".join(sorted(str(p) for p in Path("/dev").glob("video*"))) or "none"
        raise EdgesegError(f"camera {path} not found (cameras here: {present})")
    if camera.pixel_format == "mjpg" and gst.on_jetson():
        device = path if index is None else f"/dev/video{path}"
        flip = FLIP_METHODS.index(camera.flip)
        pipeline = gst.nv_mjpeg_camera_pipeline(device, camera.size_hw, camera.fps, flip)
        description = f"camera {device} (MJPEG, nvjpegdec)"
        return VideoCaptureSource(
            pipeline, "gstreamer", True, camera=camera, description=description,
            media="GStreamer nvjpegdec + nvvidconv",
        )  # fmt: skip
    return VideoCaptureSource(target, "camera", True, camera=camera)


def _open_csi(uri: MediaUri, camera: CameraSettings, opening: _Opening) -> FrameSource:
    _check_camera_options("csi", camera)
    sensor = parse_csi(uri.text)
    pipeline = csi_pipeline(sensor, camera, opening.scale_hw)
    if not gstreamer_available():
        raise gstreamer_missing(pipeline, uri.text)
    height, width = camera.size_hw or (0, 0)
    mode = f"{width}x{height}" if width else "1920x1080"
    description = f"CSI camera {sensor} (nvarguscamerasrc, {mode} at {camera.fps or 30:g} fps)"
    return VideoCaptureSource(
        pipeline, "gstreamer", True, camera=camera, description=description,
        media="GStreamer nvarguscamerasrc + nvvidconv",
    )  # fmt: skip


def _open_gst(uri: MediaUri, camera: CameraSettings, opening: _Opening) -> FrameSource:
    _check_camera_options("gstreamer", camera)
    if not gstreamer_available():
        raise EdgesegError(
            "this OpenCV was built without GStreamer (cv2.getBuildInformation() says "
            "GStreamer: NO), so it cannot run a pipeline; install an OpenCV with GStreamer "
            "(on Jetson the JetPack python3-opencv, not opencv-python from pip)"
        )
    pipeline = uri.location
    live = not pipeline.lstrip().startswith("filesrc")
    return VideoCaptureSource(pipeline, "gstreamer", live)


def _open_stream(uri: MediaUri, camera: CameraSettings, opening: _Opening) -> FrameSource:
    _check_camera_options("stream", camera)
    if uri.scheme == "rtsp" and gst.on_jetson():
        codec = dict(uri.query).get("codec", "h264").lower()
        pipeline = gst.nv_decode_pipeline(uri.text.split("?", 1)[0], rtsp=True, codec=codec)
        return VideoCaptureSource(
            pipeline, "gstreamer", True, description=f"stream {uri.text}",
            media="GStreamer nvv4l2decoder + nvvidconv",
        )  # fmt: skip
    if uri.scheme in ("http", "https") and uri.suffix in VIDEO_SUFFIXES:
        return VideoCaptureSource(uri.text, "file", False)
    return VideoCaptureSource(uri.text, "stream", True)


def _video_codec(path: str) -> str | None:
    """``h264``/``h265`` when OpenCV's FFmpeg reads that codec in the file, else None."""
    with quiet_opencv():
        capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        fourcc = fourcc_text(capture.get(cv2.CAP_PROP_FOURCC)).lower() if capture.isOpened() else ""
        capture.release()
    return {"avc1": "h264", "h264": "h264", "hev1": "h265", "hvc1": "h265", "hevc": "h265"}.get(
        fourcc
    )


def _open_file(uri: MediaUri, camera: CameraSettings, opening: _Opening) -> FrameSource:
    """A video file, an image, an image folder or glob."""
    text = uri.location
    if any(ch in text for ch in "*?["):
        _check_camera_options("image glob", camera)
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgesegError(f"no images match {text}")
        return ImageFolderSource(files, f"images {text}")
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
        return ImageFolderSource(files, f"folder {path}")
    if not os.access(path, os.R_OK):
        raise EdgesegError(f"cannot read {path}: permission denied")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        _check_camera_options("image", camera)
        # The header only: decoding here would cost a 16000x16000 PNG 768 MB before the
        # pixel budget (checked when the frame is read) could refuse it.
        if not cv2.haveImageReader(str(path)):
            raise EdgesegError(f"cannot read image {path}: not an image OpenCV can decode")
        return ImageFolderSource([path], f"image {path}")
    _check_camera_options("file", camera)
    codec = _video_codec(str(path)) if gst.on_jetson() else None
    if codec is not None:
        pipeline = gst.nv_decode_pipeline(str(path), rtsp=False, codec=codec)
        return VideoCaptureSource(
            pipeline, "gstreamer", False, description=f"file {path}",
            media="GStreamer nvv4l2decoder + nvvidconv",
        )  # fmt: skip
    return VideoCaptureSource(str(path), "file", False)


class _Opening:
    """What an opener may need beyond the URI and the camera: ``scale_hw``, the size a
    hardware scaler delivers frames at (csi://)."""

    def __init__(self, scale_hw: tuple[int, int] | None) -> None:
        self.scale_hw = scale_hw


#: Source scheme -> opener. One table; :func:`open_source` is the only reader.
SOURCE_SCHEMES: dict[str, Callable[[MediaUri, CameraSettings, _Opening], FrameSource]] = {
    "file": _open_file,
    "v4l2": _open_v4l2,
    "csi": _open_csi,
    "gst": _open_gst,
    "rtsp": _open_stream,
    "rtsps": _open_stream,
    "rtmp": _open_stream,
    "udp": _open_stream,
    "tcp": _open_stream,
    "srt": _open_stream,
    "http": _open_stream,
    "https": _open_stream,
}


def open_source(
    spec: str | int | os.PathLike[str],
    camera_size: tuple[int, int] | None = None,
    camera_fps: float | None = None,
    live: bool | None = None,
    *,
    camera: CameraSettings | None = None,
    camera_format: str | None = None,
    flip: str = "none",
    scale_hw: tuple[int, int] | None = None,
) -> FrameSource:
    """Open what ``spec`` names (the module table). ``camera`` (or the older ``camera_size``
    (height, width), ``camera_fps``, ``camera_format``, ``flip``) sets up a camera;
    ``scale_hw``: the size a hardware scaler delivers camera frames at (csi://).

    ``live`` overrides the drop policy the source kind implies. Raises EdgesegError with one
    line for a nonexistent or unreadable source, an empty folder, a missing camera, an unknown
    scheme, or a GStreamer pipeline (``csi://`` included) on an OpenCV built without GStreamer.

    >>> source = open_source("clip.mp4")   # doctest: +SKIP
    >>> source.media  # 'OpenCV FFmpeg'; 'GStreamer nvv4l2decoder + nvvidconv' on a Jetson
    """
    camera = camera or CameraSettings(camera_size, camera_fps, camera_format, flip)
    if not str(spec).strip():
        raise EdgesegError("--source is empty (an unset variable?); give a file, folder or camera")
    uri = parse_uri(spec)
    if uri.scheme == "file" and uri.text.lower().startswith("file://") and "://" in uri.location:
        raise EdgesegError(f"unsupported source {uri.text}")
    opener = SOURCE_SCHEMES.get(uri.scheme)
    if opener is None:
        known = ", ".join(f"{s}://" for s in SOURCE_SCHEMES if s != "file")
        raise EdgesegError(f"unsupported URL scheme {uri.scheme!r} in {uri.text}; use {known}")
    source = opener(uri, camera, _Opening(scale_hw))
    if live is not None:
        source.live = live
    return source
