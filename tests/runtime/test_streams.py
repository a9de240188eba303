"""Several streams through one model (``edgeseg run --source A --source B``, ``run_streams``).

Real ONNX Runtime sessions, real video files, a real MJPEG server on 127.0.0.1 that stalls, and
a real ``edgeseg run`` process stopped with SIGTERM.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import json
import re
import signal
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import start_run
from runtime_helpers import (
    GeneratedLiveSource,
    count_video_frames,
    synthetic_frame,
    write_tiny_onnx,
    write_video,
)

from edgeseg.errors import EdgesegError
from edgeseg.runtime import PacedSource, RetryPolicy, open_source
from edgeseg.runtime.mosaic import grid_shape
from edgeseg.runtime.options import OutputOptions, ServeOptions
from edgeseg.runtime.results import FrameResult, Sink
from edgeseg.runtime.run import run_pipeline
from edgeseg.runtime.run_streams import run_streams
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.stream_specs import read_streams_file, stream_names, stream_path
from edgeseg.runtime.streams import StreamsPipeline
from edgeseg.runtime.video_sink import VideoSink

# Four files of different lengths and sizes.
CLIPS = (
    ("front", 7, (48, 64)),
    ("rear", 12, (36, 52)),
    ("left", 5, (60, 80)),
    ("right", 9, (48, 64)),
)
FAST_RETRY = RetryPolicy(initial_s=0.1, factor=1.0, max_attempts=3)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [write_video(folder / f"{name}.mp4", n, hw) for name, n, hw in CLIPS]


@pytest.fixture(scope="module")
def static_batch_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_onnx(tmp_path_factory.mktemp("models") / "tiny_b1.onnx", batch=1)


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("*.png"))}


@pytest.mark.parametrize("count", [1, 2, 4])
@pytest.mark.parametrize("batch", ["dynamic", "static 1"])
def test_each_file_stream_gets_exactly_its_frames_and_the_single_run_masks(
    clips: list[Path],
    tiny_onnx: Path,
    static_batch_onnx: Path,
    tmp_path: Path,
    count: int,
    batch: str,
) -> None:
    model = tiny_onnx if batch == "dynamic" else static_batch_onnx
    chosen = clips[:count]
    shares = tmp_path / "shares_{stream}.csv"
    events: list[str] = []
    summary = run_streams(
        model,
        [str(c) for c in chosen],
        outputs=OutputOptions(masks=tmp_path / "masks", class_shares=shares),
        on_event=events.append,
    )
    assert summary.names == tuple(c.stem for c in chosen)
    for clip, (name, frames, _) in zip(chosen, CLIPS, strict=False):
        single = tmp_path / "single" / name
        run_pipeline(model, str(clip), outputs=OutputOptions(masks=single))
        together, alone = _masks(tmp_path / "masks" / name), _masks(single)
        assert list(together) == [f"{i:06d}.png" for i in range(frames)]
        assert list(together) == list(alone)
        for key, mask in together.items():
            assert np.array_equal(mask, alone[key]), (name, key)
        with open(tmp_path / f"shares_{name}.csv", newline="") as file:
            rows = [row[0] for row in csv.reader(file)][1:]
        assert rows == [f"{i:06d}" for i in range(frames)]  # in order
        assert summary.stats.streams[name].frames_done == frames
        assert summary.stats.stopped_by[name] == "end"
    batch_stats = summary.stats.batch
    assert batch_stats.frames == sum(n for _, n, _ in CLIPS[:count])
    assert batch_stats.max_batch <= count
    said = [e for e in events if "takes at most 1 frame(s) per call" in e]
    assert len(said) == (1 if batch == "static 1" and count > 1 else 0), events
    if batch == "static 1":
        assert batch_stats.engine_max_batch == 1 and batch_stats.engine_batch == 1
    else:
        assert batch_stats.engine_max_batch is None
        assert batch_stats.engine_batch == batch_stats.max_batch


def test_outputs_per_stream_a_mosaic_and_one_stats_file_from_the_cli(
    cli, clips: list[Path], tiny_onnx: Path, tmp_path: Path
) -> None:
    listing = tmp_path / "cams.streams"
    listing.write_text(f"# two cameras\nfront={clips[0]}\n\nback={clips[1]}\n")
    out, mosaic, stats = tmp_path / "out_{stream}.mp4", tmp_path / "all.mp4", tmp_path / "s.jsonl"
    result = cli("run", "--model", str(tiny_onnx), "--source", str(listing), "--source",
                 str(clips[2]), "--output", str(out), "--mosaic", str(mosaic), "--stats",
                 str(stats), "--headless")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert count_video_frames(tmp_path / "out_front.mp4") == 7
    assert count_video_frames(tmp_path / "out_back.mp4") == 12
    assert count_video_frames(tmp_path / "out_left.mp4") == 5
    assert count_video_frames(mosaic) == 12  # one tiled frame per step: the longest stream's
    capture = cv2.VideoCapture(str(mosaic))
    ok, tiled = capture.read()
    capture.release()
    assert ok and tiled.shape[:2] == (2 * 48, 2 * 64)  # 3 streams: 2x2 tiles of the first's size
    final = json.loads(stats.read_text().splitlines()[-1])
    assert final["final"] and list(final["streams"]) == ["front", "back", "left"]
    assert final["streams"]["back"]["frames_done"] == 12 and final["frames_done"] == 24
    assert final["batch"]["max_batch"] == 3 and "p95" in final["batch"]["infer_ms_per_batch"]
    assert "stream back: 12 frames" in result.stderr and "Traceback" not in result.stderr


def test_stream_mistakes_are_one_line_before_any_frame(
    cli, clips: list[Path], tiny_onnx: Path, tmp_path: Path
) -> None:
    args = ["run", "--model", str(tiny_onnx), "--source", str(clips[0]), "--source", str(clips[1])]
    result = cli(*args, "--output", str(tmp_path / "out.mp4"))
    assert result.returncode == 2 and "put {stream} in the path" in result.stderr
    assert "out_{stream}.mp4" in result.stderr and "Traceback" not in result.stderr
    result = cli(*args, "--output", str(clips[0].parent / "{stream}.mp4"))
    assert result.returncode == 2 and "which it would overwrite" in result.stderr
    result = cli("run", "--model", str(tiny_onnx), "--source", str(clips[0]), "--mosaic", "m.mp4")
    assert result.returncode == 2 and "--mosaic tiles several streams" in result.stderr
    result = cli("run", "--model", str(tiny_onnx), "--source", str(tmp_path / "none.streams"))
    assert result.returncode == 2 and "streams file" in result.stderr
    assert not list(tmp_path.iterdir())


def test_names_streams_files_and_paths(tmp_path: Path) -> None:
    listing = tmp_path / "cams.streams"
    listing.write_text("# comment\nrtsp://10.0.0.2/cam\n\nrear=/data/rear.mp4\n")
    assert read_streams_file(listing) == ["rtsp://10.0.0.2/cam", "rear=/data/rear.mp4"]
    pipeline = "videotestsrc ! video/x-raw,width=640 ! appsink"
    names, sources = stream_names(["a/front.mp4", "rear=b.mp4", pipeline])
    assert names == ["front", "rear", "stream2"]
    assert sources == ["a/front.mp4", "b.mp4", pipeline]
    assert stream_names(["x/cam.mp4", "y/cam.mp4"])[0] == ["stream0", "stream1"]
    assert stream_path("out_{stream}.mp4", "rear", "--output", False) == "out_rear.mp4"
    assert stream_path("masks/", "rear", "--save-masks", True) == "masks/rear/"
    with pytest.raises(EdgesegError, match=r"shares_\{stream\}\.csv"):
        stream_path("shares.csv", "rear", "--class-shares", False)
    with pytest.raises(EdgesegError, match="two streams are named cam"):
        stream_names(["cam=a.mp4", "cam=b.mp4"])
    assert [grid_shape(n) for n in (1, 2, 3, 4, 5, 8)] == [
        (1, 1),
        (1, 2),
        (2, 2),
        (2, 2),
        (2, 3),
        (3, 3),
    ]


def test_a_stream_lost_for_good_ends_alone_and_is_raised_after_the_others(
    clips: list[Path], tiny_onnx: Path, tmp_path: Path
) -> None:
    events: list[str] = []
    dead = GeneratedLiveSource(frames=1000, interval_s=0.01, lose_at=(5,), fail_reopens=99)
    with pytest.raises(EdgesegError, match="no frames after 3 reconnection attempts"):
        run_streams(tiny_onnx, [f"cam={clips[1]}", ("dead", dead)],
                    outputs=OutputOptions(masks=tmp_path / "m"),
                    retry=FAST_RETRY, on_event=events.append)  # fmt: skip
    assert len(list((tmp_path / "m" / "cam").glob("*.png"))) == 12  # finished, complete
    # Live: the frames before the loss, less any dropped while inference was behind.
    assert 0 < len(list((tmp_path / "m" / "dead").glob("*.png"))) <= 5
    assert any(e.startswith("stream dead stopped: lost generated camera") for e in events), events


# -- a live stream that stalls --------------------------------------------------------------------


class StallingMJPEG:
    """JPEG frames over HTTP (multipart MJPEG) on 127.0.0.1 at ``fps``. With ``stall_after``,
    the first connection stops sending after that many frames, holds the socket for
    ``stall_s``, then closes it; later connections stream again. Each connection ends by itself
    after ``limit`` frames, so nothing outlives the test."""

    def __init__(self, fps: float, stall_after: int | None = None, stall_s: float = 0.0) -> None:
        server = self
        self.connections = 0
        jpegs = [cv2.imencode(".jpg", synthetic_frame(i))[1].tobytes() for i in range(16)]

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                connection = server.connections
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                with contextlib.suppress(OSError):
                    for i in range(900):
                        if connection == 0 and i == stall_after:
                            time.sleep(stall_s)  # the camera hangs: nothing is sent
                            return
                        jpeg = jpegs[i % len(jpegs)]
                        self.wfile.write(head % len(jpeg) + jpeg + b"\r\n")
                        self.wfile.flush()
                        time.sleep(1 / fps)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cam.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.slow
def test_a_stalled_live_stream_does_not_stop_the_others(tiny_onnx: Path, tmp_path: Path) -> None:
    steady, stalling = StallingMJPEG(25), StallingMJPEG(25, stall_after=10, stall_s=4.0)
    events: list[str] = []
    stamped: list[tuple[float, str]] = []

    def on_event(line: str) -> None:
        events.append(line)
        stamped.append((time.perf_counter(), line))

    try:
        summary = run_streams(tiny_onnx, [f"steady={steady.url}", f"stalling={stalling.url}"],
                              max_frames=30, outputs=OutputOptions(masks=tmp_path / "masks"),
                              retry=FAST_RETRY, on_event=on_event)  # fmt: skip
    finally:
        steady.close()
        stalling.close()
    streams = summary.stats.streams
    assert streams["steady"].frames_done == 30 and streams["stalling"].frames_done == 30
    assert streams["stalling"].reconnects == 1 and streams["steady"].reconnects == 0
    done = next(t for t, e in stamped if e.startswith("stream steady done"))
    back = next(t for t, e in stamped if "stalling" in e and "reconnected" in e)
    assert done < back, events  # steady finished while the other one hung
    assert summary.stats.batch.batch_sizes.get(1, 0) > 0  # steps without the stalled stream
    assert len(list((tmp_path / "masks" / "steady").glob("*.png"))) == 30


# -- serve and stop signals -------------------------------------------------------------------


def test_serve_shows_every_stream_and_the_batch(
    clips: list[Path], tiny_onnx: Path, tmp_path: Path
) -> None:
    seen: dict[str, object] = {}
    address = threading.Event()

    def on_event(line: str) -> None:
        match = re.search(r"watch at (http://127\.0\.0\.1:\d+/)", line)
        if match:
            seen["url"] = match.group(1)
            address.set()

    def fetch() -> None:
        assert address.wait(30)
        for _ in range(100):
            stats = json.loads(urllib.request.urlopen(f"{seen['url']}stats", timeout=5).read())
            if stats["streams"] and all(s["frames_done"] for s in stats["streams"].values()):
                seen["stats"] = stats
                break
            time.sleep(0.05)
        seen["page"] = urllib.request.urlopen(seen["url"], timeout=5).read().decode()

    fetcher = threading.Thread(target=fetch, daemon=True)
    fetcher.start()
    sources = [open_source(c, live=False) for c in clips[:2]]
    paced = [(c.stem, PacedSource(s, fps=20)) for c, s in zip(clips, sources, strict=False)]
    run_streams(
        tiny_onnx, paced, serve=ServeOptions("127.0.0.1:0"), on_event=on_event
    )  # as cameras, ~1 s
    fetcher.join(timeout=30)
    stats = seen["stats"]
    assert list(stats["streams"]) == ["front", "rear"]
    assert stats["batch"]["steps"] > 0 and stats["streams"]["rear"]["policy"].startswith("live")
    assert "Streams" in seen["page"] and "stream.mjpg" in seen["page"]


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("long")
    return [
        write_video(folder / f"{n}.mp4", 4000, hw) for n, hw in (("a", (48, 64)), ("b", (36, 52)))
    ]


def test_sigterm_leaves_every_stream_output_and_the_mosaic_playable(
    tiny_onnx: Path, long_clips: list[Path], tmp_path: Path
) -> None:
    args = [
        "--model",
        str(tiny_onnx),
        "--source",
        str(long_clips[0]),
        "--source",
        str(long_clips[1]),
    ]
    args += ["--output", str(tmp_path / "{stream}.mp4"), "--mosaic", str(tmp_path / "all.mp4")]
    args += ["--stats", str(tmp_path / "s.jsonl"), "--headless"]
    process, lines = start_run(args, 4000, ready="streams: a ")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    stderr = "".join(lines)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    for name in ("a.mp4", "b.mp4", "all.mp4"):
        assert 0 < count_video_frames(tmp_path / name) < 4000, (name, stderr)
    final = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])
    assert final["final"] and set(final["streams"]) == {"a", "b"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_folders_per_stream_and_a_name_clash_inside_one_stream(
    tiny_onnx: Path, image_folder: Path, clips: list[Path], tmp_path: Path
) -> None:
    summary = run_streams(
        tiny_onnx,
        [f"shots={image_folder}", str(clips[0])],
        outputs=OutputOptions(targets=(f"{tmp_path}/frames/",)),
    )
    assert sorted(p.name for p in (tmp_path / "frames" / "shots").iterdir()) == [
        f"frame_{i:03d}.jpg" for i in range(5)
    ]
    assert len(list((tmp_path / "frames" / "front").glob("*.jpg"))) == 7
    assert summary.names == ("shots", "front")
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "a.png"), synthetic_frame(0))
    glob = str(tmp_path / "d*" / "*.png")
    with pytest.raises(EdgesegError, match=r"one output file in --save-masks \(stream1\)"):
        run_streams(
            tiny_onnx, [str(clips[0]), glob], outputs=OutputOptions(masks=tmp_path / "masks")
        )
    assert not (tmp_path / "masks").exists()


def test_the_mosaic_keeps_one_size_and_fits_other_sizes_into_their_tiles() -> None:
    from edgeseg.runtime.mosaic import Mosaic

    mosaic = Mosaic()
    mosaic.put(0, "front", 3, np.full((48, 64, 3), 200, np.uint8))
    mosaic.put(2, "left", 3, np.full((60, 40, 3), 100, np.uint8))  # taller: bars left and right
    image = mosaic.image()
    assert image.shape == (96, 128, 3)
    assert image[30, 10, 0] == 200  # front's tile (top left), away from its label
    assert image[48 + 24, 32, 0] == 100  # left's tile (bottom left), its middle
    assert image[48 + 24, 2, 0] == 0  # the bar beside the narrower image
    assert image[10, 64 + 10, 0] == 0  # stream 1 has not delivered yet


class FailingSink(Sink):
    """An application's sink whose storage fails after ``good`` frames."""

    def __init__(self, good: int) -> None:
        self.good, self.frames = good, 0

    def write(self, result: FrameResult) -> None:
        if self.frames >= self.good:
            raise OSError(28, "No space left on device", "/mnt/cam1")
        self.frames += 1


def test_a_stream_whose_output_fails_ends_alone(
    clips: list[Path], tiny_onnx: Path, tmp_path: Path
) -> None:
    events: list[str] = []
    streams = StreamsPipeline(Segmenter(tiny_onnx), on_event=events.append)
    streams.add_lane("ok", open_source(clips[1]), [VideoSink(tmp_path / "ok.mp4", 15)])
    streams.add_lane("full", open_source(clips[3]), [FailingSink(good=3)])
    with pytest.raises(OSError, match="No space left on device"):
        streams.run()
    assert count_video_frames(tmp_path / "ok.mp4") == 12  # the other stream ran to its end
    assert streams.lanes[1].stats.frames_done == 3
    assert any(e.startswith("stream full stopped: [Errno 28]") for e in events), events
