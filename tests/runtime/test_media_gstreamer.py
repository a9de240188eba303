"""Media through real GStreamer, in the Jetson rehearsal environment (Debian's python3-opencv with
GStreamer, :func:`rehearsal.rehearsal_python`): a pipeline source, an H.264 MP4 read back, RTP to
127.0.0.1 received by a GStreamer pipeline, an RTSP server read back, and a browser playing the
MP4. ``edgeseg`` runs in subprocesses with that Python; everything talks to 127.0.0.1 only."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from rehearsal import rehearsal_python
from runtime_helpers import write_video

RECEIVE = """
import os, sys, threading, time, cv2
pipeline, want, deadline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
count, shape = [0], [None]
def report():
    print(count[0], shape[0], flush=True)
    os._exit(0)
threading.Timer(deadline, report).start()
capture = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
while capture.isOpened():
    ok, frame = capture.read()
    if not ok:
        break
    count[0] += 1
    shape[0] = "x".join(map(str, frame.shape))
    if count[0] >= want:
        break
report()
"""

PROBE = """
import sys, cv2
capture = cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG)
code = int(capture.get(cv2.CAP_PROP_FOURCC))
fourcc = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4))
frames = 0
while capture.read()[0]:
    frames += 1
print(fourcc, frames)
"""


def _edgeseg(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "edgeseg", "run", *args, "--headless"],
        cwd=cwd, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _receiver(python: Path, pipeline: str, want: int, deadline_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        [str(python), "-c", RECEIVE, pipeline, str(want), str(deadline_s)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def _udp_bound(port: int, process: subprocess.Popen, timeout_s: float = 60) -> None:
    """Returns once a socket is bound to 127.0.0.1:``port`` (the receiver's udpsrc, which binds
    while its VideoCapture opens), rather than after a fixed sleep a loaded machine outlasts."""
    local = f"0100007F:{port:04X}"  # /proc/net/udp: little-endian IPv4, hex port
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        rows = Path("/proc/net/udp").read_text().splitlines()[1:]
        if any(row.split()[1] == local for row in rows):
            return
        time.sleep(0.05)
    pytest.fail(f"the receiver did not bind 127.0.0.1:{port}")


def _received(process: subprocess.Popen, timeout_s: float) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout_s)
    count, shape = out.split()
    return int(count), shape


def test_a_gstreamer_pipeline_source_runs(tiny_onnx: Path, tmp_path: Path) -> None:
    python = rehearsal_python()
    source = (
        "gst:videotestsrc is-live=true ! video/x-raw, width=64, height=48, framerate=30/1 ! "
        "videoconvert ! appsink"
    )
    done = _edgeseg(python, tmp_path, "--model", str(tiny_onnx), "--source", source,
                    "--max-frames", "9", "--save-masks", "masks", "--stats", "s.jsonl")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "masks").glob("*.png"))) == 9
    record = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])
    assert record["media"]["source"] == "GStreamer (CPU)"


def test_an_h264_mp4_is_written_and_reads_back(tiny_onnx: Path, tmp_path: Path) -> None:
    python = rehearsal_python()
    clip = write_video(tmp_path / "clip.mp4", 17, (49, 67))  # odd: H.264 needs even sizes
    args = ["--output", "overlay.mp4", "--bitrate", "800", "--stats", "s.jsonl"]
    done = _edgeseg(python, tmp_path, "--model", str(tiny_onnx), "--source", str(clip), *args)
    assert done.returncode == 0, done.stderr
    assert "edgeseg: overlay.mp4: H.264, GStreamer x264enc" in done.stderr
    probe = subprocess.run([str(python), "-c", PROBE, str(tmp_path / "overlay.mp4")],
                           capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert probe.stdout.split() == ["avc1", "17"]
    record = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])
    assert record["media"]["overlay.mp4"] == "H.264, GStreamer x264enc"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.slow
def test_rtp_to_localhost_is_received_as_h264(tiny_onnx: Path, tmp_path: Path) -> None:
    python = rehearsal_python()
    port = _free_port(socket.SOCK_DGRAM)
    caps = (
        "application/x-rtp, media=(string)video, clock-rate=(int)90000, "
        "encoding-name=(string)H264, payload=(int)96"
    )
    pipeline = (
        f'udpsrc port={port} address=127.0.0.1 caps="{caps}" ! rtph264depay ! h264parse ! '
        "avdec_h264 ! videoconvert ! video/x-raw, format=BGR ! appsink"
    )
    receiver = _receiver(python, pipeline, want=10, deadline_s=40)
    _udp_bound(port, receiver)  # before the first packet is sent
    clip = write_video(tmp_path / "clip.mp4", 60, (48, 64))  # 4 s at 15 fps
    done = _edgeseg(python, tmp_path, "--model", str(tiny_onnx), "--source", str(clip),
                    "--realtime", "--output", f"rtp://127.0.0.1:{port}")  # fmt: skip
    count, shape = _received(receiver, 60)
    assert done.returncode == 0, done.stderr
    assert f"rtp://127.0.0.1:{port}: RTP to 127.0.0.1:{port}, H.264, GStreamer x264enc" in (
        done.stderr
    )
    assert count >= 10 and shape == "48x64x3"


@pytest.mark.slow
def test_rtsp_output_is_read_back(tiny_onnx: Path, tmp_path: Path) -> None:
    python = rehearsal_python()
    port = _free_port(socket.SOCK_STREAM)
    url = f"rtsp://127.0.0.1:{port}/live"
    # 30 s of stream at 15 fps: the reader joins in time even on a loaded machine; the server
    # is stopped as soon as the reader is done.
    clip = write_video(tmp_path / "clip.mp4", 450, (48, 64))
    server = subprocess.Popen(
        [str(python), "-m", "edgeseg", "run", "--model", str(tiny_onnx), "--source", str(clip),
         "--realtime", "--headless", "--output", url],
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        announced = server.stderr.readline()
        if "RTSP stream at" not in announced:
            pytest.fail(announced + server.stderr.read())
        reader = _receiver(
            python,
            f"rtspsrc location={url} latency=0 ! rtph264depay ! h264parse ! avdec_h264 ! "
            "videoconvert ! video/x-raw, format=BGR ! appsink",
            want=10, deadline_s=40,
        )  # fmt: skip
        count, shape = _received(reader, 60)
    finally:
        server.kill()
        server.wait(timeout=30)
    assert count >= 10 and shape == "48x64x3"


@pytest.mark.slow
def test_a_browser_plays_the_overlay_mp4(tiny_onnx: Path, tmp_path: Path) -> None:
    python = rehearsal_python()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    clip = write_video(tmp_path / "clip.mp4", 30, (48, 64))
    done = _edgeseg(python, tmp_path, "--model", str(tiny_onnx), "--source", str(clip),
                    "--output", "overlay.mp4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = tmp_path / "play.html"
    page.write_text(
        '<video id="v" src="overlay.mp4" muted></video><pre id="out">pending</pre><script>'
        'const v = document.getElementById("v"), o = document.getElementById("out");'
        'v.onloadedmetadata = () => { o.textContent = "duration=" + v.duration; };'
        'v.onerror = () => { o.textContent = "error=" + (v.error && v.error.code); };'
        "</script>"
    )
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout  # fmt: skip
    assert "duration=" in dom, dom[-500:]
    duration = float(dom.split("duration=")[1].split("<")[0])
    assert duration == pytest.approx(30 / 15, abs=0.2)  # write_video writes 15 fps
