"""doctor's Jetson lines: GStreamer elements from the registry, nvargus-daemon among the running
processes, nvpmodel and clocks, CSI sensors' raw Bayer nodes, the self-test's lines kept apart.

Real where this machine has the thing (GStreamer's registry, a process named nvargus-daemon that
this test starts); recorded outputs of Jetson tools otherwise (``v4l2-ctl`` of an IMX219 on
L4T 36, ``nvpmodel -q``), and a sysfs tree written as the kernel lays it out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgeseg.apps import doctor, doctor_jetson, doctor_media, doctor_selftest

IMX219_LISTING = """ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'RG10' (10-bit Bayer RGRG/GBGB)
\t\tSize: Discrete 3280x2464
\t\t\tInterval: Discrete 0.048s (21.000 fps)
\t\tSize: Discrete 3280x1848
\t\t\tInterval: Discrete 0.036s (28.000 fps)
\t\tSize: Discrete 1920x1080
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\tSize: Discrete 1640x1232
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.017s (60.000 fps)
"""
USB_LISTING = """ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t[1]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
"""


def jetson_report() -> doctor.DoctorReport:
    report = doctor.DoctorReport()
    report.facts["jetson"] = True
    return report


def test_bayer_nodes_are_csi_sensors_and_mjpg_ones_usb_cameras() -> None:
    formats, sizes = doctor_media.parse_v4l2_formats(IMX219_LISTING)
    assert formats == ["RG10"] and sizes[0] == "3280x2464" and len(sizes) == 5
    assert doctor_media.is_csi_sensor("", formats)
    assert doctor_media.is_csi_sensor("vi-output, imx219 9-0010", [])
    usb, _ = doctor_media.parse_v4l2_formats(USB_LISTING)
    assert usb == ["MJPG", "YUYV"] and not doctor_media.is_csi_sensor("USB Camera", usb)


def test_csi_nodes_are_labelled_with_their_csi_uri_not_offered_as_usb(tmp_path: Path) -> None:
    """Two CSI sensors and a USB camera as the Tegra VI names them in sysfs: the sensors are
    csi://0 and csi://1 in node order; the USB one keeps its V4L2 line."""
    sysfs = tmp_path / "sys"
    names = {"video0": "vi-output, imx219 9-0010", "video1": "vi-output, imx219 10-0010"}
    names["video2"] = "USB 2.0 Camera: USB Camera"
    for node, name in names.items():
        (tmp_path / node).write_bytes(b"")
        (sysfs / node).mkdir(parents=True)
        (sysfs / node / "name").write_text(name + "\n")
    report = doctor.DoctorReport()
    doctor_media.check_cameras(report, str(tmp_path / "video*"), sysfs)
    lines = {c.name.rsplit("/", 1)[-1]: c for c in report.checks}
    assert lines["video0"].detail.startswith("CSI sensor: use csi://0 (vi-output, imx219")
    assert lines["video1"].detail.startswith("CSI sensor: use csi://1")
    assert lines["video2"].detail.startswith("USB/V4L2 camera: use v4l2://")


def test_gstreamer_elements_come_from_the_registry() -> None:
    """This machine's GStreamer: the system elements are there, NVIDIA's are not, which on a
    Jetson is a warning naming the package and elsewhere a skip."""
    if doctor_jetson.present_elements(["appsink"]) is None:
        pytest.skip("no GStreamer here (neither PyGObject's Gst nor gst-inspect-1.0)")
    found = doctor_jetson.present_elements(["appsink", "videoconvert", "nvarguscamerasrc"])
    assert found == {"appsink": True, "videoconvert": True, "nvarguscamerasrc": False}
    report = jetson_report()
    doctor_jetson.check_gstreamer(report)
    (line,) = [c for c in report.checks if c.name == "gstreamer nvidia"]
    assert line.status == "warn" and "nvarguscamerasrc" in line.detail
    assert "nvidia-l4t-gstreamer" in line.fix
    desktop = doctor.DoctorReport()
    doctor_jetson.check_gstreamer(desktop)
    assert [c.status for c in desktop.checks] == ["skip"]


@pytest.fixture
def argus_daemon(tmp_path: Path):
    """A process whose command name is nvargus-daemon (a copy of sleep), ended after the test."""
    program = tmp_path / "nvargus-daemon"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    process = subprocess.Popen([str(program), "30"])
    yield process
    process.kill()
    process.wait(timeout=10)


def test_the_argus_daemon_is_found_among_the_running_processes(argus_daemon) -> None:
    report = jetson_report()
    doctor_jetson.check_argus(report)
    assert [c.status for c in report.checks] == ["ok"]


def test_no_argus_daemon_on_a_jetson_says_how_to_restart_it(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "comm").write_text("systemd\n")
    report = jetson_report()
    doctor_jetson.check_argus(report, tmp_path)
    (line,) = report.checks
    assert line.status == "warn" and "systemctl restart nvargus-daemon" in line.fix


def test_nvpmodel_output_is_read() -> None:
    assert doctor_jetson.parse_nvpmodel("NV Power Mode: MAXN\n0\n") == "MAXN (mode 0)"
    assert doctor_jetson.parse_nvpmodel("NVPM WARN: x\nNV Power Mode: 15W\n1\n") == "15W (mode 1)"
    assert doctor_jetson.parse_nvpmodel("nvpmodel: command failed") is None


def write_freq(folder: Path, cur: int, top: int, cur_name: str, max_name: str) -> None:
    folder.mkdir(parents=True)
    (folder / cur_name).write_text(f"{cur}\n")
    (folder / max_name).write_text(f"{top}\n")


def test_clocks_at_maximum_or_how_far_below(tmp_path: Path) -> None:
    cpu = tmp_path / "sys/devices/system/cpu"
    for index in range(2):
        write_freq(
            cpu / f"cpu{index}/cpufreq", 1984000, 1984000, "scaling_cur_freq", "scaling_max_freq"
        )
    gpu = tmp_path / "sys/class/devfreq/17000000.ga10b"
    write_freq(gpu, 918000000, 918000000, "cur_freq", "max_freq")
    assert doctor_jetson.clocks_state(tmp_path) == "clocks at maximum"
    (gpu / "cur_freq").write_text("306000000\n")
    assert doctor_jetson.clocks_state(tmp_path) == "clocks not pinned (lowest at 33% of maximum)"
    assert doctor_jetson.clocks_state(tmp_path / "none") == "clocks unknown"


def test_a_failing_plugin_engine_does_not_hide_the_native_one(monkeypatch) -> None:
    """Any exception of one self-test engine (not only EdgesegError) is that line's failure;
    the next engine is still built, and the power state stands beside each figure."""
    from edgeseg.backends.cuda import GpuInfo

    def one(forms, folder, major, precision, unpool, library):
        if unpool == "plugin":
            raise RuntimeError("plugin engine crashed")
        return f"{precision} fine"

    monkeypatch.setattr(doctor_selftest, "_one", one)
    report = doctor.DoctorReport()
    report.facts.update(
        tensorrt=type("trt", (), {"__version__": "10.3.0"}),
        gpu=GpuInfo("Orin", "8.7", "12.6"),
        plugin=Path("libedgeseg_unpool_plugin.so"),
        power="power MAXN (mode 0), clocks at maximum",
    )
    doctor_selftest.run_selftest(report)
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["self-test plugin fp32"] == "fail" and statuses["self-test native int8"] == "ok"
    assert len(report.checks) == 6
    native = [c for c in report.checks if c.status == "ok"]
    assert all(c.detail.endswith("clocks at maximum") for c in native)
