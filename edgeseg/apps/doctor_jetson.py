"""``edgeseg doctor``'s Jetson checks: GStreamer's NVIDIA elements, the Argus daemon, power mode.

What a Jetson needs beyond Python packages, each found where the system keeps it: the elements
through GStreamer's own registry (``Gst.ElementFactory.find`` where PyGObject is importable, else
``gst-inspect-1.0 --exists``), ``nvargus-daemon`` among the running processes (``/proc/*/comm``),
the power mode from ``nvpmodel -q`` and the clocks from sysfs (``jetson_clocks`` pins them at
their maximum). The power state is recorded in ``report.facts["power"]`` so that every figure
doctor prints beside it can say under which mode it was measured.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

#: NVIDIA's GStreamer elements edgeseg's pipelines use, and what each does.
NVIDIA_ELEMENTS = {
    "nvarguscamerasrc": "CSI cameras through Argus (csi://N)",
    "nvvidconv": "scaling, flips and NVMM -> system memory",
    "nvv4l2decoder": "H.264/H.265 decoding",
    "nvjpegdec": "MJPG decoding",
    "nvv4l2h264enc": "H.264 encoding",
}
#: The system elements every GStreamer capture needs (plugins-base).
SYSTEM_ELEMENTS = ("appsink", "videoconvert")
L4T_GSTREAMER_FIX = "sudo apt-get install nvidia-l4t-gstreamer (part of JetPack), then re-run"


def _gst_registry() -> Any | None:
    """GStreamer through PyGObject, initialised; None where PyGObject or GStreamer is absent."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
    except (ImportError, ValueError):
        return None
    ok, _ = Gst.init_check(None)
    return Gst if ok else None


def present_elements(names: list[str]) -> dict[str, bool] | None:
    """{element: present} from GStreamer's registry; None when GStreamer cannot be asked."""
    gst = _gst_registry()
    if gst is not None:
        return {name: gst.ElementFactory.find(name) is not None for name in names}
    inspect = shutil.which("gst-inspect-1.0")
    if inspect is None:
        return None
    found = {}
    for name in names:
        try:
            result = subprocess.run([inspect, "--exists", name], capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found[name] = result.returncode == 0
    return found


def check_gstreamer(report: Any) -> None:
    jetson = bool(report.facts.get("jetson"))
    names = [*NVIDIA_ELEMENTS, *SYSTEM_ELEMENTS]
    found = present_elements(names)
    if found is None:
        report.add(
            "gstreamer",
            "warn" if jetson else "skip",
            "GStreamer not found (neither PyGObject's Gst nor gst-inspect-1.0)",
            "sudo apt-get install gstreamer1.0-tools python3-gi (JetPack has both)",
        )
        return
    report.facts["gstreamer_elements"] = found
    missing_base = [n for n in SYSTEM_ELEMENTS if not found[n]]
    if missing_base:
        report.add(
            "gstreamer",
            "warn",
            f"missing {', '.join(missing_base)}: no GStreamer capture can reach OpenCV",
            "sudo apt-get install gstreamer1.0-plugins-base",
        )
    nvidia = {n: found[n] for n in NVIDIA_ELEMENTS}
    have = [n for n, ok in nvidia.items() if ok]
    lacking = [n for n, ok in nvidia.items() if not ok]
    if not lacking:
        report.add("gstreamer nvidia", "ok", f"{', '.join(have)} present")
        return
    detail = "missing " + "; ".join(f"{n} ({NVIDIA_ELEMENTS[n]})" for n in lacking)
    if not jetson:
        report.add(
            "gstreamer nvidia",
            "skip",
            f"not a Jetson: {detail}",
            "none needed here: csi:// and NVIDIA decoding exist on a Jetson only",
        )
        return
    report.add("gstreamer nvidia", "warn", detail, L4T_GSTREAMER_FIX)


def running_processes(proc: Path = Path("/proc")) -> set[str]:
    """The command names (``comm``) of the running processes."""
    names = set()
    for comm in proc.glob("[0-9]*/comm"):
        try:
            names.add(comm.read_text().strip())
        except OSError:  # the process ended meanwhile
            continue
    return names


def check_argus(report: Any, proc: Path = Path("/proc")) -> None:
    """CSI cameras need ``nvargus-daemon`` (libargus talks to the ISP through it)."""
    jetson = bool(report.facts.get("jetson"))
    running = "nvargus-daemon" in running_processes(proc)
    if running:
        report.add("argus daemon", "ok", "nvargus-daemon is running (csi:// can open cameras)")
        return
    report.add(
        "argus daemon",
        "warn" if jetson else "skip",
        "nvargus-daemon is not running: csi:// cannot open a camera"
        if jetson
        else "not a Jetson: no nvargus-daemon (needed by csi:// only)",
        "sudo systemctl restart nvargus-daemon (journalctl -u nvargus-daemon says why it stopped)"
        if jetson
        else "none needed here",
    )


def parse_nvpmodel(text: str) -> str | None:
    """``nvpmodel -q`` output -> ``"MAXN (mode 0)"``; None when it names no mode.

    >>> parse_nvpmodel("NV Power Mode: 15W\\n1\\n")
    '15W (mode 1)'
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("NV Power Mode:"):
            name = line.split(":", 1)[1].strip()
            number = lines[index + 1] if index + 1 < len(lines) else ""
            return f"{name} (mode {number})" if number.isdigit() else name
    return None


def clocks_state(root: Path = Path("/")) -> str:
    """``"clocks at maximum"`` when every CPU core's and the GPU's current frequency is its
    maximum (what ``sudo jetson_clocks`` does), else how far below they run; from sysfs."""
    pairs = []
    for cpu in sorted(root.glob("sys/devices/system/cpu/cpu[0-9]*/cpufreq")):
        pairs.append((cpu / "scaling_cur_freq", cpu / "scaling_max_freq"))
    for gpu in sorted(root.glob("sys/class/devfreq/*")):
        if (
            "gpu" in gpu.name
            or "gv11b" in gpu.name
            or "ga10b" in gpu.name
            or "gpu" in str(_read(gpu / "name"))
        ):
            pairs.append((gpu / "cur_freq", gpu / "max_freq"))
    readings = [(_read(cur), _read(top)) for cur, top in pairs]
    readings = [(c, m) for c, m in readings if c.isdigit() and m.isdigit() and int(m) > 0]
    if not readings:
        return "clocks unknown"
    lowest = min(int(c) / int(m) for c, m in readings)
    if lowest >= 0.99:
        return "clocks at maximum"
    return f"clocks not pinned (lowest at {100 * lowest:.0f}% of maximum)"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def check_power(report: Any) -> None:
    if not report.facts.get("jetson"):
        report.add("power mode", "skip", "not a Jetson (no nvpmodel)", "none needed here")
        return
    query = None
    if shutil.which("nvpmodel"):
        try:
            result = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10)
            query = parse_nvpmodel(result.stdout)
        except (OSError, subprocess.TimeoutExpired):
            query = None
    state = f"power {query or 'mode unknown'}, {clocks_state()}"
    report.facts["power"] = state
    pinned = state.endswith("clocks at maximum") and query is not None
    report.add(
        "power mode",
        "ok" if pinned else "warn",
        state + " (every figure doctor and bench print depends on it)",
        "for steady figures: sudo nvpmodel -m 0 (the board's maximum mode) && sudo jetson_clocks",
    )
