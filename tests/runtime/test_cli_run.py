"""``edgeseg run`` end to end: outputs, one-line errors, Ctrl-C, help examples.

Most cases call the console entry point in-process (the ``cli`` fixture: the same code path,
without paying for a Python start per case); Ctrl-C and one full ``python -m edgeseg run`` go
through a real subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, edgeseg, start_run
from runtime_helpers import CAMVID_CLIP, count_video_frames, tiny_card, write_video

from edgeseg.card import write_sidecar


def test_video_to_video_masks_and_stats(tiny_onnx: Path, make_video, tmp_path: Path) -> None:
    video = make_video(frames=14)
    out, masks, stats = tmp_path / "out.mp4", tmp_path / "masks", tmp_path / "s.jsonl"
    result = edgeseg(
        "run",
        "--model",
        str(tiny_onnx),
        "--source",
        str(video),
        "--output",
        str(out),
        "--save-masks",
        str(masks),
        "--stats",
        str(stats),
        "--mode",
        "side-by-side",
        "--classes",
        "road,car",
    )
    assert result.returncode == 0, result.stderr
    assert count_video_frames(out) == 14 and len(list(masks.glob("*.png"))) == 14
    final = json.loads(stats.read_text().splitlines()[-1])
    assert final["final"] and final["frames_done"] == 14 and final["dropped"] == 0
    assert "backend onnxruntime (CPUExecutionProvider), chosen by --backend auto" in result.stderr
    assert "file: every frame" in result.stderr
    assert re.search(r"14 frames in .* fps\); latency p50", result.stderr)
    assert "Traceback" not in result.stderr


def test_frames_folder_output_and_max_frames(
    cli, tiny_onnx: Path, make_video, tmp_path: Path
) -> None:
    result = cli(
        "run",
        "--model",
        str(tiny_onnx),
        "--source",
        str(make_video(frames=10)),
        "--output",
        str(tmp_path / "frames") + "/",
        "--max-frames",
        "4",
        "--no-legend",
        "--headless",
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "frames").glob("*.jpg"))) == 4
    assert "stopped by max_frames" in result.stderr


def test_camvid_clip_through_the_cli(
    cli, tiny_onnx: Path, camvid_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "camvid_overlay.mp4"
    result = cli(
        "run", "--model", str(tiny_onnx), "--source", str(camvid_clip), "--output", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert count_video_frames(out) == 101
    assert "101 frames in" in result.stderr


def test_ctrl_c_finalises_the_output(tiny_onnx: Path, tmp_path: Path) -> None:
    # Long enough that Ctrl-C lands mid-run on an idle machine too (~2,000 frames/s here).
    long_video = write_video(tmp_path / "long.mp4", 4000)
    out = tmp_path / "interrupted.mp4"
    args = ["--model", str(tiny_onnx), "--source", str(long_video), "--output", str(out)]
    process, seen = start_run(args, 4000)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    stderr = "".join(seen)
    assert process.returncode == 130, stderr
    assert ("interrupted" in stderr or "aborted" in stderr) and "Traceback" not in stderr
    written = count_video_frames(out)
    assert 0 < written < 4000, stderr
    assert not list(tmp_path.glob(".interrupted*"))


# -- one clear line for every fault -------------------------------------------------------------


@pytest.fixture()
def engine_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    monkeypatch.setenv("EDGESEG_PLUGIN_DIR", str(plugin))
    return {"engine": engine, "plugin": plugin}


def test_fault_lines(cli, tiny_onnx: Path, make_video, tmp_path: Path) -> None:
    from runtime_helpers import write_tiny_onnx

    video = make_video()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty"
    empty.mkdir()
    bare = write_tiny_onnx(tmp_path / "bare.onnx", with_card=False)
    model, source = str(tiny_onnx), str(video)
    cases = [
        (("--model", model, "--source", str(tmp_path / "missing.mp4")), "not found"),
        (("--model", model, "--source", str(junk)), "cannot open video"),
        (("--model", model, "--source", str(empty)), "no images in folder"),
        (("--model", str(bare), "--source", source), "has no edgeseg model card"),
        (("--model", str(tmp_path / "none.onnx"), "--source", source), "not found"),
        (
            ("--model", model, "--source", source, "--classes", "road,truck"),
            "unknown class 'truck'; this model's classes: Sky, Road, Car, Person",
        ),
        (
            ("--model", model, "--source", source, "--camera-width", "640"),
            "give both --camera-width and --camera-height",
        ),
        (("--model", model, "--source", source, "--backend", "tensorrt"), "cannot run tiny.onnx"),
        (("--model", model, "--source", source, "--mode", "blend"), "'overlay', 'mask'"),
        (
            ("--model", model, "--source", source, "--output", str(tmp_path / "o.gif")),
            "use one of .mp4",
        ),
    ]
    if not Path("/dev/video99").exists():
        cases.append((("--model", model, "--source", "/dev/video99"), "camera /dev/video99"))
    from edgeseg.runtime.sources import gstreamer_available

    if not gstreamer_available():
        cases.append((("--model", model, "--source", "videotestsrc ! appsink"), "GStreamer: NO"))
    for args, fragment in cases:
        assert_one_line_error(cli("run", *args), fragment)


def test_engine_faults(cli, make_video, engine_dir: dict) -> None:
    engine, source = str(engine_dir["engine"]), str(make_video())
    assert_one_line_error(
        cli("run", "--model", engine, "--source", source), "model.engine.json is missing"
    )
    write_sidecar(tiny_card(), engine)
    assert_one_line_error(cli("run", "--model", engine, "--source", source), "plugin is not built")
    if importlib.util.find_spec("tensorrt") is None:
        (engine_dir["plugin"] / "libedgeseg_unpool_plugin.so").write_bytes(b"\x7fELF")
        assert_one_line_error(
            cli("run", "--model", engine, "--source", source), "TensorRT is not installed"
        )


def test_display_without_gui_is_refused(cli, tiny_onnx: Path, make_video) -> None:
    from edgeseg.runtime.sinks import opencv_has_gui

    if opencv_has_gui():
        pytest.skip("this OpenCV has a GUI")
    result = cli("run", "--model", str(tiny_onnx), "--source", str(make_video()), "--display")
    assert_one_line_error(result, "opencv-python-headless")


def test_help_lists_run_with_examples(cli) -> None:
    result = cli("run", "--help")
    assert result.returncode == 0
    assert result.stdout.count("edgeseg run --model") == 3
    assert "  run " in cli("--help").stdout


@pytest.mark.slow
def test_help_examples_run(
    cli, tiny_onnx: Path, tmp_path: Path, engine_dir: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example in ``edgeseg run --help``, with its files stood in for by small ones."""
    text = cli("run", "--help").stdout
    examples = [
        line.strip() for line in text.splitlines() if line.strip().startswith("edgeseg run")
    ]
    work = tmp_path / "work"
    (work / "frames").mkdir(parents=True)
    shutil.copy(tiny_onnx, work / "model.onnx")
    clip = CAMVID_CLIP if CAMVID_CLIP.is_file() else write_video(tmp_path / "clip.mp4", 8)
    write_video(tmp_path / "f.mp4", 3)
    import cv2

    capture = cv2.VideoCapture(str(tmp_path / "f.mp4"))
    for i in range(3):
        cv2.imwrite(str(work / "frames" / f"{i}.png"), capture.read()[1])
    shutil.copy(engine_dir["engine"], work / "model.engine")
    # A segmentation ONNX without an edgeseg card (the tiny model with its card taken out).
    import onnx

    foreign = onnx.load(str(tiny_onnx))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(work / "deeplab.onnx"))
    (work / "voc.txt").write_text("sky\nroad\ncar\nperson\n")
    shutil.copy(clip, work / "clip.mp4")
    for example in examples:
        args = shlex.split(example)[2:]
        args = [str(clip) if a == "../shared/datasets/camvid/clip_val.mp4" else a for a in args]
        monkeypatch.chdir(work)
        result = cli("run", *args)
        if "model.engine" in example:  # no engine, TensorRT or camera here: one clear line
            assert_one_line_error(result, "model.engine.json is missing")
        else:
            assert result.returncode == 0, (example, result.stderr)
    assert count_video_frames(work / "out.mp4") == count_video_frames(clip)


def test_a_mistake_before_the_first_frame_leaves_no_files(
    cli, tiny_onnx: Path, make_video, tmp_path: Path
) -> None:
    result = cli(
        "run",
        "--model",
        str(tiny_onnx),
        "--source",
        str(make_video()),
        "--output",
        str(tmp_path / "out.mp4"),
        "--stats",
        str(tmp_path / "no" / "s.jsonl"),
    )
    assert_one_line_error(result, "stats folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no out.mp4, no temp file


def test_live_sources_get_a_stats_line(tiny_onnx: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from runtime_helpers import GeneratedLiveSource

    from edgeseg.cli.run import _Progress
    from edgeseg.runtime import Pipeline, Segmenter

    progress = _Progress(max_frames=None)
    progress.configure(total=None, live=True)
    source = GeneratedLiveSource(frames=40, interval_s=0.03)
    Pipeline(source, Segmenter(tiny_onnx), [progress]).run()
    err = capfd.readouterr().err
    line = r"[\d.]+ fps \| capture to output p50 \d+ ms p95 \d+ ms \| latency p50 \d+ ms p95 \d+ ms"
    assert re.search(line + r" \| dropped \d+", err), err
