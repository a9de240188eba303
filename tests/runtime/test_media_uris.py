"""Media by URI, both ways, with the development venv's OpenCV (no GStreamer): the one table of
each, the option objects, image outputs beside their image, the encoder choice and its note, and
the one-line refusals of stream outputs where GStreamer is missing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_helpers import count_video_frames

from edgeseg.errors import EdgesegError
from edgeseg.runtime import (
    OUTPUT_SCHEMES,
    SOURCE_SCHEMES,
    EncodingOptions,
    OutputContext,
    OutputOptions,
    open_output,
    open_source,
    run_pipeline,
)
from edgeseg.runtime.encoders import choose_file_encoder, ffmpeg_h264_fourcc
from edgeseg.runtime.gstreamer import gstreamer_available
from edgeseg.runtime.sinks import FramesSink, ImageSink
from edgeseg.runtime.uris import parse_uri
from edgeseg.runtime.video_sink import VideoSink


@pytest.mark.parametrize(
    ("text", "scheme", "location", "port", "path"),
    [
        ("clip.mp4", "file", "clip.mp4", None, ""),
        ("file:///data/clip.mp4", "file", "/data/clip.mp4", None, ""),
        ("0", "v4l2", "0", None, ""),
        ("/dev/video2", "v4l2", "/dev/video2", None, ""),
        ("v4l2:///dev/video1", "v4l2", "/dev/video1", None, ""),
        ("csi://0", "csi", "0", None, ""),
        ("rtsp://cam.local:554/live", "rtsp", "cam.local", 554, "/live"),
        ("rtsp://@:8554/out", "rtsp", "@", 8554, "/out"),
        ("rtp://192.168.1.20:5000", "rtp", "192.168.1.20", 5000, ""),
        ("display://0", "display", "0", None, ""),
        ("http://@:8080", "http", "@", 8080, ""),
        ("gst:videotestsrc ! appsink", "gst", "videotestsrc ! appsink", None, ""),
        ("videotestsrc ! appsink", "gst", "videotestsrc ! appsink", None, ""),
    ],
)
def test_uris_parse_as_jetson_inference_names_them(
    text: str, scheme: str, location: str, port: int | None, path: str
) -> None:
    uri = parse_uri(text)
    assert (uri.scheme, uri.location, uri.port, uri.path) == (scheme, location, port, path)


def test_at_means_every_interface_and_a_bad_port_is_one_line() -> None:
    assert parse_uri("rtsp://@:8554/live").host() == "0.0.0.0"
    assert parse_uri("rtp://10.0.0.2:5000").host() == "10.0.0.2"
    with pytest.raises(EdgesegError, match="port must be a number"):
        parse_uri("rtp://host:port")


def test_one_table_each_way_covers_every_scheme_of_the_issue() -> None:
    assert {"file", "v4l2", "csi", "gst", "rtsp", "http", "https"} <= set(SOURCE_SCHEMES)
    assert set(OUTPUT_SCHEMES) == {"file", "rtp", "rtsp", "display", "http"}
    with pytest.raises(EdgesegError, match="unsupported output ftp://"):
        open_output("ftp://host/x.mp4")


def test_image_source_writes_an_image_beside_it(tiny_onnx: Path, tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.full((48, 64, 3), 200, np.uint8))
    before = image.read_bytes()
    out = tmp_path / "a_seg.jpg"
    summary = run_pipeline(tiny_onnx, str(image), outputs=OutputOptions(targets=(str(out),)))
    assert image.read_bytes() == before  # nothing the user had is overwritten
    written = cv2.imread(str(out))
    assert written is not None and written.shape == (48, 64, 3)
    assert summary.outputs == (str(out),) and summary.media[str(out)] == "image JPG"
    with pytest.raises(EdgesegError, match="is the source, which it would overwrite"):
        run_pipeline(tiny_onnx, str(image), outputs=OutputOptions(targets=(str(image),)))
    assert image.read_bytes() == before


def test_an_image_output_for_many_frames_is_refused(make_video, tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match="is one image, but the source has many frames"):
        open_output(tmp_path / "x.png", OutputContext(one_image=False))
    assert isinstance(open_output(tmp_path / "x.png", OutputContext(one_image=True)), ImageSink)
    assert isinstance(open_output(str(tmp_path / "frames") + "/"), FramesSink)


def test_several_outputs_at_once_and_the_media_report(
    tiny_onnx: Path, make_video, tmp_path: Path
) -> None:
    video = make_video(frames=6)
    targets = (str(tmp_path / "a.mp4"), str(tmp_path / "b.avi"), str(tmp_path / "frames") + "/")
    events: list[str] = []
    summary = run_pipeline(
        tiny_onnx, str(video), outputs=OutputOptions(targets=targets), on_event=events.append
    )
    assert count_video_frames(tmp_path / "a.mp4") == 6
    assert count_video_frames(tmp_path / "b.avi") == 6
    assert len(list((tmp_path / "frames").glob("*.jpg"))) == 6
    assert summary.media["source"] == "OpenCV FFmpeg"
    assert summary.media[targets[1]] == "MJPG, OpenCV FFmpeg"
    expected = choose_file_encoder(targets[0], EncodingOptions())
    assert summary.media[targets[0]] == expected.description
    if expected.note:  # pip's OpenCV: mp4v, said once for the one mp4 output
        assert sum("MPEG-4 Part 2" in line for line in events) == 1


def test_the_encoder_prefers_h264_and_mp4v_is_the_last_resort_said_once(tmp_path: Path) -> None:
    auto = choose_file_encoder(tmp_path / "o.mp4", EncodingOptions())
    if gstreamer_available():
        assert auto.codec == "h264" and auto.kind.startswith("gstreamer")
    elif ffmpeg_h264_fourcc() is not None:
        assert auto.codec == "h264" and auto.kind == "ffmpeg"
    else:  # pip's opencv-python: its FFmpeg has no H.264 encoder
        assert auto.codec == "mp4v" and auto.note is not None and "browsers" in auto.note
        with pytest.raises(EdgesegError, match=r"no H\.264 encoder"):
            choose_file_encoder(tmp_path / "o.mp4", EncodingOptions(codec="h264"))
    forced = choose_file_encoder(tmp_path / "o.mp4", EncodingOptions("mp4v", bitrate_kbps=900))
    assert forced.fourcc == "mp4v" and "not applied" in (forced.note or "")
    sink = VideoSink(tmp_path / "o.mp4", 10)
    assert sink.description == auto.description
    sink.discard()


def test_encoding_options_are_validated() -> None:
    with pytest.raises(EdgesegError, match="unknown codec 'h265'"):
        EncodingOptions(codec="h265")
    with pytest.raises(EdgesegError, match="out of range"):
        EncodingOptions(bitrate_kbps=5)
    assert OutputOptions(targets="one.mp4").targets == ("one.mp4",)


def test_stream_outputs_without_gstreamer_are_one_line() -> None:
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer: the streams would start")
    for uri in ("rtp://127.0.0.1:5000", "rtsp://127.0.0.1:8554/live"):
        with pytest.raises(EdgesegError, match="needs an OpenCV built with GStreamer"):
            open_output(uri)
    with pytest.raises(EdgesegError, match="expected rtp://HOST:PORT"):
        open_output("rtp://127.0.0.1")


def test_cli_takes_several_outputs_codec_and_bitrate(
    cli, tiny_onnx: Path, make_video, tmp_path: Path
) -> None:
    video = make_video(frames=5)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mkv"
    result = cli(
        "run", "--model", str(tiny_onnx), "--source", str(video), "--output", str(a),
        "--output", str(b), "--codec", "mp4v", "--headless",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert count_video_frames(a) == 5 and count_video_frames(b) == 5
    assert f"edgeseg: {a}: mp4v, OpenCV FFmpeg" in result.stderr
    assert "edgeseg: decoded: OpenCV FFmpeg" in result.stderr


def test_a_source_says_which_path_decodes_it(make_video, image_folder: Path) -> None:
    assert open_source(make_video()).media == "OpenCV FFmpeg"
    assert parse_uri(str(image_folder)).scheme == "file"


def test_doctor_reports_the_media_paths_the_runtime_takes(tmp_path: Path) -> None:
    from edgeseg.apps import doctor, doctor_media

    report = doctor.DoctorReport()
    doctor_media.check_media_paths(report)
    by_name = {c.name: c for c in report.checks}
    chosen = choose_file_encoder(tmp_path / "overlay.mp4", EncodingOptions())
    assert chosen.description in by_name["media mp4"].detail
    assert (by_name["media mp4"].status == "warn") == (chosen.note is not None)
    assert "OpenCV FFmpeg" in by_name["media decode"].detail  # no NVIDIA elements here
    assert report.facts["media"]["mp4"] == chosen.description


def test_an_http_mjpeg_stream_is_a_source(tiny_onnx: Path) -> None:
    """The browser view's own /stream.mjpg, read back through open_source("http://...")."""
    import threading
    import time

    from edgeseg.runtime import ServeSink
    from edgeseg.runtime.frames import Frame
    from edgeseg.runtime.results import FrameResult
    from edgeseg.runtime.stats import PipelineStats

    sink = ServeSink("127.0.0.1:0", token="")
    stop = threading.Event()
    image = np.full((48, 64, 3), (0, 200, 0), np.uint8)

    def feed() -> None:
        stats = PipelineStats()
        while not stop.is_set():
            frame = Frame(image, 0, time.perf_counter(), "0")
            sink.write(FrameResult(frame, np.zeros((2, 2), np.uint8), image, stats))
            time.sleep(0.03)

    threading.Thread(target=feed, daemon=True).start()
    try:
        source = open_source(f"http://127.0.0.1:{sink.port}/stream.mjpg")
        assert source.live and source.media == "OpenCV FFmpeg"
        frame = source.read()
        source.close()
    finally:
        stop.set()
        sink.close()
    assert frame is not None and frame.image.shape == (48, 64, 3)
    assert abs(int(frame.image[..., 1].mean()) - 200) < 10  # the green frame, JPEG-decoded


def test_a_window_without_a_gui_is_one_line() -> None:
    from edgeseg.runtime.sinks import opencv_has_gui

    if opencv_has_gui():
        pytest.skip("this OpenCV has a GUI")
    with pytest.raises(EdgesegError, match="no GUI"):
        open_output("display://0")
