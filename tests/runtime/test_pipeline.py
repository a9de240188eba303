"""The threaded pipeline on real video files and real ONNX Runtime: frame counts, drop policy,
corrupt frames, reconnection with backoff, clean stops with finalised outputs."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_helpers import GeneratedLiveSource, count_video_frames, synthetic_frame, write_video

from edgeseg.errors import EdgesegError
from edgeseg.runtime import (
    FramesSink,
    MaskSink,
    Pipeline,
    RetryPolicy,
    Segmenter,
    Sink,
    StatsSink,
    VideoSink,
    open_source,
)
from edgeseg.runtime.sources import VideoCaptureSource

FAST_RETRY = RetryPolicy(initial_s=0.01, factor=2.0, max_delay_s=0.04, max_attempts=4)


class SlowSink(Sink):
    """A deliberately slow consumer that records which frames it saw."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s, self.indices = delay_s, []

    def write(self, result) -> None:
        time.sleep(self.delay_s)
        self.indices.append(result.frame.index)


class GatedSink(SlowSink):
    """Stalls on its first frame until ``gate()`` holds (the source has delivered every frame),
    so a live pipeline must drop frames however loaded the machine is (a timed slow consumer
    only drops when the source outruns it)."""

    def __init__(self, gate: Callable[[], bool]) -> None:
        super().__init__(0.0)
        self.gate = gate

    def write(self, result) -> None:
        deadline = time.monotonic() + 60
        while not self.gate():
            assert time.monotonic() < deadline, "the source never delivered its frames"
            time.sleep(0.005)
        super().write(result)


class StopAfter(Sink):
    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def write(self, result) -> None:
        self.seen += 1
        self.stop_requested = self.seen >= self.n


@pytest.fixture(scope="module")
def segmenter(tiny_onnx: Path) -> Segmenter:
    return Segmenter(tiny_onnx)


