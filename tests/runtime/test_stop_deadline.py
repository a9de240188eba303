"""Issue 26, the stop deadline: a stop is obeyed even when a read never returns.

Real ``edgeseg run`` processes get real signals while their capture thread is blocked opening a
FIFO named like an image (no writer ever comes); an application's Python source whose ``read()``
never returns is stopped through :meth:`Pipeline.stop` and, in a process of its own, by SIGTERM.
The outputs hold every frame read before the stop, and nothing temporary stays behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import default_signals
from runtime_helpers import count_video_frames

from edgeseg.runtime import Pipeline, Segmenter, VideoSink
from edgeseg.runtime.frames import Frame, FrameSource
from edgeseg.runtime.stopping import SHUTDOWN_TIMEOUT_S, StopDeadline

#: What a stop may take with a reader blocked for good: the drain ends once nothing is in
#: flight, then the threads get SHUTDOWN_TIMEOUT_S; the rest is finalising and exiting.
STOP_BOUND_S = SHUTDOWN_TIMEOUT_S + 7.0


class NeverReturns(FrameSource):
    """``frames`` frames, then a ``read()`` that blocks until the test ends."""

    live = False
    fps = 10.0
    description = "a source whose read never returns"

    def __init__(self, frames: int) -> None:
        self.frames, self.done = frames, 0
        self.release = threading.Event()

    def read(self) -> Frame | None:
        if self.done >= self.frames:
            self.release.wait()  # blocks "forever" (until the test lets it go)
            return None
        self.done += 1
        image = np.full((24, 32, 3), 40 * self.done, np.uint8)
        return Frame(image, self.done, time.perf_counter(), str(self.done))


def fifo_folder(tmp_path: Path, images: int = 3) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(images):
        cv2.imwrite(str(folder / f"a{i}.png"), np.full((20, 30, 3), 50 * i, np.uint8))
    os.mkfifo(folder / "z.png")  # sorted last: read after the images, blocks forever
    return folder


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
@pytest.mark.slow
def test_a_signal_stops_a_run_blocked_on_a_fifo(
    tiny_onnx: Path, tmp_path: Path, signum: int, code: int
) -> None:
    folder = fifo_folder(tmp_path)
    masks, stats = tmp_path / "masks", tmp_path / "s.jsonl"
    args = ["--model", str(tiny_onnx), "--source", str(folder), "--save-masks", str(masks)]
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeseg", "run", *args, "--stats", str(stats)],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    deadline = time.monotonic() + 60
    while len(list(masks.glob("*.png"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the three images are through; the capture thread is in the FIFO
    process.send_signal(signum)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()  # a run that ignored the signal must not outlive the test
    took = time.monotonic() - sent
    assert process.returncode == code, stderr
    assert took < STOP_BOUND_S, f"{took:.1f} s: {stderr}"
    assert "Traceback" not in stderr
    assert "edgeseg-capture still blocked" in stderr
    assert sorted(p.name for p in masks.iterdir()) == ["a0.png", "a1.png", "a2.png"]
    last = json.loads(stats.read_text().splitlines()[-1])
    assert last["final"] is True and last["frames_done"] == 3
    assert not [p for p in tmp_path.rglob(".*")]


@pytest.mark.slow
def test_pipeline_stop_returns_with_a_reader_that_never_returns(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    source = NeverReturns(frames=5)
    out = tmp_path / "out.mp4"
    events: list[str] = []
    pipeline = Pipeline(
        source, Segmenter(tiny_onnx), [VideoSink(out, fps=10)], on_event=events.append
    )
    timer = threading.Timer(2.0, pipeline.stop)
    timer.start()
    started = time.monotonic()
    try:
        stats = pipeline.run()
    finally:
        source.release.set()  # let the abandoned thread end with the test
        timer.cancel()
    assert time.monotonic() - started < 2.0 + STOP_BOUND_S
    assert stats.frames_done == 5 and pipeline.stopped_by == "stop"
    assert count_video_frames(out) == 5
    assert any("still blocked" in e for e in events), events


@pytest.mark.slow
def test_sigterm_stops_an_application_whose_source_never_returns(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        import numpy as np
        from edgeseg.interrupts import Interrupted, exit_code
        from edgeseg.runtime import Pipeline, Segmenter, VideoSink
        from edgeseg.runtime.frames import Frame, FrameSource

        class Stuck(FrameSource):
            live, fps, description, done = False, 10.0, "stuck", 0
            def read(self):
                if self.done == 4:
                    print("blocked", flush=True)
                    threading.Event().wait()
                self.done += 1
                return Frame(np.zeros((24, 32, 3), np.uint8), self.done, time.perf_counter(), "f")

        pipeline = Pipeline(Stuck(), Segmenter({str(tiny_onnx)!r}), [VideoSink({str(out)!r})])
        try:
            pipeline.run()
        except Interrupted as exc:
            sys.exit(exit_code(exc))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "blocked"
    time.sleep(0.5)  # the four frames reach the video
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert time.monotonic() - sent < STOP_BOUND_S
    assert count_video_frames(out) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_shutdown_deadline_is_shared_and_abandons_what_still_runs() -> None:
    release = threading.Event()
    stuck = [
        threading.Thread(target=release.wait, name=f"stuck-{i}", daemon=True) for i in range(3)
    ]
    quick = threading.Thread(target=lambda: None, name="quick", daemon=True)
    for thread in [*stuck, quick]:
        thread.start()
    reports: list[str] = []
    started = time.monotonic()
    abandoned = StopDeadline(shutdown_s=1.0).join([*stuck, quick], reports.append)
    took = time.monotonic() - started
    release.set()
    assert abandoned == stuck
    assert took < 2.5  # 1 s for all three together, not 1 s each
    assert "stuck-0, stuck-1, stuck-2 still blocked" in reports[0]
