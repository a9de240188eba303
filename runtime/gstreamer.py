"""GStreamer as OpenCV uses it: which elements this machine has, and the pipelines edgeseg builds.

Whether the NVIDIA elements are present is asked of GStreamer's registry (through python3-gi
where importable, else ``gst-inspect-1.0 --exists``), once per process: on a Jetson,
``nvv4l2decoder`` decodes files and ``rtsp://`` streams, ``nvjpegdec`` MJPEG cameras,
``nvvidconv`` (the VIC engine) scales and converts to BGRx, and ``nvv4l2h264enc`` encodes.
Elsewhere ``x264enc`` encodes and the CPU path decodes. The pipelines follow jetson-utils'
``gstDecoder``/``gstEncoder``/``gstCamera`` forms, ending in an ``appsink`` (sources) or starting
at an ``appsrc`` (outputs) for OpenCV's GStreamer backend; frames reach OpenCV as BGRx straight
from ``nvvidconv`` on a Jetson (no ``videoconvert`` on the CPU).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

import cv2

#: The elements of JetPack's GStreamer that edgeseg uses (the registry is asked about each).
NVIDIA_ELEMENTS = ("nvv4l2decoder", "nvjpegdec", "nvvidconv", "nvv4l2h264enc")
APPSINK = "appsink"  # unnamed: OpenCV 4.6 does not find an appsink named otherwise
LIVE_APPSINK = "appsink drop=true max-buffers=1 sync=false"
DEFAULT_STREAM_KBPS = 4000  # network streams: 4 Mbit/s (jetson-utils' default bitrate)
RTSP_LATENCY_MS = 200
#: Container suffix -> GStreamer muxer for H.264 files.
MUXERS = {".mp4": "mp4mux faststart=true", ".m4v": "mp4mux faststart=true", ".mov": "qtmux",
          ".mkv": "matroskamux", ".avi": "avimux"}  # fmt: skip
#: Container suffix -> demuxer, as gstDecoder picks them.
DEMUXERS = {".mp4": "qtdemux", ".m4v": "qtdemux", ".mov": "qtdemux", ".qt": "qtdemux",
            ".mkv": "matroskademux", ".webm": "matroskademux", ".avi": "avidemux",
            ".flv": "flvdemux"}  # fmt: skip


def gstreamer_available() -> bool:
    """Whether this OpenCV was built with GStreamer (``cv2.getBuildInformation()``)."""
    match = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() != "NO"


@functools.cache
def has_element(name: str) -> bool:
    """Whether GStreamer's registry holds element ``name`` (False without GStreamer)."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        from gi.repository import Gst

        Gst.init(None)
        return Gst.ElementFactory.find(name) is not None
    except (ImportError, ValueError):
        pass
    tool = shutil.which("gst-inspect-1.0")
    if tool is None:
        return False
    try:
        done = subprocess.run([tool, "--exists", name], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def on_jetson() -> bool:
    """GStreamer in OpenCV and the NVIDIA decode, convert and encode elements present."""
    return gstreamer_available() and all(has_element(e) for e in NVIDIA_ELEMENTS)


def _caps_size(size_hw: tuple[int, int] | None) -> str:
    return f", width=(int){size_hw[1]}, height=(int){size_hw[0]}" if size_hw else ""


def nv_to_bgrx(size_hw: tuple[int, int] | None = None, flip_method: int = 0) -> str:
    """``nvvidconv`` scaling (when ``size_hw`` is given) and converting to BGRx in system
    memory, where OpenCV's appsink takes it; no CPU ``videoconvert``."""
    flip = f" flip-method={flip_method}" if flip_method else ""
    return f"nvvidconv name=vidconv{flip} ! video/x-raw, format=(string)BGRx{_caps_size(size_hw)}"


def nv_decode_pipeline(
    location: str, *, rtsp: bool, codec: str = "h264", size_hw: tuple[int, int] | None = None
) -> str:
    """A file or ``rtsp://`` stream decoded by ``nvv4l2decoder`` (gstDecoder's form: demuxer,
    parser, decoder with ``enable-max-performance=1``, NVMM caps, ``nvvidconv``)."""
    parser = f"{codec}parse"
    if rtsp:
        head = f"rtspsrc location={location} latency={RTSP_LATENCY_MS} ! queue ! rtp{codec}depay"
        sink = LIVE_APPSINK
    else:
        suffix = "." + location.rsplit(".", 1)[-1].lower() if "." in location else ""
        demux = DEMUXERS.get(suffix)
        head = f"filesrc location={_quoted(location)}" + (f" ! {demux}" if demux else "")
        head += " ! queue"
        sink = APPSINK
    return (
        f"{head} ! {parser} ! nvv4l2decoder name=decoder enable-max-performance=1 ! "
        f"video/x-raw(memory:NVMM) ! {nv_to_bgrx(size_hw)} ! {sink}"
    )


def nv_mjpeg_camera_pipeline(
    device: str, size_hw: tuple[int, int] | None, fps: float | None, flip_method: int = 0
) -> str:
    """A V4L2 MJPEG camera decoded by ``nvjpegdec`` (gstCamera's form), BGRx by nvvidconv."""
    rate = f", framerate=(fraction){fraction(fps)}" if fps else ""
    return (
        f"v4l2src device={device} do-timestamp=true ! image/jpeg{_caps_size(size_hw)}{rate} ! "
        f"nvjpegdec name=decoder ! video/x-raw ! {nv_to_bgrx(None, flip_method)} ! {LIVE_APPSINK}"
    )


def fraction(fps: float) -> str:
    """30 -> ``30/1``; 29.97 -> ``2997/100`` (GStreamer caps take a fraction)."""
    if float(fps).is_integer():
        return f"{int(fps)}/1"
    return f"{round(fps * 100)}/100"


def _quoted(path: str) -> str:
    """A location for gst-launch syntax: quoted when it holds spaces or quotes."""
    if re.fullmatch(r"[\w./+\-:@%]+", path):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def h264_encoder(bitrate_kbps: int | None, *, network: bool, hardware: bool) -> str:
    """The H.264 encoder element with its options, as gstEncoder sets them: on a Jetson
    ``nvv4l2h264enc`` fed NVMM by nvvidconv (bit/s; SPS/PPS and an IDR every 30 frames for
    streams), elsewhere ``x264enc`` (kbit/s, ultrafast, zerolatency) fed I420."""
    kbps = bitrate_kbps or (DEFAULT_STREAM_KBPS if network else None)
    if hardware:
        rate = f" bitrate={kbps * 1000}" if kbps else ""
        extra = " insert-sps-pps=1 insert-vui=1 idrinterval=30" if network else ""
        return (
            "videoconvert ! video/x-raw, format=(string)BGRx ! nvvidconv name=vidconv ! "
            f"video/x-raw(memory:NVMM), format=(string)NV12 ! nvv4l2h264enc name=encoder{rate}"
            f"{extra} maxperf-enable=1 ! video/x-h264"
        )
    rate = f" bitrate={kbps}" if kbps else ""
    extra = " key-int-max=30 insert-vui=1" if network else ""
    return (
        "videoconvert ! video/x-raw, format=(string)I420 ! x264enc name=encoder"
        f"{rate} speed-preset=ultrafast tune=zerolatency{extra} ! "
        "video/x-h264, profile=(string)high"
    )


def file_writer_pipeline(path: str, suffix: str, encoder: str) -> str:
    """``appsrc`` -> ``encoder`` -> parser -> muxer -> the file (OpenCV's VideoWriter feeds
    BGR frames)."""
    return (
        f"appsrc ! video/x-raw, format=(string)BGR ! {encoder} ! h264parse ! "
        f"{MUXERS[suffix]} ! filesink location={_quoted(path)}"
    )


def rtp_writer_pipeline(host: str, port: int, encoder: str | None, quality: int = 85) -> str:
    """H.264 over RTP/UDP (``rtph264pay config-interval=1``, payload 96), or RTP JPEG when
    ``encoder`` is None (no H.264 encoder here)."""
    if encoder is None:
        payload = f"videoconvert ! jpegenc quality={quality} ! rtpjpegpay pt=26"
    else:
        payload = f"{encoder} ! rtph264pay config-interval=1 pt=96"
    return (
        f"appsrc ! video/x-raw, format=(string)BGR ! {payload} ! "
        f"udpsink host={host} port={port} auto-multicast=true sync=false async=false"
    )


def rtp_caps(h264: bool) -> str:
    """The caps a receiver of :func:`rtp_writer_pipeline` gives its ``udpsrc``."""
    if h264:
        return "application/x-rtp, media=(string)video, clock-rate=(int)90000, " \
            "encoding-name=(string)H264, payload=(int)96"  # fmt: skip
    return "application/x-rtp, media=(string)video, clock-rate=(int)90000, " \
        "encoding-name=(string)JPEG, payload=(int)26"  # fmt: skip