def test_file_source_frames_in_equal_frames_out(segmenter, make_video, tmp_path: Path) -> None:
    video = make_video(frames=25)
    out, masks, frames_dir = tmp_path / "out.mp4", tmp_path / "masks", tmp_path / "frames"
    source = open_source(video)
    sinks = [VideoSink(out, source.fps), MaskSink(masks), FramesSink(frames_dir)]
    stats = Pipeline(source, segmenter, sinks).run()
    assert stats.frames_read == stats.frames_done == 25
    assert stats.dropped == 0 and stats.corrupt == 0
    assert count_video_frames(out) == 25
    assert len(list(masks.glob("*.png"))) == 25 and len(list(frames_dir.glob("*.jpg"))) == 25
    assert not list(tmp_path.glob(".out*"))  # the temporary video was renamed away
    # The saved masks are what Segmenter.predict gives for the decoded frames.
    capture = cv2.VideoCapture(str(video))
    for i in range(25):
        frame = capture.read()[1]
        saved = cv2.imread(str(masks / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(saved, segmenter.predict(frame))


def test_camvid_clip_end_to_end(segmenter, camvid_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "camvid.mp4"
    source = open_source(camvid_clip)
    stats = Pipeline(source, segmenter, [VideoSink(out, source.fps)]).run()
    assert stats.frames_done == count_video_frames(camvid_clip) == 101
    assert count_video_frames(out) == 101
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    assert capture.read()[1].shape == (360, 480, 3)


def test_corrupt_frames_in_a_folder_are_skipped_and_counted(
    segmenter, image_folder: Path, tmp_path: Path
) -> None:
    (image_folder / "frame_001.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (image_folder / "frame_009.jpg").write_bytes(b"garbage")
    masks = tmp_path / "masks"
    pipeline = Pipeline(open_source(image_folder), segmenter, [MaskSink(masks)])
    stats = pipeline.run()
    assert stats.corrupt == 2 and stats.frames_done == 4 and stats.dropped == 0
    assert sorted(p.stem for p in masks.glob("*.png")) == [
        "frame_000",
        "frame_002",
        "frame_003",
        "frame_004",
    ]
    assert sum("corrupt" in e for e in pipeline.events) == 2


def test_live_source_keeps_the_newest_frame_and_counts_drops(segmenter) -> None:
    source = GeneratedLiveSource(frames=60, interval_s=0.002)
    slow = GatedSink(lambda: source.next >= source.frames)
    pipeline = Pipeline(source, segmenter, [slow])
    stats = pipeline.run()
    assert stats.policy.startswith("live")
    assert stats.frames_read == 60
    assert stats.dropped > 0  # the consumer held its first frame while 59 more came
    assert stats.frames_done + stats.dropped == stats.frames_read  # nothing vanishes
    assert slow.indices == sorted(slow.indices) and len(set(slow.indices)) == len(slow.indices)
    assert slow.indices[-1] == 59  # the newest frame is the one that gets through
    assert source.closed


def test_file_source_under_a_slow_consumer_drops_nothing(segmenter, make_video) -> None:
    slow = SlowSink(delay_s=0.01)
    stats = Pipeline(open_source(make_video(frames=15)), segmenter, [slow]).run()
    assert stats.dropped == 0 and slow.indices == list(range(15))


def test_lost_stream_is_retried_with_backoff_and_recovers(segmenter) -> None:
    source = GeneratedLiveSource(frames=12, interval_s=0.001, lose_at=(5,), fail_reopens=2)
    events: list[str] = []
    pipeline = Pipeline(
        source, segmenter, [SlowSink(0.0)], retry=FAST_RETRY, on_event=events.append
    )
    stats = pipeline.run()
    assert stats.reconnects == 1 and source.reopen_calls == 3
    assert stats.frames_read == 12
    assert any("lost" in e for e in events)
    assert sum("attempt" in e and "failed" in e for e in events) == 2
    assert any("reconnected after 3 attempt" in e for e in events)


def test_stream_that_never_comes_back_gives_up_with_one_line(segmenter, tmp_path: Path) -> None:
    source = GeneratedLiveSource(frames=50, interval_s=0.001, lose_at=(3,), fail_reopens=99)
    out = tmp_path / "partial.mp4"
    with pytest.raises(EdgesegError, match="no frames after 4 reconnection attempts"):
        Pipeline(source, segmenter, [VideoSink(out, 15)], retry=FAST_RETRY).run()
    assert source.reopen_calls == 4
    assert out.is_file() and count_video_frames(out) >= 1  # what came before is finalised


def test_real_stream_reopened_through_opencv(segmenter, make_video, tmp_path: Path) -> None:
    # A local file opened as a live stream: its end looks like a dropped connection, so the
    # pipeline reopens it through OpenCV; removing the file makes the reconnection fail.
    video = make_video(frames=4)
    source = VideoCaptureSource(str(video), "stream", live=True)
    stats = Pipeline(source, segmenter, [SlowSink(0.0)], max_frames=6, retry=FAST_RETRY).run()
    assert stats.reconnects >= 1 and stats.frames_done == 6

    gone = tmp_path / "gone.mp4"
    shutil.copy(video, gone)
    source = VideoCaptureSource(str(gone), "stream", live=True)
    gone.unlink()  # already open: the first pass still plays, reopening fails
    with pytest.raises(EdgesegError, match=r"lost stream .*gone\.mp4"):
        Pipeline(source, segmenter, [SlowSink(0.0)], retry=FAST_RETRY).run()


def test_max_frames_on_a_file(segmenter, make_video, tmp_path: Path) -> None:
    out = tmp_path / "first5.mp4"
    pipeline = Pipeline(
        open_source(make_video(frames=20)), segmenter, [VideoSink(out, 15)], max_frames=5
    )
    stats = pipeline.run()
    assert stats.frames_done == 5 and pipeline.stopped_by == "max_frames"
    assert count_video_frames(out) == 5


def test_a_sink_can_stop_the_run_and_outputs_are_finalised(
    segmenter, make_video, tmp_path: Path
) -> None:
    out = tmp_path / "stopped.mp4"
    pipeline = Pipeline(
        open_source(make_video(frames=30)), segmenter, [VideoSink(out, 15), StopAfter(3)]
    )
    pipeline.run()
    assert pipeline.stopped_by == "user"
    assert count_video_frames(out) == 3


def test_stop_from_another_thread(segmenter) -> None:
    source = GeneratedLiveSource(frames=10_000, interval_s=0.002)
    pipeline = Pipeline(source, segmenter, [SlowSink(0.0)])
    threading.Timer(0.3, pipeline.stop).start()
    pipeline.run()
    assert pipeline.stopped_by == "stop" and source.closed and source.next < 10_000


def test_stats_jsonl_final_line(segmenter, make_video, tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    Pipeline(open_source(make_video(frames=9)), segmenter, [StatsSink(path, {"run": "t"})]).run()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    final = lines[-1]
    assert final["final"] is True and final["frames_done"] == 9 and final["run"] == "t"
    assert set(final["stage_ms"]) == {"capture", "preprocess", "infer", "postprocess", "render"}
    assert final["policy"].startswith("file")


def test_unwritable_outputs_fail_before_any_frame(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match="does not exist"):
        VideoSink(tmp_path / "no" / "such" / "out.mp4")
    with pytest.raises(EdgesegError, match=r"use one of \.mp4"):
        VideoSink(tmp_path / "out.gif")
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgesegError, match="not a folder"):
        MaskSink(tmp_path / "file")


def test_frames_of_changing_size_go_into_one_video(segmenter, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, hw in enumerate([(48, 64), (30, 40), (48, 64)]):
        cv2.imwrite(str(folder / f"{i}.png"), synthetic_frame(i, hw))
    out = tmp_path / "mixed.mp4"
    Pipeline(open_source(folder), segmenter, [VideoSink(out)]).run()
    assert count_video_frames(out) == 3


def test_avi_input_and_frames_folder_hold_the_overlay(segmenter, tmp_path: Path) -> None:
    from edgeseg.runtime import Renderer

    video = write_video(tmp_path / "in.avi", 3)
    out_dir = tmp_path / "rendered"
    Pipeline(open_source(video), segmenter, [FramesSink(out_dir)]).run()
    assert sorted(p.name for p in out_dir.glob("*.jpg")) == [f"{i:06d}.jpg" for i in range(3)]
    frame = cv2.VideoCapture(str(video)).read()[1]
    expected = Renderer(segmenter.card).render(frame, segmenter.predict(frame))
    written = cv2.imread(str(out_dir / "000000.jpg"))
    assert np.abs(written.astype(int) - expected.astype(int)).mean() < 4  # JPEG-close


def test_live_video_is_written_at_the_rate_frames_were_kept(segmenter, tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    source = GeneratedLiveSource(frames=80, interval_s=0.005)  # a 200 fps camera
    stats = Pipeline(source, segmenter, [VideoSink(out, 200, live=True), SlowSink(0.02)]).run()
    assert count_video_frames(out) == stats.frames_done
    fps = cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS)
    # The consumer keeps at most one frame per 20 ms: at most about 50 fps (a loaded machine
    # only lowers it), not the camera's 200.
    assert 0 < fps < 100
