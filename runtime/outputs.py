"""Outputs by URI: :func:`open_output` and its one table of schemes.

==============================  ===================================================  =========
URI                             output                                               sink
==============================  ===================================================  =========
``out.mp4`` (.m4v .mov .mkv)    video file, H.264 where an encoder exists            VideoSink
``out.avi``                     video file, MJPEG                                    VideoSink
``out.jpg``, ``out.png`` ...    one image, for a one-image source                    ImageSink
``frames/`` (or no suffix)      folder of JPEG frames                                FramesSink
``rtp://HOST:PORT``             H.264 RTP over UDP (RTP JPEG without an encoder)     RtpSink
``rtsp://@:PORT/PATH``          RTSP server (gst-rtsp-server), ``@``: every          RtspSink
                                interface
``display://0``                 a window                                             Display
``http://[HOST]:PORT``          the browser view: page, MJPEG, stats                 ServeSink
==============================  ===================================================  =========

``file://PATH`` is the same as ``PATH``. Every sink opened here has a ``description`` (which
encoder or path runs it, for the stats and the run's report) and may have a ``note`` (what the
user should know once, such as an mp4v fallback). The CLI's ``--output`` values, the Python API
(:class:`~edgeseg.runtime.options.OutputOptions`) and the browser view go through this one
function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.media import IMAGE_SUFFIXES
from edgeseg.runtime.options import EncodingOptions, ServeOptions
from edgeseg.runtime.results import Sink
from edgeseg.runtime.sinks import DisplaySink, FramesSink, ImageSink, is_frames_folder
from edgeseg.runtime.stream_sinks import RtpSink, RtspSink
from edgeseg.runtime.uris import MediaUri, parse_uri
from edgeseg.runtime.video_sink import VIDEO_CODECS, VideoSink


@dataclass(frozen=True)
class OutputContext:
    """What an output needs to know of the run: the source's ``fps`` and ``live``ness, whether
    it is ``one_image`` (an image output is then allowed), the model ``card`` and stats fields
    ``extra`` (the browser view shows them), ``encoding`` of video, ``serve`` settings of an
    ``http://`` output, and the window ``title``."""

    fps: float | None = None
    live: bool = False
    one_image: bool = False
    card: ModelCard | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    encoding: EncodingOptions = field(default_factory=EncodingOptions)
    serve: ServeOptions | None = None
    title: str = "edgeseg"


def _open_file(uri: MediaUri, context: OutputContext) -> Sink:
    target = uri.location
    if is_frames_folder(target):
        return FramesSink(Path(target))
    suffix = Path(target).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        if not context.one_image:
            raise EdgesegError(
                f"output {target} is one image, but the source has many frames; give a video "
                "file (.mp4) or a folder (a path ending in /)"
            )
        return ImageSink(Path(target))
    if suffix not in VIDEO_CODECS:
        raise EdgesegError(
            f"cannot write {Path(target).name}: use one of {', '.join(VIDEO_CODECS)} (video), an "
            "image for an image source, a folder (a path ending in /), rtp://, rtsp://, "
            "display:// or http://"
        )
    return VideoSink(Path(target), context.fps, live=context.live, encoding=context.encoding)


def _open_rtp(uri: MediaUri, context: OutputContext) -> Sink:
    if uri.port is None or uri.location in ("", "@"):
        raise EdgesegError(f"{uri.text}: expected rtp://HOST:PORT, e.g. rtp://192.168.1.20:5000")
    return RtpSink(uri.location, uri.port, context.fps, context.encoding.bitrate_kbps)


def _open_rtsp(uri: MediaUri, context: OutputContext) -> Sink:
    if uri.port is None:
        raise EdgesegError(f"{uri.text}: expected rtsp://@:PORT/PATH, e.g. rtsp://@:8554/live")
    host = uri.host(default="127.0.0.1")
    return RtspSink(host, uri.port, uri.path or "/live", context.fps, context.encoding.bitrate_kbps)


def _open_display(uri: MediaUri, context: OutputContext) -> Sink:
    return DisplaySink(context.title)


def _open_http(uri: MediaUri, context: OutputContext) -> Sink:
    from edgeseg.runtime.serve import ServeSink

    if uri.port is None:
        raise EdgesegError(f"{uri.text}: expected http://[HOST]:PORT, e.g. http://@:8080")
    serve = context.serve or ServeOptions(uri.port)
    host = uri.host(default="127.0.0.1")
    host = f"[{host}]" if ":" in host else host
    return ServeSink(
        f"{host}:{uri.port}", token=serve.token, card=context.card, extra=dict(context.extra),
        max_viewers=serve.max_viewers,
    )  # fmt: skip


#: Output scheme -> opener. One table; :func:`open_output` is the only reader.
OUTPUT_SCHEMES: dict[str, Callable[[MediaUri, OutputContext], Sink]] = {
    "file": _open_file,
    "rtp": _open_rtp,
    "rtsp": _open_rtsp,
    "display": _open_display,
    "http": _open_http,
}


def open_output(uri: str | Path, context: OutputContext | None = None) -> Sink:
    """The sink ``uri`` names (module table). Raises EdgesegError with one line for an unknown
    scheme, an image output for a many-frame source, or what the scheme needs and lacks."""
    parsed = parse_uri(uri)
    opener = OUTPUT_SCHEMES.get(parsed.scheme)
    if opener is None:
        known = ", ".join(f"{s}://" for s in OUTPUT_SCHEMES if s != "file")
        raise EdgesegError(
            f"unsupported output {parsed.text}: give a file or folder, or one of {known}"
        )
    sink = opener(parsed, context or OutputContext())
    sink.target = parsed.text
    return sink


def output_path(uri: str | Path) -> Path | None:
    """The file or folder an output URI writes, or None for a stream, window or view (for
    the checks that an output overwrites no input)."""
    parsed = parse_uri(uri)
    return Path(parsed.location) if parsed.scheme == "file" else None
