"""``edgeseg doctor``'s video checks: OpenCV (does it import; is a pip one hiding the system one
with GStreamer; its GStreamer and FFmpeg), cameras (CSI sensors' raw nodes told apart from USB
cameras), a display."""

from __future__ import annotations

import glob
import importlib.metadata as metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgeseg.installs import numpy_abi_line, opencv_fix, system_opencv


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


def _opencv_import_failure(report: Any, origin: str, exc: Exception) -> None:
    """cv2 is there but does not import: numpy 2 under a numpy-1.x OpenCV, or something else."""
    import numpy

    message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    if int(numpy.__version__.split(".")[0]) >= 2:
        report.add(
            "opencv",
            "fail",
            f"OpenCV at {origin} does not import with numpy {numpy.__version__} ({message})",
            numpy_abi_line(),
        )
        return
    report.add("opencv", "fail", f"OpenCV at {origin} does not import ({message})", opencv_fix())


def _gstreamer_of(python: str) -> str | None:
    """The GStreamer line of the OpenCV that ``python -I`` (the system Python, no venv) imports."""
    code = (
        "import cv2, re; m = re.search(r'GStreamer:\\s*(.+)', cv2.getBuildInformation()); "
        "print(m.group(1).strip() if m else 'NO')"
    )
    try:
        result = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def pip_opencv_distributions() -> list[str]:
    """The pip OpenCV distributions installed where this Python looks (opencv-python...)."""
    names = []
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("opencv-") and name.endswith(("python", "python-headless")):
            names.append(f"{name} {dist.version}")
    return sorted(set(names))


def check_opencv_shadowing(report: Any, origin: str, gstreamer: str) -> None:
    """A pip OpenCV in the venv hides a system OpenCV built with GStreamer (csi:// then fails)."""
    system = system_opencv()
    if system is None or Path(origin).resolve().parent in (system.parent, system.parent.parent):
        return
    base = getattr(sys, "_base_executable", "") or "/usr/bin/python3"
    system_gstreamer = _gstreamer_of(base) or "unknown"
    if not system_gstreamer.startswith("YES") or gstreamer.startswith("YES"):
        return
    pip_ones = pip_opencv_distributions()
    report.add(
        "opencv shadowing",
        "fail" if report.facts.get("jetson") else "warn",
        f"{', '.join(pip_ones) or 'an OpenCV'} at {origin} (GStreamer {gstreamer}) hides the "
        f"system OpenCV at {system} (GStreamer {system_gstreamer}): csi:// and pipelines fail",
        f"pip uninstall -y {' '.join(n.split()[0] for n in pip_ones) or 'opencv-python'}",
    )


def check_opencv(report: Any) -> None:
    spec = importlib.util.find_spec("cv2")
    if spec is None:
        jetson = bool(report.facts.get("jetson"))
        report.add("opencv", "fail" if jetson else "warn", "no OpenCV (cv2)", opencv_fix())
        return
    origin = spec.origin or str(spec.submodule_search_locations)
    try:
        import cv2
    except Exception as exc:  # an installed OpenCV that does not import is the finding
        _opencv_import_failure(report, origin, exc)
        return
    flags = opencv_build_flags()
    report.facts["opencv"] = flags
    ffmpeg = flags.get("FFMPEG", "NO").startswith("YES")
    gstreamer = flags.get("GStreamer", "NO").startswith("YES")
    check_opencv_shadowing(report, origin, flags.get("GStreamer", "NO"))
    report.add(
        "opencv ffmpeg",
        "ok" if ffmpeg else "warn",
        f"OpenCV {cv2.__version__} ({origin}): FFmpeg {flags.get('FFMPEG', 'NO')}",
        "video files and RTSP need OpenCV with FFmpeg: pip install opencv-python-headless"
        if system_opencv() is None
        else "use GStreamer pipelines for files and RTSP (this system OpenCV has no FFmpeg)",
    )
    jetson = bool(report.facts.get("jetson"))
    report.add(
        "opencv gstreamer",
        "ok" if gstreamer else ("warn" if jetson else "skip"),
        f"GStreamer {flags.get('GStreamer', 'NO')}",
        f"CSI cameras and GStreamer pipelines need OpenCV built with GStreamer: {opencv_fix()}"
        if jetson
        else "only needed for GStreamer pipeline sources (Jetson CSI cameras)",
    )


