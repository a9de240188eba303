"""The fault suite of issue 12: nothing a user had is lost, every fault is one line.

Real ``edgeseg run`` subprocesses receive real signals; a full disk is a real tmpfs where this
process may mount one (root, as in CI) and, everywhere, a video writer that stops accepting
frames the way OpenCV's does when the disk fills; read-only paths are a read-only mount (root)
or a folder without write permission; a broken stream is a local MJPEG server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import errno
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import assert_one_line_error, start_run
from fault_helpers import mounted_tmpfs, read_only_folder
from runtime_helpers import GeneratedLiveSource, count_video_frames, write_video

from edgeseg.cli.main import os_error_line
from edgeseg.errors import EdgesegError
from edgeseg.runtime import (
    CorruptFrame,
    Frame,
    OutputOptions,
    Pipeline,
    RetryPolicy,
    Segmenter,
    VideoSink,
    open_source,
    run_pipeline,
)

FAST_RETRY = RetryPolicy(initial_s=0.01, factor=2.0, max_delay_s=0.05, max_attempts=3)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edgeseg: error:")]


def write_noise_video(path: Path, frames: int, hw: tuple[int, int] = (96, 128)) -> Path:
    """Random pixels: they barely compress, so the output fills a small disk fast."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, hw[::-1])
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (*hw, 3), dtype=np.uint8))
    writer.release()
    return path


def read_to_the_end(seen: list[str]) -> str:
    """What the run wrote on stderr, once start_run's reader thread has caught up with the
    exited process (its last lines may still be in the pipe when wait() returns)."""
    deadline = time.monotonic() + 10
    while "interrupted (" not in "".join(seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "".join(seen)


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- signals ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Long enough that a signal lands mid-run (about 2,000 frames/s on an idle 2-core CPU).
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", 4000)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signals_finalise_the_video(
    tiny_onnx: Path, long_video: Path, tmp_path: Path, signum: int, code: int
) -> None:
    out, stats = tmp_path / "out.mp4", tmp_path / "s.jsonl"
    args = ["--model", str(tiny_onnx), "--source", str(long_video), "--output", str(out)]
    process, seen = start_run([*args, "--stats", str(stats)], 4000)
    process.send_signal(signum)
    process.wait(timeout=60)
    stderr = read_to_the_end(seen)
    assert process.returncode == code, stderr
    assert f"interrupted ({signal.Signals(signum).name})" in stderr
    assert "Traceback" not in stderr
    assert 0 < count_video_frames(out) < 4000, stderr
    assert json.loads(stats.read_text().splitlines()[-1])["final"] is True
    assert hidden_files(tmp_path) == []


