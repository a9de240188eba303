"""The rendered frames as a network stream: H.264 over RTP/UDP, or an RTSP server.

``rtp://HOST:PORT`` sends H.264 (GStreamer's ``x264enc``, ``nvv4l2h264enc`` on a Jetson) in RTP
packets to HOST (payload 96, SPS/PPS with every key frame and a key frame each 30 frames, so a
receiver can join at any time); without an H.264 encoder, RTP JPEG (payload 26). A receiver
needs the caps (:func:`~edgeseg.runtime.gstreamer.rtp_caps`) or an SDP file (docs/runtime.md).

``rtsp://@:PORT/PATH`` serves the same stream to any number of RTSP clients through
gst-rtsp-server (python3-gi with ``GstRtspServer``): the encoder sends RTP to a private UDP
port on 127.0.0.1, and the server's shared media re-payloads it for each client, so the frame is
encoded once whatever the number of viewers. Both need an OpenCV built with GStreamer.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.runtime import gstreamer as gst
from edgeseg.runtime.encoders import VideoEncoder, gstreamer_h264
from edgeseg.runtime.frames import quiet_opencv
from edgeseg.runtime.results import FrameResult, Sink

DEFAULT_FPS = 30.0


def _needs_gstreamer(what: str) -> None:
    if not gst.gstreamer_available():
        raise EdgesegError(
            f"{what} needs an OpenCV built with GStreamer, and this one has none "
            "(cv2.getBuildInformation() says GStreamer: NO); on a Jetson use JetPack's "
            "python3-opencv, on Debian/Ubuntu python3-opencv with gstreamer1.0-plugins-good/ugly"
        )


class RtpSink(Sink):
    """Send the rendered frames as RTP to ``host``:``port`` (module docs). ``bitrate_kbps``:
    H.264 bitrate (default 4000). The size is fixed by the first frame (even width and
    height); later frames of another size are resized to it."""

    needs_render = True

    def __init__(
        self, host: str, port: int, fps: float | None = None, bitrate_kbps: int | None = None
    ) -> None:
        _needs_gstreamer(f"rtp://{host}:{port}")
        if not 0 < port < 65536:
            raise EdgesegError(f"rtp://{host}:{port}: give a port from 1 to 65535")
        self.host, self.port = host, port
        self.fps = fps if fps and 0 < fps <= 1000 else DEFAULT_FPS
        self.encoder: VideoEncoder | None = gstreamer_h264(bitrate_kbps, network=True)
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    @property
    def h264(self) -> bool:
        return self.encoder is not None

    @property
    def description(self) -> str:
        how = self.encoder.description if self.encoder else "RTP JPEG (no H.264 encoder here)"
        return f"RTP to {self.host}:{self.port}, {how}"

    @property
    def note(self) -> str | None:
        if self.encoder is None:
            return "no GStreamer H.264 encoder (x264enc): streaming RTP JPEG instead"
        return None

    def pipeline(self) -> str:
        """The GStreamer pipeline the frames are pushed into."""
        fragment = self.encoder.gst_encoder if self.encoder else None
        return gst.rtp_writer_pipeline(self.host, self.port, fragment)

    def write(self, result: FrameResult) -> None:
        image = result.rendered if result.rendered is not None else result.frame.image
        if self._writer is None:
            height, width = image.shape[:2]
            self._size = (max(2, width // 2 * 2), max(2, height // 2 * 2))
            with quiet_opencv():
                self._writer = cv2.VideoWriter(
                    self.pipeline(), cv2.CAP_GSTREAMER, 0, self.fps, self._size, True
                )
            if not self._writer.isOpened():
                self._writer = None
                raise EdgesegError(f"GStreamer could not start the stream: {self.pipeline()}")
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(image))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            with quiet_opencv():
                self._writer.release()
            self._writer = None


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RtspSink(Sink):
    """Serve the rendered frames at ``rtsp://HOST:PORT/PATH`` (module docs); port 0 picks a
    free one (:attr:`url`). Raises EdgesegError when gst-rtsp-server is not installed or the
    port cannot be bound."""

    needs_render = True

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/live",
        fps: float | None = None,
        bitrate_kbps: int | None = None,
    ) -> None:
        _needs_gstreamer(f"rtsp://{host}:{port}{path}")
        self.path = path if path.startswith("/") and len(path) > 1 else "/live"
        self._rtp = RtpSink("127.0.0.1", free_udp_port(), fps, bitrate_kbps)
        self.host = host
        self._server: Any = None
        self._loop: Any = None
        self.port = self._start(host, port)
        self._thread = threading.Thread(target=self._loop.run, name="edgeseg-rtsp", daemon=True)
        self._thread.start()

    def _start(self, host: str, port: int) -> int:
        try:
            import gi

            gi.require_version("Gst", "1.0")
            gi.require_version("GstRtspServer", "1.0")
            from gi.repository import GLib, Gst, GstRtspServer
        except (ImportError, ValueError):
            raise EdgesegError(
                "rtsp:// output needs gst-rtsp-server for Python (Debian/Ubuntu/JetPack: sudo apt "
                "install python3-gi gir1.2-gst-rtsp-server-1.0)"
            ) from None
        Gst.init(None)
        h264 = self._rtp.h264
        depay = "rtph264depay ! h264parse ! rtph264pay config-interval=1 pt=96" if h264 else \
            "rtpjpegdepay ! rtpjpegpay pt=26"  # fmt: skip
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( udpsrc port={self._rtp.port} address=127.0.0.1 caps="{gst.rtp_caps(h264)}" ! '
            f"{depay} name=pay0 )"
        )
        factory.set_shared(True)
        self._server = GstRtspServer.RTSPServer()
        self._server.set_address(host)
        self._server.set_service(str(port))
        self._server.get_mount_points().add_factory(self.path, factory)
        context = GLib.MainContext.new()
        if not self._server.attach(context):
            raise EdgesegError(f"cannot serve RTSP on {host}:{port}; choose another port")
        self._loop = GLib.MainLoop.new(context, False)
        return int(self._server.get_bound_port())

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"rtsp://{shown}:{self.port}{self.path}"

    @property
    def description(self) -> str:
        how = self._rtp.encoder.description if self._rtp.encoder else "RTP JPEG"
        return f"RTSP server {self.url}, {how}"

    @property
    def note(self) -> str | None:
        return f"RTSP stream at {self.url} (VLC: Media > Open Network Stream)"

    def write(self, result: FrameResult) -> None:
        self._rtp.write(result)

    def close(self) -> None:
        self._rtp.close()
        if self._loop is not None:
            self._loop.quit()
            self._thread.join(timeout=5)
