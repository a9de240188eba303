"""Watching a run from a browser (issue 16): ``edgeseg run --serve`` and :class:`ServeSink`.

A real ``edgeseg run --serve`` subprocess is read back with ``cv2.VideoCapture`` from
``/stream.mjpg``, ``/stats`` and ``/`` over HTTP; the token, the viewer limit and the refused
methods and paths against a ServeSink in this process; a stalled viewer against the pipeline's
rate; the page in headless Chromium where it is installed. Every server binds 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_helpers import CLASS_NAMES, write_video

from edgeseg.errors import EdgesegError
from edgeseg.runtime import Pipeline, Segmenter, open_source
from edgeseg.runtime.serve import ServeSink, parse_address, serve_notes


def fetch(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_serving(args: list[str]) -> tuple[subprocess.Popen, str, list[str]]:
    """``edgeseg run ARGS --serve 127.0.0.1:0``; returns (process, base URL, stderr lines)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeseg", "run", *args, "--serve", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            match = re.search(r"watch at (http://127\.0\.0\.1:\d+/)", line)
            if match and not url:
                url.append(match.group(1))
                found.set()

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout=60), "".join(lines)
    return process, url[0], lines


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 15 fps played in real time: 180 frames keep the server up for 12 s.
    return write_video(tmp_path_factory.mktemp("serve") / "clip.mp4", 180, hw=(96, 128))


@pytest.mark.slow
def test_a_served_run_is_read_back_as_mjpeg_stats_and_page(
    tiny_onnx: Path, long_clip: Path
) -> None:
    process, url, lines = start_serving(
        ["--model", str(tiny_onnx), "--source", str(long_clip), "--realtime", "--headless"]
    )
    try:
        capture = cv2.VideoCapture(url + "stream.mjpg", cv2.CAP_FFMPEG)
        assert capture.isOpened(), "".join(lines)
        frames = [capture.read()[1] for _ in range(5)]
        capture.release()
        assert all(f is not None and f.shape == (96, 128, 3) for f in frames)
        status, body = fetch(url + "stats")
        stats = json.loads(body)
        assert status == 200 and stats["frames_done"] > 0 and stats["final"] is False
        assert set(stats["capture_to_output_ms"]) == {"p50", "p95"}
        assert list(stats["class_share"]) == list(CLASS_NAMES)
        status, page = fetch(url)
        text = page.decode()
        assert status == 200 and "stream.mjpg" in text and "'stats'" in text
        assert all(name in text for name in CLASS_NAMES) and "tiny-conv" in text
    finally:
        process.wait(timeout=60)
    assert process.returncode == 0, "".join(lines)
    assert "Traceback" not in "".join(lines)


@pytest.fixture()
def served(tiny_onnx: Path):
    """A ServeSink (token ``s3cret``, one viewer) fed by a pipeline over a real video."""
    segmenter = Segmenter(tiny_onnx)
    sink = ServeSink("127.0.0.1:0", token="s3cret", card=segmenter.card, max_viewers=1)
    yield sink
    sink.close()


def test_token_paths_methods_and_viewer_limit(served: ServeSink) -> None:
    base = f"http://127.0.0.1:{served.port}/"
    assert fetch(base + "stats")[0] == 401
    assert fetch(base + "stats?token=wrong")[0] == 401
    assert fetch(base + "stats?token=s3cret")[0] == 200
    assert fetch(base + "stats", {"Authorization": "Bearer s3cret"})[0] == 200
    assert fetch(base + "?token=s3cret")[0] == 200
    assert fetch(base + "etc/passwd?token=s3cret")[0] == 404
    assert fetch(base + "stats?token=s3cret", method="POST")[0] == 501
    assert fetch(base + "stats?token=s3cret", method="PUT")[0] == 501
    # One viewer allowed: a second stream is refused while the first is open.
    first = socket.create_connection(("127.0.0.1", served.port))
    first.sendall(b"GET /stream.mjpg?token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n")
    assert first.recv(64).startswith(b"HTTP/1.0 200")
    assert fetch(base + "stream.mjpg?token=s3cret")[0] == 503
    first.close()


def test_addresses_and_what_is_said_about_them() -> None:
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address(8080) == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    for bad in ("http", "host:", "1:2:99999"):
        with pytest.raises(EdgesegError, match="expected \\[HOST:\\]PORT"):
            parse_address(bad)
    assert serve_notes("127.0.0.1", 8080) == [
        "watch at http://127.0.0.1:8080/ (stream http://127.0.0.1:8080/stream.mjpg, "
        "stats http://127.0.0.1:8080/stats)"
    ]
    notes = serve_notes("0.0.0.0", 8080)
    assert len(notes) == 2 and "every interface" in notes[1] and "--serve-token" in notes[1]
    guarded = serve_notes("0.0.0.0", 8080, "t")
    assert guarded[0].startswith("watch at http://127.0.0.1:8080/?token=t ")
    assert "a token is required" in guarded[1]


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EdgesegError, match=f"cannot serve on 127.0.0.1:{port}: .*in use"):
            ServeSink(f"127.0.0.1:{port}")


def run_watched(tiny_onnx: Path, video: Path) -> tuple[int, dict]:
    """Frames done by a pipeline serving ``video`` to a viewer that connects and then reads
    nothing (its socket buffers fill, then it stalls)."""
    segmenter = Segmenter(tiny_onnx)
    sink = ServeSink("127.0.0.1:0", card=segmenter.card)
    stalled = socket.create_connection(("127.0.0.1", sink.port))
    try:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.time() + 10
        while sink.hub.viewers == 0 and time.time() < deadline:
            time.sleep(0.01)
        assert sink.hub.viewers == 1
        stats = Pipeline(open_source(video), segmenter, [sink]).run()
        jpegs = sink.hub.seq
    finally:
        sink.close()
        stalled.close()
    return stats.frames_done, {"jpegs": jpegs}


def test_a_stalled_viewer_does_not_stall_the_pipeline(tiny_onnx: Path, tmp_path: Path) -> None:
    # The viewer stalls after a few frames (its socket buffers fill); the pipeline still runs
    # every frame to the end. How much it slows the pipeline is a figure, not a pass/fail on a
    # shared machine: benchmarks/runtime_serve.py --stalled measures it.
    video = write_video(tmp_path / "clip.mp4", 300, hw=(240, 320))
    frames, seen = run_watched(tiny_onnx, video)
    assert frames == 300
    assert seen["jpegs"] > 0  # frames were encoded for the viewer while it watched


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium(
    tiny_onnx: Path, long_clip: Path, tmp_path: Path
) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    process, url, _ = start_serving(
        ["--model", str(tiny_onnx), "--source", str(long_clip), "--realtime", "--headless"]
    )
    shot = tmp_path / "page.png"
    try:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1000,700", "--virtual-time-budget=3000", f"--screenshot={shot}", url],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        process.kill()
        process.wait(timeout=30)
    image = cv2.imread(str(shot))
    assert image is not None, "no screenshot written"
    # The live overlay sits at the left of the page: not the blank page background.
    view = image[60:160, 20:140].reshape(-1, 3).astype(np.int32)
    background = np.array([17, 17, 17])
    assert np.abs(view - background).sum(axis=1).mean() > 60, view.mean(axis=0)
    # The stats panel filled in from /stats: its text is on the right half.
    assert image[80:400, 500:].std() > 10
