"""Sources: what each spec opens, and one clear error for every source that cannot be read."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from runtime_helpers import synthetic_frame

from edgeseg.errors import EdgesegError
from edgeseg.runtime import CorruptFrame, RetryPolicy, open_source
from edgeseg.runtime.images import ImageFolderSource
from edgeseg.runtime.sources import VideoCaptureSource, gstreamer_available


def read_all(source) -> list:
    frames = []
    while True:
        try:
            frame = source.read()
        except CorruptFrame:
            continue
        if frame is None:
            return frames
        frames.append(frame)


def test_video_file_is_a_file_source(make_video) -> None:
    source = open_source(make_video(frames=7))
    assert isinstance(source, VideoCaptureSource) and not source.live
    assert source.frame_count == 7 and source.fps == pytest.approx(15.0)
    frames = read_all(source)
    assert [f.index for f in frames] == list(range(7))
    assert frames[0].image.shape == (48, 64, 3)


def test_image_folder_in_name_order(image_folder: Path) -> None:
    source = open_source(image_folder)
    assert isinstance(source, ImageFolderSource) and not source.live
    frames = read_all(source)
    assert [f.name for f in frames] == [f"frame_{i:03d}" for i in range(5)]


def test_glob_and_single_image(image_folder: Path) -> None:
    assert len(read_all(open_source(str(image_folder / "frame_00[1-3].png")))) == 3
    single = open_source(image_folder / "frame_002.png")
    assert [f.name for f in read_all(single)] == ["frame_002"]


def test_live_override(make_video) -> None:
    assert open_source(make_video(), live=True).live


def test_corrupt_image_raises_corrupt_frame(image_folder: Path) -> None:
    (image_folder / "frame_001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    source = open_source(image_folder)
    source.read()
    with pytest.raises(CorruptFrame, match="frame_001"):
        source.read()
    assert source.read().name == "frame_002"


def test_retry_policy_backs_off_to_a_ceiling() -> None:
    delays = list(RetryPolicy(initial_s=0.5, factor=2, max_delay_s=3, max_attempts=6).delays())
    assert delays == [0.5, 1.0, 2.0, 3, 3, 3]


# -- faults: one line each ----------------------------------------------------------------------


def test_nonexistent_file(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match=r"source .*missing\.mp4 not found"):
        open_source(tmp_path / "missing.mp4")


def test_unreadable_video(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(EdgesegError, match=r"cannot open video .*junk\.mp4"):
        open_source(junk)


def test_unreadable_single_image(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(EdgesegError, match="cannot read image"):
        open_source(junk)


def test_empty_image_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(EdgesegError, match="no images in folder"):
        open_source(tmp_path)


def test_glob_without_matches(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match="no images match"):
        open_source(str(tmp_path / "*.png"))


def test_missing_camera_device() -> None:
    if Path("/dev/video99").exists():
        pytest.skip("/dev/video99 exists here")
    with pytest.raises(EdgesegError, match="camera /dev/video99 not found"):
        open_source("/dev/video99")


def test_missing_camera_index() -> None:
    if Path("/dev/video99").exists():
        pytest.skip("/dev/video99 exists here")
    with pytest.raises(EdgesegError, match="cannot open camera 99"):
        open_source(99)


def test_gstreamer_pipeline_without_gstreamer() -> None:
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(EdgesegError, match="GStreamer: NO"):
        open_source("videotestsrc num-buffers=3 ! videoconvert ! appsink")


def test_unreachable_stream() -> None:
    with pytest.raises(EdgesegError, match=r"cannot open stream rtsp://127\.0\.0\.1:9/"):
        open_source("rtsp://127.0.0.1:9/live")


def test_unsupported_url_scheme() -> None:
    with pytest.raises(EdgesegError, match="unsupported URL scheme 'ftp'"):
        open_source("ftp://example.com/clip.mp4")


def test_camera_options_on_a_file_are_refused(make_video) -> None:
    with pytest.raises(EdgesegError, match="apply to cameras"):
        open_source(make_video(), camera_size=(720, 1280))


def test_frames_are_bgr_uint8(tmp_path: Path) -> None:
    gray = tmp_path / "g.png"
    cv2.imwrite(str(gray), synthetic_frame(0)[:, :, 0])
    frame = open_source(gray).read()
    assert frame.image.shape == (48, 64, 3)
