"""Jetson camera first contact (issue 14): csi:// and V4L2 sources, capture-to-output latency,
class shares.

No camera, Argus or GStreamer here: the pipeline strings and V4L2 settings are checked as text
and values, ``csi://0`` must fail with its one line, and latency is measured on a video file
released at its own rate (:class:`PacedSource`), which the pipeline treats as a camera.
"""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import assert_one_line_error, edgeseg
from runtime_helpers import CLASS_NAMES, tiny_card, write_video

from edgeseg.errors import EdgesegError
from edgeseg.runtime import (
    FLIP_METHODS,
    CameraSettings,
    PacedSource,
    Pipeline,
    Segmenter,
    class_shares,
    csi_pipeline,
    open_source,
)
from edgeseg.runtime.cameras import (
    flip_image,
    fourcc_text,
    parse_csi,
    v4l2_properties,
)
from edgeseg.runtime.sources import gstreamer_available

# -- csi:// -------------------------------------------------------------------------------------


def test_csi_pipeline_defaults_to_a_mode_imx219_and_imx477_share() -> None:
    assert csi_pipeline(0) == (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=(int)1920, "
        "height=(int)1080, framerate=(fraction)30/1, format=(string)NV12 ! nvvidconv "
        "flip-method=0 ! video/x-raw, format=(string)BGRx ! appsink drop=true max-buffers=1 "
        "sync=false"
    )


def test_csi_frames_are_scaled_in_nvvidconv_and_taken_as_bgrx() -> None:
    pipeline = csi_pipeline(1, CameraSettings(flip="clockwise"), scale_hw=(360, 480))
    assert (
        "nvvidconv flip-method=3 ! video/x-raw, format=(string)BGRx, width=(int)480, "
        "height=(int)360 ! appsink drop=true max-buffers=1 sync=false"
    ) in pipeline
    assert "videoconvert" not in pipeline


@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        (
            CameraSettings((720, 1280), 60, flip="rotate-180"),
            ["width=(int)1280, height=(int)720", "framerate=(fraction)60/1", "flip-method=2"],
        ),
        (CameraSettings(fps=29.97), ["framerate=(fraction)2997/100", "width=(int)1920"]),
        (CameraSettings(flip="upper-left-diagonal"), ["flip-method=7"]),
    ],
)
def test_csi_pipeline_options(settings: CameraSettings, fragments: list[str]) -> None:
    pipeline = csi_pipeline(3, settings)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=3 ! ")
    assert pipeline.endswith("! appsink drop=true max-buffers=1 sync=false")
    for fragment in fragments:
        assert fragment in pipeline, (fragment, pipeline)


def test_flip_names_are_nvvidconv_flip_methods_in_order() -> None:
    # nvvidconv flip-method: 0 none, 1 counterclockwise, 2 rotate-180, 3 clockwise,
    # 4 horizontal, 5 upper-right-diagonal, 6 vertical, 7 upper-left-diagonal.
    assert FLIP_METHODS.index("clockwise") == 3 and FLIP_METHODS.index("vertical") == 6


@pytest.mark.parametrize("spec", ["csi://", "csi://cam", "csi://-1"])
def test_bad_csi_specs(spec: str) -> None:
    with pytest.raises(EdgesegError, match=r"expected csi://N"):
        parse_csi(spec)


def test_csi_without_gstreamer_is_one_line_naming_the_pipeline(tiny_onnx: Path) -> None:
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer: csi://0 would try to open the camera")
    result = edgeseg("run", "--model", str(tiny_onnx), "--source", "csi://0", "--flip", "clockwise")
    assert_one_line_error(result, "csi://0 needs an OpenCV built with GStreamer")
    # the frames are scaled to the model's input size by nvvidconv
    expected = csi_pipeline(
        0, CameraSettings(flip="clockwise"), scale_hw=Segmenter(tiny_onnx).card.input_hw
    )
    assert expected in result.stderr
    assert "python3-opencv" in result.stderr and "flip-method=3" in result.stderr


def test_camera_options_are_refused_where_they_mean_nothing(make_video) -> None:
    with pytest.raises(EdgesegError, match="apply to cameras"):
        open_source(make_video(), flip="clockwise")
    with pytest.raises(EdgesegError, match="pixel format applies to V4L2 cameras"):
        open_source("csi://0", camera_format="mjpg")
    with pytest.raises(EdgesegError, match="unknown --flip 'sideways'"):
        CameraSettings(flip="sideways")
    if not Path("/dev/video97").exists():
        with pytest.raises(EdgesegError, match="camera /dev/video97 not found"):
            open_source("v4l2:///dev/video97")


# -- V4L2 ---------------------------------------------------------------------------------------


def test_v4l2_properties_set_the_format_first_and_one_buffer() -> None:
    props = v4l2_properties(CameraSettings((720, 1280), 30, "mjpg"))
    assert props == [
        (cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter_fourcc(*"MJPG"))),
        (cv2.CAP_PROP_FRAME_WIDTH, 1280.0),
        (cv2.CAP_PROP_FRAME_HEIGHT, 720.0),
        (cv2.CAP_PROP_FPS, 30.0),
        (cv2.CAP_PROP_BUFFERSIZE, 1.0),
    ]
    assert v4l2_properties(CameraSettings(pixel_format="YUYV"))[0][1] == float(
        cv2.VideoWriter_fourcc(*"YUYV")
    )
    assert v4l2_properties(CameraSettings()) == [(cv2.CAP_PROP_BUFFERSIZE, 1.0)]
    assert fourcc_text(cv2.VideoWriter_fourcc(*"MJPG")) == "MJPG" and fourcc_text(0) == ""


