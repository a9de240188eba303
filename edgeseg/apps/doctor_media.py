"""``edgeseg doctor``'s video checks: cameras, OpenCV's GStreamer and FFmpeg, a display."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from typing import Any


def opencv_build_flags() -> dict[str, str]:
    """{"GStreamer": "YES (1.22)", "FFMPEG": "YES", "GUI": "NONE", ...} from OpenCV's build
    information (the lines under Video I/O and GUI)."""
    import cv2

    flags = {}
    for line in cv2.getBuildInformation().splitlines():
        match = re.match(r"^\s+(GStreamer|FFMPEG|GUI|GTK\+|QT|V4L/V4L2|Win32 UI):\s+(.+)$", line)
        if match:
            flags.setdefault(match.group(1), match.group(2).strip())
    return flags


def check_opencv(report: Any) -> None:
    import cv2

    flags = opencv_build_flags()
    report.facts["opencv"] = flags
    ffmpeg = flags.get("FFMPEG", "NO").startswith("YES")
    gstreamer = flags.get("GStreamer", "NO").startswith("YES")
    report.add(
        "opencv ffmpeg",
        "ok" if ffmpeg else "warn",
        f"OpenCV {cv2.__version__}: FFmpeg {flags.get('FFMPEG', 'NO')}",
        "video files and RTSP need OpenCV with FFmpeg: pip install opencv-python-headless",
    )
    jetson = bool(report.facts.get("jetson"))
    report.add(
        "opencv gstreamer",
        "ok" if gstreamer else ("warn" if jetson else "skip"),
        f"GStreamer {flags.get('GStreamer', 'NO')}",
        "CSI cameras and GStreamer pipelines need OpenCV built with GStreamer: on Jetson use "
        "JetPack's (sudo apt install python3-opencv; pip uninstall opencv-python-headless)"
        if jetson
        else "only needed for GStreamer pipeline sources (Jetson CSI cameras)",
    )


def describe_camera(device: str) -> str:
    """What a V4L2 device offers: v4l2-ctl's formats where installed, else OpenCV's default."""
    if shutil.which("v4l2-ctl"):
        try:
            result = subprocess.run(
                ["v4l2-ctl", "-d", device, "--list-formats-ext"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            formats = re.findall(r"'(\w+)'", result.stdout)
            sizes = sorted(set(re.findall(r"Size: Discrete (\d+x\d+)", result.stdout)))
            if formats:
                return f"{'/'.join(dict.fromkeys(formats))} {', '.join(sizes[-3:])}"
        except (OSError, subprocess.TimeoutExpired):
            pass
    import cv2

    capture = cv2.VideoCapture(device)
    try:
        if not capture.isOpened():
            return "cannot be opened (busy, or not a capture device)"
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = capture.get(cv2.CAP_PROP_FPS)
        return f"{width}x{height} at {fps:.0f} fps (OpenCV's default mode)"
    finally:
        capture.release()


def check_cameras(report: Any, pattern: str = "/dev/video*") -> None:
    devices = sorted(glob.glob(pattern), key=lambda d: (len(d), d))
    if not devices:
        report.add(
            "cameras",
            "skip",
            f"no camera ({pattern})",
            "plug in a USB/CSI camera, or run on a file or stream: edgeseg run --source VIDEO",
        )
        return
    for device in devices:
        detail = describe_camera(device)
        report.add(
            f"camera {device}",
            "warn" if detail.startswith("cannot") else "ok",
            detail,
            f"close what uses it (fuser {device}) or check its permissions (group video)",
        )


def check_display(report: Any) -> None:
    session = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
    gui = report.facts.get("opencv", {}).get("GUI", "NONE")
    if not session:
        report.add(
            "display",
            "skip",
            "no display ($DISPLAY and $WAYLAND_DISPLAY unset): --display cannot show a window",
            "write the overlay with --output overlay.mp4 or stream it; or run on the desktop",
        )
        return
    headless = gui.upper().startswith("NONE")
    report.add(
        "display",
        "warn" if headless else "ok",
        f"display {session}, OpenCV GUI {gui}",
        "this OpenCV has no GUI: pip uninstall opencv-python-headless && pip install "
        "opencv-python (or JetPack's python3-opencv)",
    )


def check_media_paths(report: Any) -> None:
    """Which path ``edgeseg run`` takes here for decoding and each output encoder: the NVIDIA
    elements on a Jetson, the CPU elsewhere (the same choice the runtime makes)."""
    from edgeseg.runtime import gstreamer as gst
    from edgeseg.runtime.encoders import choose_file_encoder, gstreamer_h264
    from edgeseg.runtime.options import EncodingOptions

    jetson = gst.on_jetson()
    decode = "GStreamer nvv4l2decoder + nvvidconv" if jetson else "OpenCV FFmpeg (CPU)"
    report.facts["media"] = {"decode": decode}
    report.add("media decode", "ok", f"video files and rtsp:// decode through {decode}")
    encoder = choose_file_encoder("overlay.mp4", EncodingOptions())
    report.facts["media"]["mp4"] = encoder.description
    report.add(
        "media mp4",
        "warn" if encoder.note else "ok",
        f"--output overlay.mp4 writes {encoder.description}",
        "an OpenCV with GStreamer and x264enc (python3-opencv, gstreamer1.0-plugins-ugly) "
        "writes H.264, which browsers play",
    )
    stream = gstreamer_h264(None, network=True)
    detail = stream.description if stream else "none (RTP JPEG)"
    report.facts["media"]["rtp"] = detail
    report.add(
        "media rtp",
        "ok" if stream else "skip",
        f"rtp:// and rtsp:// outputs encode with {detail}",
        "rtp:// and rtsp:// outputs need an OpenCV with GStreamer",
    )