def test_a_second_signal_does_not_abandon_finalisation(
    tiny_onnx: Path, long_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    args = ["--model", str(tiny_onnx), "--source", str(long_video), "--output", str(out)]
    process, seen = start_run(args, 4000)
    process.send_signal(signal.SIGTERM)
    for _ in range(5):  # Ctrl-C pressed again and again while the video is being finished
        time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    stderr = "".join(seen)
    assert process.returncode == 143, stderr  # the first signal says how it ended
    assert "Traceback" not in stderr
    assert 0 < count_video_frames(out) < 4000
    assert hidden_files(tmp_path) == []


def test_outputs_get_the_umask_mode(tiny_onnx: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", 6)
    out, stats, masks = tmp_path / "out.mp4", tmp_path / "s.jsonl", tmp_path / "masks"
    args = ["--model", str(tiny_onnx), "--source", str(video), "--output", str(out)]
    args += ["--stats", str(stats), "--save-masks", str(masks)]
    result = subprocess.run(
        [sys.executable, "-m", "edgeseg", "run", *args],
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o027),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for path in (out, stats, next(masks.glob("*.png"))):
        assert path.stat().st_mode & 0o777 == 0o640, path


# -- full disks and failing writers -------------------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "small", "size=256k,mode=0777") as folder:
        yield folder


def test_a_full_disk_stops_the_run_and_keeps_the_old_video(
    cli, tiny_onnx: Path, small_disk: Path, tmp_path: Path
) -> None:
    old = write_video(small_disk / "out.mp4", 10)
    before = old.read_bytes()
    noise = write_noise_video(tmp_path / "noise.avi", 300)
    result = cli("run", "--model", str(tiny_onnx), "--source", str(noise), "--output", str(old))
    assert result.returncode == 2, result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(f"edgeseg: error: {old}: No space left on device"), line
    assert "the disk is full" in line and "Traceback" not in result.stderr
    assert "wrote" not in result.stderr
    assert old.read_bytes() == before  # the video that was there is untouched
    assert hidden_files(small_disk) == []  # and the temporary file is gone, freeing the space


def test_a_full_disk_under_the_masks_is_one_line(
    cli, tiny_onnx: Path, small_disk: Path, tmp_path: Path
) -> None:
    noise = write_noise_video(tmp_path / "noise.avi", 300, hw=(240, 320))
    masks = small_disk / "masks"
    result = cli(
        "run", "--model", str(tiny_onnx), "--source", str(noise), "--save-masks", str(masks)
    )
    assert result.returncode == 2, result.stderr
    [line] = error_lines(result.stderr)
    assert re.match(rf"edgeseg: error: {masks}/\d+\.png: No space left on device", line), line
    assert hidden_files(masks) == []


class RefusingWriter:
    """A ``cv2.VideoWriter`` that stops accepting frames after ``accept`` of them: returns False
    as OpenCV 5 does when the disk fills (or raises OSError, as a Python writer would)."""

    def __init__(self, accept: int, raises: bool = False) -> None:
        self.accept, self.raises, self.calls = accept, raises, 0

    def __call__(self, path: str, fourcc: int, fps: float, size: tuple[int, int]):
        self.writer = cv2.VideoWriter(path, fourcc, fps, size)
        return self

    def isOpened(self) -> bool:  # OpenCV's name
        return self.writer.isOpened()

    def write(self, image: np.ndarray) -> bool:
        self.calls += 1
        if self.calls > self.accept:
            if self.raises:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return False
        self.writer.write(image)
        return True

    def release(self) -> None:
        self.writer.release()


@pytest.mark.parametrize("raises", [False, True])
def test_a_writer_that_stops_accepting_frames_fails_on_that_frame(
    tiny_onnx: Path, tmp_path: Path, raises: bool
) -> None:
    video = write_video(tmp_path / "clip.mp4", 20)
    old = write_video(tmp_path / "out.mp4", 3)
    before = old.read_bytes()
    masks = tmp_path / "masks"
    sink = VideoSink(old, 15, writer_factory=RefusingWriter(accept=6, raises=raises))
    with pytest.raises(OSError) as caught:
        run_pipeline(tiny_onnx, str(video), outputs=OutputOptions(masks=masks), extra_sinks=[sink])
    exc = caught.value
    assert exc.filename == str(old) and "frame 7" in str(exc)
    assert exc.errno == (errno.ENOSPC if raises else errno.EIO)
    line = os_error_line(exc)
    assert line is not None and line.startswith(f"{old}: ") and "\n" not in line
    assert old.read_bytes() == before
    assert hidden_files(tmp_path) == []
    assert len(list(masks.glob("*.png"))) == 7  # the run stopped on the frame that failed


class SilentWriter(RefusingWriter):
    """A ``cv2.VideoWriter`` as OpenCV 4.x has it: ``write`` returns None, success or not."""

    def write(self, image: np.ndarray) -> None:  # type: ignore[override]
        self.writer.write(image)


def test_an_opencv_that_reports_nothing_stops_before_the_disk_is_full(
    tiny_onnx: Path, small_disk: Path, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "clip.mp4", 10)
    out = small_disk / "out.mp4"  # 256 KiB free: below the 1 MiB the video keeps in reserve
    sink = VideoSink(out, 15, writer_factory=SilentWriter(accept=0))
    with pytest.raises(OSError) as caught:
        run_pipeline(tiny_onnx, str(video), extra_sinks=[sink])
    assert caught.value.errno == errno.ENOSPC and "less than 1 MiB left at frame 1" in str(
        caught.value
    )
    assert hidden_files(small_disk) == [] and not out.exists()


# -- read-only paths ----------------------------------------------------------------------------


@pytest.fixture()
def read_only(tmp_path: Path) -> Iterator[Path]:
    with read_only_folder(tmp_path) as folder:
        yield folder


@pytest.mark.parametrize(
    "option", [("--output", "out.mp4"), ("--stats", "s.jsonl"), ("--save-masks", "masks")]
)
def test_read_only_outputs_are_one_line(
    cli, tiny_onnx: Path, read_only: Path, tmp_path: Path, option: tuple[str, str]
) -> None:
    video = write_video(tmp_path / "clip.mp4", 4)
    flag, name = option
    result = cli(
        "run", "--model", str(tiny_onnx), "--source", str(video), flag, str(read_only / name)
    )
    assert_one_line_error(result, str(read_only / name))
    assert re.search(r"(Read-only file system|Permission denied)", result.stderr)


# -- paths that overlap -------------------------------------------------------------------------


def test_outputs_that_would_overwrite_inputs_or_each_other(
    cli, tiny_onnx: Path, image_folder: Path, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "clip.mp4", 4)
    before = video.read_bytes()
    model, src = str(tiny_onnx), str(video)
    cases = [
        (("--source", src, "--output", src), "is the source, which it would overwrite"),
        (("--source", src, "--stats", model), "is the model, which it would overwrite"),
        (
            (
                "--source",
                src,
                "--output",
                str(tmp_path / "o.mp4"),
                "--stats",
                str(tmp_path / "o.mp4"),
            ),
            "output and stats are the same path",
        ),
        (
            (
                "--source",
                src,
                "--output",
                str(tmp_path / "f") + "/",
                "--save-masks",
                str(tmp_path / "f"),
            ),
            "output and masks are the same path",
        ),
        (
            ("--source", str(image_folder), "--save-masks", str(image_folder)),
            "is inside the source folder",
        ),
        (
            ("--source", str(image_folder / "*.png"), "--output", str(image_folder / "over") + "/"),
            "is inside the source folder",
        ),
    ]
    for args, fragment in cases:
        assert_one_line_error(cli("run", "--model", model, *args), fragment)
    assert video.read_bytes() == before
    assert sorted(p.name for p in image_folder.iterdir()) == [
        f"frame_{i:03d}.png" for i in range(5)
    ]
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "f").exists()


def test_two_images_with_one_stem_keep_their_extensions(
    cli, tiny_onnx: Path, tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    image = np.full((20, 30, 3), 200, np.uint8)
    cv2.imwrite(str(frames / "a.png"), image)
    cv2.imwrite(str(frames / "a.jpg"), image)
    cv2.imwrite(str(frames / "b.png"), image)
    masks, out = tmp_path / "masks", tmp_path / "out"
    result = cli(
        "run", "--model", str(tiny_onnx), "--source", str(frames), "--save-masks", str(masks),
        "--output", str(out) + "/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in masks.iterdir()) == ["a.jpg.png", "a.png.png", "b.png"]
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg.jpg", "a.png.jpg", "b.jpg"]


def test_one_name_in_two_folders_of_a_glob_is_refused(cli, tiny_onnx: Path, tmp_path: Path) -> None:
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    masks = tmp_path / "masks"
    result = cli("run", "--model", str(tiny_onnx), "--source", str(tmp_path / "d*" / "*.png"),
                 "--save-masks", str(masks))  # fmt: skip
    assert_one_line_error(result, "would give one output file in masks")
    assert not masks.exists()


# -- streams that never decode, files that end early --------------------------------------------


class MJPEGServer:
    """A multipart MJPEG stream on 127.0.0.1 whose parts are not JPEG images."""

    def __init__(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                junk = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                with contextlib.suppress(OSError):
                    for _ in range(3000):
                        self.wfile.write(head % len(junk) + junk + b"\r\n")
                        time.sleep(0.001)

        self.connections = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_stream_that_connects_but_never_decodes_ends_with_one_line(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    server = MJPEGServer()
    try:
        source = open_source(server.url)
        out = tmp_path / "out.mp4"
        started = time.perf_counter()
        with pytest.raises(EdgesegError) as caught:
            run_pipeline(
                tiny_onnx, source, outputs=OutputOptions(targets=(str(out),)), retry=FAST_RETRY
            )
    finally:
        server.close()
    message = str(caught.value)
    assert server.url in message and "no decodable frame came" in message, message
    assert "connected 3 time(s)" in message and "\n" not in message
    assert server.connections == 4  # the first connection and 3 reconnections, not forever
    assert time.perf_counter() - started < 60
    assert not out.exists() and hidden_files(tmp_path) == []


class CorruptCamera(GeneratedLiveSource):
    """A live source whose frames stop decoding after ``good`` of them."""

    fps = 50.0

    def __init__(self, good: int) -> None:
        super().__init__(frames=10_000, interval_s=0.0005)
        self.good = good

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is not None and frame.index >= self.good:
            raise CorruptFrame(f"frame {frame.index}: bad JPEG")
        return frame


def test_a_live_source_of_corrupt_frames_ends_past_the_limit(tiny_onnx: Path) -> None:
    events: list[str] = []
    source = CorruptCamera(good=4)
    pipeline = Pipeline(source, Segmenter(tiny_onnx), on_event=events.append)
    assert pipeline.corrupt_limit == 250  # 5 s at the camera's 50 fps
    with pytest.raises(EdgesegError, match="250 undecodable frames in a row after 4 good frames"):
        pipeline.run()
    assert pipeline.stats.corrupt == 250 and source.closed
    assert len(events) < 10  # reported, not one line per broken frame


def test_a_cut_video_warns_with_both_counts(cli, tiny_onnx: Path, tmp_path: Path) -> None:
    full = write_video(tmp_path / "full.avi", 60)
    cut = tmp_path / "cut.avi"  # AVI: the frame count is in the header, the index at the end
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    decodable = count_video_frames(cut)
    assert 0 < decodable < 60
    result = cli("run", "--model", str(tiny_onnx), "--source", str(cut), "--headless")
    assert result.returncode == 0, result.stderr
    assert f"ended after {decodable} of the 60 frames its container announces" in result.stderr


def test_a_folder_of_corrupt_images_is_an_error(cli, tiny_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = cli("run", "--model", str(tiny_onnx), "--source", str(folder), "--headless")
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"edgeseg: error: folder {folder} yielded no frame (3 undecodable); nothing written"
    ]


# -- runs into existing folders, the cache, the bundled model -----------------------------------


@pytest.mark.slow
def test_bench_into_an_earlier_bench_takes_the_next_name(
    cli, tiny_onnx: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (edgeseg[onnx]) runs the file")
    out = tmp_path / "bench"
    out.mkdir()
    (out / "bench.json").write_text('{"earlier": true}')
    fast = ("--runs", "2", "--warmup", "0", "--backends", "onnxruntime")
    result = cli("bench", "--model", str(tiny_onnx), *fast, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"{out} holds an earlier run; this one writes to {out}2" in result.stderr
    assert json.loads((out / "bench.json").read_text()) == {"earlier": True}
    assert "rows" in json.loads((tmp_path / "bench2" / "bench.json").read_text())
    again = cli("bench", "--model", str(tiny_onnx), *fast, "--out", str(out), "--exist-ok")
    assert again.returncode == 0 and "rows" in json.loads((out / "bench.json").read_text())


def test_an_unwritable_cache_only_warns(tmp_path: Path) -> None:
    # The user cache only saves time: a cache folder that cannot be created is said, not fatal.
    from edgeseg.calibration.cache import load_images
    from edgeseg.calibration.readers import resolve_source

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((20, 30, 3), 40 * i, np.uint8))
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    said: list[str] = []
    source = resolve_source(str(frames), count=3)
    images, hit = load_images(source, (16, 16), cache_dir=blocker / "calibration", warn=said.append)
    assert images.shape == (3, 16, 16, 3) and not hit
    expected = f"cannot write the calibration cache in {blocker / 'calibration'}"
    assert any(expected in line for line in said), said
    assert blocker.read_text() == "not a folder"


def test_the_bundled_onnx_runs_without_importing_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the check is that torch, installed, stays unimported")
    from edgeseg.apps.default_model import ONNX_NAME

    video = write_video(tmp_path / "clip.mp4", 3)
    script = (
        "import sys\nfrom edgeseg.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('torch imported:', 'torch' in sys.modules)"
    )
    args = ["run", "--source", str(video), "--headless"]
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stdout
    assert ONNX_NAME in result.stderr


def test_an_empty_frame_is_one_line(tiny_onnx: Path) -> None:
    with pytest.raises(EdgesegError, match=r"an empty one \(0, 0, 3\)"):
        Segmenter(tiny_onnx).predict(np.zeros((0, 0, 3), np.uint8))