def test_flips_match_their_definitions() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    expected = {
        "none": image,
        "counterclockwise": np.rot90(image, 1),
        "rotate-180": np.rot90(image, 2),
        "clockwise": np.rot90(image, -1),
        "horizontal": image[:, ::-1],
        "vertical": image[::-1],
        "upper-left-diagonal": image.transpose(1, 0, 2),
        # across the other diagonal: out[i, j] = in[H - 1 - j, W - 1 - i]
        "upper-right-diagonal": image[::-1, ::-1].transpose(1, 0, 2),
    }
    assert set(expected) == set(FLIP_METHODS)
    for method, want in expected.items():
        np.testing.assert_array_equal(flip_image(image, method), want, err_msg=method)


# -- class shares -------------------------------------------------------------------------------


def test_class_shares_against_a_hand_counted_mask() -> None:
    mask = np.array(
        [
            [0, 0, 1, 1, 1],
            [0, 2, 2, 1, 1],
            [3, 3, 3, 3, 1],
            [0, 0, 0, 0, 0],
        ],
        np.uint8,
    )  # 20 pixels: class 0 eight times, 1 six, 2 two, 3 four
    shares = class_shares(mask, CLASS_NAMES)
    assert shares == {"Sky": 8 / 20, "Road": 6 / 20, "Car": 2 / 20, "Person": 4 / 20}
    assert list(shares) == list(CLASS_NAMES)
    assert class_shares(mask, tiny_card()) == shares
    assert class_shares(mask) == {"0": 0.4, "1": 0.3, "2": 0.1, "3": 0.2}
    assert class_shares(np.zeros((3, 3), np.uint8), 3) == {"0": 1.0, "1": 0.0, "2": 0.0}
    with pytest.raises(EdgesegError, match="uint8 class mask"):
        class_shares(mask.astype(np.int64), CLASS_NAMES)


def test_class_shares_of_a_large_mask_sum_to_one() -> None:
    mask = np.random.default_rng(0).integers(0, 11, (1080, 1920), dtype=np.uint8)
    shares = class_shares(mask, 11)
    counts = np.bincount(mask.ravel(), minlength=11)
    assert [shares[str(i)] for i in range(11)] == pytest.approx(counts / mask.size, abs=0)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)


# -- stats on a real video ----------------------------------------------------------------------


def test_stats_and_class_share_csv_on_a_real_video(tiny_onnx: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", 12)  # 48x64 frames: twice the 24x32 input
    stats, table, masks = tmp_path / "s.jsonl", tmp_path / "shares.csv", tmp_path / "masks"
    result = edgeseg(
        "run", "--model", str(tiny_onnx), "--source", str(video), "--stats", str(stats),
        "--class-shares", str(table), "--save-masks", str(masks),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    final = json.loads(stats.read_text().splitlines()[-1])
    to_output = final["capture_to_output_ms"]
    assert 0 < to_output["p50"] <= to_output["p95"]
    assert to_output["p50"] <= final["latency_p50_ms"]  # handed over before the last sink ends
    assert list(final["class_share"]) == list(CLASS_NAMES)
    assert sum(final["class_share"].values()) == pytest.approx(1.0, abs=1e-4)
    rows = list(csv.reader(table.open()))
    assert rows[0] == ["frame", *CLASS_NAMES] and len(rows) == 13
    for row in rows[1:]:
        # The class map is counted; the frame is an exact 2x enlargement of it, so the shares
        # equal those of the saved full-size mask.
        mask = cv2.imread(str(masks / f"{row[0]}.png"), cv2.IMREAD_UNCHANGED)
        expected = class_shares(mask, CLASS_NAMES)
        assert [float(v) for v in row[1:]] == pytest.approx(list(expected.values()), abs=1e-6)
    assert final["class_share"] == pytest.approx(
        {k: float(v) for k, v in zip(rows[0][1:], rows[-1][1:], strict=True)}, abs=1e-5
    )


def test_a_file_played_at_its_rate_is_live_with_positive_latency(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "clip.mp4", 12, fps=20.0)
    source = PacedSource(open_source(video))
    assert source.live and source.fps == pytest.approx(20.0)
    released: list[float] = []

    class Times:
        needs_render, stop_requested = True, False

        def write(self, result) -> None:
            released.append(result.frame.captured_at)

        def finish(self, stats) -> None:
            pass

        def close(self) -> None:
            pass

    started = time.perf_counter()
    stats = Pipeline(source, Segmenter(tiny_onnx), [Times()]).run()
    assert time.perf_counter() - started >= 11 / 20 * 0.95  # released on the video's clock
    assert stats.policy.startswith("live") and stats.frames_read == 12
    assert stats.frames_done + stats.dropped == 12
    gaps = np.diff(released)
    assert np.median(gaps) == pytest.approx(1 / 20, rel=0.3), gaps
    assert 0 < stats.capture_to_output_p50_ms <= stats.capture_to_output_p95_ms
    assert stats.capture_to_output_p50_ms <= stats.latency_p50_ms


def test_the_live_line_shows_capture_to_output(tiny_onnx: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", 30, fps=15.0)
    result = edgeseg("run", "--model", str(tiny_onnx), "--source", str(video), "--realtime")
    assert result.returncode == 0, result.stderr
    assert "at 15 fps (real time) (live: newest frame only)" in result.stderr
    assert re.search(
        r"[\d.]+ fps \| capture to output p50 \d+ ms p95 \d+ ms \| latency", result.stderr
    )


def test_run_help_lists_the_uri_forms() -> None:
    text = edgeseg("run", "--help").stdout
    for form in ("csi://0", "v4l2:///dev/video0", "file://", "rtsp://", "--flip", "--realtime"):
        assert form in text, form