#: V4L2 FourCCs of raw Bayer formats: what a CSI sensor's own node (Tegra VI) delivers. Argus
#: debayers them through the ISP; OpenCV's V4L2 backend would hand over undecoded mosaics.
BAYER_FOURCCS = frozenset(
    [
        "RG10",
        "BG10",
        "GB10",
        "BA10",
        "RG12",
        "BG12",
        "GB12",
        "BA12",
        "RG16",
        "BG16",
        "GB16",
        "GR16",
        "RGGB",
        "BGGR",
        "GBRG",
        "GRBG",
        "BA81",
        "pRAA",
        "pBAA",
        "pGAA",
        "pgAA",
    ]
)


def parse_v4l2_formats(text: str) -> tuple[list[str], list[str]]:
    """``v4l2-ctl --list-formats-ext`` output -> (FourCCs in order, discrete sizes)."""
    formats = list(dict.fromkeys(re.findall(r"\[\d+\]:\s*'(\w+)'", text)))
    sizes = list(dict.fromkeys(re.findall(r"Size: Discrete (\d+x\d+)", text)))
    return formats, sizes


def is_csi_sensor(sysfs_name: str, formats: list[str]) -> bool:
    """A CSI sensor's node: the Tegra VI names it ``vi-output, <sensor> <bus>``, and it offers
    raw Bayer formats only."""
    return sysfs_name.startswith("vi-output") or (bool(formats) and set(formats) <= BAYER_FOURCCS)


def v4l2_listing(device: str) -> str:
    """``v4l2-ctl --list-formats-ext`` for ``device``; empty where v4l2-ctl is absent or fails."""
    if not shutil.which("v4l2-ctl"):
        return ""
    try:
        result = subprocess.run(
            ["v4l2-ctl", "-d", device, "--list-formats-ext"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout


def describe_camera(device: str, listing: str = "") -> str:
    """What a V4L2 device offers: v4l2-ctl's formats where installed, else OpenCV's default."""
    formats, sizes = parse_v4l2_formats(listing)
    if formats:
        return f"{'/'.join(formats)} {', '.join(sizes[-3:])}".strip()
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


def _sysfs_name(device: str, sysfs: Path) -> str:
    try:
        return (sysfs / Path(device).name / "name").read_text().strip()
    except OSError:
        return ""


def check_cameras(
    report: Any, pattern: str = "/dev/video*", sysfs: Path = Path("/sys/class/video4linux")
) -> None:
    devices = sorted(glob.glob(pattern), key=lambda d: (len(d), d))
    if not devices:
        report.add(
            "cameras",
            "skip",
            f"no camera ({pattern})",
            "plug in a USB/CSI camera, or run on a file or stream: edgeseg run --source VIDEO",
        )
        return
    sensors = 0  # Argus numbers CSI sensors in the order their nodes appear
    for device in devices:
        name = _sysfs_name(device, sysfs)
        listing = v4l2_listing(device)
        formats, sizes = parse_v4l2_formats(listing)
        if is_csi_sensor(name, formats):
            offers = " ".join(["raw Bayer", "/".join(formats), ", ".join(sizes[-3:])]).strip()
            what = ", ".join(part for part in (name, offers) if part)
            report.add(
                f"camera {device}",
                "ok",
                f"CSI sensor: use csi://{sensors} ({what}; not a USB camera: Argus debayers it)",
            )
            sensors += 1
            continue
        detail = describe_camera(device, listing)
        report.add(
            f"camera {device}",
            "warn" if detail.startswith("cannot") else "ok",
            f"USB/V4L2 camera: use v4l2://{device} ({detail})",
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
    try:
        from edgeseg.runtime import gstreamer as gst
        from edgeseg.runtime.encoders import choose_file_encoder, gstreamer_h264
        from edgeseg.runtime.options import EncodingOptions
    except ImportError as exc:  # OpenCV itself does not import: the opencv check says why
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        report.add("media paths", "skip", f"OpenCV does not import ({first})",
                   "fix OpenCV first (the opencv line above)")  # fmt: skip
        return

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
